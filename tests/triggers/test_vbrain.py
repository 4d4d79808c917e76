"""VBrainJobTrigger on a real event loop: against the emulator, and with its status polls and its
sleeps mocked where only the schedule matters."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from airflow_provider_vbrain._airflow.compat import end_event_xcoms_intact
from airflow_provider_vbrain._client.waiting import MAX_CONSECUTIVE_POLL_FAILURES
from airflow_provider_vbrain._transport.aio import close_shared_session
from airflow_provider_vbrain.hooks.vbrain import VBrainAsyncHook, VBrainHook
from airflow_provider_vbrain.jobs import JobStatus
from airflow_provider_vbrain.triggers.vbrain import VBrainJobTrigger
from tests.conftest import API_KEY, ORG, key_leaks
from tests.core import first_event, jittered

STATUS_PATH = r"^/api/v1/job/[^/]+$"


@pytest.fixture
async def job(vbrain_conn: Any) -> Any:
    hook = VBrainHook()
    repository_id = hook.create_repository()
    yield repository_id, hook
    await close_shared_session()


def rebuilt(trigger: VBrainJobTrigger) -> VBrainJobTrigger:
    """What the triggerer does: import the class path and call it with the kwargs."""
    import importlib

    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


def test_serialize_round_trips_every_argument_and_no_secret() -> None:
    trigger = VBrainJobTrigger(
        "job-1",
        "repo-1",
        "vbrain_prod",
        "Tutorial",
        2.5,
        1_800_000_000.0,
        "started",
        True,
        True,
        False,
        5,
        60.0,
        1_799_990_000.0,
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_vbrain.triggers.vbrain.VBrainJobTrigger"
    assert kwargs == {
        "job_id": "job-1",
        "repository_id": "repo-1",
        "vbrain_conn_id": "vbrain_prod",
        "application_id": "Tutorial",
        "poll_interval": 2.5,
        "end_time": 1_800_000_000.0,
        "last_state": "started",
        "end_task": True,
        "end_failed_task": True,
        "fetch_result": False,
        "max_result_bytes": 5,
        "max_poll_interval": 60.0,
        "started_at": 1_799_990_000.0,
    }
    assert rebuilt(trigger).serialize() == (path, kwargs)
    assert API_KEY not in repr(kwargs)


@pytest.mark.parametrize(
    ("params", "status", "job_status"),
    [
        pytest.param({"a": 2, "b": 3}, "succeeded", "finished", id="finished"),
        pytest.param({"a": 2}, "failed", "failed", id="failed"),
    ],
)
async def test_the_job_end_becomes_one_event(job: Any, params: dict, status: str, job_status: str) -> None:
    repository_id, hook = job
    job_id = hook.execute_job(repository_id, params)
    event = await first_event(VBrainJobTrigger(job_id, repository_id, poll_interval=0.05))
    assert event == {
        "status": status,
        "job_id": job_id,
        "repository_id": repository_id,
        "job_status": job_status,
        "message": "",
    }


async def test_the_deadline_travels_in_the_trigger(job: Any) -> None:
    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 1, "b": 1}, {"emulator_run_seconds": 60})
    started = time.monotonic()
    event = await first_event(
        VBrainJobTrigger(job_id, repository_id, poll_interval=5, end_time=time.time() + 0.5)
    )
    assert event["status"] == "timeout"
    assert (
        "still started when the wait's deadline passed" in event["message"]
        or "still queued" in event["message"]
    )
    assert time.monotonic() - started < 2  # the sleep was cut short by the deadline


def answer(state: str) -> JobStatus:
    return JobStatus.from_answer(
        "job-1", "repo-1", 200 if state in ("finished", "failed") else 202, {"job_status": state}
    )


async def test_the_trigger_polls_on_its_schedule_without_waiting(mocker: Any) -> None:
    answers = [answer("queued"), answer("started"), answer("finished")]
    get_job_status = mocker.patch.object(
        VBrainAsyncHook, "get_job_status", autospec=True, side_effect=answers
    )
    sleep = mocker.patch("asyncio.sleep")
    event = await first_event(VBrainJobTrigger("job-1", "repo-1", poll_interval=60))
    assert event["status"] == "succeeded"
    first, *between = [c.args[0] for c in sleep.await_args_list]
    assert 0 <= first < 60  # the first poll comes anywhere in the interval: waits deferred together spread
    assert len(between) == 2
    assert jittered(between, 60)
    assert get_job_status.await_count == 3
    get_job_status.assert_awaited_with(mocker.ANY, "job-1", "repo-1")


async def test_the_deadline_cuts_the_last_pause_short(mocker: Any) -> None:
    mocker.patch.object(
        VBrainAsyncHook, "get_job_status", autospec=True, side_effect=[answer("started"), answer("finished")]
    )
    sleep = mocker.patch("asyncio.sleep")
    trigger = VBrainJobTrigger("job-1", "repo-1", poll_interval=3600, end_time=time.time() + 100)
    assert (await first_event(trigger))["status"] == "succeeded"
    *_, pause = [c.args[0] for c in sleep.await_args_list]
    assert 50 < pause <= 100  # what was left of the deadline, not the hour's poll interval


async def test_a_passed_deadline_ends_the_wait_without_a_pause(mocker: Any) -> None:
    mocker.patch.object(VBrainAsyncHook, "get_job_status", autospec=True, return_value=answer("started"))
    sleep = mocker.patch("asyncio.sleep")
    trigger = VBrainJobTrigger("job-1", "repo-1", poll_interval=3600, end_time=time.time() - 1)
    event = await first_event(trigger)
    assert (event["status"], event["job_status"]) == ("timeout", "started")
    sleep.assert_not_awaited()


async def test_transient_failures_are_tolerated(job: Any, vbrain_conn: Any) -> None:
    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 1, "b": 1})
    vbrain_conn.inject_fault(500, count=MAX_CONSECUTIVE_POLL_FAILURES - 1, method="GET", path=STATUS_PATH)
    event = await first_event(VBrainJobTrigger(job_id, repository_id, poll_interval=0.05))
    assert event["status"] == "succeeded"


async def test_a_failure_budget_bounds_transient_failures(job: Any, vbrain_conn: Any) -> None:
    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 1, "b": 1})
    vbrain_conn.inject_fault(500, count=100, method="GET", path=STATUS_PATH)
    event = await first_event(VBrainJobTrigger(job_id, repository_id, poll_interval=0.01))
    assert event["status"] == "error"
    assert "HTTP 500" in event["message"]


@pytest.mark.parametrize(("fault", "text"), [(403, "HTTP 403: Forbidden"), (404, "HTTP 404")])
async def test_permanent_errors_end_at_once(job: Any, vbrain_conn: Any, fault: int, text: str) -> None:
    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 1, "b": 1})
    vbrain_conn.inject_fault(fault, count=1, method="GET", path=STATUS_PATH)
    event = await first_event(VBrainJobTrigger(job_id, repository_id, poll_interval=0.01))
    assert event["status"] == "error"
    assert text in event["message"]
    assert API_KEY not in event["message"]


async def test_a_trigger_rebuilt_mid_wait_resumes(job: Any, vbrain_conn: Any) -> None:
    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 4, "b": 5}, {"emulator_run_seconds": 60})
    trigger = VBrainJobTrigger(job_id, repository_id, poll_interval=0.05, end_time=time.time() + 30)
    with pytest.raises(asyncio.TimeoutError):
        await first_event(trigger, timeout=0.3)  # the triggerer stops mid-wait
    vbrain_conn.finish_job(job_id)
    event = await first_event(rebuilt(trigger))
    assert event["status"] == "succeeded"


async def test_many_triggers_share_one_session(job: Any, vbrain_conn: Any) -> None:
    repository_id, hook = job
    job_ids = [hook.execute_job(repository_id, {"a": i, "b": 2}) for i in range(20)]
    events = await asyncio.gather(
        *(first_event(VBrainJobTrigger(j, repository_id, poll_interval=0.05)) for j in job_ids)
    )
    assert {e["status"] for e in events} == {"succeeded"}


# --------------------------------------------------------------------------- ending the task here


async def the_event(trigger: VBrainJobTrigger, timeout: float = 20) -> Any:
    """The first event, as the triggerer gets it (not only its payload)."""

    async def first() -> Any:
        async for event in trigger.run():
            return event
        raise AssertionError("the trigger ended without an event")

    return await asyncio.wait_for(first(), timeout)


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """What the trigger logged: through logging (Airflow 2) or structlog's console (Airflow 3)."""
    out, err = capsys.readouterr()
    return caplog.text + out + err


