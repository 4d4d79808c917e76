"""OpenLineage: a real ``dag.test()`` run with Airflow's OpenLineage provider writing its events to a file.

The run happens in a fresh interpreter: Airflow loads the OpenLineage listener once per process,
when its plugins load, so the transport must be configured before that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import connection_json, key_leaks

pytest.importorskip(
    "airflow.providers.openlineage",
    reason="the optional OpenLineage provider (extra [openlineage]) is missing",
)

RUN_DAG = """
import json, os, sys
from airflow.models import DagBag

bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
run = bag.get_dag(sys.argv[1]).test(run_conf=json.loads(sys.argv[2]))
print("DAG RUN STATE", getattr(run.state, "value", run.state))
"""


def run_with_openlineage(dag_id: str, conf: dict[str, Any], url: str, events: Path) -> list[dict[str, Any]]:
    """Run ``dag_id`` with the file transport; return the COMPLETE events, by task id."""
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "vbrain-tests",
        "AIRFLOW_CONN_VBRAIN_DEFAULT": connection_json(url),
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN_DAG, dag_id, json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert "DAG RUN STATE success" in done.stdout, (done.stdout + done.stderr)[-4000:]
    return [json.loads(line) for line in events.read_text().splitlines() if line.strip()]


def completed(events: list[dict[str, Any]], dag_id: str) -> dict[str, dict[str, Any]]:
    found = {}
    for event in events:
        job = event["job"]["name"]
        if event["eventType"] == "COMPLETE" and job.startswith(dag_id + "."):
            found[job[len(dag_id) + 1 :]] = event
    return found


def names(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def test_lineage_joins_the_uploaded_file_to_the_downloaded_output(
    airflow_db: None, vbrain_conn: Any, tmp_path: Path
) -> None:
    sales = tmp_path / "sales.csv"
    sales.write_text("store,units\nnorth,3\nsouth,5\n")
    (tmp_path / "out").mkdir()
    events_file = tmp_path / "events.jsonl"
    conf = {
        "input_file": str(sales),
        "output_folder": str(tmp_path / "out"),
        "logs_url": f"file://{tmp_path}/logs.zip",
    }
    events = run_with_openlineage("e2e_files", conf, vbrain_conn.url, events_file)
    tasks = completed(events, "e2e_files")

    (job,) = vbrain_conn.jobs()
    host = vbrain_conn.url.split("://", 1)[1]
    repository = ("vbrain://" + host, f"acme/ops/CsvSummary/repositories/{job['repository_id']}")
    vbrain_job = (repository[0], f"{repository[1]}/jobs/{job['job_id']}")

    assert names(tasks["create"]["inputs"]) == [("file", str(sales))]
    assert names(tasks["create"]["outputs"]) == [repository]
    assert names(tasks["execute"]["inputs"]) == [repository]
    assert names(tasks["execute"]["outputs"]) == [vbrain_job]
    assert names(tasks["download_output"]["inputs"]) == [vbrain_job]
    assert names(tasks["download_output"]["outputs"]) == [
        ("file", f"{tmp_path}/out/{job['job_id']}-output.zip")
    ]
    assert names(tasks["download_logs"]["outputs"]) == [("file", f"{tmp_path}/logs.zip")]

    facet = tasks["execute"]["run"]["facets"]["vbrain"]
    assert {k: v for k, v in facet.items() if not k.startswith("_")} == {
        "host": vbrain_conn.url,
        "organization_id": "acme",
        "client_id": "ops",
        "application_id": "CsvSummary",
        "repository_id": job["repository_id"],
        "job_id": job["job_id"],
    }
    assert facet["_schemaURL"].endswith("#the-vbrain-run-facet")
    assert "job_id" not in tasks["create"]["run"]["facets"]["vbrain"]  # no job yet: left out
    assert not key_leaks(events_file.read_text())


def test_the_provider_imports_and_works_without_openlineage(vbrain_conn: Any) -> None:
    """With the OpenLineage packages unimportable, the operators import, run and report no lineage.

    What is blocked is what the provider imports: the OpenLineage client and the extractors. (The
    OpenLineage provider's own registration stays importable: Airflow lists installed providers by
    their entry points, so a half-removed one would break Airflow itself, not this provider.)
    """
    code = """
import sys
for blocked in ("openlineage", "airflow.providers.openlineage.extractors"):
    sys.modules[blocked] = None  # import raises ImportError
from types import SimpleNamespace
from airflow_provider_vbrain.operators.vbrain import VBrainCreateRepositoryOperator

task = VBrainCreateRepositoryOperator(task_id="create")
ti = SimpleNamespace(dag_id="d", task_id="create", run_id="r", map_index=-1, try_number=1)
print("created", task.execute({"ti": ti}))
print("lineage", task.get_openlineage_facets_on_complete(ti))
"""
    env = {**os.environ, "AIRFLOW_CONN_VBRAIN_DEFAULT": connection_json(vbrain_conn.url)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["method"] for r in vbrain_conn.requests()] == ["POST"]
    assert "created " in done.stdout
    assert "lineage None" in done.stdout
