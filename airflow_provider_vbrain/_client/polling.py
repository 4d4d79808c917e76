"""How long a wait sleeps between two polls of a job's status: longer as the job runs on, never in step
with the other waits.

The interval starts at ``poll_interval`` and grows with the time the wait has lasted, to
:data:`LATENCY_SHARE` of it, up to ``max_poll_interval``. Each sleep is that interval less a jitter of
up to :data:`JITTER` of it, drawn from the job's id and the poll's number: never longer than the
interval, so a job is seen over at most one interval after it ended, and waits that started together
drift apart instead of polling in the same second. The draws depend on nothing else, so a wait
rebuilt elsewhere (a triggerer restarted) goes on with the same schedule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

__all__ = ["DEFAULT_MAX_POLL_INTERVAL", "JITTER", "LATENCY_SHARE", "PollSchedule"]

#: The share of the time a job has run that may pass, at most, between its end and the poll that sees it.
LATENCY_SHARE = 0.1
#: The longest interval between two polls by default: five minutes. Past 50 minutes of waiting the
#: interval stops growing, so even a job of several hours is seen over within five minutes.
DEFAULT_MAX_POLL_INTERVAL = 300.0
#: Each sleep is shortened by up to this share of the interval (never lengthened): enough for waits that
#: started together to drift apart, little enough to cost at most a tenth more polls than the interval.
JITTER = 0.1
_SCALE = float(1 << 64)


@dataclasses.dataclass(frozen=True)
class PollSchedule:
    """The sleeps of one wait.

    :param poll_interval: the first interval, in seconds, and the shortest.
    :param max_poll_interval: the longest interval, in seconds; None (or a value not above
        ``poll_interval``) polls every ``poll_interval`` for the whole wait.
    :param key: what the jitter is drawn from: the job's id.
    """

    poll_interval: float
    max_poll_interval: float | None = DEFAULT_MAX_POLL_INTERVAL
    key: str = ""

    def __post_init__(self) -> None:
        if self.poll_interval <= 0:
            raise ValueError(f"poll_interval must be more than 0 seconds, got {self.poll_interval!r}")

    @property
    def adaptive(self) -> bool:
        """Whether the interval grows (False: fixed polling)."""
        return self.max_poll_interval is not None and self.max_poll_interval > self.poll_interval

    def interval(self, waited: float) -> float:
        """The longest sleep after ``waited`` seconds of waiting: the bound on how late an end is seen."""
        if not self.adaptive:
            return self.poll_interval
        assert self.max_poll_interval is not None
        return min(self.max_poll_interval, max(self.poll_interval, LATENCY_SHARE * waited))

    def delay(self, waited: float, polls: int) -> float:
        """The sleep after poll number ``polls`` (1 for the first), ``waited`` seconds into the wait."""
        return self.interval(waited) * (1.0 - JITTER * self._draw(polls))

    def first_delay(self, waited: float) -> float:
        """The sleep before the first poll of a wait that starts where a job was already asked about (a
        trigger just deferred to, or rebuilt by a restarted triggerer): anywhere in the interval, so
        that a thousand waits deferred in the same second do not all poll in it.

        It is drawn as the time to the next poll at a random moment of a wait already under way
        (the forward recurrence time of the jittered sleeps), so that waits started together poll,
        from the first second on, at the even rate they keep afterwards.
        """
        return self.interval(waited) * _forward_recurrence(self._draw(0))

    def _draw(self, polls: int) -> float:
        """A number in [0, 1) that depends only on the job's id and ``polls``."""
        digest = hashlib.blake2b(f"{self.key}#{polls}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / _SCALE


def _forward_recurrence(u: float) -> float:
    """The ``u``-quantile of the time to the next poll, in intervals, seen from a random moment of a
    wait whose sleeps are uniform between ``1 - JITTER`` and 1 interval."""
    shortest, mean = 1.0 - JITTER, 1.0 - JITTER / 2
    if u * mean <= shortest:  # sooner than the shortest sleep: every moment is as likely
        return u * mean
    return 1.0 - math.sqrt(max(0.0, JITTER * JITTER - 2 * JITTER * (u * mean - shortest)))
