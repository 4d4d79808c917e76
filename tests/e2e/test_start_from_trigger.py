"""``VBrainJobSensor(start_from_trigger=True)`` ended by its trigger, with Airflow's own code.

``dag.test()`` cannot show this: it runs a start-from-trigger sensor the usual deferrable
way, and hands whatever event a trigger fires back to the task (on 3.3 and 2.10 alike), so
an event meant to end the task never reaches Airflow's code for it. Here the scheduler's
``DagRun.schedule_tis`` starts the task on the triggerer (the trigger row made from the
sensor's ``start_trigger_args``), the trigger is rebuilt from that row and run as the
triggerer runs it, and its event goes through ``Trigger.submit_event``, the triggerer's
way to hand an event to Airflow. No worker runs the sensor at any point.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from datetime import datetime
from importlib.metadata import version
from typing import Any

import pytest

from airflow_provider_vbrain._airflow.compat import end_event_xcoms_intact
from airflow_provider_vbrain._transport.aio import close_shared_session
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor
from tests.conftest import ORG, key_leaks, state, xcom

# These tests call the scheduler's and the triggerer's own code with a task built in the test, as
# Airflow 2 and 3.3 accept it; Airflow 3.0 to 3.2 schedule only a DAG stored by a DAG processor.
pytestmark = pytest.mark.skipif(
    version("apache-airflow").startswith(("3.0.", "3.1.", "3.2.")),
    reason="drives the scheduler with a task built in the test: Airflow 2 and 3.3 only",
)


def started_on_the_triggerer(dag_bag: Any, job_id: str, repository_id: str, **sensor: Any) -> tuple[Any, int]:
    """A run whose ``wait`` the scheduler started on the triggerer, waiting on this job; (run, trigger id).

    The scheduler is handed a sensor built with the job's ids, as a DAG file naming them would give it.
    """
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    dag = dag_bag.get_dag("e2e_start_from_trigger")
    if hasattr(dag, "sync_to_db"):  # Airflow 2's dag.test() writes no DAG row; its scheduler would have one
        dag.sync_to_db()
    dag_run = dag.test(mark_success_pattern="wait")  # the run, in the metadata database
    with create_session() as session:
        ti = (
            session.query(TaskInstance)
            .filter_by(dag_id=dag.dag_id, run_id=dag_run.run_id, task_id="wait")
            .one()
        )
        ti.state = None  # as before the scheduler's first look at it
        ti.task = sensor_on(job_id, repository_id, **sensor)
        ti.get_dagrun(session=session).schedule_tis([ti], session=session)
        session.flush()
        assert str(getattr(ti.state, "value", ti.state)) == "deferred"  # no worker ran it
        trigger_id = ti.trigger_id
    return dag_run, trigger_id


def sensor_on(job_id: str, repository_id: str, **kwargs: Any) -> VBrainJobSensor:
    """The ``wait`` task as a DAG file naming the job would define it."""
    try:
        from airflow.sdk import DAG
    except ImportError:  # Airflow 2
        from airflow import DAG  # type: ignore[no-redef]

    with DAG("e2e_start_from_trigger", schedule=None, start_date=datetime(2026, 1, 1)):
        return VBrainJobSensor(
            task_id="wait",
            job_id=job_id,
            repository_id=repository_id,
            start_from_trigger=True,
            poke_interval=0.05,
            **kwargs,
        )


def run_the_trigger(trigger_id: int) -> None:
    """What the triggerer does with the row: build the trigger, run it, submit its event."""
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


def test_a_finished_job_ends_the_task_on_the_triggerer_with_its_output_and_link(
    dag_bag: Any, vbrain_conn: Any, job_page: str
) -> None:
    hook = VBrainHook()
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, {"a": 6, "b": 7})
    dag_run, trigger_id = started_on_the_triggerer(dag_bag, job_id, repository_id)
    assert state(dag_run) == "success"  # the run as dag.test() left it; the task is what counts
    run_the_trigger(trigger_id)
    if not end_event_xcoms_intact():
        # Airflow 3 would store the XComs as text for the tasks pulling them: a worker pushes them.
        assert task_state(dag_run) == "scheduled"
        return
    assert task_state(dag_run) == "success"
    assert xcom(dag_run, "wait") == {"value": 42}
    link = xcom(dag_run, "wait", "vbrain_job_url")
    assert link == job_page.format(job_id=job_id, repository_id=repository_id, organization_id=ORG)
    assert not key_leaks(str(link))


def test_with_nothing_to_push_a_finished_job_ends_the_task_on_the_triggerer_on_every_line(
    dag_bag: Any, vbrain_conn: Any
) -> None:
    hook = VBrainHook()
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, {"a": 6, "b": 7})
    dag_run, trigger_id = started_on_the_triggerer(dag_bag, job_id, repository_id, fetch_result=False)
    run_the_trigger(trigger_id)
    assert task_state(dag_run) == "success"
    assert xcom_or_none(dag_run, "wait") is None


def xcom_or_none(dag_run: Any, task_id: str) -> Any:
    try:
        return xcom(dag_run, task_id)
    except Exception as err:  # no row: Airflow 3's query raises, Airflow 2's returns None
        if type(err).__name__ != "NoResultFound":
            raise
        return None


def test_a_failed_job_fails_the_task_on_the_triggerer_and_says_why(
    dag_bag: Any, vbrain_conn: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = VBrainHook()
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, {"a": 6})
    dag_run, trigger_id = started_on_the_triggerer(dag_bag, job_id, repository_id)
    capsys.readouterr()
    with caplog.at_level(logging.INFO):
        run_the_trigger(trigger_id)
    assert task_state(dag_run) == "failed"  # no retries: Airflow's own failure, no worker
    out, err = capsys.readouterr()
    logged = caplog.text + out + err
    assert str(hook.job_failure(job_id, repository_id)) in logged  # the log tail the worker would raise
    assert "missing parameter 'b'" in logged
    assert not key_leaks(logged)
