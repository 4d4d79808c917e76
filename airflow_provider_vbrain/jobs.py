"""What a job's status is (:class:`JobStatus`, typed by :class:`JobState`), and the events a wait on
a job ends with (:class:`JobEvent`), as the trigger sends them to the task.

Values only, no I/O. What a waiter does with them is decided in one place, the wait loop
(``airflow_provider_vbrain._client.waiting``).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from airflow_provider_vbrain.exceptions import VBrainError

__all__ = ["EventStatus", "JobEvent", "JobState", "JobStatus", "read_event", "success_by_state"]


class JobState(str, enum.Enum):
    """The ``job_status`` values VBrain reports: queued and started answer HTTP 202, finished and
    failed 200."""

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


_STATES = {state.value: state for state in JobState}


def success_by_state(job_status: str) -> bool:
    """Whether a job that is over succeeded by its ``job_status`` alone: ``finished``, the one end
    state the reference documents as success.

    Any other end state (``cancelled``, ``error``, none at all) counts as success only when
    ``GET /job/{job_id}/result`` answers 200: the reference's own test of success.
    """
    return job_status.strip().lower() == JobState.FINISHED.value


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
        means over, and whether it succeeded is then decided by ``/result``
        (see :func:`success_by_state`). A 200 without ``job_status`` keeps ``raw_state`` empty.
        """
        raw = str(body.get("job_status", "")).strip()
        state = _STATES.get(raw.lower())  # a dict, not JobState(...): this runs on every poll
        if state is None:
            state = JobState.FINISHED if http_status == 200 else JobState.STARTED
        if http_status == 202 and state.terminal:
            # The HTTP status is the documented signal; trust it over the field.
            state = JobState.STARTED
        if not raw and http_status != 200:
            raw = state.value
        return cls(job_id, repository_id, state, http_status, raw, dict(body))


class EventStatus(str, enum.Enum):
    """Every status a :class:`~airflow_provider_vbrain.triggers.vbrain.VBrainJobTrigger` event can carry."""

    #: The job finished; its result is ready.
    SUCCEEDED = "succeeded"
    #: The job ended ``failed``.
    FAILED = "failed"
    #: The wait's deadline passed first.
    TIMEOUT = "timeout"
    #: Polling failed for good (authentication, not found, too many transient failures).
    ERROR = "error"


@dataclasses.dataclass(frozen=True)
class JobEvent:
    """A trigger event, checked and typed.

    :param status: what happened.
    :param job_id: the job waited on.
    :param repository_id: its repository.
    :param job_status: the job's last ``job_status`` as the server spelled it.
    :param message: a human-readable account, for errors and timeouts.
    :param error: the error that ended the wait (``error`` events in the process that polled;
        it does not travel through the triggerer).
    """

    status: EventStatus
    job_id: str
    repository_id: str
    job_status: str = ""
    message: str = ""
    error: VBrainError | None = dataclasses.field(default=None, compare=False, repr=False)

    def payload(self) -> dict[str, str]:
        """The JSON-serialisable form sent through the triggerer."""
        return {
            "status": self.status.value,
            "job_id": self.job_id,
            "repository_id": self.repository_id,
            "job_status": self.job_status,
            "message": self.message,
        }


def read_event(event: Any) -> JobEvent:
    """Check an event handed back by the triggerer.

    :raises VBrainError: when the event is missing or is not one this provider sends,
        so that a resumed task never passes silently.
    """
    if not isinstance(event, Mapping):
        raise VBrainError(f"VBrain trigger resumed the task without a usable event: {event!r}")
    try:
        status = EventStatus(event.get("status"))
        return JobEvent(
            status=status,
            job_id=str(event["job_id"]),
            repository_id=str(event["repository_id"]),
            job_status=str(event.get("job_status", "")),
            message=str(event.get("message", "")),
        )
    except (KeyError, ValueError) as err:
        raise VBrainError(f"VBrain trigger sent an event this provider does not know: {event!r}") from err
