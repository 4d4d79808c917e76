"""How a task ends with its job, end to end: the output read only when somebody asked for it, and
success only on the state the reference documents as success (or on ``/result``'s word)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import state, xcom

STATUS_PATH = r"^/api/v1/job/[^/]+$"
RESULT_PATH = r"^/api/v1/job/[^/]+/result$"
#: Each DAG that waits on a job, and the task that waits.
WAITING_DAGS = [
    ("e2e_execute_wait_deferrable", "execute"),
    ("e2e_execute_wait_blocking", "execute"),
    ("e2e_execute_nofetch_deferrable", "execute"),
    ("e2e_execute_nofetch_blocking", "execute"),
    ("e2e_sensor_deferrable", "wait"),
    ("e2e_sensor_poke", "wait"),
]


def result_reads(vbrain_conn: Any) -> list[dict[str, Any]]:
    return [r for r in vbrain_conn.requests() if r["path"].endswith("/result")]


@pytest.mark.parametrize("mode", ["deferrable", "blocking"])
@pytest.mark.parametrize("unwanted", ["nofetch", "noxcom"])
def test_an_output_nobody_asked_for_is_never_read(
    run_dag: Any, vbrain_conn: Any, mode: str, unwanted: str
) -> None:
    # max_result_bytes=1: any output read would fail the task, whose job finished.
    dag_run, states, _ = run_dag(f"e2e_execute_{unwanted}_{mode}")
    assert state(dag_run) == "success", states
    (job,) = vbrain_conn.jobs()
    assert job["status"] == "finished"
    assert result_reads(vbrain_conn) == []
    assert xcom(dag_run, "execute", key="result") is None
    if unwanted == "noxcom":  # do_xcom_push=False: nothing of the task's in XCom
        assert xcom(dag_run, "execute") is None
        assert xcom(dag_run, "execute", key="job_id") is None
    else:
        assert xcom(dag_run, "execute") == job["job_id"]


@pytest.mark.parametrize(("dag_id", "task_id"), WAITING_DAGS)
def test_an_end_state_result_does_not_confirm_fails_naming_the_state(
    run_dag: Any, vbrain_conn: Any, dag_id: str, task_id: str
) -> None:
    # A server that ends jobs in a state the reference does not document, and whose /result
    # answers what the reference says it answers for a job that did not succeed.
    vbrain_conn.inject_fault(
        200, count=1000, method="GET", path=STATUS_PATH, body={"job_status": "cancelled"}
    )
    vbrain_conn.inject_fault(
        500, count=1000, method="GET", path=RESULT_PATH, body={"error": "Job was cancelled"}
    )
    dag_run, states, printed = run_dag(dag_id)
    assert states[task_id] == "failed", states
    assert state(dag_run) == "failed"
    (job,) = vbrain_conn.jobs()
    assert f"VBrain job {job['job_id']} in repository {job['repository_id']} ended cancelled" in printed
    assert "/result did not confirm it" in printed
    assert "Job was cancelled" in printed
    assert result_reads(vbrain_conn), "the state was judged without asking /result"


@pytest.mark.parametrize(("dag_id", "task_id"), WAITING_DAGS)
@pytest.mark.parametrize(
    "spelling", [{"job_status": "completed"}, {}], ids=["other-spelling", "no-job_status"]
)
def test_an_end_state_result_confirms_succeeds(
    run_dag: Any, vbrain_conn: Any, dag_id: str, task_id: str, spelling: dict[str, str]
) -> None:
    # The job is over when its status is first read, so that /result has its output.
    vbrain_conn.configure(queue_seconds=0, run_seconds=0)
    vbrain_conn.inject_fault(200, count=1000, method="GET", path=STATUS_PATH, body=spelling)
    dag_run, states, _ = run_dag(dag_id)
    assert state(dag_run) == "success", states
    assert result_reads(vbrain_conn), "the state was judged without asking /result"
    wanted = "nofetch" not in dag_id
    key = "return_value" if task_id == "wait" else "result"
    assert xcom(dag_run, task_id, key=key) == ({"value": 200} if wanted else None)
