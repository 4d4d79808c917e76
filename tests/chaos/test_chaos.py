"""The tutorial DAG under the faults real deployments see.

Each case injects faults into the emulator, runs the tutorial DAG (deferrable
and poke), and expects success with exactly one job and the right result. The
test ids say the fault and the expected outcome, so a failure names both.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor
from airflow_provider_vbrain.triggers.vbrain import VBrainJobTrigger
from tests.conftest import connection_json, state, xcom

STATUS = r"^/api/v1/job/[^/]+$"
EXECUTE = r"^/api/v1/job/execute$"


@pytest.fixture
def chaos_conn(vbrain_conn: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Retries as users have them, only faster: Retry-After up to 5 s is honoured; 2 s request timeout."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_VBRAIN_DEFAULT",
        connection_json(
            vbrain_conn.url, extra={"retry_base_delay": 0.05, "retry_max_delay": 5, "timeout": 2}
        ),
    )
    return vbrain_conn


FAULTS = [
    pytest.param([{"status": 503, "count": 4}], id="503-burst:succeeds-one-job"),
    pytest.param([{"status": 500, "count": 3, "method": "GET"}], id="500-burst-on-gets:succeeds-one-job"),
    pytest.param(
        [{"status": 429, "count": 1, "method": "GET", "path": STATUS, "retry_after": "1"}],
        id="429-retry-after:succeeds-after-waiting",
    ),
    pytest.param([{"status": 502, "html": True, "count": 3}], id="html-502:succeeds-one-job"),
    pytest.param([{"delay": 1.5, "count": 4}], id="latency-near-timeout:succeeds-one-job"),
    pytest.param([{"drop": True, "count": 3, "method": "GET", "path": STATUS}], id="dropped-polls:succeeds"),
    pytest.param(
        [{"drop": True, "count": 1, "method": "POST", "path": EXECUTE}],
        id="execute-dropped-before-processing:retry-submits-one-job",
    ),
    pytest.param(
        [{"status": 500, "count": 1, "method": "POST", "path": EXECUTE, "after": True}],
        id="execute-500-after-processing:reattaches-one-job",
    ),
]


@pytest.mark.parametrize("faults", FAULTS)
@pytest.mark.parametrize("mode", ["deferrable", "poke"])
def test_tutorial_survives(run_dag: Any, chaos_conn: Any, mode: str, faults: list[dict[str, Any]]) -> None:
    for fault in faults:
        chaos_conn.inject_fault(**fault)
    dag_run, states, printed = run_dag(f"e2e_sensor_{mode}")
    assert state(dag_run) == "success", states
    assert xcom(dag_run, "collect") == {"value": 200}
    (job,) = chaos_conn.jobs()
    if faults[0].get("after"):
        assert f"The job was created: reattaching to {job['job_id']}" in printed
    elif faults[0].get("path") == EXECUTE:  # the try that lost the answer fails; the retry submits
        assert "no job tagged with this task appeared within 1 s" in printed
        assert "No job of this task exists: creating one" in printed
    log = chaos_conn.requests()
    assert any(r["fault"] for r in log), "the fault never fired"
    if faults[0].get("retry_after"):
        limited = next(i for i, r in enumerate(log) if r["status"] == 429)
        retry = next(r for r in log[limited + 1 :] if r["path"] == log[limited]["path"])
        assert retry["time"] - log[limited]["time"] >= 0.95, "Retry-After was not honoured"


def test_worker_lost_after_submit_then_retried_reattaches(run_dag: Any, chaos_conn: Any) -> None:
    """The first try submits and then dies (here: its polls are refused); the retry finds the job."""
    chaos_conn.inject_fault(403, count=1, method="GET", path=STATUS)
    dag_run, states, printed = run_dag("e2e_reattach_blocking")
    assert state(dag_run) == "success", states
    (job,) = chaos_conn.jobs()
    assert f"Reattaching to job {job['job_id']}" in printed
    assert len([r for r in chaos_conn.requests() if r["method"] == "POST" and "execute" in r["path"]]) == 1


def test_triggerer_restart_mid_wait_resumes_from_serialize(chaos_conn: Any) -> None:
    """The sensor defers; the triggerer stops mid-wait; a new one rebuilds the trigger and finishes.

    Each triggerer is its own event loop (``asyncio.run``), as separate processes would be.
    """
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow 2
        from airflow.exceptions import TaskDeferred

    from airflow_provider_vbrain.hooks.vbrain import VBrainHook

    hook = VBrainHook()
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, {"a": 10, "b": 20}, {"emulator_run_seconds": 60})
    sensor = VBrainJobSensor(
        task_id="wait", job_id=job_id, repository_id=repository_id, deferrable=True, poke_interval=0.05
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"ti": SimpleNamespace(xcom_push=lambda **_: None)})
    path, kwargs = deferred.value.trigger.serialize()
    assert path == "airflow_provider_vbrain.triggers.vbrain.VBrainJobTrigger"

    async def first_event(timeout: float) -> Any:
        async def run() -> Any:
            async for event in VBrainJobTrigger(**kwargs).run():
                return event.payload

        return await asyncio.wait_for(run(), timeout)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(first_event(0.3))  # the first triggerer dies mid-wait
    chaos_conn.finish_job(job_id)
    event = asyncio.run(first_event(10))  # a new triggerer, rebuilt from serialize()
    assert event["status"] == "succeeded"
    assert kwargs["end_time"] > time.time()  # the deadline survived as an absolute time
    assert sensor.execute_complete({}, event) == {"value": 200}
