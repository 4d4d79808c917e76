"""Worker-slot time: how long a worker is held while one VBrain job runs, in three ways.

Each variant runs its DAG (``dags/bench_worker_slot.py``) with ``dag.test()`` in its own process and
Airflow home, all three at once against one emulator process; each job lasts ``BENCH_JOB_SECONDS``:

``tutorial``  the platform tutorial's loop (``requests`` + ``time.sleep``) in a ``PythonOperator``;
``deferrable`` ``VBrainExecuteJobOperator`` then ``VBrainJobSensor(deferrable=True)``;
``poke``       the same with the sensor in ``poke`` mode;
``start_from_trigger`` the same with ``VBrainJobSensor(start_from_trigger=True)``, on a real scheduler
               and triggerer (``airflow standalone``: ``dag.test()`` does not start tasks from the
               triggerer), after the other three; its task processes time themselves (see the DAG file).
               Before Airflow 3.3 the job is submitted beforehand, outside the DAG (there the sensor
               starts on the triggerer only with the job's plain id).

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
# Run by real_child(), not with dag.test(); kept apart so the dag.test() children skip it.
VARIANTS_REAL = {"start_from_trigger": "bench_sensor_start_from_trigger"}
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
        say("  worker-slot start_from_trigger: a real scheduler and triggerer (airflow standalone)")
        real_home = temp_dir("vbrain-bench-worker-start-from-trigger-")
        (real_home / "dags").mkdir()
        shutil.copy(BENCH_DIR / "dags" / "bench_worker_slot.py", real_home / "dags")
        real_env = airflow_env(
            real_home,
            AIRFLOW_CONN_VBRAIN_DEFAULT=connection(url),
            BENCH_JOB_SECONDS=str(job_seconds),
            BENCH_POLL_SECONDS=str(poll_seconds),
        )
        real = subprocess.run(
            python("worker_slot.py", "real"),
            env=real_env,
            stdout=subprocess.PIPE,
            stderr=(log_dir / "worker-slot-start_from_trigger.log").open("ab"),
            timeout=job_seconds * 4 + 600,
            check=False,
        )
        lines = [x for x in real.stdout.decode(errors="replace").splitlines() if x.startswith("RESULT {")]
        if real.returncode != 0 or not lines:
            raise RuntimeError(
                f"worker-slot start_from_trigger failed ({real.returncode}); "
                f"see {log_dir}/worker-slot-start_from_trigger.log and {real_home}"
            )
        result = json.loads(lines[-1][7:])
        results[result.pop("variant")] = result
        with urllib.request.urlopen(f"{url}/_emulator/requests", timeout=60) as answer:
            requests_log = json.loads(answer.read())
    for variant, result in results.items():
        mine = [r for r in requests_log if r.get("repository_id") == result["repository_id"]]
        result["requests"] = len(mine)
        result["status_polls"] = sum(
            1 for r in mine if r["method"] == "GET" and r["path"].count("/") == 4 and "/job/" in r["path"]
        )
        result["sensor_held_s"] = round(
            sum(x["seconds"] for x in result["spans"] if x["task_id"] == "wait"), 4
        )
        say(
            f"  worker-slot {variant:<18} held {result['worker_held_s']:7.3f} s, "
            f"the sensor {result['sensor_held_s']:.4f} s "
            f"(run {result['dag_run_wall_s']:.1f} s, {result['requests']} requests, {result['state']})"
        )
        say("    " + ", ".join(f"{x['task_id']}.{x['method']} {x['seconds']:.4f}" for x in result["spans"]))
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


def real_child() -> None:
    """Run ``bench_sensor_start_from_trigger`` on ``airflow standalone`` in this Airflow home; print one
    ``RESULT`` line. Everything started is stopped by process group before returning."""
    import os
    import signal
    import socket

    from airflow_provider_vbrain._airflow.compat import triggerer_renders_templates
    from airflow_provider_vbrain.hooks.vbrain import VBrainHook

    home = Path(os.environ["AIRFLOW_HOME"])
    spans_file = home / "spans.jsonl"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ)
    env.update(
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),  # standalone runs `airflow`
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{port}/execution/",
        BENCH_SPANS_FILE=str(spans_file),
    )
    repository_id = VBrainHook().create_repository()
    env["BENCH_REPOSITORY_ID"] = repository_id
    if not triggerer_renders_templates():  # before 3.3: the sensor needs the job's plain id (see the DAG)
        job_seconds = float(os.environ["BENCH_JOB_SECONDS"])
        metadata = {"emulator_queue_seconds": 1.0, "emulator_run_seconds": max(job_seconds - 1.0, 0.0)}
        env["BENCH_JOB_ID"] = VBrainHook().execute_job(repository_id, {"a": 10, "b": 20}, metadata)
    dag_id = VARIANTS_REAL["start_from_trigger"]

    def airflow(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def run_state() -> dict[str, Any] | None:
        out = airflow("dags", "list-runs", dag_id, "--output", "json")
        if "[{" not in out:
            return None
        rows, _ = json.JSONDecoder().raw_decode(out[out.index("[{") :])
        return rows[0]

    airflow("db", "migrate")
    standalone = subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"],
        env=env,
        stdout=sys.stderr,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, stopped as a whole below
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        while dag_id not in airflow("dags", "list", "--output", "json"):
            if time.monotonic() > deadline or standalone.poll() is not None:
                raise RuntimeError(f"{dag_id} was not parsed in time")
            time.sleep(3)
        airflow("dags", "trigger", dag_id)
        deadline = time.monotonic() + float(os.environ["BENCH_JOB_SECONDS"]) * 4 + 240
        while (row := run_state()) is None or row["state"] not in ("success", "failed"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{dag_id} did not finish in time: {row}")
            time.sleep(2)
    finally:
        os.killpg(standalone.pid, signal.SIGINT)
        try:
            standalone.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(standalone.pid, signal.SIGKILL)
            standalone.wait()
    spans = [json.loads(line) for line in spans_file.read_text().splitlines()] if spans_file.exists() else []
    from datetime import datetime

    wall = (
        datetime.fromisoformat(row["end_date"]) - datetime.fromisoformat(row["start_date"])
    ).total_seconds()
    result = {
        "variant": "start_from_trigger",
        "dag_id": dag_id,
        "state": row["state"],
        "repository_id": repository_id,
        "worker_held_s": round(sum(span["seconds"] for span in spans), 3),
        "spans": spans,
        "dag_run_wall_s": round(wall, 2),
    }
    print("RESULT " + json.dumps(result), flush=True)
    if row["state"] != "success":
        sys.exit(f"{dag_id} ended {row['state']}")


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "real":
        real_child()
    elif len(sys.argv) == 3 and sys.argv[1] == "child":
        child(sys.argv[2])
    else:
        sys.exit("usage: worker_slot.py child VARIANT (the benchmarks run it; see run.py)")
