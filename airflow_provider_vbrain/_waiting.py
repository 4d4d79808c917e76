"""The one wait loop: what to do after each poll of a job's status, with its messages written once.

:class:`JobWait` does no I/O. Whoever waits (the hook's blocking wait, the
sensor's pokes, the trigger) polls when it says, sleeps as long as it says,
and stops at the event it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow_provider_vbrain.exceptions import VBrainError, VBrainJobTimeoutError
from airflow_provider_vbrain.jobs import (
    MAX_CONSECUTIVE_POLL_FAILURES,
    EventStatus,
    JobEvent,
    JobState,
    JobStatus,
    Outcome,
    is_transient,
    outcome_of,
)

__all__ = ["JobWait"]

_EVENT_OF = {Outcome.SUCCEEDED: EventStatus.SUCCEEDED, Outcome.FAILED: EventStatus.FAILED}


class JobWait:
    """One wait on one job: fed each poll's outcome, it says what comes next.

    :param job_id: the job waited on.
    :param repository_id: its repository.
    :param poll_interval: seconds between polls.
    :param end_time: wall-clock deadline (seconds since the epoch), or None to wait without one.
    :param log: where state changes and failed polls are logged.
    :param last_state: the state already reported before this wait (so it is not logged twice).
    :param on_change: called with each status whose state differs from the previous one.
    :param clock: the wall clock, for the deadline.
    """

    def __init__(
        self,
        job_id: str,
        repository_id: str,
        *,
        poll_interval: float,
        log: Any,
        end_time: float | None = None,
        last_state: JobState | None = None,
        on_change: Callable[[JobStatus], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.job_id = job_id
        self.repository_id = repository_id
        self.poll_interval = poll_interval
        self.end_time = end_time
        self.last_state = last_state
        #: The last status read, None before the first.
        self.last_status: JobStatus | None = None
        self.failures = 0
        self._log = log
        self._on_change = on_change
        self._clock = clock

    def after(self, outcome: JobStatus | VBrainError) -> JobEvent | float:
        """Take one poll's outcome; return the event that ends the wait, or the seconds to sleep."""
        if isinstance(outcome, VBrainError):
            self.failures += 1
            if not is_transient(outcome) or self.failures >= MAX_CONSECUTIVE_POLL_FAILURES:
                return self._event(EventStatus.ERROR, str(outcome), outcome)
            self._log.warning(
                "Polling VBrain job %s failed (%d in a row): %s", self.job_id, self.failures, outcome
            )
        else:
            self.failures = 0
            self.last_status = outcome
            if outcome.state is not self.last_state:
                self.last_state = outcome.state
                self._log.info("VBrain job %s is %s", self.job_id, outcome.raw_state)
                if self._on_change is not None:
                    self._on_change(outcome)
            decided = outcome_of(outcome)
            if decided is not Outcome.WAIT:
                return self._event(_EVENT_OF[decided])
        if self.end_time is None:
            return self.poll_interval
        remaining = self.end_time - self._clock()
        if remaining <= 0:
            timeout = VBrainJobTimeoutError(
                self.job_id, self.repository_id, None, self.job_status or "unfinished"
            )
            return self._event(EventStatus.TIMEOUT, str(timeout), timeout)
        return min(self.poll_interval, remaining)

    @property
    def job_status(self) -> str:
        """The job's last ``job_status`` as the server spelled it ("" before the first answer)."""
        return self.last_status.raw_state if self.last_status is not None else ""

    def _event(self, status: EventStatus, message: str = "", error: VBrainError | None = None) -> JobEvent:
        return JobEvent(status, self.job_id, self.repository_id, self.job_status, message, error)
