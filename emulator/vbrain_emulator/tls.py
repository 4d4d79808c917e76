"""A self-signed certificate for serving the emulator over HTTPS on this machine.

Clients trust it by pointing at the certificate file, e.g. the VBrain connection's
``verify`` extra. Uses the ``cryptography`` package, a dependency of the emulator.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path


def self_signed_certificate(folder: str | Path, common_name: str = "vbrain-emulator") -> tuple[Path, Path]:
    """Write a certificate for ``localhost`` and ``127.0.0.1`` (its own CA) and its key into ``folder``.

    :param folder: an existing directory.
    :param common_name: the certificate's subject name.
    :return: the certificate's and the key's paths (PEM).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = Path(folder) / "cert.pem", Path(folder) / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path
