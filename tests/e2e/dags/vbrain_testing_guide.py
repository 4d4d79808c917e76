"""The DAG of docs/testing.md: a team's own logic around a VBrain job.

It runs the ``Tutorial`` application in a new repository, then branches on the job's output. The
recipes in tests/docs/ test it without a server (the hook's methods patched) and end to end
against the emulator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task  # type: ignore[no-redef,attr-defined]

from airflow_provider_vbrain.operators.vbrain import (
    VBrainCreateRepositoryOperator,
    VBrainExecuteJobOperator,
)


# [START howto_testing_dag]
@task.branch
def choose_route(ti: Any = None) -> str:
    """Large orders go to the planners, the rest is booked automatically."""
    result = ti.xcom_pull(task_ids="run_forecast", key="result")
    return "plan_by_hand" if result["value"] > 100 else "book_automatically"


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def vbrain_testing_guide():
    repository = VBrainCreateRepositoryOperator(task_id="create_repository", application_id="Tutorial")
    forecast = VBrainExecuteJobOperator(
        task_id="run_forecast",
        application_id="Tutorial",
        repository_id=repository.output,
        job_params={"a": 10, "b": 20},
        wait_for_completion=True,
        deferrable=False,
        poll_interval=1,
    )

    @task
    def plan_by_hand() -> None: ...

    @task
    def book_automatically() -> None: ...

    forecast >> choose_route() >> [plan_by_hand(), book_automatically()]


vbrain_testing_guide()
# [END howto_testing_dag]
