"""What a transport hands back to the core: an HTTP answer, or a failure that produced none."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

__all__ = [
    "MAX_HEADERS",
    "MESSAGE_LIMIT",
    "BrokenAnswer",
    "FailureKind",
    "Response",
    "TransportFailure",
    "clip",
]

#: Server messages and failure details are quoted up to this many characters.
MESSAGE_LIMIT = 300
#: The most header lines an answer may have: http.client's own limit, which the sync transport
#: meets; the async one applies it too, whatever its aiohttp's own limit (which differs by version).
MAX_HEADERS = 100


class BrokenAnswer(Exception):
    """An answer that is not one: the transport read it, but HTTP does not allow it."""


def clip(text: str) -> str:
    """``text`` on one line, shortened to :data:`MESSAGE_LIMIT` characters."""
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


@dataclasses.dataclass(frozen=True)
class Response:
    """An HTTP answer as the core needs it. ``headers`` keys are lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class FailureKind(enum.Enum):
    """How a request failed without an HTTP answer."""

    #: The HTTP library refused the request before sending it (a header, the URL): nothing left the
    #: machine, and trying again won't help.
    NOT_SENT = "refused before sending"
    #: The connection could not be made: the request never left.
    CONNECT = "could not connect"
    #: TLS failed (e.g. certificate verification): the request never left, and trying again won't help.
    TLS = "TLS handshake failed"
    #: The server did not answer in time: it may have processed the request.
    TIMEOUT = "timed out"
    #: The connection broke before an answer: the server may have processed it.
    DISCONNECTED = "connection lost"


@dataclasses.dataclass(frozen=True)
class TransportFailure:
    """A send that produced no HTTP answer, classified by the transport."""

    kind: FailureKind
    error: BaseException

    @property
    def reason(self) -> str:
        # The exception's text names the URL and the low-level cause (refused, DNS, which
        # certificate check); requests and aiohttp never put request headers in it.
        detail = clip(str(self.error)) or "no detail"
        return f"{self.kind.value} ({type(self.error).__name__}: {detail})"

    @property
    def may_have_been_processed(self) -> bool:
        """Whether the server may have acted on the request although no answer came."""
        return self.kind in (FailureKind.TIMEOUT, FailureKind.DISCONNECTED)
