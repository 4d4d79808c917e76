"""``VBrainJobSensor(start_from_trigger=True)`` ended by its trigger, with Airflow's own code.

``dag.test()`` cannot show this: it runs a start-from-trigger sensor the usual deferrable way, and
hands whatever event a trigger fires back to the task (on 3.3 and 2.10 alike), so an event meant to
end the task never reaches Airflow's code for it. Here the DAG is stored as a DAG processor stores
it, the scheduler's ``DagRun.schedule_tis`` starts the task on the triggerer (the trigger row made
from the sensor's ``start_trigger_args``), and a triggerer runs the trigger: on Airflow 3 a real one
(``airflow triggerer``, whose supervisor relays what the trigger asks of Airflow, XCom writes
included); on Airflow 2 the trigger is rebuilt from the row and its event handed to
``Trigger.submit_event``, the triggerer's way to hand an event to Airflow. No worker runs the sensor
at any point.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_vbrain._airflow.compat import (
    end_event_xcoms_intact,
    scheduler_starts_from_trigger,
    trigger_failures_retry,
)
from airflow_provider_vbrain._transport.aio import close_shared_session
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor
from tests.conftest import DAGS_FOLDER, ORG, key_leaks, state, xcom

#: Airflow 3: its triggerer runs triggers in a subprocess of its own, talking to Airflow through
#: the task SDK's supervisor channel (Airflow 2 runs them against the database directly).
AIRFLOW_3 = not end_event_xcoms_intact()
#: Airflow 3.1 and 3.2's scheduler starts no task on the triggerer (its code for it is commented out).
STARTS = scheduler_starts_from_trigger()
needs_the_scheduler = pytest.mark.skipif(
    not STARTS,
    reason="this Airflow's scheduler starts no task on the triggerer (3.1, 3.2): see the last test",
)
#: Where a task ended by its trigger is, once the triggerer is done with it.
ENDED = ("success", "failed", "up_for_retry", "scheduled")


def started_on_the_triggerer(dag_bag: Any, job_id: str, repository_id: str, **sensor: Any) -> tuple[Any, int]:
    """A run whose ``wait`` the scheduler started on the triggerer, waiting on this job; (run, trigger id).

    The scheduler is handed the sensor of a DAG file naming the job's ids, stored as the DAG
    processor stores it: Airflow 3.0 to 3.2 schedule only such a DAG.
    """
    dag_run, ti_state, trigger_id = scheduled(sensor_on(job_id, repository_id, **sensor))
    assert ti_state == "deferred"  # no worker ran it
    return dag_run, trigger_id


def scheduled(task: Any) -> tuple[Any, str, int | None]:
    """A run of ``task``'s DAG, the task handed to the scheduler as at its first look at it; the run,
    the state the scheduler gave the task, and its trigger's id."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    dag = task.dag
    if AIRFLOW_3:
        store_as_the_dag_processor_would(dag)
    elif hasattr(dag, "sync_to_db"):  # Airflow 2's dag.test() writes no DAG row; its scheduler would have one
        dag.sync_to_db()
    dag_run = dag.test(mark_success_pattern="wait")  # the run, in the metadata database
    # Read before the session below: Airflow's own sessions in a thread are one, and closing one closes it.
    scheduler_task = scheduled_task(dag.dag_id) if AIRFLOW_3 else task
    with create_session() as session:
        ti = (
            session.query(TaskInstance)
            .filter_by(dag_id=dag.dag_id, run_id=dag_run.run_id, task_id="wait")
            .one()
        )
        ti.state, ti.try_number = None, 0  # as before the scheduler's first look at it
        ti.task = scheduler_task
        session.flush()  # the scheduler reads the state from the database
        ti.get_dagrun(session=session).schedule_tis([ti], session=session)
        session.flush()
        trigger_id = ti.trigger_id
    return dag_run, task_state(dag_run), trigger_id  # as stored (a task for a worker is updated in bulk)


