"""Job states and the decisions about them, shared by hook, operators, sensor and trigger.

Pure code, no I/O, so every rule here is tested directly.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from airflow_provider_vbrain.exceptions import VBrainConnectionError, VBrainRateLimitError, VBrainServerError

__all__ = [
    "MAX_CONSECUTIVE_POLL_FAILURES",
    "JobState",
    "JobStatus",
    "Outcome",
    "is_transient",
    "outcome_of",
]

#: How many status polls in a row may fail with a transient error (after the
#: HTTP-level retries of each poll) before waiting on a job gives up.
MAX_CONSECUTIVE_POLL_FAILURES = 5


class JobState(str, enum.Enum):
    """The ``job_status`` values VBrain reports."""

    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        """Whether a job in this state will not change any more."""
        return self in (JobState.FINISHED, JobState.FAILED)

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True)
class JobStatus:
    """One answer of ``GET /job/{job_id}``.

    :param job_id: the job asked about.
    :param repository_id: its repository.
    :param state: the typed state.
    :param http_status: 202 while the job is queued or running, 200 once it is over.
    :param raw_state: ``job_status`` exactly as the server wrote it.
    :param body: the whole response body, kept as-is.
    """

    job_id: str
    repository_id: str
    state: JobState
    http_status: int
    raw_state: str
    body: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        """Whether the job is over. VBrain says so with HTTP 200, whatever the state's spelling."""
        return self.http_status == 200 or self.state.terminal

    @classmethod
    def from_answer(
        cls, job_id: str, repository_id: str, http_status: int, body: Mapping[str, Any]
    ) -> JobStatus:
        """Type a status answer.

        The reference documents four states. An unknown spelling is kept in
        ``raw_state`` and read by the HTTP status: 202 means still running, 200
        means over, and whether it succeeded is then decided by ``/result``.
        """
        raw = str(body.get("job_status", "")).strip()
        try:
            state = JobState(raw.lower())
        except ValueError:
            state = JobState.FINISHED if http_status == 200 else JobState.STARTED
        if http_status == 202 and state.terminal:
            # The HTTP status is the documented signal; trust it over the field.
            state = JobState.STARTED
        return cls(job_id, repository_id, state, http_status, raw or state.value, dict(body))


class Outcome(str, enum.Enum):
    """What a waiter does after reading a job's status."""

    WAIT = "wait"
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
