"""Fixtures of the hooks' tests: an emulator behind TLS, its certificate the test's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    from vbrain_emulator.tls import self_signed_certificate

    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_emulator(tls_files: tuple[Path, Path]) -> Any:
    """An emulator serving HTTPS with :func:`tls_files`' certificate; its jobs end at once."""
    import ssl

    from vbrain_emulator import EmulatorServer

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    with EmulatorServer(ssl_context=context, queue_seconds=0, run_seconds=0) as server:
        yield server
