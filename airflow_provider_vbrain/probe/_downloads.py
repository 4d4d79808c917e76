"""What a ZIP download answered: a ZIP, the base64 text of one, or something else (quoted)."""

from __future__ import annotations

import base64
import binascii
import io
import zipfile

from airflow_provider_vbrain._client.download import ZIP_SIGNATURES
from airflow_provider_vbrain._client.http import Response, clip

__all__ = ["describe", "download_meaning"]

#: How much of an answer that is not a ZIP is quoted.
QUOTED = 80

#: What each download is used for, to say what breaks when it is not a ZIP.
_USES = {
    "download: repository input": "VBrainHook.download_repository_input",
    "download: job logs": "VBrainDownloadJobFilesOperator(kind='logs') (and so the log tail in a failed "
    "job's error)",
    "download: job output": "VBrainDownloadJobFilesOperator(kind='output')",
}


def describe(answer: Response) -> tuple[bool, str]:
    """Whether ``answer`` is a ZIP, and what it is in a few words."""
    body = answer.body
    size = f"{len(body)} bytes, {answer.content_type or 'no content type'}"
    if body.startswith(ZIP_SIGNATURES):
        try:
            names = zipfile.ZipFile(io.BytesIO(body)).namelist()
        except zipfile.BadZipFile as err:
            return False, f"HTTP {answer.status}: starts like a ZIP but is not one ({size}): {err}"
        listed = f": {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}" if names else ""
        return True, f"HTTP {answer.status}: a ZIP ({size}) of {len(names)} file(s){listed}"
    try:
        decoded = base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if decoded.startswith(ZIP_SIGNATURES):
        return False, f"HTTP {answer.status}: the base64 text of a ZIP ({size})"
    quoted = clip(body[:QUOTED].decode("utf-8", errors="replace"))
    return False, f"HTTP {answer.status}: not a ZIP ({size}): {quoted!r}"


def download_meaning(check: str, is_zip: bool, did: str) -> str:
    """What a download's answer means for the provider, which checks the ZIP signature."""
    if is_zip:
        return "downloads work"
    use = _USES.get(check, "this download")
    decode = " (it does not decode base64)" if "base64" in did else ""
    return f"{use} fails with 'expected a ZIP'{decode}"
