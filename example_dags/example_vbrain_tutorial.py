"""VBrain's tutorial as an Airflow DAG.

Create an empty repository for the ``Tutorial`` application, run a job that
multiplies ``a`` by ``b``, wait for it on the triggerer (no worker slot held),
hand the output to a downstream task, and delete the repository whatever happened.

Runs offline against the bundled emulator: ``make demo``.
"""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task  # type: ignore[no-redef,attr-defined]

from airflow_provider_vbrain.operators.vbrain import (
    VBrainCreateRepositoryOperator,
    VBrainDeleteRepositoryOperator,
    VBrainExecuteJobOperator,
)
from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["vbrain", "example"],
    doc_md=__doc__,
)
def example_vbrain_tutorial():
    # [START howto_vbrain_tutorial]
    repository = VBrainCreateRepositoryOperator(
        task_id="create_repository",
        application_id="Tutorial",
    )

    job = VBrainExecuteJobOperator(
        task_id="execute_job",
        application_id="Tutorial",
        repository_id=repository.output,
        job_params={"a": 10, "b": 20},
    )

    wait = VBrainJobSensor(
        task_id="wait_for_job",
        application_id="Tutorial",
        job_id=job.output,
        repository_id=repository.output,
        deferrable=True,
        poke_interval=5,
        timeout=15 * 60,
    )

    # One XCom holding the dict: a dict return annotation alone would make Airflow push one per key too.
    @task(multiple_outputs=False)
    def report(output: dict) -> dict:
        print(f"VBrain result: {output}")
        return output

    cleanup = VBrainDeleteRepositoryOperator(
        task_id="delete_repository",
        application_id="Tutorial",
        repository_id=repository.output,
        trigger_rule="all_done",
    )
    # [END howto_vbrain_tutorial]

    report(wait.output) >> cleanup


example_vbrain_tutorial()
