"""The example DAGs, which the docs include, run end to end against the emulator."""

from __future__ import annotations

import logging
import re
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


#: Warnings a run prints that are neither the provider's nor caused by it: Airflow's or the test
#: environment's. Anything else at WARNING or above fails a run that went well.
NOT_OURS = {
    "the test Airflow has no Fernet key": "empty cryptography key - values will not be stored encrypted",
    # Airflow 3 masks every extra of a connection it reads; the test connection's client_id is "ops".
    "a connection extra shorter than Airflow masks": "Skipping masking for a secret as it's too short",
    "the OpenLineage client, where numpy is not installed": "trying to import numpy module",
    "the OpenLineage provider of 2.10 imports the client's old modules": (
        "This module is deprecated. Please use `openlineage.client"
    ),
    # Airflow 3.0's BaseHook.get_connection (the only BaseHook there) warns inside a task or trigger.
    "Airflow 3.0's own BaseHook": "Using Connection.get_connection_from_secrets from `airflow.models`",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: A line logged at WARNING or above, in the formats a run prints: structlog's ``[warning  ]``,
#: Airflow 2's ``{file.py:12} WARNING -``, a level cut to five letters, or a Python warning.
_LOUD = re.compile(
    r"\[\s*(warning|error|critical|exception)\s*\]|\b(WARNING|WARNI|ERROR|CRITICAL)\b\s*[-\[]|\w+Warning: "
)


def loud_lines(printed: str, records: list[logging.LogRecord]) -> list[str]:
    """What a run printed or logged at WARNING or above, but for :data:`NOT_OURS`."""
    lines = [_ANSI.sub("", line) for line in printed.splitlines()]
    lines = [line for line in lines if _LOUD.search(line)]
    lines += [f"{r.levelname} {r.name}: {r.getMessage()}" for r in records if r.levelno >= logging.WARNING]
    return [line for line in lines if not any(known in line for known in NOT_OURS.values())]


@pytest.fixture
def quiet_run(run_dag: Any, caplog: pytest.LogCaptureFixture) -> Any:
    """``run_dag`` that also checks a successful run logged no warning or error of ours."""

    def run(dag_id: str, **conf: Any) -> tuple[Any, dict[str, str], str]:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            dag_run, states, printed = run_dag(dag_id, **conf)
        if state(dag_run) == "success":
            assert loud_lines(printed, caplog.records) == [], f"{dag_id} went well but logged these"
        return dag_run, states, printed

    return run


def test_the_check_for_warnings_sees_each_format() -> None:
    printed = "\n".join(
        [
            "2026-12-07T04:25:45Z [error    ] XCom not found [airflow.sdk.api.client] key=vbrain_job_url",
            "\x1b[2m2026-12-07\x1b[0m [\x1b[33m\x1b[1mwarning  \x1b[0m] No XCom value found",
            "[2026-12-07T04:28:16.624+0000] {taskinstance.py:12} ERROR - Task failed",
            "WARNI [some.module] a warning cut short",
            "/x.py:1 UserWarning: careful",
            "[2026-12-07T04:28:09.243+0000] {crypto.py:82} WARNING - empty cryptography key - values will "
            "not be stored encrypted.",
            "2026-12-07T04:25:45Z [info     ] VBrain job 1 finished: no ERROR here",
        ]
    )
    record = logging.LogRecord("ours", logging.WARNING, __file__, 1, "a record", None, None)
    assert len(loud_lines(printed, [record])) == 6


def test_tutorial(quiet_run: Any, vbrain_conn: Any) -> None:
    dag_run, states, printed = quiet_run("example_vbrain_tutorial")
    assert state(dag_run) == "success", states
    assert xcom(dag_run, "wait_for_job") == {"value": 200}
    assert "VBrain result: {'value': 200}" in printed
    assert xcom_keys(dag_run, "report") == ["return_value"]  # not one more per key of the dict
    assert states["delete_repository"] == "success"
    assert vbrain_conn.jobs() == []  # the repository and its job were deleted


def test_files(quiet_run: Any, vbrain_conn: Any, tmp_path: Path) -> None:
    dag_run, states, _ = quiet_run("example_vbrain_files", output_location=f"{tmp_path}/out/")
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


def test_mapped(quiet_run: Any, vbrain_conn: Any) -> None:
    dag_run, states, _ = quiet_run("example_vbrain_mapped")
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
