"""What differs between Airflow lines, checked on each line with Airflow's own code.

A deferred task comes back to a worker in three ways: its trigger fires, its deferral
times out before any trigger fired, or its trigger crashes. The last two are Airflow's
doing: the scheduler (``check_trigger_timeouts``) or the triggerer (``Trigger.submit_failure``)
marks the task to resume only to fail, and each line says why in its own words. These
tests defer the sensor for real, let Airflow's scheduler or triggerer code mark it, and
resume it the way that line's worker does, so they fail if the provider misreads a line.
"""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

import pytest

from tests.conftest import state


@pytest.mark.parametrize("soft_fail", [False, True], ids=["fails-for-good", "soft-fail-skips"])
def test_a_deferral_that_timed_out_is_the_sensors_timeout(
    dag_bag: Any, vbrain_conn: Any, soft_fail: bool
) -> None:
    """No triggerer answered before the deferral's own timeout: the sensor times out.

    A sensor timeout is final (``retries=1`` is not used), or a skip under ``soft_fail``.
    """
    wait = DeferredWait(dag_bag, f"e2e_deferred_wait{'_soft' if soft_fail else ''}")
    wait.defer()
    wait.time_out_the_deferral()
    assert wait.resume() == ("skipped" if soft_fail else "failed")


def test_a_trigger_that_crashed_fails_the_sensor_even_under_soft_fail(dag_bag: Any, vbrain_conn: Any) -> None:
    """A crash is an error, not a timeout: retried as any error (``retries=1``), never skipped."""
    wait = DeferredWait(dag_bag, "e2e_deferred_wait_soft")
    wait.defer()
    wait.crash_the_trigger()
    assert wait.resume() == "up_for_retry"


class DeferredWait:
    """The ``wait`` task of one DAG run, driven step by step as Airflow's components would."""

    def __init__(self, dag_bag: Any, dag_id: str) -> None:
        self.dag = dag_bag.get_dag(dag_id)
        # create and execute run for real; wait is only recorded, to be run below.
        dag_run = self.dag.test(mark_success_pattern="wait")
        assert state(dag_run) == "success"
        self.run_id = dag_run.run_id

    def ti(self, session: Any) -> Any:
        from airflow.models import TaskInstance

        return (
            session.query(TaskInstance)
            .filter_by(dag_id=self.dag.dag_id, run_id=self.run_id, task_id="wait")
            .one()
        )

    def state(self) -> str:
        from airflow.utils.session import create_session

        with create_session() as session:
            return str(getattr(self.ti(session).state, "value", self.ti(session).state))

    def defer(self) -> None:
        """Queue wait and run it: the job is still running, so the sensor defers to its trigger."""
        assert self._run_as_a_worker() == "deferred"
        from airflow.models.trigger import Trigger
        from airflow.utils.session import create_session

        with create_session() as session:
            trigger = session.get(Trigger, self.ti(session).trigger_id)
            assert trigger.classpath == "airflow_provider_vbrain.triggers.vbrain.VBrainJobTrigger"

    def time_out_the_deferral(self) -> None:
        """Move the deferral's deadline into the past, then run the scheduler's own check."""
        from airflow.jobs.job import Job
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
        from airflow.utils.session import create_session

        with create_session() as session:
            ti = self.ti(session)
            assert ti.trigger_timeout is not None, "the sensor's deferral has no timeout"
            ti.trigger_timeout = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
        SchedulerJobRunner(job=Job()).check_trigger_timeouts()
        assert self.state() == "scheduled"

    def crash_the_trigger(self) -> None:
        """What the triggerer does when a trigger raises instead of firing an event."""
        from airflow.models.trigger import Trigger
        from airflow.utils.session import create_session

        with create_session() as session:
            trigger_id = self.ti(session).trigger_id
        try:
            raise RuntimeError("the trigger crashed")
        except RuntimeError as crash:
            Trigger.submit_failure(trigger_id, crash)
        assert self.state() == "scheduled"

    def resume(self) -> str:
        """Queue wait again and run it as a worker would; return the state it ends in."""
        return self._run_as_a_worker()

    def _run_as_a_worker(self) -> str:
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState

        with create_session() as session:
            ti = self.ti(session)
            ti.state = TaskInstanceState.QUEUED  # as the scheduler hands it to a worker
            ti_id, try_number = getattr(ti, "id", None), ti.try_number  # Airflow 2 has no ti.id
            dag_version_id = getattr(ti, "dag_version_id", None)
        task = self.dag.get_task("wait")
        try:
            from airflow.sdk.execution_time.supervisor import run_task_in_process  # Airflow 3
        except ImportError:
            self._run_raw_task(task)
        else:
            from airflow.sdk.api.datamodels._generated import TaskInstance as WorkerTaskInstance

            identity = {
                "id": ti_id,
                "task_id": "wait",
                "dag_id": self.dag.dag_id,
                "run_id": self.run_id,
                "try_number": try_number,
                "map_index": -1,
            }
            if "dag_version_id" in WorkerTaskInstance.model_fields:  # 3.1+
                identity["dag_version_id"] = dag_version_id
            run_task_in_process(ti=WorkerTaskInstance(**identity), task=task)
        return self.state()

    def _run_raw_task(self, task: Any) -> None:
        """Airflow 2's worker: run the task instance in this process (it raises what failed it)."""
        from airflow.utils.session import create_session

        with create_session() as session:
            ti = self.ti(session)
            ti.task = task
            # It raises the task's own failure, which it has recorded in the state already.
            with contextlib.suppress(Exception):
                ti._run_raw_task(session=session)
