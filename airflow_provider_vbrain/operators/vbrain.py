"""Operators for VBrain: create repositories, run jobs, download their files, clean up.

VBrain has no endpoint that cancels a job. Killing or timing out a task that
waits on a job leaves the job running on VBrain; nothing here deletes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_vbrain._airflow.compat import default_deferrable
from airflow_provider_vbrain._airflow.files import file_safe, location
from airflow_provider_vbrain._client.endpoints import json_object
from airflow_provider_vbrain._client.polling import DEFAULT_MAX_POLL_INTERVAL
from airflow_provider_vbrain._client.waiting import Outcome, outcome_of
from airflow_provider_vbrain._tasks import lineage
from airflow_provider_vbrain._tasks.reattach import Tag, find_job, find_repository, lookup_since
from airflow_provider_vbrain._tasks.store import reusable_job, reusable_repository
from airflow_provider_vbrain._tasks.task import (
    CONNECTION_FIELDS,
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_WAIT_TIMEOUT,
    deferral_backstop,
    max_interval,
    positive,
    seconds,
    wait_seconds,
)
from airflow_provider_vbrain.exceptions import VBrainNotFoundError
from airflow_provider_vbrain.jobs import read_event
from airflow_provider_vbrain.links.vbrain import VBrainJobLink
from airflow_provider_vbrain.operators._base import _VBrainCreateOperator, _VBrainOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "VBrainCreateRepositoryOperator",
    "VBrainDeleteJobOperator",
    "VBrainDeleteRepositoryOperator",
    "VBrainDownloadJobFilesOperator",
    "VBrainExecuteJobOperator",
]


class VBrainCreateRepositoryOperator(_VBrainCreateOperator):
    """Create a VBrain repository and return its id (XCom ``return_value``).

    :param repository_params: parameters common to the repository's jobs, a JSON
        object (what the API calls ``params``; templated).
    :param metadata: free-form JSON object kept with the repository (templated).
    :param input_file: a ZIP of all inputs or one ``.csv``/``.xlsx``/``.json`` file:
        a local path, an object-storage URL (``s3://...``, ``file://...``) or an
        ``ObjectStoragePath`` (templated).
    :param reattach_on_retry: the repository's metadata records this task's identity and a
        fingerprint of the request under ``"airflow"``; a retried task, or one whose create was
        not confirmed, reuses the repository it finds instead of creating a second one (see the
        exactly-once rules in the docs); on Airflow 3.3 and later by the id recorded in the task
        state store (key ``vbrain_repository``) first.
    :param on_unknown_earlier: what a retry does when VBrain's answers cannot tell whether an
        earlier try created the repository: ``"fail"`` (default) or ``"submit"`` (with a warning).
    :param reattach_settle_seconds: after a create whose answer was lost, how long to look for
        what it created (the listing may lag) before failing the try.
    :param vbrain_conn_id: the Airflow connection to use.
    :param application_id: overrides the connection's ``application_id``.
    """

    template_fields: Sequence[str] = ("repository_params", "metadata", "input_file", *CONNECTION_FIELDS)
    template_fields_renderers = {"repository_params": "json", "metadata": "json"}

    def __init__(
        self,
        *,
        repository_params: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        input_file: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.repository_params = repository_params
        self.metadata = metadata
        self.input_file = input_file
        self.created_repository_id: str | None = None

    def execute(self, context: Context) -> str:
        store = self.open_store(context, "repository")
        params = json_object("repository_params", self.repository_params)
        metadata = json_object("metadata", self.metadata)
        upload = None if self.input_file is None else location(self.input_file)
        tag = Tag.of(context, params, metadata, upload)
        # Repositories listed from the DAG run's start (less a margin); a day back if it is unknown.
        since = lookup_since(context) or datetime.now(timezone.utc) - timedelta(days=1)
        reattach = self.reattach("repository", lambda: find_repository(self.hook, tag, since), str)
        earlier = self.earlier(context, store, tag, reattach, reusable_repository(self.hook, self.log))
        if earlier is not None:
            self.created_repository_id = earlier
            return earlier
        repository_id = self.create_once(
            store, tag, reattach, lambda: self.hook.create_repository(params, tag.metadata(metadata), upload)
        )
        self.log.info("VBrain repository %s", repository_id)
        self.created_repository_id = repository_id
        return repository_id

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the input file in, the repository out (called by Airflow's OpenLineage listener)."""
        settings = self.hook.settings
        created = self.created_repository_id
        return lineage.lineage(
            settings,
            self.application_id,
            inputs=[] if self.input_file is None else [lineage.file_place(location(self.input_file))],
            outputs=[]
            if created is None
            else [lineage.repository_place(settings, self.application_id, created)],
            repository_id=created,
        )


class VBrainExecuteJobOperator(_VBrainCreateOperator):
    """Start a job in a VBrain repository and return its id (XCom ``return_value``).

    With ``wait_for_completion=True`` the task also waits for the job: on the
    triggerer when deferrable (no worker slot held), else by polling, for at most
    ``timeout`` (a week by default). The job id is pushed as XCom key ``job_id`` before
    the wait (for clean-up tasks, should the job fail), a finished job's output as XCom
    key ``result`` (unless ``fetch_result=False`` or ``do_xcom_push=False``: then no
    output is read at all; ``do_xcom_push=False`` pushes no ``job_id`` either). A failed
    job fails the task with its log tail in the task log, and so does a job that ended in
    any state other than ``finished`` unless ``/result`` confirms it.

    The job's metadata records this task's identity (dag id, task id, run id,
    map index) and a fingerprint of the request (params, metadata, input file) under
    ``"airflow"``, merged with ``metadata``. When the task is retried after it already
    submitted a job (a lost worker, a lost deferral, an answer lost on the way back) it
    reattaches to that job instead of starting a second one, unless that job failed or
    the request changed. After a submit whose answer was lost, the job is looked for
    for ``reattach_settle_seconds``; the job found is used, and nothing is submitted
    again in that try. When VBrain's answers cannot tell which job a task submitted,
    a retry follows ``on_unknown_earlier``. On Airflow 3.3 and later the job's id is also
    recorded in Airflow's task state store (key ``vbrain_job``), and a retry reattaches by it
    first, on any VBrain. ``reattach_on_retry=False`` always submits and never looks.

    VBrain has no cancel endpoint: killing or clearing this task does not stop the job (the
    task log says so, with the job's id and link).

    :param repository_id: the repository to run in (templated).
    :param job_params: the job's parameters, a JSON object merged by VBrain over
        the repository's (the API's ``params``; templated).
    :param metadata: free-form JSON object kept with the job (templated).
    :param input_file: a ZIP or ``.csv``/``.xlsx``/``.json`` input for this job: local
        path, object-storage URL or ``ObjectStoragePath`` (templated).
    :param wait_for_completion: wait for the job to end.
    :param deferrable: wait on the triggerer (default: Airflow's ``[operators] default_deferrable``).
    :param poll_interval: seconds between status polls while waiting, at first.
    :param max_poll_interval: the longest interval between polls, which grow from ``poll_interval``
        to a tenth of the time the job has run (docs: "Polling"); None polls every ``poll_interval``.
    :param timeout: seconds (or a ``timedelta``) to wait before failing with
        :class:`~airflow_provider_vbrain.exceptions.VBrainJobTimeoutError`; a week by default.
        An ``execution_timeout`` that ends sooner shortens it. None waits without a deadline of
        its own (then only ``execution_timeout`` bounds the wait).
    :param fetch_result: read a finished job's output and push it as XCom ``result``.
    :param reattach_on_retry: on a retry, reuse the job an earlier try submitted.
    :param on_unknown_earlier: what a retry does when VBrain's answers cannot tell whether an
        earlier try submitted a job: ``"fail"`` (default) or ``"submit"`` (with a warning).
    :param reattach_settle_seconds: after a submit whose answer was lost, how long to look for
        the job (the listing may lag) before failing the try.
    :param max_result_bytes: refuse an output larger than this as JSON (too big for XCom),
        with advice to download it instead; None for no limit.
    :param vbrain_conn_id: the Airflow connection to use.
    :param application_id: overrides the connection's ``application_id``.
    """

    template_fields: Sequence[str] = (
        "repository_id",
        "job_params",
        "metadata",
        "input_file",
        *CONNECTION_FIELDS,
    )
    template_fields_renderers = {"job_params": "json", "metadata": "json"}
    operator_extra_links = (VBrainJobLink(),)

    def __init__(
        self,
        *,
        repository_id: str,
        job_params: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        input_file: Any = None,
        wait_for_completion: bool = False,
        deferrable: bool | None = None,
        poll_interval: float = 10,
        max_poll_interval: float | None = DEFAULT_MAX_POLL_INTERVAL,
        timeout: Any = DEFAULT_WAIT_TIMEOUT,
        fetch_result: bool = True,
        max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fetch_result = fetch_result
        self.max_result_bytes = max_result_bytes
        self.repository_id = repository_id
        self.job_params = job_params
        self.metadata = metadata
        self.input_file = input_file
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = seconds(positive("poll_interval", poll_interval)) or 0.0
        self.max_poll_interval = max_interval(max_poll_interval, self.poll_interval)
        self.timeout = None if timeout is None else seconds(positive("timeout", timeout))
        self.submitted_job_id: str | None = None

    def execute(self, context: Context) -> str:
        store = self.open_store(context, "job", {"repository_id": self.repository_id})
        params = json_object("job_params", self.job_params)
        metadata = json_object("metadata", self.metadata)
        upload = None if self.input_file is None else location(self.input_file)
        tag = Tag.of(context, params, metadata, upload)
        reattach = self.reattach(
            "job",
            lambda: find_job(self.hook, self.repository_id, tag, since=lookup_since(context)),
            lambda status: status.job_id,
        )
        status = self.earlier(
            context, store, tag, reattach, reusable_job(self.hook, self.repository_id, self.log)
        )
        job_id = (
            status.job_id
            if status
            else self.create_once(
                store,
                tag,
                reattach,
                lambda: self.hook.execute_job(self.repository_id, params, tag.metadata(metadata), upload),
            )
        )
        self.submitted_job_id = job_id
        self.log.info(
            "VBrain repository %s, job %s: %s", self.repository_id, job_id, self.hook.job_url(job_id)
        )
        self.push_job_link(context, job_id, self.repository_id)
        if not self.wait_for_completion:
            return job_id
        if self.do_xcom_push:
            # Known before the wait ends, so clean-up or log tasks can use it even if the job fails.
            context["ti"].xcom_push(key="job_id", value=job_id)
        if status is None or not status.terminal:
            timeout = wait_seconds(self.timeout, self.execution_timeout, context)
            if self.deferrable:
                last_state = status.state if status is not None else None
                self.defer(
                    trigger=self.job_trigger(
                        job_id, self.repository_id, self.poll_interval, timeout, last_state
                    ),
                    method_name="execute_complete",
                    timeout=deferral_backstop(timeout, self.poll_interval),
                )
            status = self.wait_here(job_id, self.repository_id, self.poll_interval, timeout)
        if outcome_of(status) is Outcome.FAILED:
            raise self.failure(job_id, self.repository_id, status.raw_state)
        return self._finish(context, job_id, status.raw_state)

    def execute_complete(self, context: Context, event: Any = None) -> str:
        """Resume after the trigger fired: push the result, or fail."""
        job_event = read_event(event)
        self.submitted_job_id = job_event.job_id
        self.raise_for_unsuccessful(job_event)
        return self._finish(context, job_event.job_id, job_event.job_status)

    def waiting_on(self) -> tuple[str, str] | None:
        job_id = self.submitted_job_id
        return None if job_id is None or not self.wait_for_completion else (job_id, self.repository_id)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the repository and the input file in, the job out (also for a failed job)."""
        settings = self.hook.settings
        repository = lineage.repository_place(settings, self.application_id, self.repository_id)
        upload = [] if self.input_file is None else [lineage.file_place(location(self.input_file))]
        job_id = self.submitted_job_id
        return lineage.lineage(
            settings,
            self.application_id,
            inputs=[repository, *upload],
            outputs=[]
            if job_id is None
            else [lineage.job_place(settings, self.application_id, self.repository_id, job_id)],
            repository_id=self.repository_id,
            job_id=job_id,
        )

    def _finish(self, context: Context, job_id: str, job_status: str) -> str:
        fetch = self.fetch_result and self.do_xcom_push
        output = self.end_of(job_id, self.repository_id, job_status, fetch=fetch)
        self.log.info("VBrain job %s finished", job_id)
        if fetch:
            context["ti"].xcom_push(key="result", value=output)
        return job_id


class VBrainDownloadJobFilesOperator(_VBrainOperator):
    """Download a job's output or logs ZIP and return where it was written.

    :param job_id: the job (templated).
    :param repository_id: its repository (templated).
    :param destination: a file path, an existing directory (the file is then named
        ``<job_id>-<kind>.zip``), an object-storage URL (a URL ending in ``/`` is a
        folder) or an ``ObjectStoragePath`` (templated).
    :param kind: ``"output"`` (the job must have finished) or ``"logs"``.
    :param vbrain_conn_id: the Airflow connection to use.
    :param application_id: overrides the connection's ``application_id``.
    """

    template_fields: Sequence[str] = ("job_id", "repository_id", "destination", *CONNECTION_FIELDS)
    KINDS = ("output", "logs")

    def __init__(
        self, *, job_id: str, repository_id: str, destination: Any, kind: str = "output", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        self.job_id = job_id
        self.repository_id = repository_id
        self.destination = destination
        self.kind = kind
        self.written: str | None = None

    def execute(self, context: Context) -> str:
        target = location(self.destination)
        name = f"{file_safe(self.job_id)}-{self.kind}.zip"
        if not isinstance(target, str) and (str(self.destination).endswith("/") or target.is_dir()):
            target = target / name
        download = self.hook.download_job_output if self.kind == "output" else self.hook.download_job_logs
        written = download(self.job_id, self.repository_id, target)
        self.log.info("Wrote the %s of VBrain job %s to %s", self.kind, self.job_id, written)
        self.written = written
        return written

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the job in, the written ZIP out."""
        settings = self.hook.settings
        return lineage.lineage(
            settings,
            self.application_id,
            inputs=[lineage.job_place(settings, self.application_id, self.repository_id, self.job_id)],
            outputs=[] if self.written is None else [lineage.file_place(self.written)],
            repository_id=self.repository_id,
            job_id=self.job_id,
        )


class VBrainDeleteJobOperator(_VBrainOperator):
    """Delete a job's folder on VBrain (it does not stop a running job). Already gone is a warning.

    :param job_id: the job (templated).
    :param repository_id: its repository (templated).
    """

    template_fields: Sequence[str] = ("job_id", "repository_id", *CONNECTION_FIELDS)

    def __init__(self, *, job_id: str, repository_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.repository_id = repository_id

    def execute(self, context: Context) -> None:
        try:
            self.hook.delete_job(self.job_id, self.repository_id)
        except VBrainNotFoundError as err:
            self.log.warning("VBrain job %s was already gone: %s", self.job_id, err)
            return
        self.log.info("Deleted VBrain job %s", self.job_id)


class VBrainDeleteRepositoryOperator(_VBrainOperator):
    """Delete a repository and all its jobs. Already gone is a warning: it suits ``trigger_rule="all_done"``.

    :param repository_id: the repository (templated).
    """

    template_fields: Sequence[str] = ("repository_id", *CONNECTION_FIELDS)

    def __init__(self, *, repository_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repository_id = repository_id

    def execute(self, context: Context) -> None:
        try:
            self.hook.delete_repository(self.repository_id)
        except VBrainNotFoundError as err:
            self.log.warning("VBrain repository %s was already gone: %s", self.repository_id, err)
            return
        self.log.info("Deleted VBrain repository %s and its jobs", self.repository_id)
