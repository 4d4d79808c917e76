"""Operators for VBrain: create repositories, run jobs, download their files, clean up.

VBrain has no endpoint that cancels a job. Killing or timing out a task that
waits on a job leaves the job running on VBrain; nothing here deletes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_vbrain import _lineage, _reattach
from airflow_provider_vbrain._compat import BaseOperator, default_deferrable
from airflow_provider_vbrain._endpoints import json_object
from airflow_provider_vbrain._files import file_safe, location
from airflow_provider_vbrain._reattach import AIRFLOW_METADATA_KEY, Lookup, Seen, task_identity
from airflow_provider_vbrain._tasks import (
    CONNECTION_FIELDS,
    DEFAULT_MAX_RESULT_BYTES,
    VBrainTaskMixin,
    deferral_backstop,
    positive,
    seconds,
)
from airflow_provider_vbrain.exceptions import VBrainNotFoundError
from airflow_provider_vbrain.jobs import JobState, JobStatus, Outcome, outcome_of, read_event
from airflow_provider_vbrain.links.vbrain import VBrainJobLink

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "VBrainCreateRepositoryOperator",
    "VBrainDeleteJobOperator",
    "VBrainDeleteRepositoryOperator",
    "VBrainDownloadJobFilesOperator",
    "VBrainExecuteJobOperator",
]

_UI_COLOR = "#d7ecf9"


class _VBrainOperator(VBrainTaskMixin, BaseOperator):
    """Connection arguments shared by every VBrain operator."""

    ui_color = _UI_COLOR

    def __init__(
        self, *, vbrain_conn_id: str = "vbrain_default", application_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.vbrain_conn_id = vbrain_conn_id
        self.application_id = application_id


class VBrainCreateRepositoryOperator(_VBrainOperator):
    """Create a VBrain repository and return its id (XCom ``return_value``).

    :param repository_params: parameters common to the repository's jobs, a JSON
        object (what the API calls ``params``; templated).
    :param metadata: free-form JSON object kept with the repository (templated).
    :param input_file: a ZIP of all inputs or one ``.csv``/``.xlsx``/``.json`` file:
        a local path, an object-storage URL (``s3://...``, ``file://...``) or an
        ``ObjectStoragePath`` (templated).
    :param reattach_on_retry: the repository's metadata records this task's identity
        under ``"airflow"``; a retried task, or one whose create was not confirmed,
        reuses the repository it finds instead of creating a second one.
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
        reattach_on_retry: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.repository_params = repository_params
        self.metadata = metadata
        self.input_file = input_file
        self.reattach_on_retry = reattach_on_retry
        self.created_repository_id: str | None = None

    def execute(self, context: Context) -> str:
        identity = task_identity(context)
        params = json_object("repository_params", self.repository_params)
        metadata = {**(json_object("metadata", self.metadata) or {}), AIRFLOW_METADATA_KEY: identity}
        upload = None if self.input_file is None else location(self.input_file)
        # Repositories listed from a day back: wide enough for any clock skew, narrow enough to read.
        since = datetime.now(timezone.utc) - timedelta(days=1)

        def find() -> Lookup[str]:
            return _reattach.find_repository(self.hook, identity, since)

        if context["ti"].try_number > 1 and self.reattach_on_retry:
            earlier = find()
            if earlier.seen is Seen.FOUND:
                self.log.info("Reusing repository %s, created by an earlier try", earlier.value)
                self.created_repository_id = str(earlier.value)
                return self.created_repository_id
            if earlier.seen is Seen.UNKNOWN:
                self.log.warning("Reattaching is not possible: %s", earlier.reason)
        repository_id = _reattach.create_once(
            lambda: self.hook.create_repository(params, metadata, upload),
            find,
            "repository",
            reattach=self.reattach_on_retry,
            log=self.log,
        )
        self.log.info("VBrain repository %s", repository_id)
        self.created_repository_id = repository_id
        return repository_id

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the input file in, the repository out (called by Airflow's OpenLineage listener)."""
        settings = self.hook.settings
        created = self.created_repository_id
        return _lineage.lineage(
            settings,
            self.application_id,
            inputs=[] if self.input_file is None else [_lineage.file_place(location(self.input_file))],
            outputs=[]
            if created is None
            else [_lineage.repository_place(settings, self.application_id, created)],
            repository_id=created,
        )


class VBrainExecuteJobOperator(_VBrainOperator):
    """Start a job in a VBrain repository and return its id (XCom ``return_value``).

    With ``wait_for_completion=True`` the task also waits for the job: on the
    triggerer when deferrable (no worker slot held), else by polling. The job id is
    pushed as XCom key ``job_id`` before the wait (for clean-up tasks, should the job
    fail), a finished job's output as XCom key ``result``; a failed job fails the task
    with its log tail in the task log.

    The job's metadata records this task's identity (dag id, task id, run id,
    map index) under ``"airflow"``, merged with ``metadata``. When the task is
    retried after it already submitted a job (a lost worker, a lost deferral, an
    answer lost on the way back) it reattaches to that job instead of starting a
    second one, unless that job failed. The same lookup follows a submit whose
    answer was lost: the job found is used, or, when none exists, the submit is
    repeated once. ``reattach_on_retry=False`` always submits and never repeats.

    VBrain has no cancel endpoint: killing this task does not stop the job.

    :param repository_id: the repository to run in (templated).
    :param job_params: the job's parameters, a JSON object merged by VBrain over
        the repository's (the API's ``params``; templated).
    :param metadata: free-form JSON object kept with the job (templated).
    :param input_file: a ZIP or ``.csv``/``.xlsx``/``.json`` input for this job: local
        path, object-storage URL or ``ObjectStoragePath`` (templated).
    :param wait_for_completion: wait for the job to end.
    :param deferrable: wait on the triggerer (default: Airflow's ``[operators] default_deferrable``).
    :param poll_interval: seconds between status polls while waiting.
    :param timeout: seconds (or a ``timedelta``) to wait before failing; None waits as
        long as the task may run.
    :param reattach_on_retry: on a retry, reuse the job an earlier try submitted.
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
        timeout: Any = None,
        reattach_on_retry: bool = True,
        max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_result_bytes = max_result_bytes
        self.repository_id = repository_id
        self.job_params = job_params
        self.metadata = metadata
        self.input_file = input_file
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = seconds(positive("poll_interval", poll_interval)) or 0.0
        self.timeout = seconds(timeout)
        self.reattach_on_retry = reattach_on_retry
        self.submitted_job_id: str | None = None

    def execute(self, context: Context) -> str:
        identity = task_identity(context)
        status = self._earlier_job(identity) if context["ti"].try_number > 1 else None
        job_id = status.job_id if status else self._submit(identity)
        self.submitted_job_id = job_id
        self.log.info(
            "VBrain repository %s, job %s: %s", self.repository_id, job_id, self.hook.job_url(job_id)
        )
        self.push_job_link(context, job_id, self.repository_id)
        if not self.wait_for_completion:
            return job_id
        # Known before the wait ends, so clean-up or log tasks can use it even if the job fails.
        context["ti"].xcom_push(key="job_id", value=job_id)
        if status is None or not status.terminal:
            if self.deferrable:
                last_state = status.state if status is not None else None
                self.defer(
                    trigger=self.job_trigger(
                        job_id, self.repository_id, self.poll_interval, self.timeout, last_state
                    ),
                    method_name="execute_complete",
                    timeout=deferral_backstop(self.timeout, self.poll_interval),
                )
            status = self.hook.wait_for_job(
                job_id, self.repository_id, poll_interval=self.poll_interval, timeout=self.timeout
            )
        if outcome_of(status) is Outcome.FAILED:
            raise self.failure(job_id, self.repository_id, status.raw_state)
        return self._finish(context, job_id)

    def execute_complete(self, context: Context, event: Any = None) -> str:
        """Resume after the trigger fired: push the result, or fail."""
        job_event = read_event(event)
        self.submitted_job_id = job_event.job_id
        self.raise_for_unsuccessful(job_event)
        return self._finish(context, job_event.job_id)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the repository and the input file in, the job out (also for a failed job)."""
        settings = self.hook.settings
        repository = _lineage.repository_place(settings, self.application_id, self.repository_id)
        upload = [] if self.input_file is None else [_lineage.file_place(location(self.input_file))]
        job_id = self.submitted_job_id
        return _lineage.lineage(
            settings,
            self.application_id,
            inputs=[repository, *upload],
            outputs=[]
            if job_id is None
            else [_lineage.job_place(settings, self.application_id, self.repository_id, job_id)],
            repository_id=self.repository_id,
            job_id=job_id,
        )

    def _finish(self, context: Context, job_id: str) -> str:
        self.log.info("VBrain job %s finished", job_id)
        context["ti"].xcom_push(key="result", value=self.result_of(job_id, self.repository_id))
        return job_id

    def _submit(self, identity: dict[str, Any]) -> str:
        params = json_object("job_params", self.job_params)
        metadata = {**(json_object("metadata", self.metadata) or {}), AIRFLOW_METADATA_KEY: identity}
        upload = None if self.input_file is None else location(self.input_file)

        def find() -> Lookup[str]:
            lookup = _reattach.find_job(self.hook, self.repository_id, identity)
            if lookup.value is None:
                return Lookup(lookup.seen, reason=lookup.reason)
            return Lookup(lookup.seen, lookup.value.job_id)

        return _reattach.create_once(
            lambda: self.hook.execute_job(self.repository_id, params, metadata, upload),
            find,
            "job",
            reattach=self.reattach_on_retry,
            log=self.log,
        )

    def _earlier_job(self, identity: dict[str, Any]) -> JobStatus | None:
        """The job an earlier try (or an unanswered submit) created, if it is worth reattaching to."""
        if not self.reattach_on_retry:
            return None
        lookup = _reattach.find_job(self.hook, self.repository_id, identity)
        status = lookup.value
        if lookup.seen is Seen.UNKNOWN:
            self.log.warning("Reattaching is not possible: %s", lookup.reason)
            return None
        if status is None:
            self.log.info("No job of this task found in repository %s: submitting one", self.repository_id)
            return None
        if status.state is JobState.FAILED:
            self.log.info("The job of an earlier try, %s, failed: submitting a new one", status.job_id)
            return None
        self.log.info(
            "Reattaching to job %s (%s), submitted by an earlier try", status.job_id, status.raw_state
        )
        return status


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
        return _lineage.lineage(
            settings,
            self.application_id,
            inputs=[_lineage.job_place(settings, self.application_id, self.repository_id, self.job_id)],
            outputs=[] if self.written is None else [_lineage.file_place(self.written)],
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