def sensor_on(job_id: str, repository_id: str, **kwargs: Any) -> VBrainJobSensor:
    """The ``wait`` task as a DAG file naming the job would define it."""
    try:
        from airflow.sdk import DAG
    except ImportError:  # Airflow 2
        from airflow import DAG  # type: ignore[no-redef]

    # A DAG of its own per job: a DAG processor stores a DAG changed within 30 s of its last
    # version only after that, and the scheduler would start the task with the earlier job's ids.
    with DAG(f"e2e_start_from_trigger_{job_id[:8]}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        sensor = VBrainJobSensor(
            task_id="wait",
            job_id=job_id,
            repository_id=repository_id,
            start_from_trigger=True,
            poke_interval=0.05,
            **kwargs,
        )
    # A DAG file, as a DAG processor records it (Airflow's callbacks for a finished task name it).
    dag.fileloc = os.path.join(DAGS_FOLDER, "vbrain_e2e.py")
    if AIRFLOW_3:  # and relative to its DAG bundle
        dag.relative_fileloc = "vbrain_e2e.py"
    return sensor


def store_as_the_dag_processor_would(dag: Any) -> None:
    """Write ``dag`` to the metadata database, serialized, as Airflow 3's DAG processor does."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.models import DagBag

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull, collect_dags=False)
    bag.dags[dag.dag_id] = dag
    for module in ("airflow.dag_processing.dagbag", "airflow.models.dagbag"):  # 3.2+, 3.1
        try:
            sync_bag_to_db = getattr(importlib.import_module(module), "sync_bag_to_db", None)
        except ImportError:
            continue
        if sync_bag_to_db is not None:
            sync_bag_to_db(bag, "dags-folder", None)
            return
    bag.sync_to_db("dags-folder", None)  # 3.0


def scheduled_task(dag_id: str) -> Any:
    """The task as Airflow 3's scheduler holds it: from the DAG the DAG processor stored."""
    from airflow.models.serialized_dag import SerializedDagModel

    return SerializedDagModel.get(dag_id).dag.get_task("wait")


def run_the_trigger(trigger_id: int, dag_run: Any, logs: Path) -> str:
    """Let a triggerer run the trigger and end (or resume) the task; what the triggerer logged."""
    if AIRFLOW_3:
        return run_a_triggerer(dag_run, logs)
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.get(Trigger, trigger_id)
        classpath, kwargs = row.classpath, dict(row.kwargs)
    module, _, name = classpath.rpartition(".")
    trigger = getattr(importlib.import_module(module), name)(**kwargs)

    async def first_event() -> Any:
        try:
            async for event in trigger.run():
                return event
        finally:
            await close_shared_session()
        raise AssertionError("the trigger ended without an event")

    Trigger.submit_event(trigger_id, asyncio.run(asyncio.wait_for(first_event(), 30)))
    return ""


def run_a_triggerer(dag_run: Any, logs: Path) -> str:
    """``airflow triggerer``, from its start until the task left ``deferred``; its log and the task's."""
    out = logs / "triggerer.log"
    with socket.socket() as free:  # for its log server, which would take a fixed port
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {**os.environ, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port)}
    with out.open("wb") as sink:
        triggerer = subprocess.Popen(
            [sys.executable, "-m", "airflow", "triggerer"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its trigger runner too is stopped with its process group
        )
    try:
        deadline = time.monotonic() + 180
        while task_state(dag_run) not in ENDED:
            assert triggerer.poll() is None, out.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, out.read_text(errors="replace")[-3000:]
            time.sleep(1)
    finally:
        os.killpg(triggerer.pid, signal.SIGTERM)
        try:
            triggerer.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(triggerer.pid, signal.SIGKILL)
            triggerer.wait()
    task_logs = Path(
        os.environ["AIRFLOW_HOME"], "logs", f"dag_id={dag_run.dag_id}", f"run_id={dag_run.run_id}"
    )
    logged = [out.read_text(errors="replace")]
    for path in sorted(task_logs.rglob("*")):
        for line in path.read_text(errors="replace").splitlines() if path.is_file() else ():
            try:  # Airflow 3's task logs: one JSON object a line
                logged.append(str(json.loads(line).get("event", "")))
            except (ValueError, AttributeError):
                logged.append(line)
    return "\n".join(logged)


def task_state(dag_run: Any) -> str:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = (
            session.query(TaskInstance)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id="wait")
            .one()
        )
        return str(getattr(ti.state, "value", ti.state))


