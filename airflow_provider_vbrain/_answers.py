"""Turning VBrain's answers into values or typed errors.

A parser takes the endpoint (for messages) and the answer, and returns the
caller's value or raises a :class:`~airflow_provider_vbrain.exceptions.VBrainAPIError`
that names the endpoint, the status and what the server said.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from airflow_provider_vbrain._http import Response, clip
from airflow_provider_vbrain.exceptions import (
    VBrainAPIError,
    VBrainAuthError,
    VBrainBadRequestError,
    VBrainJobNotFinishedError,
    VBrainNotFoundError,
    VBrainRateLimitError,
    VBrainServerError,
)
from airflow_provider_vbrain.jobs import JobStatus

__all__ = [
    "Parser",
    "api_error",
    "body_bytes",
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

_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<[^>]+>")


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
    """What the server said: the ``error`` or ``message`` field, or the start of the body."""
    text = response.body.decode("utf-8", errors="replace").strip()
    if not text:
        return "(empty body)"
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, Mapping):
        for key in ("error", "message", "detail"):
            if value.get(key):
                return clip(str(value[key]))
        return clip(json.dumps(value))
    if value is not None:
        return clip(json.dumps(value))
    kind = response.content_type or "no content type"
    title = _TITLE_RE.search(text)
    if title and title.group(1).strip():
        return clip(f"non-JSON answer ({kind}): {title.group(1)}")
    return clip(f"non-JSON answer ({kind}): {_TAG_RE.sub(' ', text)}")


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
