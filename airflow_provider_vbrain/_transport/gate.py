"""One back-off per connection per event loop: what one wait learns of the server's load holds all.

Thousands of triggers in one triggerer share an event loop and, mostly, one connection. Each
request of the asyncio transport passes its connection's :class:`Gate` first, which

- holds every request when the server said to slow down: a ``429`` (for its ``Retry-After``, or
  the retry policy's growing back-off without one, never past its ``max_delay``), or a run of
  ``503`` answers;
- once throttled, paces requests at a rate learned from the server: just under what it answered
  in the second before (multiplicative decrease), rising by one request per second each second
  it keeps answering (additive increase), until a minute passes without a ``429``;
- and caps the requests in flight, so ten thousand waits never open ten thousand sockets.

Everything awaits: nothing here blocks the loop. The caller's own deadline still wins, by
cancelling the wait it bounds (a held request leaves the queue when cancelled).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from airflow_provider_vbrain._client.http import Response, TransportFailure
from airflow_provider_vbrain._client.retry import RetryPolicy, retry_after_seconds

if TYPE_CHECKING:
    from airflow_provider_vbrain.connection import VBrainSettings

__all__ = ["CONCURRENT_REQUESTS", "Gate", "gate_for"]

#: Requests in flight at once per connection and event loop; the others queue for a free slot.
CONCURRENT_REQUESTS = 32
#: ``503`` answers in a row (from any wait) that hold every request of the connection.
UNAVAILABLE_RUN = 3
#: The share of the last second's answered rate kept when the server throttles.
DECREASE = 0.7
#: Seconds without a ``429`` after which requests are no longer paced.
CALM = 60.0
_MIN_RATE = 1.0

_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], Gate]] = (
    weakref.WeakKeyDictionary()
)


def gate_for(settings: VBrainSettings) -> Gate:
    """The running loop's gate for ``settings``' connection (its id and API URL)."""
    loop = asyncio.get_running_loop()
    gates = _GATES.get(loop)
    if gates is None:
        gates = _GATES[loop] = {}
    key = (settings.conn_id, settings.api_url)
    gate = gates.get(key)
    if gate is None:
        gate = gates[key] = Gate(settings.retry, clock=loop.time)
    return gate


class Gate:
    """The back-off and the cap of one connection on one event loop.

    :param policy: the connection's retry policy: a hold lasts what the server asked, or its
        back-off without an answer that says, never longer than its ``max_delay``.
    :param limit: requests in flight at once.
    :param clock: monotonic seconds (the loop's clock).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        limit: int = CONCURRENT_REQUESTS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._policy = policy
        self._slots = asyncio.Semaphore(limit)
        self._clock = clock or asyncio.get_running_loop().time
        #: No request leaves before this time.
        self.hold_until = 0.0
        #: Requests per second when paced; None while the server has not throttled.
        self.rate: float | None = None
        self._next_slot = 0.0
        self._throttled = 0  # 429 answers in a row
        self._unavailable = 0  # 503 answers in a row
        self._last_throttle = 0.0
        self._decreased_at = -1.0
        self._window = 0.0  # the start of the current one-second window
        self._answered = 0  # answers (not 429) in it
        self._answered_before = 0  # answers in the previous one

    async def enter(self) -> float:
        """Wait for the server's time, the pace and a free slot; return the seconds held (0 when the
        request could leave at once)."""
        began = now = self._clock()
        start = max(now, self.hold_until)
        if self.rate is not None:
            if now - self._last_throttle > CALM:
                self.rate = None
            else:
                start = max(start, self._next_slot)
                self._next_slot = start + 1.0 / self.rate
        held = start > now or self._slots.locked()
        while start > now:
            await asyncio.sleep(start - now)
            now = self._clock()
            start = max(now, self.hold_until)  # a throttle seen meanwhile holds this one too
        await self._slots.acquire()
        return self._clock() - began if held else 0.0

    def leave(self, outcome: Response | TransportFailure | None) -> None:
        """Free the slot and learn from what the server answered (None: the request was cancelled)."""
        self._slots.release()
        if not isinstance(outcome, Response):
            return
        now = self._clock()
        if outcome.status == 429:
            self._unavailable = 0
            self._throttle(now, outcome)
            return
        self._count(now)
        if outcome.status == 503:
            self._unavailable += 1
            if self._unavailable >= UNAVAILABLE_RUN:
                self._hold(now, outcome, self._unavailable - UNAVAILABLE_RUN + 1)
            return
        self._unavailable = 0
        self._throttled = 0
        if self.rate is not None:
            self.rate += 1.0 / self.rate  # about one more request per second, each second

    def _throttle(self, now: float, answer: Response) -> None:
        self._throttled += 1
        self._last_throttle = now
        self._hold(now, answer, self._throttled)
        if now - self._decreased_at < 1.0:
            return  # one decrease per second: a burst of 429s answers one rate, not many
        self._decreased_at = now
        if self.rate is None:
            seen = max(self._answered_before, self._answered)
            self.rate = max(_MIN_RATE, DECREASE * seen)
        else:
            self.rate = max(_MIN_RATE, DECREASE * self.rate)

    def _hold(self, now: float, answer: Response, in_a_row: int) -> None:
        asked = retry_after_seconds(answer.headers.get("retry-after"), time.time())
        if asked is None:
            asked = self._policy.base_delay * 2.0 ** min(in_a_row - 1, 30)
        hold = min(self._policy.max_delay, asked)
        self.hold_until = max(self.hold_until, now + hold)

    def _count(self, now: float) -> None:
        """Count one answer in the current one-second window."""
        if now - self._window >= 1.0:
            self._answered_before = self._answered if now - self._window < 2.0 else 0
            self._answered = 0
            self._window = now
        self._answered += 1
