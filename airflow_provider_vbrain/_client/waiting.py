"""The one wait loop: what to do after each poll of a job's status, with its decisions and messages
written once.

:class:`JobWait` sends nothing and never sleeps. Whoever waits (the hook's blocking wait, the
sensor's pokes, the trigger) hands it the way to read the status (:meth:`JobWait.poll`, or
:meth:`JobWait.apoll` on an event loop), sleeps as long as it says, and stops at the event it returns.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from typing import Any

from airflow_provider_vbrain._client.metering import meter
from airflow_provider_vbrain._client.polling import DEFAULT_MAX_POLL_INTERVAL, PollSchedule
from airflow_provider_vbrain.exceptions import (
    VBrainAnswerTooLargeError,
    VBrainAPIError,
    VBrainConnectionError,
    VBrainError,
    VBrainJobFailedError,
    VBrainJobTimeoutError,
    VBrainRateLimitError,
    VBrainServerError,
)
from airflow_provider_vbrain.jobs import EventStatus, JobEvent, JobState, JobStatus, success_by_state

__all__ = [
    "MAX_CONSECUTIVE_POLL_FAILURES",
    "JobWait",
    "Outcome",
    "ResultAnswer",
    "asks_result",
    "is_transient",
    "job_goes_on",
    "outcome_of",
    "refused_failure",
    "result_answer",
]

#: How many status polls in a row may fail with a transient error (after the
#: HTTP-level retries of each poll) before waiting on a job gives up.
MAX_CONSECUTIVE_POLL_FAILURES = 5


class Outcome(str, enum.Enum):
    """What a waiter does after reading a job's status."""

    WAIT = "wait"
    #: Over and not failed: a success when ``job_status`` is ``finished``; any other end state is one
    #: only if ``/result`` confirms it (:func:`~airflow_provider_vbrain.jobs.success_by_state`),
    #: which whoever waited asks, since this loop sends nothing.
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def outcome_of(status: JobStatus) -> Outcome:
    """Decide what a job's status means for whoever waits on it."""
    if not status.terminal:
        return Outcome.WAIT
    return Outcome.FAILED if status.state is JobState.FAILED else Outcome.SUCCEEDED


def is_transient(error: BaseException) -> bool:
    """Whether a failed status poll is worth trying again on the next poll.

    Rate limiting, server errors and lost connections pass; authentication,
    not-found and bad-request answers do not, since asking again cannot help.
    """
    return isinstance(error, VBrainConnectionError | VBrainRateLimitError | VBrainServerError)


def job_goes_on(job_id: str, api_url: str, page: str | None) -> str:
    """What the task log says when a wait on a job is stopped before the job ended."""
    where = f"{page} (API: {api_url})" if page else api_url
    return (
        f"Stopped waiting on VBrain job {job_id}: VBrain has no endpoint that stops a job, so it goes "
        f"on running: {where}"
    )


def asks_result(job_status: str, fetch: bool) -> bool:
    """Whether a job that is over and did not fail needs ``GET /job/{id}/result``: for its output
    (``fetch``), or to confirm an end state other than ``finished``
    (:func:`~airflow_provider_vbrain.jobs.success_by_state`)."""
    return fetch or not success_by_state(job_status)


class ResultAnswer(str, enum.Enum):
    """What a failed ``GET /job/{id}/result`` says of a job that is over and did not fail."""

    #: Still a success: a 200 too large to read, when the output was not wanted anyway.
    CONFIRMS = "confirms"
    #: The end state (not ``finished``) is not a success: the job failed.
    REFUSES = "refuses"
    #: Nothing about the job: the error stands (a lost connection, the output too large).
    ERROR = "error"


def result_answer(job_status: str, error: VBrainError, fetch: bool) -> ResultAnswer:
    """Read a failed ``/result``, in one place for the task and the trigger (see :func:`asks_result`)."""
    if isinstance(error, VBrainAnswerTooLargeError) and not fetch:
        return ResultAnswer.CONFIRMS
    if isinstance(error, VBrainAPIError) and not success_by_state(job_status):
        return ResultAnswer.REFUSES
    return ResultAnswer.ERROR


def refused_failure(failure: VBrainJobFailedError, error: VBrainError) -> VBrainJobFailedError:
    """The job's failure (with its log tail) when ``/result`` refused its end state with ``error``."""
    why = (
        f"it ended in a state the API does not document as success, and /result did not confirm it ({error})"
    )
    return VBrainJobFailedError(
        failure.job_id, failure.repository_id, failure.status, f"{why}; {failure.detail}"
    )


