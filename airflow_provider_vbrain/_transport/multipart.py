"""Uploads streamed from disk: a ``multipart/form-data`` body whose size is known before it is sent."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO, Any

from airflow_provider_vbrain._client.endpoints import Upload
from airflow_provider_vbrain.exceptions import VBrainInputError

__all__ = ["MultipartBody", "open_upload"]

#: Bytes per read of an upload while it is sent.
_UPLOAD_CHUNK = 256 * 1024


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
