"""The secrets audit. It runs after the chaos and end-to-end folders (pytest's order is by
name), over everything their DAG runs left behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.conftest import PRINTED, key_leaks


def test_the_api_key_was_never_persisted_or_printed(dag_bag: Any) -> None:
    """Task output and exception texts, the emulator's request logs, task log files,
    XComs, rendered template fields, task instances, and trigger kwargs (decrypted)."""
    import airflow
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import text

    assert PRINTED, "run the folder whole: the audit reads what the runs before it printed"
    leaks = [f"printed: ...{chunk[-200:]}" for chunk in PRINTED if key_leaks(chunk)]
    logs = Path(os.environ["AIRFLOW_HOME"], "logs")
    for path in logs.rglob("*") if logs.exists() else ():
        if path.is_file() and key_leaks(path.read_text(errors="replace")):
            leaks.append(f"log file {path}")
    with create_session() as session:
        for table in ("xcom", "rendered_task_instance_fields", "task_instance", "dag_run"):
            for row in session.execute(text(f"SELECT * FROM {table}")).fetchall():
                if key_leaks(" ".join(str(value) for value in row)):
                    leaks.append(f"{table}: {row}")
        triggers = session.query(Trigger).all()
        leaks += [f"trigger {t.id}: {t.kwargs}" for t in triggers if key_leaks(repr(t.kwargs))]
    assert not leaks
    if int(airflow.__version__.split(".")[0]) >= 3:  # Airflow 2's dag.test() leaves no trigger rows
        assert triggers, "the deferrable runs left trigger rows to audit"


def test_the_audit_sees_every_spelling_of_a_leak() -> None:
    import json
    from urllib.parse import quote

    from tests.conftest import API_KEY

    for leak in (API_KEY, json.dumps({"k": API_KEY}), repr([API_KEY]), quote(API_KEY), f"x={API_KEY[-14:]}"):
        assert key_leaks(leak), leak
    assert not key_leaks("emulator-key and every other string")
