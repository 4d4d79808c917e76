"""Worker-slot time: how long a worker is held while one VBrain job runs, in three ways.

Each variant runs its DAG (``dags/bench_worker_slot.py``) with ``dag.test()`` in its own process and
Airflow home, all three at once against one emulator process; each job lasts ``BENCH_JOB_SECONDS``:

``tutorial``  the platform tutorial's loop (``requests`` + ``time.sleep``) in a ``PythonOperator``;
``deferrable`` ``VBrainExecuteJobOperator`` then ``VBrainJobSensor(deferrable=True)``;
``poke``       the same with the sensor in ``poke`` mode.

Worker-held time is the wall time spent inside the tasks' ``execute`` and ``execute_complete``
(``dag.test()`` runs a deferred trigger inline, outside both, as a triggerer would). The child wraps
those methods on the classes before the run; the emulator's request log gives the requests each job
cost (its ``repository_id`` header tells the variants apart).
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, airflow_env, bench_server, python, temp_dir

VARIANTS = {
    "tutorial": "bench_tutorial_loop",
    "deferrable": "bench_sensor_deferrable",
    "poke": "bench_sensor_poke",
}
JOB_SECONDS, POLL_SECONDS = 60.0, 10.0


# ----------------------------------------------------------------------------------- parent side


def run(
    quick: bool, log_dir: Path, say: Any = print, while_waiting: Callable[[], Any] | None = None
) -> dict[str, Any]:
    """Run the three variants at once; call ``while_waiting`` while their jobs run (full runs only).

    The three processes are idle then (one poll each ``POLL_SECONDS``), so a CPU-bound measurement
    such as :mod:`parse_cost` can use the time; the result says whether it ended before the jobs did.
    """
    job_seconds, poll_seconds = (2.0, 0.5) if quick else (JOB_SECONDS, POLL_SECONDS)
    home = temp_dir("vbrain-bench-emulator-")
    log = log_dir / "worker-slot.log"
    with bench_server(log, home) as url:
        children = {}
        # Quick runs share one process (one database, one dag.test() start-up) to stay fast.
        groups = [",".join(VARIANTS)] if quick else list(VARIANTS)
        for variant in groups:
            child_home = temp_dir(f"vbrain-bench-worker-{variant.replace(',', '-')}-")
            (child_home / "dags").mkdir()
            shutil.copy(BENCH_DIR / "dags" / "bench_worker_slot.py", child_home / "dags")
            env = airflow_env(
                child_home,
                AIRFLOW_CONN_VBRAIN_DEFAULT=connection(url),
                BENCH_JOB_SECONDS=str(job_seconds),
                BENCH_POLL_SECONDS=str(poll_seconds),
            )
            children[variant] = subprocess.Popen(
                python("worker_slot.py", "child", variant),
                env=env,
                stdout=subprocess.PIPE,
                stderr=(log_dir / f"worker-slot-{variant}.log").open("ab"),
            )
        overlap = None
        if while_waiting is not None:
            overlap = _while_jobs_run(url, len(VARIANTS), job_seconds, while_waiting)
        results: dict[str, Any] = {}
        for variant, child in children.items():
            out, _ = child.communicate(timeout=job_seconds * 4 + 240)
            lines = [x for x in out.decode(errors="replace").splitlines() if x.startswith("RESULT {")]
            if child.returncode != 0 or len(lines) != variant.count(",") + 1:
                raise RuntimeError(
                    f"worker-slot {variant} failed ({child.returncode}); "
                    f"see {log_dir}/worker-slot-{variant}.log"
                )
            for line in lines:
                result = json.loads(line[7:])
                results[result.pop("variant")] = result
        with urllib.request.urlopen(f"{url}/_emulator/requests", timeout=60) as answer:
            requests_log = json.loads(answer.read())
    for variant, result in results.items():
        mine = [r for r in requests_log if r.get("repository_id") == result["repository_id"]]
        result["requests"] = len(mine)
        result["status_polls"] = sum(
            1 for r in mine if r["method"] == "GET" and r["path"].count("/") == 4 and "/job/" in r["path"]
        )
        say(
            f"  worker-slot {variant:<10} held {result['worker_held_s']:7.3f} s "
            f"(run {result['dag_run_wall_s']:.1f} s, {result['requests']} requests, {result['state']})"
        )
    tutorial, deferrable = results["tutorial"]["worker_held_s"], results["deferrable"]["worker_held_s"]
    return {
        "overlapped_measurement": overlap,
        "job_seconds": job_seconds,
        "poll_seconds": poll_seconds,
        "variants": results,
        "ratio_tutorial_to_deferrable": round(tutorial / deferrable, 1) if deferrable else None,
    }


def _while_jobs_run(url: str, jobs: int, job_seconds: float, work: Callable[[], Any]) -> dict[str, Any]:
    """Once every variant has submitted its job (and the deferrable one has deferred), run ``work``."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/_emulator/jobs", timeout=30) as answer:
            submitted = len(json.loads(answer.read()))
        if submitted >= jobs:
            break
        time.sleep(0.5)
    first_end = time.monotonic() + job_seconds - 3.0
    time.sleep(3.0)
    work()
    return {"ended_before_the_jobs": time.monotonic() < first_end}


