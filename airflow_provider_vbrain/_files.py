"""Files on the worker's side: inputs to upload, destinations for downloads, and log tails.

A location is a local path or an object with ``open`` (Airflow's
``ObjectStoragePath``, for ``s3://...`` and the like).
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from airflow_provider_vbrain._compat import object_storage_path
from airflow_provider_vbrain._endpoints import Upload, input_name
from airflow_provider_vbrain.exceptions import VBrainInputError

__all__ = [
    "Destination",
    "InputFile",
    "MultipartBody",
    "Sink",
    "file_safe",
    "location",
    "open_upload",
    "upload",
    "zip_checked",
]

#: What an ``input_file`` argument may be: a local path, or an object with
#: ``open("rb")`` and a ``name`` (Airflow's ``ObjectStoragePath``, say).
InputFile = str | os.PathLike[str] | Any
#: Where a download may go: a local file or directory path, or an object with ``open("wb")``.
Destination = str | os.PathLike[str] | Any
#: The first bytes of a ZIP file: a local file header, or the end record of an empty archive.
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
#: How much of a refused download is read to quote the server's answer.
_QUOTED_BYTES = 64 * 1024
#: Bytes per read of an upload while it is sent.
_UPLOAD_CHUNK = 256 * 1024
#: What a destination that is not a regular file is, as a refusal names it.
_KINDS = {
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFDIR: "directory",
}


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
    """Open an upload for one attempt, from its start, and close it afterwards (None without one).

    A file whose size cannot be read (neither local nor seekable) is first copied to a temporary
    file on disk: a streamed body states its length.
    """
    if attached is None:
        yield None
        return
    with attached.open() as file:
        if _size_of(file) is not None:
            yield file
            return
        with tempfile.TemporaryFile(prefix="vbrain-upload-") as copy:
            while chunk := file.read(_UPLOAD_CHUNK):
                copy.write(chunk)
            copy.seek(0)
            yield copy


class MultipartBody:
    """A ``multipart/form-data`` body streamed from its file, as requests would build it in memory:
    the text fields each a part, then the file as part ``file``.

    ``len()`` is its exact size (sent as ``Content-Length``, for servers that refuse chunked
    uploads); iterating reads the file in chunks from where it stands, so memory stays flat in its size.

    :param form: the text fields.
    :param attached: the upload (its name and content type).
    :param file: the upload opened by :func:`open_upload`.
    """

    def __init__(self, form: Mapping[str, str], attached: Upload, file: IO[bytes]) -> None:
        from urllib3.fields import RequestField

        boundary = os.urandom(16).hex()
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = bytearray()
        for name, value in form.items():
            field = RequestField(name, value)
            field.make_multipart()
            head += f"--{boundary}\r\n{field.render_headers()}".encode() + value.encode() + b"\r\n"
        field = RequestField("file", b"", filename=attached.name)
        field.make_multipart(content_type=attached.content_type)
        head += f"--{boundary}\r\n{field.render_headers()}".encode()
        self._head = bytes(head)
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self._file = file
        size = _size_of(file)
        if size is None:  # open_upload copies such a file to disk first
            raise VBrainInputError("input_file", "its size cannot be read: open it with open_upload")
        self._size = size

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        left = self._size
        while left > 0:
            chunk = self._file.read(min(_UPLOAD_CHUNK, left))
            if not chunk:
                raise VBrainInputError("input_file", "got shorter while it was being sent")
            left -= len(chunk)
            yield chunk
        yield self._tail


def _size_of(file: IO[bytes]) -> int | None:
    """Bytes left to read in ``file``, None when that cannot be told without reading it."""
    try:
        return os.fstat(file.fileno()).st_size - file.tell()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        pass
    try:
        if not file.seekable():
            return None
        here = file.tell()
        end = file.seek(0, os.SEEK_END)
        file.seek(here)
        return end - here
    except (AttributeError, OSError, ValueError):
        return None


# --------------------------------------------------------------------------- downloads


class Sink:
    """Where a download goes: streamed to a temporary file, then moved into place.

    A local destination is never left half-written: an interrupted download
    leaves the previous file (if any) untouched. A local destination that exists
    and is not a regular file (a FIFO, a socket, a device) is refused untouched.

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
            _refuse_special(path)
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
            _refuse_special(self._path)  # in case one appeared while the download ran
            os.replace(tmp, self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _refuse_special(path: Path) -> None:
    """Refuse a destination that exists and is not a regular file, without opening it (a FIFO would block)."""
    try:
        mode = path.stat().st_mode  # a symbolic link is judged by what it points at
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as err:
        raise VBrainInputError("destination", f"{os.fspath(path)!r} cannot be checked: {err}") from err
    if not stat.S_ISREG(mode):
        raise VBrainInputError(
            "destination",
            f"{os.fspath(path)!r} exists and is a {_KINDS.get(stat.S_IFMT(mode), 'special file')}, "
            "not a regular file: it is left as it is (name a file or a directory)",
        )


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
