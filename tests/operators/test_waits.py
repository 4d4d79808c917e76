"""What a task asks of Airflow when it waits on a job: a bounded wait by default, and a word in the
log when the wait is stopped while the job goes on."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_vbrain._client.polling import PollSchedule
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from airflow_provider_vbrain.jobs import JobStatus
from airflow_provider_vbrain.operators.vbrain import VBrainExecuteJobOperator
from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor
from airflow_provider_vbrain.triggers.vbrain import VBrainJobTrigger

WEEK = 7 * 24 * 3600
#: The emulated job runs this long unless the test ends it.
LONG_JOB = {"emulator_run_seconds": 600}


def context() -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="d",
        task_id="t",
        run_id="r",
        map_index=-1,
        try_number=1,
        start_date=datetime.now(timezone.utc),
        xcom_push=lambda **_: None,
    )
    return {"ti": ti}


def deferral(operator: Any) -> Any:
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow 2
        from airflow.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context())
    return deferred.value


def deferring_operator(**kwargs: Any) -> VBrainExecuteJobOperator:
    """An execute operator that waits deferrably on a long job, in a new repository."""
    repository_id = VBrainHook().create_repository()
    return VBrainExecuteJobOperator(
        task_id="t",
        repository_id=repository_id,
        metadata=LONG_JOB,
        wait_for_completion=True,
        deferrable=True,
        **kwargs,
    )


def logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """What was logged, wherever this Airflow's task loggers write (stdlib on 2, structlog on 3)."""
    out, err = capfd.readouterr()
    return "\n".join([*(r.getMessage() for r in caplog.records), out, err])


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, WEEK, id="default-a-week"),
        pytest.param({"timeout": 120}, 120, id="timeout"),
        pytest.param({"execution_timeout": timedelta(minutes=10)}, 600, id="execution_timeout-shortens"),
        pytest.param(
            {"timeout": 60, "execution_timeout": timedelta(minutes=10)}, 60, id="timeout-within-execution"
        ),
    ],
)
def test_a_deferred_wait_is_bounded_and_has_a_backstop(
    vbrain_conn: Any, kwargs: dict[str, Any], expected: float
) -> None:
    before = time.time()
    deferred = deferral(deferring_operator(**kwargs))
    # The trigger's own deadline (a clear VBrainJobTimeoutError) ...
    assert before + expected - 5 <= deferred.trigger.end_time <= time.time() + expected
    # ... and Airflow's deferral timeout a little after it, for when no triggerer runs at all.
    assert expected < deferred.timeout.total_seconds() <= expected + 120


def test_timeout_none_is_a_wait_without_a_deadline_of_its_own(vbrain_conn: Any) -> None:
    deferred = deferral(deferring_operator(timeout=None))
    assert deferred.trigger.end_time is None
    assert deferred.timeout is None


