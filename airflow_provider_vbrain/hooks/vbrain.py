"""Hooks for VBrain: :class:`VBrainHook` (blocking, requests) and :class:`VBrainAsyncHook` (asyncio, aiohttp).

One method per endpoint, each a line that hands an
:mod:`~airflow_provider_vbrain._client.endpoints` request to a transport. What to send,
whether to retry and what an answer means are decided once, in the I/O-free
core, for both hooks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from airflow_provider_vbrain._airflow import form
from airflow_provider_vbrain._airflow import metrics as _metrics  # noqa: F401 (installs the Stats meter)
from airflow_provider_vbrain._airflow.compat import BaseHook
from airflow_provider_vbrain._airflow.connection_test import test_connection
from airflow_provider_vbrain._airflow.connections import loop_settings, read_settings
from airflow_provider_vbrain._airflow.files import InputFile, file_safe, upload
from airflow_provider_vbrain._client import endpoints
from airflow_provider_vbrain._client.endpoints import ApiRequest
from airflow_provider_vbrain._client.logs import LOG_TAIL_LINES, failed_job_error, job_log_tail
from airflow_provider_vbrain._client.polling import DEFAULT_MAX_POLL_INTERVAL
from airflow_provider_vbrain._client.retry import RetryPolicy
from airflow_provider_vbrain._client.waiting import JobWait
from airflow_provider_vbrain._transport import aio
from airflow_provider_vbrain._transport.sink import Destination, Sink
from airflow_provider_vbrain._transport.sync import SyncTransport
from airflow_provider_vbrain.connection import CONN_TYPE, DEFAULT_CONN_ID, VBrainSettings
from airflow_provider_vbrain.exceptions import VBrainError, VBrainJobFailedError
from airflow_provider_vbrain.jobs import JobStatus

__all__ = ["VBrainAsyncHook", "VBrainHook"]

T = TypeVar("T")


class _VBrainHookBase(BaseHook):
    """What the sync and async hooks share: identity, connection form, settings."""

    conn_name_attr = "vbrain_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "VBrain"

    def __init__(
        self,
        vbrain_conn_id: str = default_conn_name,
        application_id: str | None = None,
        *,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        """
        :param vbrain_conn_id: the Airflow connection to use.
        :param application_id: overrides the connection's ``application_id`` extra.
        :param retry_policy: overrides the retry settings from the connection's extras.
        """
        super().__init__()
        self.vbrain_conn_id = vbrain_conn_id
        self.application_id = application_id
        self._retry_policy = retry_policy
        self._settings: VBrainSettings | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vbrain_conn_id={self.vbrain_conn_id!r})"

    def _use(self, settings: VBrainSettings) -> VBrainSettings:
        """Keep ``settings`` for this hook, with its own retry policy if it has one."""
        if self._retry_policy is not None:
            settings = dataclasses.replace(settings, retry=self._retry_policy)
        self._settings = settings
        return settings


class VBrainHook(_VBrainHookBase):
    """Call the VBrain REST API: one method per endpoint, retries and typed errors built in.

    Nothing is read or sent until a method is called. Every failure raises a
    :class:`~airflow_provider_vbrain.exceptions.VBrainError` naming the endpoint,
    the HTTP status and the server's message.

    :param vbrain_conn_id: the Airflow connection to use (conn type ``vbrain``).
    :param application_id: overrides the connection's ``application_id`` extra.
    :param retry_policy: overrides the retry settings from the connection's extras.
    """

    # Airflow looks these two up in the registered hook class's own ``__dict__``.
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form's relabelling, for the Airflow lines that ask the hook."""
        return form.hook_field_behaviour()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The connection form's extra fields, for the Airflow lines that ask the hook."""
        return form.hook_form_widgets()

    @property
    def settings(self) -> VBrainSettings:
        """The connection's settings, read and validated on first use."""
        if self._settings is None:
            return self._use(read_settings(self.get_connection(self.vbrain_conn_id)))
        return self._settings

    @functools.cached_property
    def _transport(self) -> SyncTransport:
        return SyncTransport()

    # ---------------------------------------------------------------- repositories

    def list_repositories(
        self, from_date: datetime | str | None = None, to_date: datetime | str | None = None
    ) -> list[str]:
        """Ids of the repositories, optionally created between two dates (``YYYYMMDDHHMM`` or datetimes)."""
        return self._call(endpoints.list_repositories(from_date, to_date))

    def create_repository(
        self,
        params: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        input_file: InputFile | None = None,
    ) -> str:
        """Create a repository and return its id.

        :param params: parameters common to the repository's jobs (a JSON object).
        :param metadata: free-form JSON object kept with the repository.
        :param input_file: a ZIP of all inputs, or one ``.csv``/``.xlsx``/``.json`` file.
        """
        return self._call(endpoints.create_repository(params, metadata, upload(input_file)))

    def get_repository(self, repository_id: str) -> dict[str, Any]:
        """A repository's details: name, input file names, creation, job ids, metadata."""
        return self._call(endpoints.get_repository(repository_id))

    def delete_repository(self, repository_id: str) -> None:
        """Delete a repository and every job in it."""
        self._call(endpoints.delete_repository(repository_id))

    def get_repository_params(self, repository_id: str) -> dict[str, Any]:
        """The parameters a repository was created with."""
        return self._call(endpoints.get_repository_params(repository_id))

    def download_repository_input(self, repository_id: str, destination: Destination) -> str:
        """Stream a repository's input folder (a ZIP) to ``destination`` and return where it went."""
        request = endpoints.download_repository_input(repository_id)
        return self._download(request, destination, f"{file_safe(repository_id)}-input")

    # ---------------------------------------------------------------- jobs

    def list_jobs(
        self,
        repository_id: str,
        from_date: datetime | str | None = None,
        to_date: datetime | str | None = None,
    ) -> list[str]:
        """Ids of the jobs in a repository, optionally created between two dates."""
        return self._call(endpoints.list_jobs(repository_id, from_date, to_date))

    def execute_job(
        self,
        repository_id: str,
        params: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        input_file: InputFile | None = None,
    ) -> str:
        """Start a job in a repository and return its id.

        Sent as JSON without a file, as multipart form-data with one. The request
        is not repeated after an answer that leaves in doubt whether the job was
        created (see :class:`~airflow_provider_vbrain.exceptions.VBrainMaybeCreatedError`).

        :param params: the job's parameters, merged by VBrain over the repository's.
        :param metadata: free-form JSON object kept with the job.
        :param input_file: a ZIP or ``.csv``/``.xlsx``/``.json`` file for this job.
        """
        return self._call(endpoints.execute_job(repository_id, params, metadata, upload(input_file)))

    def get_job_status(self, job_id: str, repository_id: str) -> JobStatus:
        """The job's typed status: 202 and ``queued``/``started`` while running, 200 when over."""
        return self._call(endpoints.get_job_status(job_id, repository_id))

    def get_job_result(self, job_id: str, repository_id: str) -> Any:
        """The ``output`` of a finished job.

        :raises VBrainJobNotFinishedError: the job has not ended yet.
        :raises VBrainServerError: HTTP 500, which VBrain answers for a failed job.
        """
        return self._call(endpoints.get_job_result(job_id, repository_id))

    def get_job_params(self, job_id: str, repository_id: str) -> dict[str, Any]:
        """The parameters a job ran with."""
        return self._call(endpoints.get_job_params(job_id, repository_id))

    def download_job_output(self, job_id: str, repository_id: str, destination: Destination) -> str:
        """Stream a finished job's output folder (a ZIP) to ``destination``; return where it went.

        ``destination`` may be a file path, an existing directory (the file is then
        named ``<job_id>-output.zip``) or an object with ``open("wb")``.
        """
        request = endpoints.download_job_output(job_id, repository_id)
        return self._download(request, destination, f"{file_safe(job_id)}-output")

    def download_job_logs(self, job_id: str, repository_id: str, destination: Destination) -> str:
        """Stream a job's log folder (a ZIP) to ``destination``; return where it went."""
        request = endpoints.download_job_logs(job_id, repository_id)
        return self._download(request, destination, f"{file_safe(job_id)}-logs")

    def delete_job(self, job_id: str, repository_id: str) -> None:
        """Delete a job's folder. VBrain has no cancel endpoint; this does not stop a running job."""
        self._call(endpoints.delete_job(job_id, repository_id))

    # ---------------------------------------------------------------- beyond one endpoint

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection for Airflow's Test button: one request, no retry, a short timeout.

        See :func:`airflow_provider_vbrain._airflow.connection_test.test_connection`.
        """
        conn = self.get_connection(self.vbrain_conn_id)
        return test_connection(conn, self.application_id, self._transport.call)

    def wait_for_job(
        self,
        job_id: str,
        repository_id: str,
        *,
        poll_interval: float = 10.0,
        max_poll_interval: float | None = DEFAULT_MAX_POLL_INTERVAL,
        timeout: float | None = None,
        on_status: Callable[[JobStatus], None] | None = None,
    ) -> JobStatus:
        """Poll a job until it is over, and return its last status (``finished`` or ``failed``).

        Blocks the calling thread: the operators use it only when not deferring.
        Transient failures of a poll (after the hook's own retries) are tolerated
        up to :data:`~airflow_provider_vbrain._client.waiting.MAX_CONSECUTIVE_POLL_FAILURES` in a row.

        :param poll_interval: seconds between polls at first.
        :param max_poll_interval: the longest interval the polls grow to as the job runs on (a tenth
            of the time waited so far; see :class:`~airflow_provider_vbrain._client.polling.PollSchedule`);
            None polls every ``poll_interval``.
        :param timeout: give up after this many seconds with
            :class:`~airflow_provider_vbrain.exceptions.VBrainJobTimeoutError`; None waits forever.
        :param on_status: called with each status whose state differs from the previous one.
        """
        end_time = None if timeout is None else time.time() + timeout
        wait = JobWait(
            job_id,
            repository_id,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            end_time=end_time,
            log=self.log,
            on_change=on_status,
        )
        while True:
            step = wait.poll(lambda: self.get_job_status(job_id, repository_id))
            if isinstance(step, float | int):
                time.sleep(step)
                continue
            if step.error is not None:  # a timeout, or a poll that failed for good
                raise step.error
            assert wait.last_status is not None  # finished and failed events follow a status
            return wait.last_status

    def job_url(self, job_id: str) -> str:
        """The API URL of a job's status, for logs and links."""
        return self.settings.api_url + endpoints.job_path(job_id)

    def job_log_tail(self, job_id: str, repository_id: str, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of a job's log files, read from its logs ZIP in a temporary folder.

        What is read is bounded (a few files, a few KiB each; see :func:`.log_tail`), whatever the
        ZIP holds. A logs ZIP that cannot be read raises :class:`.VBrainError`.
        """
        with tempfile.TemporaryDirectory(prefix="vbrain-logs-") as folder:
            return job_log_tail(job_id, self.download_job_logs(job_id, repository_id, folder), lines)

    def job_failure(
        self, job_id: str, repository_id: str, job_status: str = "failed"
    ) -> VBrainJobFailedError:
        """The error for a failed job, quoting the end of its logs when they can be read."""
        try:
            tail = self.job_log_tail(job_id, repository_id)
        except (VBrainError, OSError) as err:
            tail = f"(its logs could not be read: {err})"
        return failed_job_error(job_id, repository_id, job_status, tail)

    def _call(self, request: ApiRequest[T]) -> T:
        return self._transport.call(self.settings, self.application_id, request, log=self.log)

    def _download(self, request: ApiRequest[bytes], destination: Destination, stem: str) -> str:
        sink = Sink(destination, f"{stem}.zip", log=self.log)
        self._transport.call(self.settings, self.application_id, request, sink, log=self.log)
        return sink.location


class VBrainAsyncHook(_VBrainHookBase):
    """The asyncio twin of :class:`VBrainHook`, for triggers: the reading endpoints, same names and values.

    All instances running on one event loop share one ``aiohttp.ClientSession``,
    so a triggerer waiting on many jobs reuses its connections.
    """

    _status_request: tuple[tuple[str, str], ApiRequest[JobStatus]] | None = None

    async def get_settings(self) -> VBrainSettings:
        """The connection's settings, read without blocking the event loop.

        Hooks on one event loop share a reading for
        :data:`~airflow_provider_vbrain._airflow.connections.CONNECTION_REUSE_SECONDS`: a triggerer
        that starts a thousand waits reads the connection once, not a thousand times (each read
        costs Airflow about 0.4 ms of CPU).
        """
        if self._settings is None:
            return self._use(await loop_settings(self.vbrain_conn_id))
        return self._settings

    async def list_repositories(
        self, from_date: datetime | str | None = None, to_date: datetime | str | None = None
    ) -> list[str]:
        """See :meth:`VBrainHook.list_repositories`."""
        return await self._call(endpoints.list_repositories(from_date, to_date))

    async def get_repository(self, repository_id: str) -> dict[str, Any]:
        """See :meth:`VBrainHook.get_repository`."""
        return await self._call(endpoints.get_repository(repository_id))

    async def get_repository_params(self, repository_id: str) -> dict[str, Any]:
        """See :meth:`VBrainHook.get_repository_params`."""
        return await self._call(endpoints.get_repository_params(repository_id))

    async def list_jobs(
        self,
        repository_id: str,
        from_date: datetime | str | None = None,
        to_date: datetime | str | None = None,
    ) -> list[str]:
        """See :meth:`VBrainHook.list_jobs`."""
        return await self._call(endpoints.list_jobs(repository_id, from_date, to_date))

    async def get_job_status(self, job_id: str, repository_id: str) -> JobStatus:
        """See :meth:`VBrainHook.get_job_status`."""
        # A trigger asks for the same job's status on every poll: its request is built once.
        last = self._status_request
        if last is None or last[0] != (job_id, repository_id):
            last = self._status_request = (
                (job_id, repository_id),
                endpoints.get_job_status(job_id, repository_id),
            )
        return await self._call(last[1])

    async def get_job_result(self, job_id: str, repository_id: str) -> Any:
        """See :meth:`VBrainHook.get_job_result`."""
        return await self._call(endpoints.get_job_result(job_id, repository_id))

    async def get_job_params(self, job_id: str, repository_id: str) -> dict[str, Any]:
        """See :meth:`VBrainHook.get_job_params`."""
        return await self._call(endpoints.get_job_params(job_id, repository_id))

    async def job_failure(
        self, job_id: str, repository_id: str, job_status: str = "failed"
    ) -> VBrainJobFailedError:
        """See :meth:`VBrainHook.job_failure`. The logs ZIP is downloaded as the sync hook downloads
        it (streamed to a temporary file, checked, capped), then read off the event loop."""
        folder = await asyncio.to_thread(tempfile.mkdtemp, prefix="vbrain-logs-")
        try:
            sink = Sink(folder, "logs.zip", log=self.log)
            request = endpoints.download_job_logs(job_id, repository_id)
            await aio.call(await self.get_settings(), self.application_id, request, log=self.log, sink=sink)
            tail = await asyncio.to_thread(job_log_tail, job_id, sink.location)
        except (VBrainError, OSError) as err:
            tail = f"(its logs could not be read: {err})"
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        return failed_job_error(job_id, repository_id, job_status, tail)

    async def _call(self, request: ApiRequest[T]) -> T:
        return await aio.call(await self.get_settings(), self.application_id, request, log=self.log)
