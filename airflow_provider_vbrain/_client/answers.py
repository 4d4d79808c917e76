"""Turning VBrain's answers into values or typed errors.

A parser takes the endpoint (for messages) and the answer, and returns the
caller's value or raises a :class:`~airflow_provider_vbrain.exceptions.VBrainAPIError`
that names the endpoint, the status and what the server said.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from airflow_provider_vbrain._client.http import MESSAGE_LIMIT, Response, clip
from airflow_provider_vbrain.exceptions import (
    VBrainAnswerTooLargeError,
    VBrainAPIError,
    VBrainAuthError,
    VBrainBadRequestError,
    VBrainJobNotFinishedError,
    VBrainNotFoundError,
    VBrainRateLimitError,
    VBrainResultTooLargeError,
    VBrainServerError,
)
from airflow_provider_vbrain.jobs import JobStatus

__all__ = [
    "AnswerBody",
    "Parser",
    "api_error",
    "body_bytes",
    "checked_result",
    "field",
    "finished",
    "job_status",
    "json_list",
    "json_object",
    "no_value",
    "server_message",
]

T = TypeVar("T")
#: Turns a successful answer of an endpoint into the caller's value.
Parser = Callable[[str, Response], T]


class AnswerBody:
    """An answer's body as it streams in, up to ``limit`` bytes: what both transports read through.

    Past the limit a successful answer fails with :class:`.VBrainAnswerTooLargeError` (it is the
    answer, not a lost connection: not retried); an error answer is kept cut at the limit, for
    its message and the retry rule.
    """

    __slots__ = ("_endpoint", "_limit", "_parts", "_status", "_total")

    def __init__(self, status: int, limit: int, endpoint: str) -> None:
        self._status, self._limit, self._endpoint = status, limit, endpoint
        self._parts: list[bytes] = []
        self._total = 0

    def full(self, chunk: bytes) -> bool:
        """Take ``chunk``; whether the body is at its limit (read no further)."""
        self._parts.append(chunk)
        self._total += len(chunk)
        if self._total <= self._limit:
            return False
        if self._status < 300:
            raise VBrainAnswerTooLargeError(self._endpoint, self._limit, "max_answer_bytes")
        return True

    def collected(self) -> bytes:
        """What was read, cut at the limit."""
        parts = self._parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        return body[: self._limit]


#: Bytes of an error body read for its message: a longer JSON body is quoted as text, and text is
#: cleaned only this far (the message quotes a few hundred characters of it at most).
MESSAGE_SCAN = 64 * 1024


def api_error(endpoint: str, response: Response, attempts: int = 1) -> VBrainAPIError:
    """Map an error answer to the matching :class:`VBrainAPIError` subclass.

    Redirects are never followed (they would carry the API key to another host):
    a 3xx is an error that names where it pointed.
    """
    message = server_message(response)
    status = response.status
    if 300 <= status < 400:
        location = response.headers.get("location", "(no Location header)")
        return VBrainAPIError(
            endpoint,
            status,
            f"redirected to {clip(location)}; redirects are not followed, so the API key "
            "goes nowhere else: if VBrain moved, set the connection's host to the new address",
            attempts,
        )
    cls: type[VBrainAPIError]
    if status in (401, 403) or (status == 400 and message.startswith("Missing ")):
        cls = VBrainAuthError
    elif status == 400:
        cls = VBrainBadRequestError
    elif status == 404:
        cls = VBrainNotFoundError
    elif status == 429:
        cls = VBrainRateLimitError
    elif status >= 500:
        cls = VBrainServerError
    else:
        cls = VBrainAPIError
    return cls(endpoint, status, message, attempts)


def server_message(response: Response) -> str:
    """What the server said: the ``error`` or ``message`` field, or the start of the body.

    Linear in at most :data:`MESSAGE_SCAN` bytes, whatever the body holds.
    """
    body = response.body
    if not body.strip():
        return "(empty body)"
    if len(body) <= MESSAGE_SCAN:
        try:
            quoted = _json_message(json.loads(body))
        except RecursionError:
            return "a JSON answer nested too deeply to read"
        except ValueError:
            quoted = None
        if quoted is not None:
            return quoted
    kind = response.content_type or "no content type"
    text = body[:MESSAGE_SCAN].decode("utf-8", errors="replace")
    title = _title(text)
    if title:
        return clip(f"non-JSON answer ({kind}): {title}")
    return clip(f"non-JSON answer ({kind}): {_strip_tags(text) or '(markup only)'}")


def _json_message(value: Any) -> str | None:
    """The message of a JSON error answer (None for ``null``, read as text)."""
    if isinstance(value, Mapping):
        for key in ("error", "message", "detail"):
            if value.get(key):
                return clip(str(value[key]))
        return clip(json.dumps(value))
    return None if value is None else clip(json.dumps(value))


def _title(text: str) -> str:
    """The text of the first ``<title>`` element, or ``""``; one forward scan."""
    lower = text.lower()
    start = lower.find("<title")
    if start < 0:
        return ""
    opened = lower.find(">", start)
    if opened < 0:
        return ""
    end = lower.find("</title", opened)
    return text[opened + 1 : end if end >= 0 else opened + 1 + MESSAGE_LIMIT].strip()


def _strip_tags(text: str) -> str:
    """``text`` with its tags replaced by spaces, in one forward scan (an unclosed tag ends it)."""
    parts: list[str] = []
    kept = 0
    position = 0
    while position < len(text) and kept <= MESSAGE_LIMIT:
        opened = text.find("<", position)
        piece = text[position:] if opened < 0 else text[position:opened]
        parts.append(piece)
        kept += len(piece.strip())
        if opened < 0:
            break
        closed = text.find(">", opened)
        if closed < 0:
            break
        parts.append(" ")
        position = closed + 1
    return " ".join("".join(parts).split())


def not_a_zip(endpoint: str, response: Response) -> VBrainAPIError:
    """The error for a download whose answer is not a ZIP (a gateway's error page, say)."""
    return VBrainAPIError(endpoint, response.status, f"expected a ZIP, got {server_message(response)}")


def status_text(response: Response) -> str:
    """``HTTP <status>: <server message>``, for errors that quote an answer."""
    return f"HTTP {response.status}: {server_message(response)}"


# --------------------------------------------------------------------------- parsers


def no_value(endpoint: str, response: Response) -> None:
    """For endpoints whose answer carries nothing the caller needs."""
    return None


def body_bytes(endpoint: str, response: Response) -> bytes:
    return response.body


def _json(endpoint: str, response: Response) -> Any:
    """The body as JSON; an answer that is not JSON is an error naming the endpoint."""
    try:
        return json.loads(response.body)
    except RecursionError:
        raise VBrainAPIError(
            endpoint, response.status, "the answer's JSON is nested too deeply to read"
        ) from None
    except ValueError as err:
        raise VBrainAPIError(
            endpoint, response.status, f"expected JSON, got {server_message(response)}"
        ) from err


def json_object(endpoint: str, response: Response) -> dict[str, Any]:
    value = _json(endpoint, response)
    if not isinstance(value, dict):
        raise VBrainAPIError(
            endpoint, response.status, f"expected a JSON object, got {server_message(response)}"
        )
    return value


def json_list(endpoint: str, response: Response) -> list[Any]:
    value = _json(endpoint, response)
    if not isinstance(value, list):
        raise VBrainAPIError(
            endpoint, response.status, f"expected a JSON list, got {server_message(response)}"
        )
    return value


def field(name: str) -> Parser[Any]:
    """A parser for the value of one field of a JSON object answer."""

    def parse(endpoint: str, response: Response) -> Any:
        value = _json(endpoint, response)
        if not isinstance(value, Mapping) or name not in value:
            raise VBrainAPIError(
                endpoint, response.status, f"answer has no {name!r} field: {server_message(response)}"
            )
        return value[name]

    return parse


def text_field(name: str) -> Parser[str]:
    """A parser for an id field: a non-empty string (numbers are read as their text)."""
    read = field(name)

    def parse(endpoint: str, response: Response) -> str:
        value = read(endpoint, response)
        if isinstance(value, bool) or not isinstance(value, str | int) or not str(value):
            raise VBrainAPIError(
                endpoint, response.status, f"answer's {name!r} is not an id: {server_message(response)}"
            )
        return str(value)

    return parse


def finished(parse: Parser[T]) -> Parser[T]:
    """Result and output answer 202 until the job ends: that is not a value."""

    def wrapped(endpoint: str, response: Response) -> T:
        if response.status == 202:
            raise VBrainJobNotFinishedError(endpoint, 202, server_message(response))
        return parse(endpoint, response)

    return wrapped


def job_status(job_id: str, repository_id: str) -> Parser[JobStatus]:
    """A parser typing a ``GET /job/{job_id}`` answer."""

    def parse(endpoint: str, response: Response) -> JobStatus:
        return JobStatus.from_answer(job_id, repository_id, response.status, json_object(endpoint, response))

    return parse


def checked_result(job_id: str, result: Any, max_bytes: int | None) -> Any:
    """A job's output, if it fits in ``max_bytes`` as JSON (None for no limit).

    :raises VBrainResultTooLargeError: when it does not: XCom lives in the metadata database.
    """
    if max_bytes is not None:
        size = len(json.dumps(result, default=str).encode())
        if size > max_bytes:
            raise VBrainResultTooLargeError(job_id, size, max_bytes)
    return result
