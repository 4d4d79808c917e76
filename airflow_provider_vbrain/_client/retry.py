"""The one retry rule: what is retried, and how long to wait before the next attempt."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from datetime import timezone
from email.utils import parsedate_to_datetime

from airflow_provider_vbrain._client.http import FailureKind, Response, TransportFailure

__all__ = [
    "AMBIGUOUS_STATUSES",
    "NOT_PROCESSED_STATUSES",
    "RETRY_STATUSES",
    "RetryPolicy",
    "retry_after_seconds",
    "retry_delay",
    "should_retry",
]

#: Cloudflare-style statuses a CDN in front of an API answers when the origin failed or was slow
#: (520 unknown error, 521 down, 522 and 524 timeouts, 523 unreachable). Which of them prove the
#: origin never saw the request depends on the CDN, so all count as "may have been processed".
CDN_STATUSES = frozenset({520, 521, 522, 523, 524})
#: Statuses that leave open whether the server acted on the request before the answer was lost:
#: a create answered with one of them may have created something (it is looked for, never repeated).
AMBIGUOUS_STATUSES = frozenset({500, 502, 504, *CDN_STATUSES})
#: Statuses worth retrying on a request that is safe to repeat. (A 500 is not: VBrain answers it
#: for the result of a failed job, which asking again cannot change.)
RETRY_STATUSES = frozenset({429, 502, 503, 504, *CDN_STATUSES})
#: Statuses that prove a request was not processed, so even a create may be repeated.
NOT_PROCESSED_STATUSES = frozenset({429, 503})


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried: exponential backoff with full jitter, capped.

    :param max_attempts: attempts in all, the first included (1 disables retries).
    :param base_delay: seconds; the n-th retry waits up to ``base_delay * 2 ** (n - 1)``.
    :param max_delay: cap on any single wait, ``Retry-After`` included.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError(f"invalid retry policy: {self}")

    def backoff(self, retry_number: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``retry_number`` (1-based), jittered."""
        # The exponent capped: a count of failures in a row may run into the thousands (the gate's).
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(retry_number - 1, 30))
        return ceiling * rng()


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Parse ``Retry-After``: delta-seconds or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, when.timestamp() - now)
    except OverflowError:
        # A date beyond what Python can hold (year 10**20, an absurd zone offset): as far off as
        # any wait can be, so the caller's cap applies.
        return math.inf
    except (TypeError, ValueError, IndexError):
        return None


def should_retry(creates: bool, outcome: Response | TransportFailure) -> bool:
    """The one retry rule.

    Safe requests retry 429, 502, 503, 504, 520 to 524, failed connections and timeouts (not TLS failures, nor
    requests the HTTP library refused to send).
    A create (``POST /repository``, ``POST /job/execute``) is repeated only when
    the failure proves the server did not process it: no connection, 429, 503.

    :param creates: whether the request creates something (is not safe to repeat).
    """
    if isinstance(outcome, TransportFailure):
        if outcome.kind in (FailureKind.TLS, FailureKind.NOT_SENT):
            return False
        return outcome.kind is FailureKind.CONNECT or not creates
    statuses = NOT_PROCESSED_STATUSES if creates else RETRY_STATUSES
    return outcome.status in statuses


def retry_delay(
    policy: RetryPolicy,
    retry_number: int,
    outcome: Response | TransportFailure,
    now: float,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before the next attempt: the server's ``Retry-After`` if given, capped."""
    if isinstance(outcome, Response):
        asked = retry_after_seconds(outcome.headers.get("retry-after"), now)
        if asked is not None:
            return min(asked, policy.max_delay)
    return policy.backoff(retry_number, rng)
