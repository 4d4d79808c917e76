"""The three ways to wait for one VBrain job that the worker-slot benchmark runs with ``dag.test()``.

Copied into a throwaway DAGS_FOLDER by ``worker_slot.py``, which sets the environment read here:
``BENCH_REPOSITORY_ID`` (a repository made beforehand), ``BENCH_JOB_SECONDS`` (how long each job
lasts on the emulator) and ``BENCH_POLL_SECONDS`` (the poll interval of all: the tutorial's 10 s).

``bench_sensor_start_from_trigger`` runs on a real scheduler and triggerer (``dag.test()`` does not
start tasks from the triggerer), so its task processes time themselves: with ``BENCH_SPANS_FILE`` set,
importing this file wraps the tasks' ``execute`` and ``execute_complete`` to append one JSON line per
call to that file.
"""

from __future__ import annotations

import functools
import json
import os
import time
from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_provider_vbrain.operators.vbrain import VBrainExecuteJobOperator
from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor

REPOSITORY_ID = os.environ.get("BENCH_REPOSITORY_ID", "unset")
JOB_SECONDS = float(os.environ.get("BENCH_JOB_SECONDS", "60"))
POLL_SECONDS = float(os.environ.get("BENCH_POLL_SECONDS", "10"))
#: The emulator's per-job duration overrides: queued 1 s, then started for the rest.
JOB_METADATA = {"emulator_queue_seconds": 1.0, "emulator_run_seconds": max(JOB_SECONDS - 1.0, 0.0)}
JOB_PARAMS = {"a": 10, "b": 20}


def tutorial_loop(repository_id: str) -> dict:
    """The platform tutorial's flow with ``requests``: submit, poll every 10 s while 202, read the result."""
    import time

    import requests

    try:
        from airflow.sdk import BaseHook
    except ImportError:  # Airflow 3.0
        from airflow.hooks.base import BaseHook

    conn = BaseHook.get_connection("vbrain_default")
    extra = conn.extra_dejson
    headers = {
        "organization_id": extra["organization_id"],
        "application_id": extra["application_id"],
        "client_id": extra["client_id"],
        "username": conn.login,
        "x-api-key": conn.password,
        "repository_id": repository_id,
    }
    base = f"{conn.host}/api/v1"
    answer = requests.post(
        f"{base}/job/execute", headers=headers, json={"params": JOB_PARAMS, "metadata": JOB_METADATA}
    )
    job_id = answer.json()["job_id"]
    # The tutorial gives up after 12 polls of 10 s, twice a 60 s job; the same ratio here.
    for _ in range(int(2 * JOB_SECONDS / POLL_SECONDS) + 2):
        if requests.get(f"{base}/job/{job_id}", headers=headers).status_code == 200:
            break
        time.sleep(POLL_SECONDS)
    return requests.get(f"{base}/job/{job_id}/result", headers=headers).json()["output"]


with DAG("bench_tutorial_loop", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    PythonOperator(task_id="tutorial", python_callable=tutorial_loop, op_args=[REPOSITORY_ID])


for mode, deferrable in (("deferrable", True), ("poke", False)):
    with DAG(f"bench_sensor_{mode}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        execute = VBrainExecuteJobOperator(
            task_id="execute", repository_id=REPOSITORY_ID, job_params=JOB_PARAMS, metadata=JOB_METADATA
        )
        VBrainJobSensor(
            task_id="wait",
            job_id=execute.output,
            repository_id=REPOSITORY_ID,
            deferrable=deferrable,
            poke_interval=POLL_SECONDS,
            timeout=10 * JOB_SECONDS + 60,
        )


#: Set where the triggerer cannot render the sensor's arguments (before Airflow 3.3): a job the
#: benchmark submitted beforehand, which the sensor names by its plain id (a sensor waiting on
#: ``execute.output`` there would defer from a worker instead).
JOB_ID = os.environ.get("BENCH_JOB_ID")

with DAG("bench_sensor_start_from_trigger", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    VBrainJobSensor(
        task_id="wait",
        job_id=JOB_ID
        or VBrainExecuteJobOperator(
            task_id="execute", repository_id=REPOSITORY_ID, job_params=JOB_PARAMS, metadata=JOB_METADATA
        ).output,
        repository_id=REPOSITORY_ID,
        start_from_trigger=True,
        poke_interval=POLL_SECONDS,
        timeout=10 * JOB_SECONDS + 60,
    )


def _record_spans(path: str) -> None:
    """Wrap the tasks' methods, once per process, to append each call's wall-clock span to ``path``."""

    def timed(cls: type, name: str) -> None:
        original = cls.__dict__[name]
        if getattr(original, "_bench_timed", False):
            return

        @functools.wraps(original)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            start, outcome = time.monotonic(), "returned"
            try:
                return original(self, *args, **kwargs)
            except BaseException as err:
                outcome = type(err).__name__
                raise
            finally:
                span = {"task_id": self.task_id, "method": name, "outcome": outcome}
                span["seconds"] = round(time.monotonic() - start, 4)
                with open(path, "a") as out:
                    out.write(json.dumps(span) + "\n")

        wrapper._bench_timed = True  # type: ignore[attr-defined]
        setattr(cls, name, wrapper)

    timed(VBrainExecuteJobOperator, "execute")
    timed(VBrainJobSensor, "execute")
    timed(VBrainJobSensor, "execute_complete")


if os.environ.get("BENCH_SPANS_FILE"):
    _record_spans(os.environ["BENCH_SPANS_FILE"])
