"""What a task asks of Airflow when it waits on a job: a bounded wait by default, and a word in the
log when the wait is stopped while the job goes on."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_vbrain.hooks.vbrain import VBrainHook
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