def ending(job_id: str, repository_id: str, **kwargs: Any) -> VBrainJobTrigger:
    """A trigger told to end the task, rebuilt from its kwargs as the triggerer rebuilds it."""
    return rebuilt(VBrainJobTrigger(job_id, repository_id, poll_interval=0.05, end_task=True, **kwargs))


async def test_a_finished_job_ends_the_task_with_its_output_and_link(job: Any, job_page: str) -> None:
    from airflow.triggers.base import TaskSuccessEvent

    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 2, "b": 3})
    event = await the_event(ending(job_id, repository_id, max_result_bytes=1000))
    if not end_event_xcoms_intact():
        # Airflow 3 outside a triggerer: no supervisor to push them through (see
        # tests/e2e/test_start_from_trigger.py for a real triggerer), so a worker pushes them.
        assert type(event).__name__ == "TriggerEvent"
        assert event.payload["status"] == "succeeded"
        return
    assert isinstance(event, TaskSuccessEvent)
    assert event.xcoms == {
        "return_value": hook.get_job_result(job_id, repository_id),
        "vbrain_job_url": job_page.format(job_id=job_id, repository_id=repository_id, organization_id=ORG),
    }
    assert event.xcoms["return_value"] == {"value": 6}
    assert not key_leaks(repr(event.xcoms))


