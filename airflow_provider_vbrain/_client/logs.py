"""A failed job's log tail: the end of each log file in its logs ZIP, read within fixed bounds.

Whatever the ZIP holds (a 1 GiB file, thousands of files, a bomb, an index of 100,000 names),
the tail reads a bounded number of files and bytes and quotes a bounded message.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from typing import IO, Any

from airflow_provider_vbrain.exceptions import VBrainError, VBrainJobFailedError

__all__ = [
    "LOG_READ_BYTES",
    "LOG_TAIL_BYTES",
    "LOG_TAIL_FILES",
    "LOG_TAIL_LINES",
    "failed_job_error",
    "job_log_tail",
    "log_tail",
]

#: How many lines of each log file a failed job's error quotes.
LOG_TAIL_LINES = 50
#: How many log files a failed job's error quotes at most; the others are counted, the first named.
LOG_TAIL_FILES = 10
#: How much of each log file's end is quoted at most (its last lines within these bytes).
LOG_TAIL_BYTES = 4 * 1024
#: Bytes decompressed to find the ends of the log files, for all of them together.
LOG_READ_BYTES = 256 * 1024 * 1024
#: The largest ZIP index (central directory) a log tail reads: a few hundred bytes per file, so
#: some 60,000 names; ``zipfile`` holds the index in memory whole, with an object per name.
_LOG_INDEX_BYTES = 4 * 1024 * 1024
#: Bytes per read of a log file, how many left-out files are named, and how long a quoted name gets.
_READ_CHUNK = 64 * 1024
_NAMED_LEFT_OUT = 5
_NAME_CHARS = 200


def job_log_tail(job_id: str, zip_path: str | os.PathLike[str] | bytes, lines: int = LOG_TAIL_LINES) -> str:
    """:func:`log_tail` of a job's logs ZIP, given as a path or as its bytes; a ZIP that cannot be
    read raises :class:`.VBrainError` naming the job."""
    try:
        if not isinstance(zip_path, bytes):
            return log_tail(zip_path, lines)
        with tempfile.TemporaryDirectory(prefix="vbrain-logs-") as folder:
            path = os.path.join(folder, "logs.zip")
            with open(path, "wb") as file:
                file.write(zip_path)
            return log_tail(path, lines)
    except zipfile.BadZipFile as err:
        raise VBrainError(f"The logs ZIP of job {job_id!r} cannot be read: {err}") from None


def failed_job_error(job_id: str, repository_id: str, job_status: str, tail: str) -> VBrainJobFailedError:
    """The error for a failed job, quoting ``tail`` (the end of its logs, or why they could not be read)."""
    detail = f"end of its logs:\n{tail}" if tail else "its logs are empty"
    return VBrainJobFailedError(job_id, repository_id, job_status, detail)


def log_tail(zip_path: str | os.PathLike[str], lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the text files in a logs ZIP, each under its name; bounded whatever
    the ZIP holds.

    At most :data:`LOG_TAIL_FILES` files are quoted (the others are counted and the first of them
    named), each by at most its last :data:`LOG_TAIL_BYTES` bytes; files are decompressed as a
    stream, :data:`LOG_READ_BYTES` for all of them together: a file larger than what is left of that
    is named with its size, not read. A ZIP whose index is larger than a logs folder's ever is (over
    :data:`_LOG_INDEX_BYTES`: some 60,000 names) is not opened.
    """
    with open(zip_path, "rb") as file:
        try:
            archive = zipfile.ZipFile(_IndexCapped(file))
        except _IndexTooLarge as err:
            limit = _size(_LOG_INDEX_BYTES)
            return f"(not read: the logs ZIP's index takes {_size(err.size)}, more than {limit})"
        with archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            parts: list[str] = []
            budget = LOG_READ_BYTES
            for info in members[:LOG_TAIL_FILES]:
                name = _clipped(info.filename)
                if info.file_size > budget:
                    size = _size(info.file_size)
                    parts.append(f"--- {name} ({size}: too large to read its end; download the logs) ---")
                    continue
                budget -= info.file_size
                try:
                    text = _member_tail(archive, info)
                except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as err:
                    parts.append(f"--- {name} (could not be read: {_clipped(str(err))}) ---")
                    continue
                parts.append(f"--- {name} ---")
                parts.extend(text.splitlines()[-lines:] if lines > 0 else [])
    left_out = members[LOG_TAIL_FILES:]
    if left_out:
        names = ", ".join(_clipped(info.filename) for info in left_out[:_NAMED_LEFT_OUT])
        more = ", ..." if len(left_out) > _NAMED_LEFT_OUT else ""
        parts.append(f"--- {len(left_out):,} more files not quoted: {names}{more} ---")
    return "\n".join(parts)


def _member_tail(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """The text of a member's last :data:`LOG_TAIL_BYTES` bytes, decompressed as a stream (never whole);
    a line cut by the window's start is dropped."""
    tail = b""
    cut = False
    with archive.open(info) as member:
        while chunk := member.read(_READ_CHUNK):
            tail += chunk
            if len(tail) > LOG_TAIL_BYTES:
                tail, cut = tail[-LOG_TAIL_BYTES:], True
    if cut and b"\n" in tail:
        tail = tail[tail.index(b"\n") + 1 :]
    return tail.decode("utf-8", errors="replace")


class _IndexTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class _IndexCapped:
    """A ZIP file for ``zipfile`` that refuses to read more than :data:`_LOG_INDEX_BYTES` at once.

    ``zipfile`` reads a ZIP's index (its central directory) in one read, of the size the ZIP's end
    record states, before it can list any member; every other read it makes is a record of a few
    bytes, or a chunk of a member as the tail asks for it (:data:`_READ_CHUNK`). Refusing the one
    large read refuses an index too large to hold, before it is read.
    """

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def read(self, size: int = -1) -> bytes:
        wanted = size if size >= 0 else self._left()
        if wanted > _LOG_INDEX_BYTES:
            raise _IndexTooLarge(wanted)
        return self._file.read(size)

    def _left(self) -> int:
        here = self._file.tell()
        end = self._file.seek(0, os.SEEK_END)
        self._file.seek(here)
        return end - here

    def __getattr__(self, name: str) -> Any:  # seek, tell, seekable: the file's own
        return getattr(self._file, name)


def _clipped(text: str) -> str:
    return text if len(text) <= _NAME_CHARS else text[: _NAME_CHARS - 3] + "..."


def _size(count: int) -> str:
    if count < 1024:
        return f"{count:,} bytes"
    value, unit = count / 1024, "KiB"
    for larger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:,.1f} {unit}"
