"""The secrets audit: runs last in the end-to-end folder, over everything the runs before it left."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_vbrain._compat import AIRFLOW_V3
from tests.conftest import API_KEY, PRINTED


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
