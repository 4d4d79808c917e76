"""The "VBrain job" link, read after a real ``dag.test()`` run the way Airflow's UI reads it.

Airflow 3: through the API server's extra-links route (which reads what the task stored when it
ended). Airflow 2: from the DAG as the webserver rebuilds it from its serialized form, which only
works for link classes registered in the provider info.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from airflow_provider_vbrain.exceptions import VBrainConfigError
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from tests.conftest import connection_json, key_leaks, state

LINK = "VBrain job"


def extra_links(dag_run: Any, task_id: str) -> dict[str, str | None]:
    """The task's extra links as Airflow's UI gets them."""
    try:
        from airflow.api_fastapi.app import create_app
    except ImportError:  # Airflow 2
        return _airflow_2_links(dag_run, task_id)
    from fastapi.testclient import TestClient

    _store_the_dag_as_a_dag_processor_would(dag_run.dag_id)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "test-only-" + "s" * 64)
        client = TestClient(create_app())
        answer = client.get(
            f"/api/v2/dags/{dag_run.dag_id}/dagRuns/{dag_run.run_id}/taskInstances/{task_id}/links"
        )
    assert answer.status_code == 200, answer.text
    return answer.json()["extra_links"]


def _store_the_dag_as_a_dag_processor_would(dag_id: str) -> None:
    """Airflow 3.1+'s ``dag.test()`` stores the serialized DAG the API server reads; 3.0's does not."""
    from airflow.models import DagBag
    from airflow.models.serialized_dag import SerializedDagModel

    if SerializedDagModel.get(dag_id) is not None:
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    DagBag(read_dags_from_db=False, include_examples=False).sync_to_db("dags-folder", None)


def _airflow_2_links(dag_run: Any, task_id: str) -> dict[str, str | None]:
    from airflow.models import DagBag
    from airflow.serialization.serialized_objects import SerializedDAG

    dag = DagBag(read_dags_from_db=False, include_examples=False).get_dag(dag_run.dag_id)
    # What the webserver holds: the DAG rebuilt from its serialized form.
    task = SerializedDAG.from_dict(SerializedDAG.to_dict(dag)).get_task(task_id)
    ti = dag_run.get_task_instance(task_id)
    return {name: task.get_extra_links(ti, name) or None for name in task.extra_links}


@pytest.mark.parametrize("mode", ["deferrable", "reschedule"])
def test_the_execute_task_and_the_sensor_link_to_the_job(
    run_dag: Any, vbrain_conn: Any, job_page: str, mode: str
) -> None:
    dag_run, states, _ = run_dag(f"e2e_sensor_{mode}")
    assert state(dag_run) == "success", states
    (job,) = vbrain_conn.jobs()
    expected = f"{vbrain_conn.url}/ui/jobs/{job['job_id']}?repository={job['repository_id']}&org=acme"
    assert extra_links(dag_run, "execute") == {LINK: expected}
    assert extra_links(dag_run, "wait") == {LINK: expected}
    assert not key_leaks(expected)


def test_a_failed_job_still_links_to_its_page(run_dag: Any, vbrain_conn: Any, job_page: str) -> None:
    dag_run, states, _ = run_dag("e2e_execute_wait_deferrable", job_params={"a": 10})  # Tutorial needs b
    assert states["execute"] == "failed"
    (job,) = vbrain_conn.jobs()
    assert extra_links(dag_run, "execute")[LINK].startswith(f"{vbrain_conn.url}/ui/jobs/{job['job_id']}?")


def test_without_a_template_the_link_is_empty_and_nothing_fails(run_dag: Any) -> None:
    dag_run, states, printed = run_dag("e2e_sensor_deferrable")
    assert state(dag_run) == "success", states
    assert extra_links(dag_run, "execute") == {LINK: None}
    assert extra_links(dag_run, "wait") == {LINK: None}
    assert "VBrain job page" not in printed


def test_a_bad_template_fails_the_task_naming_the_field(
    run_dag: Any, vbrain_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = {"job_url_template": vbrain_conn.url + "/ui/jobs/{job}"}
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(vbrain_conn.url, extra=extra))
    _, states, _ = run_dag("e2e_sensor_deferrable")
    assert states["create"] == "failed", states
    assert vbrain_conn.requests() == []
    # What the task failed with (read here, not from the task log: Airflow 3.0's dag.test() prints
    # task logs through a structlog that the capture does not always see).
    problem = "VBrain connection 'vbrain_default': extra job_url_template has an unknown placeholder {job}"
    with pytest.raises(VBrainConfigError, match=re.escape(problem)):
        VBrainHook().settings  # noqa: B018 (reading the connection is the check)
