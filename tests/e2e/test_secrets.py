"""The secrets audit. It runs after the chaos and end-to-end folders (pytest's order is by
name), over everything their DAG runs left behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.conftest import PRINTED, key_leaks, proxy_password_leaks


def secret_leaks(text: str) -> bool:
    """The API key, or the password of the proxy some runs went through (tests/e2e/test_proxies.py)."""
    return key_leaks(text) or proxy_password_leaks(text)


def test_the_api_key_was_never_persisted_or_printed(dag_bag: Any) -> None:
    """Task output and exception texts, the emulator's request logs, task log files,
    XComs, rendered template fields, task instances, and trigger kwargs (decrypted);
    nor the proxy's password."""
    import airflow
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import text

    assert PRINTED, "run the folder whole: the audit reads what the runs before it printed"
    leaks = [f"printed: ...{chunk[-200:]}" for chunk in PRINTED if secret_leaks(chunk)]
    logs = Path(os.environ["AIRFLOW_HOME"], "logs")
    for path in logs.rglob("*") if logs.exists() else ():
        if path.is_file() and secret_leaks(path.read_text(errors="replace")):
            leaks.append(f"log file {path}")
    with create_session() as session:
        for table in ("xcom", "rendered_task_instance_fields", "task_instance", "dag_run"):
            for row in session.execute(text(f"SELECT * FROM {table}")).fetchall():
                if secret_leaks(" ".join(str(value) for value in row)):
                    leaks.append(f"{table}: {row}")
        triggers = session.query(Trigger).all()
        leaks += [f"trigger {t.id}: {t.kwargs}" for t in triggers if secret_leaks(repr(t.kwargs))]
    assert not leaks
    if int(airflow.__version__.split(".")[0]) >= 3:  # Airflow 2's dag.test() leaves no trigger rows
        assert triggers, "the deferrable runs left trigger rows to audit"


def test_the_audit_sees_every_spelling_of_a_leak() -> None:
    import base64
    import json
    from urllib.parse import quote

    from tests.conftest import API_KEY, PROXY_PASSWORD, PROXY_USER

    for leak in (API_KEY, json.dumps({"k": API_KEY}), repr([API_KEY]), quote(API_KEY), f"x={API_KEY[-14:]}"):
        assert key_leaks(leak), leak
    assert not key_leaks("emulator-key and every other string")
    basic = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
    for leak in (
        PROXY_PASSWORD,
        quote(PROXY_PASSWORD, safe=""),
        json.dumps([PROXY_PASSWORD]),
        f"Basic {basic}",
    ):
        assert proxy_password_leaks(leak), leak
    assert not proxy_password_leaks("http://vbrain-proxy:***@127.0.0.1:3128 and every other string")
