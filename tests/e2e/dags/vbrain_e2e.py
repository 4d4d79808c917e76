"""DAGs the end-to-end tests run with ``dag.test()`` against the emulator.

Each scenario is its own DAG, so a failing test names the mode it exercises.
Values that vary per test (paths, job parameters) come in through DAG params.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[no-redef]
    from airflow.decorators import task  # type: ignore[no-redef,attr-defined]

from airflow_provider_vbrain.operators.vbrain import (
    VBrainCreateRepositoryOperator,
    VBrainDeleteJobOperator,
    VBrainDeleteRepositoryOperator,
    VBrainDownloadJobFilesOperator,
    VBrainExecuteJobOperator,
)
from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor

START = datetime(2026, 1, 1)
FAST = {"poll_interval": 0.1}
TUTORIAL = {"a": 10, "b": 20}
#: Creates retried at once, and looked for over a settle time longer than the emulator's listings lag
#: in the tests (tests/e2e/test_exactly_once.py runs the eventual-listing profile with a 0.5 s lag).
RETRIED = {"retries": 1, "retry_delay": timedelta(seconds=0), "reattach_settle_seconds": 1}


def dag(dag_id: str, **params: Any) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        params=params,
        tags=["vbrain-e2e"],
        render_template_as_native_obj=True,
    )


def wait_in(mode: str, job: Any, repo: Any, **kwargs: Any) -> VBrainJobSensor:
    """The sensor ``wait`` on ``job``, in one of the three modes, polling fast."""
    return VBrainJobSensor(
        task_id="wait",
        job_id=job.output,
        repository_id=repo.output,
        deferrable=mode == "deferrable",
        mode="reschedule" if mode == "reschedule" else "poke",
        poke_interval=0.1,
        **kwargs,
    )


@task
def collect(value: Any) -> Any:
    """A downstream task receiving the output, as users' own tasks would."""
    print(f"downstream received {value!r}")
    return value


# Sensor modes: create -> execute -> wait -> collect, and for timeouts a job that runs long.
for mode in ("deferrable", "poke", "reschedule"):
    with dag(f"e2e_sensor_{mode}", job_params=TUTORIAL, job_metadata={}):
        repo = VBrainCreateRepositoryOperator(task_id="create", **RETRIED)
        job = VBrainExecuteJobOperator(
            task_id="execute",
            repository_id=repo.output,
            job_params="{{ params.job_params }}",
            metadata="{{ params.job_metadata }}",
            **RETRIED,
        )
        collect(wait_in(mode, job, repo).output)

    for soft_fail in (False, True):
        with dag(f"e2e_sensor_timeout_{mode}{'_soft' if soft_fail else ''}"):
            repo = VBrainCreateRepositoryOperator(task_id="create")
            job = VBrainExecuteJobOperator(
                task_id="execute",
                repository_id=repo.output,
                job_params=TUTORIAL,
                metadata={"emulator_run_seconds": 60},
            )
            wait_in(mode, job, repo, timeout=1, soft_fail=soft_fail)

    # soft_fail skips on a timeout only: a failed job fails the sensor in every mode.
    with dag(f"e2e_sensor_failed_job_soft_{mode}"):
        repo = VBrainCreateRepositoryOperator(task_id="create")
        job = VBrainExecuteJobOperator(task_id="execute", repository_id=repo.output, job_params={"a": 1})
        wait_in(mode, job, repo, soft_fail=True)

# A deferred wait that no trigger answers: tests/test_compat.py runs Airflow's own scheduler and
# triggerer code on it (a deferral timing out, a trigger crashing), then resumes it as a worker.
for soft_fail in (False, True):
    with dag(f"e2e_deferred_wait{'_soft' if soft_fail else ''}"):
        repo = VBrainCreateRepositoryOperator(task_id="create")
        job = VBrainExecuteJobOperator(
            task_id="execute",
            repository_id=repo.output,
            job_params=TUTORIAL,
            metadata={"emulator_run_seconds": 600},
        )
        wait_in(
            "deferrable",
            job,
            repo,
            timeout=60,
            soft_fail=soft_fail,
            retries=1,
            retry_delay=timedelta(seconds=0),
        )

# Execute and wait, both ways; the output arrives as XCom "result".
for deferrable in (True, False):
    with dag(f"e2e_execute_wait_{'deferrable' if deferrable else 'blocking'}", job_params=TUTORIAL):
        repo = VBrainCreateRepositoryOperator(task_id="create")
        job = VBrainExecuteJobOperator(
            task_id="execute",
            repository_id=repo.output,
            job_params="{{ params.job_params }}",
            wait_for_completion=True,
            deferrable=deferrable,
            **FAST,
        )
        collect(job.output)

