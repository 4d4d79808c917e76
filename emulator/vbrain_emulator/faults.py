"""Injected faults: the misbehaviour of networks, gateways and proxies, on demand.

A fault applies to the next ``count`` API requests matching its method and path. It can answer a
status instead of the API (JSON ``{"message": ...}`` like the platform's gateway, or an HTML proxy
page), add a delay, drop the connection, and do any of these *after* the request was really
processed (the POST reached the server, the reply was lost). It can also send the real answer late
(``answer_delay``: processed at once, answered after the client gave up), and keep what the request
created out of the listings for a while (``listing_delay``: the platform's listings lag behind). Pure
bookkeeping here; the app applies them.
"""

from __future__ import annotations

import http
import itertools
import re
from dataclasses import dataclass
from typing import Any

from vbrain_emulator._values import is_non_negative_number

__all__ = ["Fault", "FaultBook", "FaultSpecError"]


class FaultSpecError(ValueError):
    """A fault description that cannot be applied (the control API answers 400 with this message)."""


_FIELDS = {
    "status",
    "count",
    "method",
    "path",
    "retry_after",
    "html",
    "delay",
    "drop",
    "after",
    "body",
    "answer_delay",
    "listing_delay",
}


@dataclass
class Fault:
    """One injected fault; see :meth:`FaultBook.add` for the meaning of each field."""

    fault_id: str
    status: int | None
    count: int
    method: str | None
    path: re.Pattern[str] | None
    retry_after: str | None
    html: bool
    delay: float
    drop: bool
    after: bool
    body: Any
    remaining: int
    answer_delay: float = 0.0
    listing_delay: float | None = None

    @property
    def processes_first(self) -> bool:
        """Whether the request is really processed before the fault plays out."""
        return self.after or self.answer_delay > 0

    @property
    def replaces_answer(self) -> bool:
        """Whether the client gets the fault's status (or a dropped connection) instead of the answer."""
        return self.drop or self.status is not None

    def matches(self, method: str, path: str) -> bool:
        """Tell whether a request is one this fault applies to.

        :param method: the request's HTTP method.
        :param path: the request's path (no query string).
        """
        if self.method is not None and self.method != method.upper():
            return False
        return self.path is None or self.path.search(path) is not None

    def reason(self) -> str:
        """The status' standard phrase, e.g. ``Service Unavailable``."""
        try:
            return http.HTTPStatus(self.status or 500).phrase
        except ValueError:
            return "Error"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, as the control API lists it."""
        return {
            "fault_id": self.fault_id,
            "status": self.status,
            "count": self.count,
            "remaining": self.remaining,
            "method": self.method,
            "path": self.path.pattern if self.path is not None else None,
            "retry_after": self.retry_after,
            "html": self.html,
            "delay": self.delay,
            "drop": self.drop,
            "after": self.after,
            "body": self.body,
            "answer_delay": self.answer_delay,
            "listing_delay": self.listing_delay,
        }


def _number(spec: dict[str, Any], name: str, default: float) -> float:
    value = spec.get(name)
    if value is None:
        return default
    if not is_non_negative_number(value):
        raise FaultSpecError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def _flag(spec: dict[str, Any], name: str) -> bool:
    value = spec.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FaultSpecError(f"{name} must be true or false, got {value!r}")
    return value


class FaultBook:
    """The active faults, in the order they were added (the first match wins)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> Fault:
        """Validate a fault description and make it active.

        :param spec: ``status`` (int or None: answer this instead), ``count`` (how many matching
            requests, default 1), ``method`` (None: any), ``path`` (a regex searched in the request path;
            None: any), ``retry_after`` (Retry-After header value), ``html`` (answer an HTML proxy page),
            ``delay`` (seconds to wait before answering), ``drop`` (close the connection, no answer),
            ``after`` (process the request first, then apply the fault), ``body`` (the answer's body:
            a string is sent as is, anything else as JSON), ``answer_delay`` (process the request at
            once, then wait this many seconds before answering: the real answer, or the status/drop),
            ``listing_delay`` (seconds before what the request creates shows up in listings, instead
            of the profile's delay).
        :raises FaultSpecError: when a field is unknown or invalid, or the fault would do nothing.
        """
        unknown = set(spec) - _FIELDS
        if unknown:
            raise FaultSpecError(f"Unknown fault field(s): {', '.join(sorted(unknown))}")
        status = spec.get("status")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
            raise FaultSpecError(f"status must be an integer HTTP status, got {status!r}")
        if status is not None and not 100 <= status <= 599:
            raise FaultSpecError(f"status must be between 100 and 599, got {status}")
        count = spec.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise FaultSpecError(f"count must be a positive integer, got {count!r}")
        method = spec.get("method")
        if method is not None and (not isinstance(method, str) or not method):
            raise FaultSpecError(f"method must be an HTTP method name, got {method!r}")
        path = spec.get("path")
        if path is not None and not isinstance(path, str):
            raise FaultSpecError(f"path must be a regular expression string, got {path!r}")
        try:
            pattern = re.compile(path) if path is not None else None
        except re.error as err:
            raise FaultSpecError(f"path is not a valid regular expression: {err}") from err
        retry_after = spec.get("retry_after")
        if retry_after is not None:
            if isinstance(retry_after, bool) or not isinstance(retry_after, (str, int, float)):
                raise FaultSpecError(f"retry_after must be a string or number, got {retry_after!r}")
            retry_after = str(retry_after)
        delay = _number(spec, "delay", 0.0)
        answer_delay = _number(spec, "answer_delay", 0.0)
        listing_delay = None if spec.get("listing_delay") is None else _number(spec, "listing_delay", 0.0)
        drop, after, html = _flag(spec, "drop"), _flag(spec, "after"), _flag(spec, "html")
        if drop and status is not None:
            raise FaultSpecError("A fault either drops the connection or answers a status, not both")
        if status is None and not drop and not delay and not answer_delay and listing_delay is None:
            raise FaultSpecError("A fault needs a status, drop or delay (or answer_delay, listing_delay)")
        if after and status is None and not drop and not answer_delay:
            raise FaultSpecError(
                "after needs a status or drop to replace the real answer with "
                "(answer_delay sends the real answer late)"
            )
        if delay and answer_delay:
            raise FaultSpecError(
                "delay waits before the request is processed, answer_delay after it: give one of them"
            )
        if status is None and (html or retry_after is not None or spec.get("body") is not None):
            raise FaultSpecError("html, retry_after and body only apply to a fault with a status")
        fault = Fault(
            fault_id=f"fault-{next(self._ids)}",
            status=status,
            count=count,
            method=method.upper() if method else None,
            path=pattern,
            retry_after=retry_after,
            html=html,
            delay=delay,
            drop=drop,
            after=after,
            body=spec.get("body"),
            remaining=count,
            answer_delay=answer_delay,
            listing_delay=listing_delay,
        )
        self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """Return the first fault matching this request and use up one of its ``count``.

        :param method: the request's HTTP method.
        :param path: the request's path.
        """
        for fault in self._faults:
            if fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def active(self) -> list[Fault]:
        """The faults still waiting for requests."""
        return list(self._faults)
