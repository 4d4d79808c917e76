"""Our DAGs run end to end with ``dag.test()`` against the emulator, over real HTTP."""

from __future__ import annotations

import copy
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_vbrain._compat import AIRFLOW_V3
from tests.conftest import API_KEY

STATUS_PATH = r"^/api/v1/job/[^/]+$"
#: Everything the runs printed, for the secrets check at the end of the module.
PRINTED: list[str] = []
#: Each DAG's declared param defaults: ``dag.test(run_conf=...)`` keeps a run's conf in the
#: DAG object's params, so every run states all of them.
DEFAULTS: dict[str, dict[str, Any]] = {}


@pytest.fixture
def run_dag(dag_bag: Any, vbrain_conn: Any, capfd: pytest.CaptureFixture[str]) -> Any:
    """Run a DAG by id; return (dag run, task states, everything printed)."""

    def run(dag_id: str, **conf: Any) -> tuple[Any, dict[str, str], str]:
        dag = dag_bag.get_dag(dag_id)
        assert dag is not None, f"no DAG {dag_id}"
        _stream_logs_to_the_capture()
        defaults = DEFAULTS.setdefault(dag_id, copy.deepcopy(dict(dag.params.dump())))
        dag_run = dag.test(run_conf={**copy.deepcopy(defaults), **conf})
        out, err = capfd.readouterr()
        printed = out + err
        PRINTED.append(printed)
        task_states = {ti.task_id: _name(ti.state) for ti in dag_run.get_task_instances()}
        return dag_run, task_states, printed

    return run


def _stream_logs_to_the_capture() -> None:
    """Point logging's stream handlers at this test's stderr.

    Airflow 2 configures its console handlers once, bound to whatever ``sys.stderr``
    was then (an earlier test's capture, closed since), so its task logs would be lost.
    """
    import logging

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if type(handler) is logging.StreamHandler:
                handler.stream = sys.stderr  # not setStream(): it would flush the closed stream


def xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    ids = {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "task_id": task_id, "key": key}
    try:
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2
        from airflow.models.xcom import XCom

        return XCom.get_one(**ids)
    from airflow.utils.session import create_session

    with create_session() as session:
        return XComModel.deserialize_value(session.query(XComModel).filter_by(**ids).one())


def _name(value: Any) -> str:
    return str(getattr(value, "value", value))


def state(dag_run: Any) -> str:
    return _name(dag_run.state)


@pytest.mark.parametrize("mode", ["deferrable", "poke", "reschedule"])
def test_tutorial_with_the_sensor(run_dag: Any, vbrain_conn: Any, mode: str) -> None:
    dag_run, states, printed = run_dag(f"e2e_sensor_{mode}")
    assert state(dag_run) == "success", states
    assert xcom(dag_run, "wait") == {"value": 200}
    assert xcom(dag_run, "collect") == {"value": 200}
    (job,) = vbrain_conn.jobs()
    assert job["params"] == {"a": 10, "b": 20}
    assert job["metadata"]["airflow"] == {
        "dag_id": f"e2e_sensor_{mode}",
        "task_id": "execute",
        "run_id": dag_run.run_id,
        "map_index": -1,
    }
    assert (
        f"VBrain job {job['job_id']} is finished" in printed
        or f"VBrain job {job['job_id']} finished" in printed
    )
    if mode == "deferrable":
        assert "running trigger in line" in printed.lower() or "trigger" in printed.lower()


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


@pytest.mark.parametrize("mode", ["deferrable", "poke", "reschedule"])
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
    dag_run, states, printed = run_dag("e2e_reattach")
    assert state(dag_run) == "success", states
    (job,) = vbrain_conn.jobs()
    assert f"Reattaching to job {job['job_id']}" in printed
    assert xcom(dag_run, "execute", key="result") == {"value": 200}
    assert len([r for r in vbrain_conn.requests() if r["path"] == "/api/v1/job/execute"]) == 1


def test_an_unconfirmed_submit_reattaches_in_the_same_try(run_dag: Any, vbrain_conn: Any) -> None:
    vbrain_conn.inject_fault(500, method="POST", path="/job/execute$", after=True)
    dag_run, states, printed = run_dag("e2e_reattach")
    assert state(dag_run) == "success", states
    assert len(vbrain_conn.jobs()) == 1
    assert "may have created a job" not in printed or "Reattaching" in printed


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


def test_the_api_key_was_never_persisted_or_printed(dag_bag: Any) -> None:
    """After every run above: task output, XComs, trigger rows, rendered fields."""
    from airflow.utils.session import create_session
    from sqlalchemy import text

    assert PRINTED, "run this module whole: the check reads what the runs above printed"
    leaks = [chunk for chunk in PRINTED if API_KEY in chunk]
    tables = ["xcom", "trigger", "rendered_task_instance_fields", "task_instance"]
    with create_session() as session:
        for table in tables:
            rows = session.execute(text(f"SELECT * FROM {table}")).fetchall()
            leaks += [f"{table}: {row}" for row in rows if API_KEY in json.dumps([str(v) for v in row])]
        trigger_rows = session.execute(text("SELECT kwargs FROM trigger")).fetchall()
    assert not leaks
    if AIRFLOW_V3:
        assert trigger_rows, "deferrable runs left trigger rows to inspect"
