"""Where downloads go: a local file written whole or not at all, or an object-storage file; and the
check that a download is the ZIP it should be before anything is written."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from airflow_provider_vbrain.exceptions import VBrainInputError

__all__ = ["ZIP_SIGNATURES", "Destination", "Sink", "is_local", "zip_checked"]

#: Where a download may go: a local file or directory path, or an object with ``open("wb")``.
Destination = str | os.PathLike[str] | Any
#: The first bytes of a ZIP file: a local file header, or the end record of an empty archive.
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
#: How much of a refused download is read to quote the server's answer.
_QUOTED_BYTES = 64 * 1024
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
