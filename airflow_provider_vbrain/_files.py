"""Files on the worker's side: inputs to upload, destinations for downloads, and log tails.

A location is a local path or an object with ``open`` (Airflow's
``ObjectStoragePath``, for ``s3://...`` and the like).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from airflow_provider_vbrain._compat import object_storage_path
from airflow_provider_vbrain._endpoints import Upload, input_name
from airflow_provider_vbrain.exceptions import VBrainInputError

__all__ = [
    "LOG_TAIL_LINES",
    "Destination",
    "InputFile",
    "Sink",
    "file_safe",
    "location",
    "log_tail",
    "open_upload",
    "upload",
    "zip_checked",
]

#: What an ``input_file`` argument may be: a local path, or an object with
#: ``open("rb")`` and a ``name`` (Airflow's ``ObjectStoragePath``, say).
InputFile = str | os.PathLike[str] | Any
#: Where a download may go: a local file or directory path, or an object with ``open("wb")``.
Destination = str | os.PathLike[str] | Any
#: How many lines of each log file a failed job's error quotes.
LOG_TAIL_LINES = 50
#: The first bytes of a ZIP file: a local file header, or the end record of an empty archive.
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
#: How much of a refused download is read to quote the server's answer.
_QUOTED_BYTES = 64 * 1024


def is_local(place: Any) -> bool:
    """Whether ``place`` is a local path (``ObjectStoragePath`` is path-like too, but uses fsspec)."""
    return isinstance(place, str | os.PathLike) and not hasattr(place, "fs")


def location(value: Any) -> Any:
    """A local path, or Airflow's ``ObjectStoragePath`` for a URL such as ``s3://bucket/key`` or ``file:///x``.

    An ``ObjectStoragePath`` (or any object with ``open``) is used as it is.
    """
    if isinstance(value, str | os.PathLike):
        text = os.fspath(value)
        return object_storage_path(text) if "://" in text else text
    if callable(getattr(value, "open", None)):
        return value
    raise VBrainInputError(
        "location", f"must be a path, a URL or an ObjectStoragePath, got {type(value).__name__}"
    )


def file_safe(resource: str) -> str:
    """An id as part of a file name: path separators and dots can't lead out of the folder."""
    return quote(resource, safe="-_")


# --------------------------------------------------------------------------- uploads


def upload(input_file: InputFile | None) -> Upload | None:
    """Describe ``input_file`` for sending, checking it exists and has an accepted extension."""
    if input_file is None:
        return None
    if is_local(input_file):
        path = Path(input_file)
        input_name("input_file", path.name)
        if not path.is_file():
            raise VBrainInputError("input_file", f"{os.fspath(path)!r} does not exist or is not a file")
        return Upload(path.name, lambda: path.open("rb"))
    name = str(getattr(input_file, "name", "") or "")
    opener = getattr(input_file, "open", None)
    if not name or opener is None:
        raise VBrainInputError(
            "input_file", f"must be a path or object-storage path, got {type(input_file).__name__}"
        )
    input_name("input_file", name)
    exists = getattr(input_file, "exists", None)
    if callable(exists) and not exists():
        raise VBrainInputError("input_file", f"{input_file!s} does not exist")
    return Upload(name, functools.partial(opener, "rb"))


@contextlib.contextmanager
def open_upload(attached: Upload | None) -> Any:
    """Open an upload for one attempt and close it afterwards (None without one)."""
    if attached is None:
        yield None
        return
    with attached.open() as file:
        yield file


# --------------------------------------------------------------------------- downloads


class Sink:
    """Where a download goes: streamed to a temporary file, then moved into place.

    A local destination is never left half-written: an interrupted download
    leaves the previous file (if any) untouched.

    :param destination: a file path, an existing directory (the file is then
        named ``default_name``), or an object with ``open("wb")``.
    """

    def __init__(self, destination: Destination, default_name: str) -> None:
        self._remote: Any = None
        self._path: Path | None = None
        if is_local(destination):
            path = Path(destination)
            if path.is_dir() or os.fspath(destination).endswith(os.sep):
                path = path / default_name
            self.location = os.fspath(path)
            self._path = path
        elif callable(getattr(destination, "open", None)):
            self._remote = destination
            self.location = str(destination)
        else:
            raise VBrainInputError(
                "destination", f"must be a path or object-storage path, got {type(destination).__name__}"
            )

    def write(self, chunks: Iterable[bytes]) -> None:
        """Write every chunk, then put the file in place."""
        if self._remote is not None:
            with self._remote.open("wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            return
        assert self._path is not None
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(tmp, self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def zip_checked(chunks: Iterable[bytes], refuse: Callable[[bytes], Exception]) -> Iterator[bytes]:
    """``chunks``, once their first bytes show a ZIP; otherwise ``refuse(start of the body)`` is raised
    before anything is written (a :class:`Sink` then leaves no file behind)."""
    stream = iter(chunks)
    head = b""
    for chunk in stream:
        head += chunk
        if len(head) >= 4:
            break
    if not head.startswith(ZIP_SIGNATURES):
        for chunk in stream:
            if len(head) >= _QUOTED_BYTES:
                break
            head += chunk
        raise refuse(head[:_QUOTED_BYTES])
    yield head
    yield from stream


# --------------------------------------------------------------------------- log tails


def log_tail(zip_path: str | os.PathLike[str] | IO[bytes], lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of every text file in a logs ZIP, each under its name."""
    parts = []
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            text = archive.read(info).decode("utf-8", errors="replace").splitlines()
            parts.append(f"--- {info.filename} ---")
            parts.extend(text[-lines:])
    return "\n".join(parts)
