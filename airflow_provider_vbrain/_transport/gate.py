"""One back-off per connection per event loop: what one wait learns of the server's load holds all.

Thousands of triggers in one triggerer share an event loop and, mostly, one connection. Each
request of the asyncio transport passes its connection's :class:`Gate` first, which

- holds every request when the server said to slow down: a ``429`` (for its ``Retry-After``, or
  the retry policy's growing back-off without one, never past its ``max_delay``), or a run of
  ``503`` answers;
- once throttled, paces requests at a rate learned from the server: just under what it accepted
  in the second before (multiplicative decrease, once per throttle: answers to requests sent
  before the cut do not cut again), rising by one request per second each second it keeps
  answering (additive increase), until a minute passes without a ``429``. Paced requests queue and
  leave one at a time at the pace in force when each leaves, so a cut takes effect at once;
- and caps the requests in flight, so ten thousand waits never open ten thousand sockets.

Everything awaits: nothing here blocks the loop. The caller's own deadline still wins, by
cancelling the wait it bounds (a held request leaves the queue when cancelled).
"""

from __future__ import annotations

import asyncio
import collections
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from airflow_provider_vbrain._client.http import Response, TransportFailure
from airflow_provider_vbrain._client.retry import RetryPolicy, retry_delay

if TYPE_CHECKING:
    from airflow_provider_vbrain.connection import VBrainSettings

__all__ = ["CONCURRENT_REQUESTS", "Gate", "gate_for"]

#: Requests in flight at once per connection and event loop; the others queue for a free slot.
CONCURRENT_REQUESTS = 32
#: ``503`` answers in a row (from any wait) that hold every request of the connection.
UNAVAILABLE_RUN = 3
#: The share kept, when the server throttles, of the rate it accepted in the last second (or of the
#: pace, if lower).
DECREASE = 0.9
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


def _longest() -> float:
    """A jitter draw that always gives the retry back-off's ceiling."""
    return 1.0


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
        #: The earliest time the next paced request may leave.
        self._next_slot = 0.0
        #: Paced requests waiting for their turn, first come first served, released by one task.
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()
        self._pacer: asyncio.Task[None] | None = None
        self._throttled = 0  # 429 answers in a row
        self._unavailable = 0  # 503 answers in a row
        self._last_throttle = 0.0
        self._cut_at = -1.0  # when the pace was last cut
        self._window = 0.0  # the start of the current one-second window
        self._answered = 0  # answers (not 429) in it
        self._answered_before = 0  # answers in the previous one

    def now(self) -> float:
        """The gate's clock: when a request leaves, for :meth:`leave`."""
        return self._clock()

    async def enter(self) -> float:
        """Wait for the server's time, the pace and a free slot; return the seconds held (0 when the
        request could leave at once)."""
        began = now = self._clock()
        held = False
        while now < self.hold_until:  # a throttle seen meanwhile holds this one on
            held = True
            await asyncio.sleep(self.hold_until - now)
            now = self._clock()
        if self.rate is not None and now - self._last_throttle > CALM:
            self.rate = None
        if self.rate is not None:
            if self._queue or now < self._next_slot:
                held = True
                turn = asyncio.get_running_loop().create_future()
                self._queue.append(turn)
                if self._pacer is None:
                    self._pacer = asyncio.ensure_future(self._pace())
                await turn  # cancelled: the pacer skips it
            else:
                self._next_slot = now + 1.0 / self.rate
        held = held or self._slots.locked()
        await self._slots.acquire()
        return self._clock() - began if held else 0.0

    async def _pace(self) -> None:
        """Release the queued requests one at a time, at the pace in force when each leaves."""
        try:
            while self._queue:
                now = self._clock()
                start = max(self.hold_until, self._next_slot)
                if start > now:
                    await asyncio.sleep(start - now)
                    continue
                turn = self._queue.popleft()
                if turn.done():  # its wait was cancelled
                    continue
                turn.set_result(None)
                self._next_slot = now + (0.0 if self.rate is None else 1.0 / self.rate)
        finally:
            self._pacer = None

    def leave(self, outcome: Response | TransportFailure | None, sent_at: float) -> None:
        """Free the slot and learn from what the server answered to a request that left at ``sent_at``
        (None: the request was cancelled)."""
        self._slots.release()
        if not isinstance(outcome, Response):
            return
        now = self._clock()
        if outcome.status == 429:
            self._unavailable = 0
            self._throttle(now, outcome, sent_at)
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

    def _throttle(self, now: float, answer: Response, sent_at: float) -> None:
        self._throttled += 1
        self._last_throttle = now
        self._hold(now, answer, self._throttled)
        if sent_at <= self._cut_at:
            return  # it left at the pace already cut: its answer says nothing new
        self._cut_at = now
        accepted = max(self._answered_before, self._answered)
        if self.rate is None:  # the first throttle: a little under what the server accepted
            self.rate = max(_MIN_RATE, DECREASE * accepted)
        else:
            self.rate = max(_MIN_RATE, DECREASE * min(self.rate, accepted or self.rate))

    def _hold(self, now: float, answer: Response, in_a_row: int) -> None:
        # The retry rule's delay at its longest (no jitter): every request waits, not just one.
        hold = retry_delay(self._policy, in_a_row, answer, time.time(), rng=_longest)
        self.hold_until = max(self.hold_until, now + hold)

    def _count(self, now: float) -> None:
        """Count one answer in the current one-second window."""
        if now - self._window >= 1.0:
            self._answered_before = self._answered if now - self._window < 2.0 else 0
            self._answered = 0
            self._window = now
        self._answered += 1
