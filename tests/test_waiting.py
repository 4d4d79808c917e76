"""The one wait loop, driven with canned poll outcomes and a fake clock."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_vbrain._client.waiting import MAX_CONSECUTIVE_POLL_FAILURES, JobWait
from airflow_provider_vbrain.exceptions import (
    VBrainAuthError,
    VBrainConnectionError,
    VBrainJobTimeoutError,
    VBrainServerError,
)
from airflow_provider_vbrain.jobs import EventStatus, JobEvent, JobState, JobStatus

LOG = logging.getLogger("tests.waiting")


def status(state: str, http_status: int | None = None) -> JobStatus:
    code = http_status or (200 if state in ("finished", "failed") else 202)
    return JobStatus.from_answer("job-1", "repo-1", code, {"job_status": state})


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def drive(wait: JobWait, outcomes: list[Any], clock: Clock | None = None) -> tuple[JobEvent, list[float]]:
    """Feed outcomes until the wait ends; return its event and the pauses it asked for."""
    pauses = []
    for outcome in outcomes:
        step = wait.after(outcome)
        if isinstance(step, JobEvent):
            return step, pauses
        pauses.append(step)
        if clock is not None:
            clock.now += step
    raise AssertionError(f"the wait did not end; it paused {pauses}")


@pytest.mark.parametrize(
    ("last", "event"),
    [
        pytest.param(status("finished"), EventStatus.SUCCEEDED, id="finished-succeeds"),
        pytest.param(status("failed"), EventStatus.FAILED, id="failed-fails"),
        pytest.param(status("done", 200), EventStatus.SUCCEEDED, id="unknown-spelling-over-is-read-by-200"),
    ],
)
def test_the_wait_ends_when_the_job_is_over(last: JobStatus, event: EventStatus) -> None:
    wait = JobWait("job-1", "repo-1", poll_interval=10, log=LOG)
    ended, pauses = drive(wait, [status("queued"), status("started"), last])
    assert ended.status is event
    assert ended.job_status == last.raw_state
    assert pauses == [10, 10]


def test_each_state_change_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[JobState] = []
    wait = JobWait("job-1", "repo-1", poll_interval=1, log=LOG, on_change=lambda s: seen.append(s.state))
    with caplog.at_level(logging.INFO, logger=LOG.name):
        drive(
            wait,
            [status("queued"), status("queued"), status("started"), status("started"), status("finished")],
        )
    assert seen == [JobState.QUEUED, JobState.STARTED, JobState.FINISHED]
    assert [r.getMessage() for r in caplog.records] == [
        "VBrain job job-1 is queued",
        "VBrain job job-1 is started",
        "VBrain job job-1 is finished",
    ]


def test_a_state_already_reported_before_deferring_is_not_logged_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wait = JobWait("job-1", "repo-1", poll_interval=1, log=LOG, last_state=JobState.STARTED)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        drive(wait, [status("started"), status("finished")])
    assert [r.getMessage() for r in caplog.records] == ["VBrain job job-1 is finished"]


def test_transient_failures_are_tolerated_up_to_the_budget() -> None:
    flaky = VBrainServerError("GET /api/v1/job/job-1", 503, "busy")
    wait = JobWait("job-1", "repo-1", poll_interval=1, log=LOG)
    ended, _ = drive(wait, [flaky] * (MAX_CONSECUTIVE_POLL_FAILURES - 1) + [status("finished")])
    assert ended.status is EventStatus.SUCCEEDED
    wait = JobWait("job-1", "repo-1", poll_interval=1, log=LOG)
    ended, _ = drive(wait, [flaky] * MAX_CONSECUTIVE_POLL_FAILURES)
    assert (ended.status, ended.error) == (EventStatus.ERROR, flaky)
    assert "busy" in ended.message


def test_a_good_poll_resets_the_failure_budget() -> None:
    lost = VBrainConnectionError("GET /api/v1/job/job-1", "connection lost")
    outcomes = ([lost] * (MAX_CONSECUTIVE_POLL_FAILURES - 1) + [status("started")]) * 3 + [status("finished")]
    ended, _ = drive(JobWait("job-1", "repo-1", poll_interval=1, log=LOG), outcomes)
    assert ended.status is EventStatus.SUCCEEDED


def test_permanent_failures_end_the_wait_at_once() -> None:
    refused = VBrainAuthError("GET /api/v1/job/job-1", 403, "Forbidden")
    ended, pauses = drive(JobWait("job-1", "repo-1", poll_interval=1, log=LOG), [refused])
    assert (ended.status, ended.error, pauses) == (EventStatus.ERROR, refused, [])


def test_the_deadline_ends_the_wait_and_shortens_the_last_pause() -> None:
    clock = Clock()
    wait = JobWait("job-1", "repo-1", poll_interval=10, end_time=clock.now + 25, log=LOG, clock=clock)
    ended, pauses = drive(wait, [status("started")] * 5, clock)
    assert pauses == [10, 10, 5]
    assert ended.status is EventStatus.TIMEOUT
    assert isinstance(ended.error, VBrainJobTimeoutError)
    assert (
        ended.message == "VBrain job job-1 in repository repo-1 still started when the wait's deadline passed"
    )


def test_events_travel_without_the_error_object() -> None:
    refused = VBrainAuthError("GET /api/v1/job/job-1", 403, "Forbidden")
    ended, _ = drive(JobWait("job-1", "repo-1", poll_interval=1, log=LOG), [refused])
    assert set(ended.payload()) == {"status", "job_id", "repository_id", "job_status", "message"}
    assert ended.payload()["status"] == "error"