def test_killing_a_blocking_wait_says_the_job_goes_on(
    vbrain_conn: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    repository_id = VBrainHook().create_repository()
    operator = VBrainExecuteJobOperator(
        task_id="t",
        repository_id=repository_id,
        job_params={"a": 10, "b": 20},
        metadata=LONG_JOB,
        wait_for_completion=True,
        deferrable=False,
        poll_interval=0.05,
    )
    worker = threading.Thread(target=operator.execute, args=(context(),), daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while operator.submitted_job_id is None and time.monotonic() < deadline:
        time.sleep(0.02)
    job_id = operator.submitted_job_id
    assert job_id is not None
    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        operator.on_kill()  # what Airflow calls when the task is killed or marked while it runs
    text = logged(caplog, capfd)
    vbrain_conn.finish_job(job_id)  # lets the wait end
    worker.join(30)
    assert f"Stopped waiting on VBrain job {job_id}" in text
    assert "it goes on running" in text
    assert f"{vbrain_conn.url}/api/v1/job/{job_id}" in text
    assert [j["status"] for j in vbrain_conn.jobs()] == ["finished"]  # nothing stopped or deleted it


def test_killing_a_sensor_names_its_job_page(
    vbrain_conn: Any, job_page: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    sensor = VBrainJobSensor(task_id="wait", job_id="J-1", repository_id="R-1")
    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        sensor.on_kill()
    text = logged(caplog, capfd)
    assert "Stopped waiting on VBrain job J-1" in text
    assert sensor.hook.settings.job_web_url("J-1", "R-1", None) in text


def test_a_cancelled_trigger_says_the_job_goes_on(
    vbrain_conn: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    hook = VBrainHook()
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, {"a": 1, "b": 2}, LONG_JOB)
    trigger = VBrainJobTrigger(job_id=job_id, repository_id=repository_id, poll_interval=0.05)

    async def cleared_after_a_poll() -> None:
        async def wait() -> None:
            async for _ in trigger.run():
                pytest.fail("the job cannot have ended")

        task = asyncio.ensure_future(wait())
        while not any(r["path"] == f"/api/v1/job/{job_id}" for r in vbrain_conn.requests()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # the emulator runs in another thread: nothing to await on
        task.cancel()  # what the triggerer does when the deferred task is cleared or killed
        with pytest.raises(asyncio.CancelledError):
            await task

    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        asyncio.run(cleared_after_a_poll())
    text = logged(caplog, capfd)
    assert f"Stopped waiting on VBrain job {job_id}" in text
    assert f"/api/v1/job/{job_id}" in text


def test_a_deferred_wait_carries_its_polling_schedule(vbrain_conn: Any) -> None:
    """What a restarted triggerer needs to go on with the schedule: the intervals and the wait's start."""
    before = time.time()
    trigger = deferral(deferring_operator(poll_interval=5, max_poll_interval=120)).trigger
    _, kwargs = trigger.serialize()
    assert (kwargs["poll_interval"], kwargs["max_poll_interval"]) == (5, 120)
    assert before <= kwargs["started_at"] <= time.time()
    fixed = deferral(deferring_operator(max_poll_interval=None)).trigger
    assert fixed.serialize()[1]["max_poll_interval"] is None


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, (9.0, 10.0), id="adaptive-at-first"),
        pytest.param({"max_poll_interval": None}, (9.0, 10.0), id="fixed"),
    ],
)
def test_a_poking_sensor_sleeps_on_the_polling_schedule(
    vbrain_conn: Any, mocker: Any, kwargs: dict[str, Any], expected: tuple[float, float]
) -> None:
    """Airflow's poke loop sleeps what the sensor's schedule says: jittered, never above the interval."""
    answers = [
        JobStatus.from_answer("job-1", "repo-1", code, {"job_status": state})
        for code, state in ((202, "queued"), (202, "started"), (200, "finished"))
    ]
    mocker.patch.object(VBrainHook, "get_job_status", autospec=True, side_effect=answers)
    sleeps: list[float] = []
    mocker.patch("time.sleep", side_effect=sleeps.append)
    sensor = VBrainJobSensor(
        task_id="t", job_id="job-1", repository_id="repo-1", fetch_result=False, deferrable=False, **kwargs
    )
    sensor.execute(context())
    schedule = PollSchedule(10, sensor.max_poll_interval, "job-1")
    assert sleeps == pytest.approx([schedule.delay(0, 1), schedule.delay(0, 2)], abs=1e-6)
    assert all(expected[0] <= pause <= expected[1] for pause in sleeps)


def test_the_sensors_schedule_grows_with_the_time_it_has_run() -> None:
    """Reschedule mode gives the time since the first poke: an hour in, pokes are minutes apart."""
    sensor = VBrainJobSensor(task_id="t", job_id="job-1", repository_id="repo-1", mode="reschedule")
    assert 270 <= sensor._get_next_poke_interval(None, lambda: 3600.0, 30) <= 300
    backoff = VBrainJobSensor(
        task_id="b", job_id="job-1", repository_id="repo-1", mode="reschedule", exponential_backoff=True
    )
    theirs = super(VBrainJobSensor, backoff)._get_next_poke_interval(None, lambda: 3600.0, 30)
    assert backoff._get_next_poke_interval(None, lambda: 3600.0, 30) == theirs


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(0, "max_poll_interval must be more than 0 seconds", id="zero"),
        pytest.param(5, "max_poll_interval (5) must not be below the first interval", id="below"),
    ],
)
def test_a_max_poll_interval_below_the_first_is_refused(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        VBrainExecuteJobOperator(task_id="t", repository_id="r", poll_interval=10, max_poll_interval=value)
    with pytest.raises(ValueError, match=re.escape(message)):
        VBrainJobSensor(task_id="t", job_id="j", repository_id="r", poke_interval=10, max_poll_interval=value)