@needs_the_scheduler
def test_a_finished_job_ends_the_task_on_the_triggerer_with_its_output_and_link(
    dag_bag: Any, vbrain_conn: Any, job_page: str, tmp_path: Path
) -> None:
    hook = VBrainHook()
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, {"a": 6, "b": 7})
    dag_run, trigger_id = started_on_the_triggerer(dag_bag, job_id, repository_id)
    assert state(dag_run) == "success"  # the run as dag.test() left it; the task is what counts
    run_the_trigger(trigger_id, dag_run, tmp_path)
    assert task_state(dag_run) == "success"  # no worker: it would have left the task scheduled
    assert xcom(dag_run, "wait") == {"value": 42}  # the value, as a worker pushes it (not its JSON text)
    link = xcom(dag_run, "wait", "vbrain_job_url")
    assert link == job_page.format(job_id=job_id, repository_id=repository_id, organization_id=ORG)
    assert not key_leaks(str(link))


@needs_the_scheduler
def test_with_nothing_to_push_a_finished_job_ends_the_task_on_the_triggerer_on_every_line(
    dag_bag: Any, vbrain_conn: Any, tmp_path: Path
) -> None:
    hook = VBrainHook()
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, {"a": 6, "b": 7})
    dag_run, trigger_id = started_on_the_triggerer(dag_bag, job_id, repository_id, fetch_result=False)
    run_the_trigger(trigger_id, dag_run, tmp_path)
    assert task_state(dag_run) == "success"
    assert xcom_or_none(dag_run, "wait") is None


def xcom_or_none(dag_run: Any, task_id: str) -> Any:
    try:
        return xcom(dag_run, task_id)
    except Exception as err:  # no row: Airflow 3's query raises, Airflow 2's returns None
        if type(err).__name__ != "NoResultFound":
            raise
        return None


@needs_the_scheduler
def test_a_failed_job_fails_the_task_on_the_triggerer_and_says_why(
    dag_bag: Any,
    vbrain_conn: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    hook = VBrainHook()
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, {"a": 6})
    dag_run, trigger_id = started_on_the_triggerer(dag_bag, job_id, repository_id)
    capsys.readouterr()
    with caplog.at_level(logging.INFO):
        triggerer_log = run_the_trigger(trigger_id, dag_run, tmp_path)
    assert task_state(dag_run) == "failed"  # no retries: Airflow's own failure, no worker
    out, err = capsys.readouterr()
    logged = triggerer_log + caplog.text + out + err
    assert str(hook.job_failure(job_id, repository_id)) in logged  # the log tail the worker would raise
    assert "missing parameter 'b'" in logged
    assert not key_leaks(logged)


@needs_the_scheduler
def test_a_failed_job_of_a_task_with_retries_is_retried(
    dag_bag: Any, vbrain_conn: Any, tmp_path: Path
) -> None:
    hook = VBrainHook()
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, {"a": 6})
    dag_run, trigger_id = started_on_the_triggerer(dag_bag, job_id, repository_id, retries=1)
    run_the_trigger(trigger_id, dag_run, tmp_path)
    if trigger_failures_retry():
        assert task_state(dag_run) == "up_for_retry"  # by Airflow, from the trigger's failure: no worker
    else:
        # Airflow fails a task its trigger failed for good here: a worker resumes the task and
        # raises the failure, and Airflow retries it as it retries any task that raised.
        assert task_state(dag_run) == "scheduled"


@pytest.mark.skipif(STARTS, reason="this Airflow's scheduler starts tasks on the triggerer")
def test_where_the_scheduler_starts_no_task_on_the_triggerer_the_sensor_says_so_and_runs_on_a_worker(
    dag_bag: Any, vbrain_conn: Any
) -> None:
    with pytest.warns(UserWarning, match=r"this Airflow's scheduler does not start tasks on the triggerer"):
        sensor = sensor_on("0123456789", "202601010000000000")
    _, ti_state, trigger_id = scheduled(sensor)
    assert (ti_state, trigger_id) == ("scheduled", None)  # for a worker, which defers as usual