# Execute and wait when nobody wants the output: an output over max_result_bytes must not matter.
for deferrable in (True, False):
    for unwanted in ("nofetch", "noxcom"):
        with dag(f"e2e_execute_{unwanted}_{'deferrable' if deferrable else 'blocking'}", job_params=TUTORIAL):
            repo = VBrainCreateRepositoryOperator(task_id="create")
            VBrainExecuteJobOperator(
                task_id="execute",
                repository_id=repo.output,
                job_params="{{ params.job_params }}",
                wait_for_completion=True,
                deferrable=deferrable,
                max_result_bytes=1,
                **({"fetch_result": False} if unwanted == "nofetch" else {"do_xcom_push": False}),
                **FAST,
            )

# A retried execute task: the first try submits, then fails on a fault the test injects.
for deferrable in (True, False):
    with dag(f"e2e_reattach_{'deferrable' if deferrable else 'blocking'}"):
        repo = VBrainCreateRepositoryOperator(task_id="create")
        VBrainExecuteJobOperator(
            task_id="execute",
            repository_id=repo.output,
            job_params=TUTORIAL,
            wait_for_completion=True,
            deferrable=deferrable,
            **RETRIED,
            **FAST,
        )

# The same in a repository with a history the test makes (jobs created days before this run).
with dag("e2e_reattach_history", repository_id=""):
    VBrainExecuteJobOperator(
        task_id="execute",
        repository_id="{{ params.repository_id }}",
        job_params=TUTORIAL,
        wait_for_completion=True,
        deferrable=False,
        **RETRIED,
        **FAST,
    )

# Files: upload an input, run the CsvSummary application, download output and logs.
with dag("e2e_files", input_file="", output_folder="", logs_url=""):
    repo = VBrainCreateRepositoryOperator(
        task_id="create",
        application_id="CsvSummary",
        repository_params={"source": "e2e"},
        input_file="{{ params.input_file }}",
    )
    job = VBrainExecuteJobOperator(
        task_id="execute",
        application_id="CsvSummary",
        repository_id=repo.output,
        wait_for_completion=True,
        deferrable=True,
        **FAST,
    )
    output = VBrainDownloadJobFilesOperator(
        task_id="download_output",
        application_id="CsvSummary",
        job_id=job.output,
        repository_id=repo.output,
        destination="{{ params.output_folder }}",
    )
    logs = VBrainDownloadJobFilesOperator(
        task_id="download_logs",
        application_id="CsvSummary",
        job_id=job.output,
        repository_id=repo.output,
        destination="{{ params.logs_url }}",
        kind="logs",
    )

# Clean-up, twice over: the second deletions find nothing and only warn.
with dag("e2e_cleanup"):
    repo = VBrainCreateRepositoryOperator(task_id="create")
    job = VBrainExecuteJobOperator(task_id="execute", repository_id=repo.output, job_params=TUTORIAL)
    delete_job = VBrainDeleteJobOperator(task_id="delete_job", job_id=job.output, repository_id=repo.output)
    delete_job_again = VBrainDeleteJobOperator(
        task_id="delete_job_again", job_id=job.output, repository_id=repo.output
    )
    delete_repo = VBrainDeleteRepositoryOperator(task_id="delete_repository", repository_id=repo.output)
    delete_repo_again = VBrainDeleteRepositoryOperator(
        task_id="delete_repository_again", repository_id=repo.output, trigger_rule="all_done"
    )
    delete_job >> delete_job_again >> delete_repo >> delete_repo_again

# The connection and the application chosen per run: every task renders them before its hook exists.
with dag("e2e_templated_connection", conn_id="vbrain_default", application="Tutorial", logs=""):
    chosen = {"vbrain_conn_id": "{{ params.conn_id }}", "application_id": "{{ params.application }}"}
    repo = VBrainCreateRepositoryOperator(task_id="create", **chosen)
    job = VBrainExecuteJobOperator(
        task_id="execute", repository_id=repo.output, job_params=TUTORIAL, **chosen
    )
    wait = VBrainJobSensor(
        task_id="wait",
        job_id=job.output,
        repository_id=repo.output,
        deferrable=True,
        poke_interval=0.1,
        **chosen,
    )
    logs = VBrainDownloadJobFilesOperator(
        task_id="download_logs",
        job_id=job.output,
        repository_id=repo.output,
        destination="{{ params.logs }}",
        kind="logs",
        **chosen,
    )
    delete_job = VBrainDeleteJobOperator(
        task_id="delete_job", job_id=job.output, repository_id=repo.output, **chosen
    )
    delete_repo = VBrainDeleteRepositoryOperator(
        task_id="delete_repository", repository_id=repo.output, **chosen
    )
    wait >> logs >> delete_job >> delete_repo
