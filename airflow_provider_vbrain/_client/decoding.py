"""Compressed answers (``Content-Encoding: gzip`` or ``deflate``) decompressed a bounded piece at a time.

Both transports read bodies undecoded and decompress them here, so no HTTP library's version
decides how far one read may inflate. urllib3 before 2.6 and aiohttp before its own bounds (both
on the stacks of MWAA's Airflow 2.10 and 3.0 images) inflate a whole network read at once: gzip
inflates a thousandfold, so one 64 KiB read of a hostile answer became 64 MB, and on the
triggerer a quarter of a second of one event-loop callback. Here every call yields at most
``piece`` bytes, and a reader that stops (at its cap) stops the decompression with it.

Only what the hooks ask for (:data:`ACCEPT_ENCODING`) is decoded; any other encoding is a failed
answer, never bytes taken for the body.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

__all__ = ["ACCEPT_ENCODING", "BodyDecoder", "DecodingError"]

#: The ``Accept-Encoding`` both hooks send: the encodings :class:`BodyDecoder` reads.
ACCEPT_ENCODING = "gzip, deflate"
#: The most bytes one step of decompression yields.
PIECE = 64 * 1024

_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


class DecodingError(Exception):
    """A compressed answer that cannot be decompressed (corrupt, cut, or an encoding not asked for)."""


class BodyDecoder:
    """Decompresses one answer's body as it arrives.

    :param content_encoding: the answer's ``Content-Encoding`` header ("" when it has none).
    """

    def __init__(self, content_encoding: str) -> None:
        encodings = [part.strip().lower() for part in content_encoding.split(",") if part.strip()]
        encodings = [encoding for encoding in encodings if encoding != "identity"]
        if len(encodings) > 1 or (encodings and encodings[0] not in ("gzip", "x-gzip", "deflate")):
            raise DecodingError(f"the answer is encoded as {content_encoding!r}, which was not asked for")
        self.encoding = encodings[0] if encodings else ""
        self._wbits = _GZIP if self.encoding in ("gzip", "x-gzip") else _ZLIB
        self._inflate = zlib.decompressobj(self._wbits) if self.encoding else None
        self._started = False

    def feed(self, data: bytes, piece: int = PIECE) -> Iterator[bytes]:
        """The decompressed bytes of ``data``, at most ``piece`` at a time."""
        if self._inflate is None:
            if data:
                yield data
            return
        pending = data
        while pending:
            try:
                out = self._inflate.decompress(pending, piece)
            except zlib.error as err:
                if self.encoding == "deflate" and not self._started:
                    # Some servers send raw deflate, without the zlib header HTTP's "deflate" means.
                    self._wbits, self._started = _RAW_DEFLATE, True
                    self._inflate = zlib.decompressobj(_RAW_DEFLATE)
                    continue
                raise DecodingError(f"the {self.encoding} answer cannot be decompressed: {err}") from None
            self._started = True
            pending = self._inflate.unconsumed_tail
            if self._inflate.eof and self._inflate.unused_data:
                # A gzip body may hold several members, one after the other.
                pending = self._inflate.unused_data + pending
                self._inflate = zlib.decompressobj(self._wbits)
            if out:
                yield out

    def finish(self) -> None:
        """Check, once the body has ended, that it was whole."""
        if self._inflate is not None and self._started and not self._inflate.eof:
            raise DecodingError(f"the {self.encoding} answer ended before its compressed data did")
