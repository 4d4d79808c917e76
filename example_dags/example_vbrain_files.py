"""Upload an input file, run an application that reads it, download its output.

The repository is created with a CSV of weekly sales; the job runs the
``CsvSummary`` application (one of the bundled emulator's applications: use
your own VBrain application's name against the real platform), waits for it
on the triggerer, and downloads the output ZIP to the location in the DAG
param ``output_location``: a local folder, or any object-storage URL Airflow
knows (``s3://bucket/prefix/``, ``gs://...``, ``file:///...``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

try:
    from airflow.sdk import dag
except ImportError:  # Airflow 2
    from airflow.decorators import dag  # type: ignore[no-redef,attr-defined]

from airflow_provider_vbrain.operators.vbrain import (
    VBrainCreateRepositoryOperator,
    VBrainDeleteRepositoryOperator,
    VBrainDownloadJobFilesOperator,
    VBrainExecuteJobOperator,
)

SALES_CSV = Path(__file__).resolve().parent / "data" / "sales.csv"


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["vbrain", "example"],
    params={"output_location": "/tmp/vbrain-example-output/"},
    doc_md=__doc__,
)
def example_vbrain_files():
    # [START howto_vbrain_files]
    repository = VBrainCreateRepositoryOperator(
        task_id="create_repository",
        application_id="CsvSummary",
        input_file=str(SALES_CSV),
        repository_params={"group_by": "store"},
        metadata={"source": "weekly sales export"},
    )

    job = VBrainExecuteJobOperator(
        task_id="summarise_sales",
        application_id="CsvSummary",
        repository_id=repository.output,
        wait_for_completion=True,
        deferrable=True,
        poll_interval=5,
        timeout=30 * 60,
    )

    download = VBrainDownloadJobFilesOperator(
        task_id="download_output",
        application_id="CsvSummary",
        job_id=job.output,
        repository_id=repository.output,
        destination="{{ params.output_location }}",
        kind="output",
    )
    # [END howto_vbrain_files]

    download >> VBrainDeleteRepositoryOperator(
        task_id="delete_repository",
        application_id="CsvSummary",
        repository_id=repository.output,
        trigger_rule="all_done",
    )


example_vbrain_files()
