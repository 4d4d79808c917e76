"""The example DAGs, which the docs include, run end to end against the emulator."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import state, xcom

EXAMPLES = sorted(p.stem for p in (Path(__file__).parents[2] / "example_dags").glob("example_*.py"))


def test_every_example_loads_without_import_errors(dag_bag: Any) -> None:
    assert EXAMPLES == ["example_vbrain_files", "example_vbrain_mapped", "example_vbrain_tutorial"]
    for dag_id in EXAMPLES:
        assert dag_bag.get_dag(dag_id) is not None, dag_id


def test_tutorial(run_dag: Any, vbrain_conn: Any) -> None:
    dag_run, states, printed = run_dag("example_vbrain_tutorial")
    assert state(dag_run) == "success", states
    assert xcom(dag_run, "wait_for_job") == {"value": 200}
    assert "VBrain result: {'value': 200}" in printed
    assert xcom_keys(dag_run, "report") == ["return_value"]  # not one more per key of the dict
    assert states["delete_repository"] == "success"
    assert vbrain_conn.jobs() == []  # the repository and its job were deleted


def test_files(run_dag: Any, vbrain_conn: Any, tmp_path: Path) -> None:
    dag_run, states, _ = run_dag("example_vbrain_files", output_location=f"{tmp_path}/out/")
    assert state(dag_run) == "success", states
    (written,) = (tmp_path / "out").glob("*-output.zip")
    with zipfile.ZipFile(written) as archive:
        assert {"summary.json", "summary.csv"} <= set(archive.namelist())
    assert xcom(dag_run, "summarise_sales", key="result")["rows"] == 6


@pytest.mark.parametrize("scheme", ["file"])
def test_files_to_an_object_storage_url(run_dag: Any, vbrain_conn: Any, tmp_path: Path, scheme: str) -> None:
    dag_run, states, _ = run_dag("example_vbrain_files", output_location=f"{scheme}://{tmp_path}/")
    assert state(dag_run) == "success", states
    assert len(list(tmp_path.glob("*-output.zip"))) == 1


def test_mapped(run_dag: Any, vbrain_conn: Any) -> None:
    dag_run, states, _ = run_dag("example_vbrain_mapped")
    assert state(dag_run) == "success", states
    assert xcom(dag_run, "compare") == {"values": [200, 250, 240], "best": 250}
    assert xcom_keys(dag_run, "compare") == ["return_value"]


def xcom_keys(dag_run: Any, task_id: str) -> list[str]:
    """The XCom keys a task pushed in a run, as Browse > XComs lists them."""
    try:
        from airflow.models.xcom import XComModel as model
    except ImportError:  # Airflow 2
        from airflow.models.xcom import XCom as model
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(model.key).filter_by(
            dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id
        )
        return sorted(key for (key,) in rows)
