"""Where downloads go: a local or object-storage file, written whole or not at all, through a partial
file that a retried attempt can resume."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_vbrain._client.download import Restart, Transfer
from airflow_provider_vbrain._client.endpoints import ApiRequest
from airflow_provider_vbrain._client.http import BrokenAnswer, FailureKind, Response, TransportFailure
from airflow_provider_vbrain.exceptions import VBrainInputError

if TYPE_CHECKING:
    from airflow_provider_vbrain.connection import VBrainSettings

__all__ = ["Destination", "Sink", "is_local"]

#: Where a download may go: a local file or directory path, or an object with ``open("wb")``.
Destination = str | os.PathLike[str] | Any
#: Bytes per read when an object-storage destination is written from its partial file.
_COPY_CHUNK = 1024 * 1024
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
    """Where a download goes: a partial file that attempts write to, moved into place when whole.

    A local destination is never left half-written: an interrupted download leaves the previous
    file (if any) untouched, and a download that fails for good leaves no partial file. A local
    destination that exists and is not a regular file (a FIFO, a socket, a device) is refused
    untouched. An object-storage destination is written when the download is whole, from a partial
    file in the local temporary folder: a retried attempt resumes there too, and nothing half-written
    reaches the store.

    :param destination: a file path, an existing directory (the file is then
        named ``default_name``), or an object with ``open("wb")``.
    :param log: where the progress of a long download is logged (None: nowhere).
    """

    def __init__(self, destination: Destination, default_name: str, log: Any = None) -> None:
        self._remote: Any = None
        self._path: Path | None = None
        self.log = log
        self._part: str | None = None
        self._file: BinaryIO | None = None
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

    def begin(self, offset: int) -> None:
        """Start writing at byte ``offset`` of the partial file: 0 drops what it held."""
        if self._file is None:
            if self._path is not None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                folder, name = self._path.parent, self._path.name
            else:
                folder, name = None, "vbrain-download"
            fd, self._part = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
            self._file = os.fdopen(fd, "r+b")
        size = self._file.seek(0, os.SEEK_END)
        if offset > size:  # the transports count only what they wrote: this would leave a hole
            raise AssertionError(f"resuming at byte {offset} of a partial file of {size} bytes")
        self._file.seek(offset)
        self._file.truncate(offset)

    def write(self, data: bytes) -> None:
        assert self._file is not None, "begin() first"
        self._file.write(data)

    def finish(self) -> None:
        """Put the whole file in place."""
        assert self._file is not None, "begin() first"
        assert self._part is not None
        self._file.close()
        if self._remote is not None:
            with open(self._part, "rb") as part, self._remote.open("wb") as out:
                shutil.copyfileobj(part, out, _COPY_CHUNK)
            os.unlink(self._part)
        else:
            assert self._path is not None
            _refuse_special(self._path)  # in case one appeared while the download ran
            os.replace(self._part, self._path)
        self._file = self._part = None

    def transfer(self, settings: VBrainSettings, request: ApiRequest[Any]) -> Transfer:
        """The state of a download into this sink, under the connection's rules."""
        return Transfer(
            request,
            max_bytes=settings.max_download_bytes,
            secrets=settings.secrets,
            stall_window=settings.timeout,
            budget=settings.download_timeout,
        )

    def settle(self, decision: Response | Restart) -> Response | TransportFailure:
        """What an answer that brings no body means: the file was whole already, or must start over."""
        if isinstance(decision, Response):
            self.finish()
            return decision
        return TransportFailure(FailureKind.DISCONNECTED, BrokenAnswer(f"{decision.reason}: starting over"))

    def progress(self, transfer: Transfer) -> None:
        """Log how far a long download got, now and then."""
        if self.log is not None:
            line = transfer.progress_line()
            if line is not None:
                self.log.info("Downloading %s from %s: %s", self.location, transfer.request.endpoint, line)

    def discard(self) -> None:
        """Drop the partial file, if any (a download that failed for good)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        if self._part is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._part)
        self._file = self._part = None


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
