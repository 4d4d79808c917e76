from __future__ import annotations

import pytest

from airflow_provider_vbrain._client.waiting import Outcome, is_transient, outcome_of
from airflow_provider_vbrain.exceptions import (
    VBrainAuthError,
    VBrainConnectionError,
    VBrainError,
    VBrainJobFailedError,
    VBrainNotFoundError,
    VBrainRateLimitError,
    VBrainServerError,
)
from airflow_provider_vbrain.jobs import EventStatus, JobEvent, JobState, JobStatus, read_event


@pytest.mark.parametrize(
    ("http_status", "job_status", "state", "outcome"),
    [
        pytest.param(202, "queued", JobState.QUEUED, Outcome.WAIT, id="202-queued-waits"),
        pytest.param(202, "started", JobState.STARTED, Outcome.WAIT, id="202-started-waits"),
        pytest.param(200, "finished", JobState.FINISHED, Outcome.SUCCEEDED, id="200-finished-succeeds"),
        pytest.param(200, "failed", JobState.FAILED, Outcome.FAILED, id="200-failed-fails"),
        pytest.param(200, "FAILED", JobState.FAILED, Outcome.FAILED, id="state-case-ignored"),
        pytest.param(202, "running", JobState.STARTED, Outcome.WAIT, id="unknown-state-202-waits"),
        pytest.param(200, "done", JobState.FINISHED, Outcome.SUCCEEDED, id="unknown-state-200-is-over"),
        pytest.param(202, "finished", JobState.STARTED, Outcome.WAIT, id="http-202-beats-the-field"),
    ],
)
def test_status_answer_is_typed_and_decided(
    http_status: int, job_status: str, state: JobState, outcome: Outcome
) -> None:
    status = JobStatus.from_answer("j", "r", http_status, {"job_status": job_status, "extra": 1})
    assert status.state is state
    assert status.raw_state == job_status
    assert status.body["extra"] == 1
    assert outcome_of(status) is outcome


def test_terminal_states() -> None:
    assert {s for s in JobState if s.terminal} == {JobState.FINISHED, JobState.FAILED}


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        pytest.param(VBrainServerError("GET /x", 500, "boom"), True, id="5xx"),
        pytest.param(VBrainRateLimitError("GET /x", 429, "slow down"), True, id="429"),
        pytest.param(VBrainConnectionError("GET /x", "connection lost"), True, id="connection"),
        pytest.param(VBrainAuthError("GET /x", 403, "Forbidden"), False, id="403"),
        pytest.param(VBrainNotFoundError("GET /x", 404, "Invalid job_id"), False, id="404"),
        pytest.param(VBrainJobFailedError("j", "r", "failed"), False, id="job-failed"),
        pytest.param(ValueError("x"), False, id="other"),
    ],
)
def test_transient_errors(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(None, id="missing"),
        pytest.param("succeeded", id="not-a-mapping"),
        pytest.param({"status": "done", "job_id": "j", "repository_id": "r"}, id="unknown-status"),
        pytest.param({"status": "succeeded", "repository_id": "r"}, id="no-job-id"),
    ],
)
def test_unusable_events_are_errors_never_successes(event: object) -> None:
    with pytest.raises(VBrainError, match="VBrain trigger"):
        read_event(event)


def test_events_round_trip() -> None:
    event = JobEvent(EventStatus.TIMEOUT, "j", "r", "started", "too slow")
    assert read_event(event.payload()) == event
