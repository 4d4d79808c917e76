"""A deadline for a whole blocking request: connect, headers and body, however slowly the server sends.

Why it is needed: requests (and urllib3 under it) knows only a timeout per socket operation, and
urllib3's ``Timeout(total=...)`` bounds the connect and the first read, not the reads after it. A
server (or a proxy) that sends a byte before each read would time out keeps a worker, and the
connection's ``timeout`` would mean nothing. Checking the clock between reads is not enough either:
the read that blocks is the one to end.

How, with the least reach into urllib3 we found: each request runs under a :class:`Deadline` (a
timer), and the connections of the transport's own session report their socket to the deadline of
the request using them, by overriding the three methods that touch it (``connect``, ``request``,
``getresponse``). When the deadline passes, the timer shuts that socket down, which ends whatever
read or write is blocked on it; between reads the transport checks the deadline itself. urllib3
offers no hook that hands out a connection's socket, so the connection classes are subclassed; the
pool classes are subclassed only to name those connection classes, for whichever pool classes the
session's pool managers use (SOCKS proxies' included). Nothing else of urllib3 changes, and no
other session is touched.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Deadline", "deadline_adapter"]

_CURRENT = threading.local()


class Deadline:
    """The time a request may take, counted from entering the ``with`` block.

    A download's deadline also ends the request when :meth:`watch_progress` says it stalled, checked
    every ``check_every`` seconds, and may be moved once its answer's headers are in (:meth:`move`).
    """

    def __init__(self, seconds: float, check_every: float | None = None) -> None:
        # Clamped to what a timer (and a socket) can wait: a huge timeout means "no deadline" anyway.
        self.seconds = min(seconds, threading.TIMEOUT_MAX, 365 * 24 * 3600)
        self.expired = False
        #: Why the request was cut before its deadline (a stalled download), for its error.
        self.why: str | None = None
        self._at = 0.0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._open = False
        self._check_every = check_every
        self._stalled: Callable[[], str | None] | None = None

    def move(self, seconds: float) -> None:
        """The deadline is now ``seconds`` from now (a download's, once its headers are in)."""
        self._at = time.monotonic() + min(seconds, threading.TIMEOUT_MAX, 365 * 24 * 3600)

    def watch_progress(self, stalled: Callable[[], str | None]) -> None:
        """From now on, end the request when ``stalled()`` returns a reason (checked by the timer)."""
        self._stalled = stalled

    def left(self) -> float:
        """Seconds left (at least a millisecond: requests refuses a zero timeout)."""
        return max(self._at - time.monotonic(), 0.001)

    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self._at

    def watch(self, sock: Any) -> None:
        """Shut ``sock`` down when the deadline passes (at once if it has)."""
        if not isinstance(sock, socket.socket):  # e.g. TLS inside a TLS proxy: per-read timeouts only
            return
        with self._lock:
            if not self._open:
                return
            if not self.expired:
                if sock not in self._sockets:
                    self._sockets.append(sock)
                return
        _shut(sock)

    def _tick(self) -> None:
        """The timer: end the request when its time is up or it stalled, else look again later."""
        why = self._stalled() if self._stalled is not None else None
        left = self._at - time.monotonic()
        if why is None and left > 0:
            with self._lock:
                if self._open:
                    self._arm(left)
            return
        self.why = why
        self._expire()

    def _arm(self, left: float) -> None:
        wait = left if self._check_every is None else min(left, self._check_every)
        self._timer = threading.Timer(max(wait, 0.001), self._tick)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if not self._open:
                return
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def __enter__(self) -> Deadline:
        self._at = time.monotonic() + self.seconds
        self._open = True
        if self._check_every is None:
            self._timer = threading.Timer(self.seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()
        else:
            self._arm(self.seconds)
        _CURRENT.deadline = self
        return self

    def __exit__(self, *exc: object) -> None:
        _CURRENT.deadline = None
        with self._lock:
            # A socket back in the pool is no longer this request's: the timer must not touch it.
            self._open = False
            self._sockets = []
            timer = self._timer
        if timer is not None:
            timer.cancel()


def _watch(connection: Any) -> None:
    deadline = getattr(_CURRENT, "deadline", None)
    if deadline is not None:
        deadline.watch(getattr(connection, "sock", None))


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for a TLS socket (whose own would drop its TLS state
    # under the thread reading it): the blocked read sees the connection end.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def deadline_adapter() -> Any:
    """A requests transport adapter whose connections report their socket to the current deadline."""
    from requests.adapters import HTTPAdapter

    class DeadlineAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            _watch_pools(self.poolmanager)

        def proxy_manager_for(self, proxy: Any, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **kwargs)
            _watch_pools(manager)
            return manager

    return DeadlineAdapter()


def _watch_pools(manager: Any) -> None:
    classes = manager.pool_classes_by_scheme
    manager.pool_classes_by_scheme = {scheme: _watched_pool(pool) for scheme, pool in classes.items()}


@functools.lru_cache(maxsize=16)
def _watched_pool(pool: type) -> type:
    if getattr(pool, "_vbrain_watched", False):
        return pool
    connection = pool.ConnectionCls  # type: ignore[attr-defined]

    class WatchedConnection(connection):  # type: ignore[misc, valid-type]
        # The socket is watched once connected (a new connection), when a request is sent on it
        # (a reused one) and when its answer is read: an upload, the headers and the body alike.
        def connect(self, *args: Any, **kwargs: Any) -> Any:
            done = super().connect(*args, **kwargs)
            _watch(self)
            return done

        def request(self, *args: Any, **kwargs: Any) -> Any:
            _watch(self)
            return super().request(*args, **kwargs)

        def getresponse(self, *args: Any, **kwargs: Any) -> Any:
            _watch(self)
            return super().getresponse(*args, **kwargs)

    WatchedConnection.__name__ = WatchedConnection.__qualname__ = f"Watched{connection.__name__}"
    return type(
        f"Watched{pool.__name__}", (pool,), {"ConnectionCls": WatchedConnection, "_vbrain_watched": True}
    )