def connection(url: str) -> str:
    extra = {"organization_id": "acme", "client_id": "ops", "application_id": "Tutorial"}
    conn = {"conn_type": "vbrain", "host": url, "login": "ana", "password": "bench-key", "extra": extra}
    return json.dumps(conn)


# ----------------------------------------------------------------------------------- child side


def _timed(cls: type, name: str, spans: list[dict[str, Any]]) -> None:
    """Wrap ``cls.name`` to record each call's wall-clock span (it may end by deferring: still a span)."""
    original = cls.__dict__[name]

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        outcome = "returned"
        try:
            return original(self, *args, **kwargs)
        except BaseException as err:
            outcome = type(err).__name__
            raise
        finally:
            spans.append(
                {
                    "task_id": self.task_id,
                    "method": name,
                    "seconds": round(time.monotonic() - start, 4),
                    "outcome": outcome,
                }
            )

    setattr(cls, name, wrapper)


def child(variants: str) -> None:
    """Run each comma-separated variant's DAG in turn and print one ``RESULT`` line for each."""
    import os

    from airflow.models import DagBag
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.utils.db import resetdb

    from airflow_provider_vbrain.hooks.vbrain import VBrainHook
    from airflow_provider_vbrain.operators.vbrain import VBrainExecuteJobOperator
    from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor

    resetdb()
    spans: list[dict[str, Any]] = []
    _timed(PythonOperator, "execute", spans)
    _timed(VBrainExecuteJobOperator, "execute", spans)
    _timed(VBrainJobSensor, "execute", spans)
    _timed(VBrainJobSensor, "execute_complete", spans)
    for variant in variants.split(","):
        # A repository per variant, so the emulator's request log tells the variants apart.
        repository_id = VBrainHook().create_repository()
        os.environ["BENCH_REPOSITORY_ID"] = repository_id
        bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        if bag.import_errors:
            raise RuntimeError(f"benchmark DAG did not import: {bag.import_errors}")
        dag = bag.get_dag(VARIANTS[variant])
        spans.clear()
        started = time.monotonic()
        dag_run = dag.test()
        wall = time.monotonic() - started
        state = str(getattr(dag_run.state, "value", dag_run.state))
        result = {
            "variant": variant,
            "dag_id": dag.dag_id,
            "state": state,
            "repository_id": repository_id,
            "worker_held_s": round(sum(span["seconds"] for span in spans), 3),
            "spans": list(spans),
            "dag_run_wall_s": round(wall, 2),
        }
        print("RESULT " + json.dumps(result), flush=True)
        if state != "success":
            sys.exit(f"{dag.dag_id} ended {state}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        child(sys.argv[2])
    else:
        sys.exit("usage: worker_slot.py child VARIANT (the benchmarks run it; see run.py)")
