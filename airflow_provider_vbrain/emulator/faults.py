"""Injected faults: the misbehaviour of networks, gateways and proxies, on demand.

A fault applies to the next ``count`` API requests matching its method and path. It can answer a
status instead of the API (JSON ``{"message": ...}`` like the platform's gateway, or an HTML proxy
page), add a delay, drop the connection, and do any of these *after* the request was really
processed (the POST reached the server, the reply was lost). Pure bookkeeping here; the app applies them.
"""

from __future__ import annotations

import http
import itertools
import re
from dataclasses import dataclass
from typing import Any

from airflow_provider_vbrain.emulator._values import is_non_negative_number

__all__ = ["Fault", "FaultBook", "FaultSpecError"]


class FaultSpecError(ValueError):
    """A fault description that cannot be applied (the control API answers 400 with this message)."""


_FIELDS = {"status", "count", "method", "path", "retry_after", "html", "delay", "drop", "after", "body"}


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
            a string is sent as is, anything else as JSON).
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
        drop, after, html = _flag(spec, "drop"), _flag(spec, "after"), _flag(spec, "html")
        if drop and status is not None:
            raise FaultSpecError("A fault either drops the connection or answers a status, not both")
        if status is None and not drop and not delay:
            raise FaultSpecError("A fault needs a status, drop or delay")
        if after and status is None and not drop:
            raise FaultSpecError("after needs a status or drop to replace the real answer with")
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
