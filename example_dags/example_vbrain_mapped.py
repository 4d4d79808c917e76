"""Fan out: one repository, one job per scenario, all waiting deferred at once.

Dynamic task mapping starts a job for each parameter set, then maps the
deferrable sensor over the job ids, so every wait sits on the triggerer at the
same time and no worker slot is held. A downstream task receives all outputs.
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

SCENARIOS = [
    {"a": 10, "b": 20},  # baseline
    {"a": 10, "b": 25},  # promotion week
    {"a": 12, "b": 20},  # new store opening
]


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["vbrain", "example"],
    doc_md=__doc__,
)
def example_vbrain_mapped():
    # [START howto_vbrain_mapped]
    repository = VBrainCreateRepositoryOperator(task_id="create_repository", application_id="Tutorial")

    jobs = VBrainExecuteJobOperator.partial(
        task_id="execute_scenario",
        application_id="Tutorial",
        repository_id=repository.output,
    ).expand(job_params=SCENARIOS)

    outputs = VBrainJobSensor.partial(
        task_id="wait_for_scenario",
        application_id="Tutorial",
        repository_id=repository.output,
        deferrable=True,
        poke_interval=5,
    ).expand(job_id=jobs.output)

    # One XCom holding the dict: a dict return annotation alone would make Airflow push one per key too.
    @task(multiple_outputs=False)
    def compare(results: list[dict]) -> dict:
        # results[:] reads every output in one request; a plain loop asks one more than there are,
        # and Airflow 3 logs that last, missing one as an ERROR.
        values = [result["value"] for result in results[:]]
        best = max(values)
        print(f"VBrain scenario outputs: {values}; best {best}")
        return {"values": values, "best": best}

    # [END howto_vbrain_mapped]

    compare(outputs.output) >> VBrainDeleteRepositoryOperator(
        task_id="delete_repository",
        application_id="Tutorial",
        repository_id=repository.output,
        trigger_rule="all_done",
    )


example_vbrain_mapped()