async def test_with_nothing_to_push_the_task_ends_here_on_every_line(job: Any) -> None:
    from airflow.triggers.base import TaskSuccessEvent

    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 2, "b": 3})
    event = await the_event(ending(job_id, repository_id, fetch_result=False))
    assert isinstance(event, TaskSuccessEvent)
    assert not event.xcoms  # no template on this connection, so no link either


async def test_a_failed_job_fails_the_task_logging_what_the_worker_would_raise(
    job: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow.triggers.base import TaskFailedEvent

    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 2})
    with caplog.at_level(logging.INFO):
        event = await the_event(ending(job_id, repository_id, end_failed_task=True))
    assert isinstance(event, TaskFailedEvent)
    expected = str(hook.job_failure(job_id, repository_id))  # what the sensor raises on a worker
    assert "end of its logs:" in expected
    assert job_id in expected
    assert expected in logged(caplog, capsys)


async def test_polling_that_fails_for_good_fails_the_task_with_its_error(
    job: Any, vbrain_conn: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow.triggers.base import TaskFailedEvent

    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 1, "b": 1})
    vbrain_conn.inject_fault(404, count=1, method="GET", path=STATUS_PATH)
    with caplog.at_level(logging.INFO):
        event = await the_event(ending(job_id, repository_id, end_failed_task=True))
    assert isinstance(event, TaskFailedEvent)
    text = logged(caplog, capsys)
    assert "HTTP 404" in text
    assert not key_leaks(text)


async def test_an_output_too_large_for_xcom_fails_the_task(
    job: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow.triggers.base import TaskFailedEvent

    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 2, "b": 3})
    with caplog.at_level(logging.INFO):
        event = await the_event(ending(job_id, repository_id, end_failed_task=True, max_result_bytes=5))
    if not end_event_xcoms_intact():  # Airflow 3 outside a triggerer: a worker fetches the output
        assert type(event).__name__ == "TriggerEvent"
        return
    assert isinstance(event, TaskFailedEvent)
    assert f"VBrain job {job_id} produced an output of " in logged(caplog, capsys)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        pytest.param({"a": 2}, "failed", id="failed-job"),
        pytest.param({"a": 2, "b": 3}, "succeeded", id="output-too-large"),
    ],
)
async def test_without_end_failed_task_a_failure_resumes_the_task_on_a_worker(
    job: Any, params: dict, status: str
) -> None:
    repository_id, hook = job
    job_id = hook.execute_job(repository_id, params)
    event = await the_event(ending(job_id, repository_id, max_result_bytes=5))
    assert type(event).__name__ == "TriggerEvent"
    assert event.payload["status"] == status  # the worker raises the error, or retries the task


async def test_a_deadline_always_resumes_the_task_on_a_worker(job: Any) -> None:
    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 1, "b": 1}, {"emulator_run_seconds": 60})
    trigger = ending(job_id, repository_id, end_failed_task=True)
    trigger.end_time = time.time() + 0.2
    event = await the_event(trigger)
    assert type(event).__name__ == "TriggerEvent"
    assert event.payload["status"] == "timeout"  # the sensor times out, or skips under soft_fail


@pytest.mark.parametrize("fetch_result", [True, False], ids=["output-wanted", "output-unwanted"])
async def test_an_end_state_result_refuses_fails_the_task_here_naming_it(
    job: Any,
    vbrain_conn: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    fetch_result: bool,
) -> None:
    from airflow.triggers.base import TaskFailedEvent

    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 2, "b": 3})
    vbrain_conn.inject_fault(200, count=100, method="GET", path=STATUS_PATH, body={"job_status": "cancelled"})
    vbrain_conn.inject_fault(
        500, count=100, method="GET", path=r"/result$", body={"error": "Job was cancelled"}
    )
    with caplog.at_level(logging.INFO):
        event = await the_event(
            ending(job_id, repository_id, end_failed_task=True, fetch_result=fetch_result)
        )
    if fetch_result and not end_event_xcoms_intact():  # Airflow 3 outside a triggerer: a worker judges
        assert event.payload["job_status"] == "cancelled"
        return
    assert isinstance(event, TaskFailedEvent)
    text = logged(caplog, capsys)
    assert f"VBrain job {job_id} in repository {repository_id} ended cancelled" in text
    assert "/result did not confirm it" in text


async def test_an_end_state_result_confirms_ends_the_task_here(job: Any, vbrain_conn: Any) -> None:
    from airflow.triggers.base import TaskSuccessEvent

    repository_id, hook = job
    job_id = hook.execute_job(repository_id, {"a": 2, "b": 3})
    hook.wait_for_job(job_id, repository_id, poll_interval=0.05)  # over, so /result has its output
    vbrain_conn.clear_requests()
    vbrain_conn.inject_fault(200, count=100, method="GET", path=STATUS_PATH, body={"job_status": "completed"})
    event = await the_event(ending(job_id, repository_id, fetch_result=False))
    assert isinstance(event, TaskSuccessEvent)
    assert not event.xcoms
    assert [r["status"] for r in vbrain_conn.requests() if r["path"].endswith("/result")] == [200]
