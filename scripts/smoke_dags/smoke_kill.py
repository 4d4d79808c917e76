"""The DAGs of ``make smoke``'s kill pass (not examples: they exist to be killed).

``smoke_kill_worker``: the Celery worker running ``execute_job`` is SIGKILLed after the job
was created and before the task heard its id; the retry must reattach to that job.
``smoke_kill_triggerer``: the triggerer holding ``wait_for_job``'s trigger is SIGKILLed; the
other triggerer must pick the trigger up.
``smoke_kill_store``: on a VBrain whose job status echoes no metadata (connection
``vbrain_noecho``), the same worker kill lands after ``execute_job`` recorded its job in Airflow's
task state store, while it waits on the job; the retry must reattach through the store.
Every task has retries, so a killed try is retried.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_vbrain.operators.vbrain import VBrainCreateRepositoryOperator, VBrainExecuteJobOperator
from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor

#: A killed try is retried soon: the kill pass waits for it.
RETRIED = {"retries": 2, "retry_delay": timedelta(seconds=2)}


def kill_dag(dag_id: str, a: int, b: int) -> DAG:
    """Create a repository, run the Tutorial with ``a`` and ``b``, wait for it on the triggerer."""
    with DAG(
        dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        default_args=RETRIED,
        tags=["vbrain", "smoke"],
    ) as dag:
        repository = VBrainCreateRepositoryOperator(task_id="create_repository")
        job = VBrainExecuteJobOperator(
            task_id="execute_job", repository_id=repository.output, job_params={"a": a, "b": b}
        )
        VBrainJobSensor(
            task_id="wait_for_job",
            job_id=job.output,
            repository_id=repository.output,
            deferrable=True,
            poke_interval=2,
        )
    return dag


smoke_kill_worker = kill_dag("smoke_kill_worker", 6, 7)
smoke_kill_triggerer = kill_dag("smoke_kill_triggerer", 3, 5)


with DAG(
    "smoke_kill_store",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={**RETRIED, "vbrain_conn_id": "vbrain_noecho"},
    tags=["vbrain", "smoke"],
) as smoke_kill_store:
    VBrainExecuteJobOperator(
        task_id="execute_job",
        repository_id=VBrainCreateRepositoryOperator(task_id="create_repository").output,
        job_params={"a": 4, "b": 9},
        wait_for_completion=True,
        deferrable=False,  # the worker holds the wait when it dies
        poll_interval=2,
    )
