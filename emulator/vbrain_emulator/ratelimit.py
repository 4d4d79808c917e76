"""Throttling as an API gateway does it: at most N API requests per second per API key, the rest
answered ``429 {"message": "Too Many Requests"}`` with ``Retry-After``.

A fixed one-second window per key: a key's first admitted request opens its window, which admits
``per_second`` requests and ends one second later; the key's next request after that opens a new
one. A refused request neither counts nor moves the window, so a client that keeps retrying is never
locked out: it gets through once the window ends. Nothing here does I/O; the clock is injectable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["WINDOW_SECONDS", "RateLimiter", "parse_rate_limit"]

#: How long a window lasts.
WINDOW_SECONDS = 1.0
# Past this many keys, ended windows are dropped when a new one opens (at most once a window, so a
# table of windows all still open is not scanned on every request): a client making up keys (any
# non-empty key is accepted without --api-key) cannot grow the table without bound.
_PRUNE_AT = 10_000


def parse_rate_limit(value: Any) -> int | None:
    """A rate limit as the control API and the command line take it; None when there is no limit.

    :param value: requests per second per API key, a whole number; 0 and None mean no limit.
    :raises ValueError: for anything else (a fraction, a negative number, a string, a bool).
    """
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(
            "rate_limit must be a whole number of requests per second per API key "
            f"(0 or null: no limit), got {value!r}"
        )
    return value or None


@dataclass(slots=True)
class _Window:
    start: float
    count: int


class RateLimiter:
    """Admits or refuses each API request by its API key.

    :param per_second: requests per second per key; 0 or None: no limit.
    :param clock: seconds, for measuring windows; monotonic by default.
    :raises ValueError: for an invalid ``per_second`` (see :func:`parse_rate_limit`).
    """

    def __init__(self, per_second: int | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._pruned_at = -math.inf
        self.per_second = parse_rate_limit(per_second)

    def set(self, per_second: int | None) -> None:
        """Apply another limit from now on, every key starting afresh.

        :param per_second: requests per second per key; 0 or None: no limit.
        :raises ValueError: for an invalid value (see :func:`parse_rate_limit`); the limit is unchanged.
        """
        self.per_second = parse_rate_limit(per_second)
        self._windows.clear()

    def admit(self, key: str) -> int | None:
        """Count one request of ``key``; None when it may proceed, else its ``Retry-After`` seconds.

        :param key: the request's API key.
        :return: None, or the whole seconds (at least 1) until the key's window ends, rounded up.
        """
        limit = self.per_second
        if limit is None:
            return None
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now >= window.start + WINDOW_SECONDS:
            if window is None and len(self._windows) >= _PRUNE_AT and now >= self._pruned_at + WINDOW_SECONDS:
                self._prune(now)
            self._windows[key] = _Window(now, 1)
            return None
        if window.count < limit:
            window.count += 1
            return None
        return max(1, math.ceil(window.start + WINDOW_SECONDS - now))

    def _prune(self, now: float) -> None:
        self._pruned_at = now
        ended = [key for key, window in self._windows.items() if now >= window.start + WINDOW_SECONDS]
        for key in ended:
            del self._windows[key]
