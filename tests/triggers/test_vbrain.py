"""VBrainJobTrigger on a real event loop against the emulator."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_provider_vbrain._async_transport import close_shared_session
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from airflow_provider_vbrain.jobs import MAX_CONSECUTIVE_POLL_FAILURES
from airflow_provider_vbrain.triggers.vbrain import VBrainJobTrigger
from tests.conftest import API_KEY

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


async def first_event(trigger: VBrainJobTrigger, timeout: float = 20) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return await asyncio.wait_for(first(), timeout)


def test_serialize_round_trips_every_argument_and_no_secret() -> None:
    trigger = VBrainJobTrigger("job-1", "repo-1", "vbrain_prod", "Tutorial", 2.5, 1_800_000_000.0, "started")
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
