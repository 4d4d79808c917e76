"""The one wait loop, driven with canned poll outcomes and a fake clock; and the hook's blocking wait
on it, with the status endpoint and the sleeps mocked."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from airflow_provider_vbrain._client.waiting import MAX_CONSECUTIVE_POLL_FAILURES, JobWait
from airflow_provider_vbrain.exceptions import (
    VBrainAuthError,
    VBrainConnectionError,
    VBrainJobTimeoutError,
    VBrainServerError,
)
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from airflow_provider_vbrain.jobs import EventStatus, JobEvent, JobState, JobStatus
from tests.core import jittered

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
    assert len(pauses) == 2
    assert jittered(pauses, 10)


def test_each_state_change_is_logged_once(caplog: pytest.LogCaptureFixture, mocker: Any) -> None:
    on_change = mocker.Mock()
    wait = JobWait("job-1", "repo-1", poll_interval=1, log=LOG, on_change=on_change)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        drive(
            wait,
            [status("queued"), status("queued"), status("started"), status("started"), status("finished")],
        )
    assert [c.args[0].state for c in on_change.call_args_list] == [
        JobState.QUEUED,
        JobState.STARTED,
        JobState.FINISHED,
    ]
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
    assert jittered(pauses[:-1], 10)
    assert 0 < pauses[-1] <= 10
    assert sum(pauses) == pytest.approx(25)  # the last pause ends at the deadline
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


# --------------------------------------------------------------------------- the hook's blocking wait


@pytest.fixture
def slept(mocker: Any) -> list[float]:
    """The pauses this test's thread asked ``time.sleep`` for; none is really waited. Other threads
    (a session's emulator, say) keep the real sleep."""
    pauses: list[float] = []
    real_sleep, this_thread = time.sleep, threading.get_ident()

    def sleep(seconds: float) -> None:
        if threading.get_ident() != this_thread:
            return real_sleep(seconds)
        pauses.append(seconds)
        return None

    mocker.patch("time.sleep", side_effect=sleep)
    return pauses


def test_the_hooks_wait_polls_on_its_schedule_and_reports_each_change(
    mocker: Any, slept: list[float]
) -> None:
    answers = [status("queued"), status("started"), status("started"), status("finished")]
    get_job_status = mocker.patch.object(VBrainHook, "get_job_status", autospec=True, side_effect=answers)
    on_status = mocker.Mock()
    hook = VBrainHook()

    final = hook.wait_for_job("job-1", "repo-1", poll_interval=30, on_status=on_status)

    assert final is answers[-1]
    assert len(slept) == 3
    assert jittered(slept, 30)
    assert get_job_status.call_count == 4
    get_job_status.assert_called_with(hook, "job-1", "repo-1")
    assert [c.args[0].state for c in on_status.call_args_list] == [
        JobState.QUEUED,
        JobState.STARTED,
        JobState.FINISHED,
    ]


def test_the_hooks_wait_rides_out_a_failed_poll(mocker: Any, slept: list[float]) -> None:
    busy = VBrainServerError("GET /api/v1/job/job-1", 503, "busy")
    mocker.patch.object(VBrainHook, "get_job_status", autospec=True, side_effect=[busy, status("finished")])
    assert VBrainHook().wait_for_job("job-1", "repo-1", poll_interval=5).state is JobState.FINISHED
    assert len(slept) == 1
    assert jittered(slept, 5)


def test_the_hooks_wait_raises_what_ended_it(mocker: Any, slept: list[float]) -> None:
    refused = VBrainAuthError("GET /api/v1/job/job-1", 403, "Forbidden")
    mocker.patch.object(VBrainHook, "get_job_status", autospec=True, side_effect=[status("queued"), refused])
    with pytest.raises(VBrainAuthError) as raised:
        VBrainHook().wait_for_job("job-1", "repo-1", poll_interval=5)
    assert raised.value is refused
    assert len(slept) == 1
    assert jittered(slept, 5)
