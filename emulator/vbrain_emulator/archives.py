"""Input uploads into files, and files into the ZIPs the API downloads answer.

What VBrain accepts as an upload is the client's list (``INPUT_SUFFIXES`` in
``vbrain_emulator.wire``): a ZIP of all inputs, or one data file.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Mapping

from vbrain_emulator.errors import EmulatorError
from vbrain_emulator.wire import INPUT_SUFFIXES

__all__ = ["DATA_FILE_SUFFIXES", "input_files_from_upload", "zip_files"]

ZIP_SUFFIX = ".zip"
#: Uploads kept as one input file. A ZIP is not one of them: it is unpacked, and the files inside it
#: are kept whatever their names, as the platform hands a folder to the application.
DATA_FILE_SUFFIXES = tuple(suffix for suffix in INPUT_SUFFIXES if suffix != ZIP_SUFFIX)
_EXPECTED = ", ".join(INPUT_SUFFIXES[:-1]) + " or " + INPUT_SUFFIXES[-1]


def input_files_from_upload(filename: str, data: bytes) -> dict[str, bytes]:
    """Turn an uploaded ``file`` into input files: a ZIP is unpacked, a data file
    (:data:`DATA_FILE_SUFFIXES`) is kept as is under its base name.

    :param filename: the name the client gave the upload.
    :param data: its bytes.
    :raises EmulatorError: 400 for other extensions, a corrupt ZIP or unsafe paths inside it.
    """
    base = posixpath.basename(filename.replace("\\", "/"))
    lower = base.lower()
    if lower.endswith(ZIP_SUFFIX):
        return _unzip(base, data)
    if lower.endswith(DATA_FILE_SUFFIXES):
        return {base: data}
    raise EmulatorError(400, f"Unsupported file type: {base or filename!r} (expected a {_EXPECTED} file)")


def _unzip(name: str, data: bytes) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise EmulatorError(400, f"Invalid ZIP file: {name}") from None
    files: dict[str, bytes] = {}
    with archive:
        for info in archive.infolist():
            if info.is_dir() or info.filename.startswith("__MACOSX/"):
                # Folders are implied by file paths; __MACOSX holds Finder's resource forks, not inputs.
                continue
            path = posixpath.normpath(info.filename.replace("\\", "/"))
            if path.startswith(("/", "../")) or path == "..":
                raise EmulatorError(400, f"Unsafe path in ZIP file {name}: {info.filename}")
            try:
                files[path] = archive.read(info)
            except (zipfile.BadZipFile, OSError, RuntimeError) as err:
                raise EmulatorError(400, f"Invalid ZIP file: {name} ({err})") from None
    return files


#: The date of every member of the ZIPs the emulator serves.
_MEMBER_DATE = (2020, 9, 23, 16, 29, 38)


def zip_files(files: Mapping[str, bytes]) -> bytes:
    """Pack files into ZIP bytes, in name order so the archive is reproducible.

    :param files: name (may contain ``/``) to bytes.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            # A fixed date: the same files make the same bytes, as a stored file's download does
            # (a download resumed with Range continues the very file it began).
            member = zipfile.ZipInfo(name, date_time=_MEMBER_DATE)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            archive.writestr(member, files[name])
    return buffer.getvalue()
