"""The tutorial DAG with the sensor, run with ``dag.test()`` through a real forward proxy (proxy.py):
the environment's ``HTTP_PROXY`` (and ``NO_PROXY`` past it), and the connection's ``proxy`` extra
with credentials that never show."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tests.conftest import connection_json, key_leaks, proxy_password_leaks, state, xcom
from tests.e2e.test_dags import job_finished_after_polls

MODES = ["deferrable", "poke"]


def run_tutorial(run_dag: Any, emulator: Any, mode: str) -> tuple[Any, str]:
    """The tutorial with the sensor in ``mode``, its job running until the sensor saw it running twice."""
    with job_finished_after_polls(emulator, polls=2):
        dag_run, states, printed = run_dag(f"e2e_sensor_{mode}", job_metadata={"emulator_run_seconds": 600})
    assert state(dag_run) == "success", states
    assert xcom(dag_run, "collect") == {"value": 200}
    return dag_run, printed


def served(emulator: Any) -> Counter[tuple[str, str]]:
    """What the emulator served: method and path of each API request."""
    return Counter((r["method"], r["path"]) for r in emulator.requests())


def forwarded(proxy: Any, emulator: Any, expected: int) -> Counter[tuple[str, str]]:
    """What the proxy forwarded, as :func:`served` counts it; every request went to the emulator."""
    seen = proxy.forwarded(settle=10, at_least=expected)
    target = emulator.url.split("://", 1)[1]
    elsewhere = [f for f in seen if f.destination != target]
    assert not elsewhere, f"the proxy forwarded requests elsewhere (Airflow's own?): {elsewhere}"
    return Counter((f.method, (f.path or "").split("?")[0]) for f in seen)


@pytest.mark.parametrize("mode", MODES)
def test_every_request_goes_through_the_environments_proxy(
    run_dag: Any, vbrain_conn: Any, forward_proxy: Any, proxy_env: Any, inline_triggers: list[Any], mode: str
) -> None:
    proxy_env(HTTP_PROXY=forward_proxy.url)
    run_tutorial(run_dag, vbrain_conn, mode)
    answered = served(vbrain_conn)
    (job,) = vbrain_conn.jobs()
    assert answered["GET", f"/api/v1/job/{job['job_id']}"] >= 3, answered  # the sensor's (or trigger's) polls
    assert forwarded(forward_proxy, vbrain_conn, sum(answered.values())) == answered
    assert len(inline_triggers) == (1 if mode == "deferrable" else 0)


@pytest.mark.parametrize("mode", MODES)
def test_no_proxy_covering_the_host_bypasses_the_environments_proxy(
    run_dag: Any, vbrain_conn: Any, forward_proxy: Any, proxy_env: Any, mode: str
) -> None:
    proxy_env(HTTP_PROXY=forward_proxy.url, HTTPS_PROXY=forward_proxy.url, NO_PROXY="localhost,127.0.0.1")
    run_tutorial(run_dag, vbrain_conn, mode)
    assert served(vbrain_conn)
    assert forward_proxy.forwarded(settle=0.5) == []


def test_the_proxy_extra_with_credentials_never_shows_them(
    run_dag: Any,
    vbrain_conn: Any,
    password_proxy: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    inline_triggers: list[Any],
) -> None:
    extra = {"retry_base_delay": 0.01, "retry_max_delay": 0.05, "proxy": password_proxy.url}
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(vbrain_conn.url, extra=extra))
    dag_run, printed = run_tutorial(run_dag, vbrain_conn, "deferrable")
    answered = served(vbrain_conn)
    assert forwarded(password_proxy, vbrain_conn, sum(answered.values())) == answered
    assert password_proxy.refusals() == 0

    (trigger,) = inline_triggers
    texts = {
        "printed": printed,
        "logged": caplog.text,
        "trigger kwargs": repr(trigger.serialize()),
        "emulator's request log": json.dumps(vbrain_conn.requests()),
        **{f"XCom {key}": repr(value) for key, value in xcoms(dag_run).items()},
    }
    assert "XCom wait/return_value" in texts  # the task's XComs were read
    leaks = [where for where, text in texts.items() if proxy_password_leaks(text) or key_leaks(text)]
    assert not leaks


def xcoms(dag_run: Any) -> dict[str, Any]:
    """Every XCom of the run, serialized as stored, by ``task_id/key``."""
    from airflow.utils.session import create_session
    from sqlalchemy import text

    query = text("SELECT task_id, key, value FROM xcom WHERE dag_id = :dag_id AND run_id = :run_id")
    with create_session() as session:
        rows = session.execute(query, {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id}).fetchall()
    return {f"{task_id}/{key}": value for task_id, key, value in rows}