_EVENT_OF = {Outcome.SUCCEEDED: EventStatus.SUCCEEDED, Outcome.FAILED: EventStatus.FAILED}


class JobWait:
    """One wait on one job: fed each poll's outcome, it says what comes next.

    :param job_id: the job waited on.
    :param repository_id: its repository.
    :param poll_interval: seconds between polls at first (see :class:`.PollSchedule`).
    :param max_poll_interval: the longest interval the wait grows to; None polls every
        ``poll_interval``.
    :param started_at: when the wait began (seconds since the epoch; default: now): the interval
        grows with the time since, so a wait carried over (a trigger rebuilt) keeps its schedule.
    :param end_time: wall-clock deadline (seconds since the epoch), or None to wait without one.
    :param log: where state changes and failed polls are logged.
    :param last_state: the state already reported before this wait (so it is not logged twice).
    :param on_change: called with each status whose state differs from the previous one.
    :param clock: the wall clock, for the deadline and the schedule.
    """

    def __init__(
        self,
        job_id: str,
        repository_id: str,
        *,
        poll_interval: float,
        log: Any,
        max_poll_interval: float | None = DEFAULT_MAX_POLL_INTERVAL,
        started_at: float | None = None,
        end_time: float | None = None,
        last_state: JobState | None = None,
        on_change: Callable[[JobStatus], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.job_id = job_id
        self.repository_id = repository_id
        self.schedule = PollSchedule(poll_interval, max_poll_interval, job_id)
        self.started_at = clock() if started_at is None else started_at
        self.end_time = end_time
        self.last_state = last_state
        #: The last status read, None before the first.
        self.last_status: JobStatus | None = None
        self.failures = 0
        #: Polls made so far by this wait.
        self.polls = 0
        self._log = log
        self._on_change = on_change
        self._clock = clock

    def poll(self, read_status: Callable[[], JobStatus]) -> JobEvent | float:
        """One poll: read the status with ``read_status`` (a failed read is an outcome too), and
        return what comes next, as :meth:`after` does."""
        try:
            outcome: JobStatus | VBrainError = read_status()
        except VBrainError as err:
            outcome = err
        return self.after(outcome)

    async def apoll(self, read_status: Callable[[], Awaitable[JobStatus]]) -> JobEvent | float:
        """:meth:`poll`, awaiting the status on an event loop."""
        try:
            outcome: JobStatus | VBrainError = await read_status()
        except VBrainError as err:
            outcome = err
        return self.after(outcome)

    def after(self, outcome: JobStatus | VBrainError) -> JobEvent | float:
        """Take one poll's outcome; return the event that ends the wait, or the seconds to sleep."""
        self.polls += 1
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
                self._log.info(
                    "VBrain job %s is %s", self.job_id, outcome.raw_state or "over (no job_status given)"
                )
                if self._on_change is not None:
                    self._on_change(outcome)
            decided = outcome_of(outcome)
            if decided is not Outcome.WAIT:
                return self._event(_EVENT_OF[decided])
        now = self._clock()
        return self._within(self.schedule.delay(now - self.started_at, self.polls), now)

    def first_delay(self) -> float:
        """The sleep before this wait's first poll, when the job was just asked about or submitted
        (see :meth:`.PollSchedule.first_delay`); none once the deadline has passed, so the job's last
        state is read before the wait times out."""
        now = self._clock()
        sleep = self.schedule.first_delay(now - self.started_at)
        return sleep if self.end_time is None else max(0.0, min(sleep, self.end_time - now))

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None without one)."""
        return None if self.end_time is None else self.end_time - self._clock()

    def timed_out(self) -> JobEvent:
        """The event that ends the wait at its deadline."""
        state = self.job_status or "unfinished"
        timeout = VBrainJobTimeoutError(self.job_id, self.repository_id, None, state)
        return self._event(EventStatus.TIMEOUT, str(timeout), timeout)

    def _within(self, sleep: float, now: float) -> JobEvent | float:
        """``sleep``, cut short by the deadline; the timeout event once it has passed."""
        if self.end_time is None:
            return sleep
        remaining = self.end_time - now
        if remaining <= 0:
            return self.timed_out()
        return min(sleep, remaining)

    @property
    def job_status(self) -> str:
        """The job's last ``job_status`` as the server spelled it ("" before the first answer)."""
        return self.last_status.raw_state if self.last_status is not None else ""

    def _event(self, status: EventStatus, message: str = "", error: VBrainError | None = None) -> JobEvent:
        meter().wait_ended(status.value, self.polls, self._clock() - self.started_at)
        return JobEvent(status, self.job_id, self.repository_id, self.job_status, message, error)
