"""Our DAGs run end to end with ``dag.test()`` against the emulator, over real HTTP."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import connection_json, state, xcom

STATUS_PATH = r"^/api/v1/job/[^/]+$"
#: Airflow 3.0's dag.test() hands a sensor in reschedule mode the date of its first poke as a
#: string (the in-process runner skips the validation the worker's socket does), so from the
#: second poke on the sensor fails with a TypeError inside Airflow. Fixed in 3.1.
RESCHEDULE = pytest.param(
    "reschedule",
    marks=pytest.mark.skipif(
        version("apache-airflow").startswith("3.0."),
        reason="Airflow 3.0's dag.test() breaks the second poke of any sensor in reschedule mode",
    ),
)
MODES = ["deferrable", "poke", RESCHEDULE]


@pytest.mark.parametrize("mode", MODES)
def test_tutorial_with_the_sensor(
    run_dag: Any, vbrain_conn: Any, inline_triggers: list[Any], mode: str
) -> None:
    # The job runs until its status has been asked twice, however slow the machine: the
    # sensor always finds it running, so each mode really waits.
    with job_finished_after_polls(vbrain_conn, polls=2):
        dag_run, states, _ = run_dag(f"e2e_sensor_{mode}", job_metadata={"emulator_run_seconds": 600})
    assert state(dag_run) == "success", states
    assert xcom(dag_run, "wait") == {"value": 200}
    assert xcom(dag_run, "collect") == {"value": 200}
    (job,) = vbrain_conn.jobs()
    assert job["params"] == {"a": 10, "b": 20}
    tag = job["metadata"]["airflow"]
    assert {key: tag[key] for key in ("dag_id", "task_id", "run_id", "map_index")} == {
        "dag_id": f"e2e_sensor_{mode}",
        "task_id": "execute",
        "run_id": dag_run.run_id,
        "map_index": -1,
    }
    assert len(tag["request"]) == 64  # the request's fingerprint
    # The sensor saw the job running, then finished, then fetched its output.
    answers = [(r["path"], r["status"]) for r in vbrain_conn.requests() if r["method"] == "GET"]
    status, result = f"/api/v1/job/{job['job_id']}", f"/api/v1/job/{job['job_id']}/result"
    assert answers.count((status, 202)) >= 2, answers
    assert answers.index((status, 200)) < answers.index((result, 200)), answers
    # Deferrable mode handed the wait to the trigger; the other modes never deferred.
    waited_on = [(type(t).__name__, t.job_id) for t in inline_triggers]
    assert waited_on == ([("VBrainJobTrigger", job["job_id"])] if mode == "deferrable" else [])


@pytest.mark.parametrize("mode", ["deferrable", "blocking"])
def test_execute_and_wait_pushes_the_result(run_dag: Any, vbrain_conn: Any, mode: str) -> None:
    dag_run, states, printed = run_dag(f"e2e_execute_wait_{mode}", job_params={"a": 6, "b": 7})
    assert state(dag_run) == "success", states
    (job,) = vbrain_conn.jobs()
    assert xcom(dag_run, "execute") == job["job_id"]
    assert xcom(dag_run, "execute", key="result") == {"value": 42}
    assert f"/api/v1/job/{job['job_id']}" in printed


@pytest.mark.parametrize(
    ("dag_id", "failed_task"),
    [
        ("e2e_sensor_deferrable", "wait"),
        ("e2e_sensor_poke", "wait"),
        ("e2e_execute_wait_deferrable", "execute"),
        ("e2e_execute_wait_blocking", "execute"),
    ],
)
def test_a_failed_job_fails_the_task_and_quotes_its_logs(
    run_dag: Any, vbrain_conn: Any, dag_id: str, failed_task: str
) -> None:
    dag_run, states, printed = run_dag(dag_id, job_params={"a": 10})  # the Tutorial needs b
    assert state(dag_run) == "failed"
    assert states[failed_task] == "failed"
    (job,) = vbrain_conn.jobs()
    assert f"VBrain job {job['job_id']} in repository {job['repository_id']} ended failed" in printed
    assert "end of its logs" in printed
    assert "--- job.log ---" in printed
    if failed_task == "execute":  # the id is there for clean-up tasks although the task failed
        assert xcom(dag_run, "execute", key="job_id") == job["job_id"]


@pytest.mark.parametrize("mode", MODES)
def test_soft_fail_does_not_hide_a_failed_job(run_dag: Any, mode: str) -> None:
    _, states, printed = run_dag(f"e2e_sensor_failed_job_soft_{mode}")
    assert states["wait"] == "failed", states
    assert "ended failed" in printed


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("soft_fail", [False, True], ids=["timeout-fails", "soft-fail-skips"])
def test_sensor_timeout(run_dag: Any, mode: str, soft_fail: bool) -> None:
    dag_id = f"e2e_sensor_timeout_{mode}{'_soft' if soft_fail else ''}"
    dag_run, states, printed = run_dag(dag_id)
    assert states["wait"] == ("skipped" if soft_fail else "failed"), states
    assert state(dag_run) == ("success" if soft_fail else "failed")
    if not soft_fail:
        assert "AirflowSensorTimeout" in printed or "timed out" in printed.lower() or "deadline" in printed


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param([{"status": 503, "count": 3}], id="503-burst"),
        pytest.param([{"status": 500, "count": 3}], id="500-burst-on-polls"),
        pytest.param([{"status": 429, "count": 2, "retry_after": "1"}], id="429-retry-after"),
        pytest.param([{"drop": True, "count": 3}], id="dropped-connections"),
        pytest.param([{"status": 502, "html": True, "count": 2}], id="html-502"),
    ],
)
@pytest.mark.parametrize("mode", ["deferrable", "poke"])
def test_faults_while_polling_do_not_fail_the_dag(
    run_dag: Any, vbrain_conn: Any, mode: str, faults: list[dict[str, Any]]
) -> None:
    for fault in faults:
        vbrain_conn.inject_fault(method="GET", path=STATUS_PATH, **fault)
    dag_run, states, _ = run_dag(f"e2e_sensor_{mode}")
    assert state(dag_run) == "success", states
    assert xcom(dag_run, "wait") == {"value": 200}
    assert len(vbrain_conn.jobs()) == 1
    assert any(r["fault"] for r in vbrain_conn.requests())


def test_a_retried_execute_task_reattaches_to_its_job(run_dag: Any, vbrain_conn: Any) -> None:
    # The first try submits, then its status poll is refused for good: the try fails after submitting.
    vbrain_conn.inject_fault(403, method="GET", path=STATUS_PATH, count=1)
    dag_run, states, printed = run_dag("e2e_reattach_blocking")
    assert state(dag_run) == "success", states
    (job,) = vbrain_conn.jobs()
    assert f"Reattaching to job {job['job_id']}" in printed
    assert xcom(dag_run, "execute", key="result") == {"value": 200}
    assert len([r for r in vbrain_conn.requests() if r["path"] == "/api/v1/job/execute"]) == 1


def test_files_upload_and_download(run_dag: Any, vbrain_conn: Any, tmp_path: Path) -> None:
    sales = tmp_path / "sales.csv"
    sales.write_text("store,units\nnorth,3\nsouth,5\n")
    (tmp_path / "out").mkdir()
    dag_run, states, _ = run_dag(
        "e2e_files",
        input_file=str(sales),
        output_folder=str(tmp_path / "out"),
        logs_url=f"file://{tmp_path}/logs.zip",
    )
    assert state(dag_run) == "success", states
    (job,) = vbrain_conn.jobs()
    output = Path(xcom(dag_run, "download_output"))
    assert output == tmp_path / "out" / f"{job['job_id']}-output.zip"
    with zipfile.ZipFile(output) as zf:
        assert "summary.json" in zf.namelist()
    with zipfile.ZipFile(tmp_path / "logs.zip") as zf:
        assert zf.namelist()
    assert xcom(dag_run, "execute", key="result")["rows"] == 2


def test_cleanup_operators_tolerate_what_is_already_gone(run_dag: Any, vbrain_conn: Any) -> None:
    dag_run, states, printed = run_dag("e2e_cleanup")
    assert state(dag_run) == "success", states
    assert "was already gone" in printed
    assert vbrain_conn.jobs() == []


@contextlib.contextmanager
def job_finished_after_polls(emulator: Any, polls: int) -> Iterator[None]:
    """Finish the (only) job once its status has answered "still running" ``polls`` times.

    The DAG starts the job with a long emulated run time; this ends it as soon as the
    sensor has seen it running, instead of after a fixed time that a loaded machine may
    outlast or fall short of. After a minute it finishes the job anyway, so a sensor
    that never polls fails the test's assertions instead of hanging it.
    """
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not done.wait(0.05):
            for job in emulator.jobs():
                path = f"/api/v1/job/{job['job_id']}"
                seen = [r for r in emulator.requests() if r["path"] == path and r["status"] == 202]
                if len(seen) >= polls or time.monotonic() > deadline:
                    emulator.finish_job(job["job_id"])
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def test_connection_id_and_application_are_templated_on_every_task(
    run_dag: Any, vbrain_conn: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Only the rendered values can work: the default connection is gone, the chosen one names no application.
    monkeypatch.delenv("AIRFLOW_CONN_VBRAIN_DEFAULT")
    conn = json.loads(connection_json(vbrain_conn.url))
    del conn["extra"]["application_id"]
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_CHOSEN", json.dumps(conn))
    dag_run, states, _ = run_dag(
        "e2e_templated_connection", conn_id="vbrain_chosen", application="Tutorial", logs=str(tmp_path) + "/"
    )
    assert state(dag_run) == "success", states
    assert xcom(dag_run, "wait") == {"value": 200}
    requests = vbrain_conn.requests()
    assert {r["application_id"] for r in requests} == {"Tutorial"}
    paths = [(r["method"], r["path"].split("/")[3]) for r in requests]
    assert ("DELETE", "repository") in paths
    assert ("DELETE", "job") in paths
