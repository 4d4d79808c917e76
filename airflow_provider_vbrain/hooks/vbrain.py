"""Hooks for VBrain: :class:`VBrainHook` (requests) and :class:`VBrainAsyncHook` (aiohttp).

Both are thin transports over :mod:`airflow_provider_vbrain._api`: the core
decides what to send, whether to retry and what an answer means; the code here
only sends, sleeps and writes downloads to disk. aiohttp is imported only by
the async hook, so DAG files that use the operators do not pay for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_vbrain import _api
from airflow_provider_vbrain._api import (
    ApiRequest,
    Exchange,
    FailureKind,
    Response,
    RetryPolicy,
    Send,
    TransportFailure,
    Upload,
)
from airflow_provider_vbrain._compat import (
    BaseHook,
    aget_connection,
    connection_form_widgets,
    mask_secret,
    ui_field_behaviour,
)
from airflow_provider_vbrain.connection import VBrainSettings
from airflow_provider_vbrain.exceptions import (
    VBrainConfigError,
    VBrainError,
    VBrainInputError,
    VBrainJobFailedError,
    VBrainJobTimeoutError,
    VBrainNotFoundError,
    VBrainReattachUnavailableError,
)
from airflow_provider_vbrain.jobs import JobStatus, PollTracker

if TYPE_CHECKING:
    import aiohttp
    import requests

__all__ = ["VBrainAsyncHook", "VBrainHook"]

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
#: The job-metadata key under which the operators record the Airflow task that submitted a job.
AIRFLOW_METADATA_KEY = "airflow"
#: How many lines of each log file a failed job's error quotes.
LOG_TAIL_LINES = 50

#: What an ``input_file`` argument may be: a local path, or an object with
#: ``open("rb")`` and a ``name`` (Airflow's ``ObjectStoragePath``, say).
InputFile = str | os.PathLike[str] | Any
#: Where a download may go: a local file or directory path, or an object with ``open("wb")``.
Destination = str | os.PathLike[str] | Any


class _VBrainHookBase(BaseHook):
    """What the sync and async hooks share: identity, connection form, settings."""

    conn_name_attr = "vbrain_conn_id"
    default_conn_name = "vbrain_default"
    conn_type = "vbrain"
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

    def _headers(self, settings: VBrainSettings, request: ApiRequest) -> dict[str, str]:
        return _api.build_headers(settings, self.application_id, request)


class VBrainHook(_VBrainHookBase):
    """Call the VBrain REST API: one method per endpoint, retries and typed errors built in.

    Nothing is read or sent until a method is called. Every failure raises a
    :class:`~airflow_provider_vbrain.exceptions.VBrainError` naming the endpoint,
    the HTTP status and the server's message.

    :param vbrain_conn_id: the Airflow connection to use (conn type ``vbrain``).
    :param application_id: overrides the connection's ``application_id`` extra.
    :param retry_policy: overrides the retry settings from the connection's extras.
    """

    @property
    def settings(self) -> VBrainSettings:
        """The connection's settings, read and validated on first use."""
        if self._settings is None:
            return self._use(_read_settings(self.get_connection(self.vbrain_conn_id)))
        return self._settings

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form relabelling, for Airflow before 3.2 (3.2+ reads it from the provider info)."""
        return ui_field_behaviour(cls.conn_type)

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra connection-form fields, for Airflow before 3.2 (3.2+ reads them from the provider info)."""
        return connection_form_widgets(cls.conn_type)

    @functools.cached_property
    def session(self) -> requests.Session:
        """One HTTP session per hook, so connections are pooled."""
        import requests

        return requests.Session()

    # ---------------------------------------------------------------- repositories

    def list_repositories(
        self, from_date: datetime | str | None = None, to_date: datetime | str | None = None
    ) -> list[str]:
        """Ids of the repositories, optionally created between two dates (``YYYYMMDDHHMM`` or datetimes)."""
        return self._call(_api.list_repositories(from_date, to_date))

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
        return self._call(_api.create_repository(params, metadata, _upload(input_file)))

    def get_repository(self, repository_id: str) -> dict[str, Any]:
        """A repository's details: name, input file names, creation, job ids, metadata."""
        return self._call(_api.get_repository(repository_id))

    def delete_repository(self, repository_id: str) -> None:
        """Delete a repository and every job in it."""
        self._call(_api.delete_repository(repository_id))

    def get_repository_params(self, repository_id: str) -> dict[str, Any]:
        """The parameters a repository was created with."""
        return self._call(_api.get_repository_params(repository_id))

    def download_repository_input(self, repository_id: str, destination: Destination) -> str:
        """Stream a repository's input folder (a ZIP) to ``destination`` and return where it went."""
        return self._download(
            _api.download_repository_input(repository_id), destination, f"{file_safe(repository_id)}-input"
        )

    # ---------------------------------------------------------------- jobs

    def list_jobs(
        self,
        repository_id: str,
        from_date: datetime | str | None = None,
        to_date: datetime | str | None = None,
    ) -> list[str]:
        """Ids of the jobs in a repository, optionally created between two dates."""
        return self._call(_api.list_jobs(repository_id, from_date, to_date))

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
        return self._call(_api.execute_job(repository_id, params, metadata, _upload(input_file)))

    def get_job_status(self, job_id: str, repository_id: str) -> JobStatus:
        """The job's typed status: 202 and ``queued``/``started`` while running, 200 when over."""
        return self._call(_api.get_job_status(job_id, repository_id))

    def get_job_result(self, job_id: str, repository_id: str) -> Any:
        """The ``output`` of a finished job.

        :raises VBrainJobNotFinishedError: the job has not ended yet.
        :raises VBrainServerError: HTTP 500, which VBrain answers for a failed job.
        """
        return self._call(_api.get_job_result(job_id, repository_id))

    def get_job_params(self, job_id: str, repository_id: str) -> dict[str, Any]:
        """The parameters a job ran with."""
        return self._call(_api.get_job_params(job_id, repository_id))

    def download_job_output(self, job_id: str, repository_id: str, destination: Destination) -> str:
        """Stream a finished job's output folder (a ZIP) to ``destination``; return where it went.

        ``destination`` may be a file path, an existing directory (the file is then
        named ``<job_id>-output.zip``) or an object with ``open("wb")``.
        """
        return self._download(
            _api.download_job_output(job_id, repository_id), destination, f"{file_safe(job_id)}-output"
        )

    def download_job_logs(self, job_id: str, repository_id: str, destination: Destination) -> str:
        """Stream a job's log folder (a ZIP) to ``destination``; return where it went."""
        return self._download(
            _api.download_job_logs(job_id, repository_id), destination, f"{file_safe(job_id)}-logs"
        )

    def delete_job(self, job_id: str, repository_id: str) -> None:
        """Delete a job's folder. VBrain has no cancel endpoint; this does not stop a running job."""
        self._call(_api.delete_job(job_id, repository_id))

    # ---------------------------------------------------------------- helpers

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection from Airflow's UI with a cheap read (listing repositories)."""
        try:
            count = len(self.list_repositories())
        except VBrainError as err:
            return False, str(err)
        return True, f"Connected to VBrain at {self.settings.base_url}: {count} repositories visible."

    def wait_for_job(
        self,
        job_id: str,
        repository_id: str,
        *,
        poll_interval: float = 10.0,
        timeout: float | None = None,
        on_status: Callable[[JobStatus], None] | None = None,
    ) -> JobStatus:
        """Poll a job until it is over, and return its last status (``finished`` or ``failed``).

        Blocks the calling thread: the operators use it only when not deferring.
        Transient failures of a poll (after the hook's own retries) are tolerated
        up to :data:`~airflow_provider_vbrain.jobs.MAX_CONSECUTIVE_POLL_FAILURES` in a row.

        :param poll_interval: seconds between polls.
        :param timeout: give up after this many seconds with
            :class:`~airflow_provider_vbrain.exceptions.VBrainJobTimeoutError`; None waits forever.
        :param on_status: called with each status whose state differs from the previous one.
        """
        started = time.monotonic()
        tracker = PollTracker()
        last_raw = "unknown"
        while True:
            try:
                status = self.get_job_status(job_id, repository_id)
            except VBrainError as err:
                if not tracker.tolerate(err):
                    raise
                self.log.warning("Polling job %s failed (%d in a row): %s", job_id, tracker.failures, err)
            else:
                last_raw = status.raw_state
                if tracker.observe(status) and on_status:
                    on_status(status)
                if status.terminal:
                    return status
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise VBrainJobTimeoutError(job_id, repository_id, waited, last_raw)
            pause = poll_interval if timeout is None else min(poll_interval, timeout - waited)
            time.sleep(max(pause, 0.0))

    def find_job(self, repository_id: str, identity: Mapping[str, Any]) -> JobStatus | None:
        """The newest job of a repository whose metadata carries ``identity`` under ``"airflow"``.

        Used to reattach a retried task to the job an earlier try submitted. Reads
        every job's status, so its cost grows with the repository's job count.

        :raises VBrainReattachUnavailableError: the status answers carry no ``metadata``,
            so whether such a job exists cannot be told.
        """
        jobs = self.list_jobs(repository_id)
        statuses = _skipping_gone(lambda job_id: self.get_job_status(job_id, repository_id), jobs)
        return _newest_tagged(((status, status.body) for _, status in statuses), identity, "job")

    def find_repository(self, identity: Mapping[str, Any], since: datetime | str | None = None) -> str | None:
        """The newest repository created since ``since`` whose metadata carries ``identity``.

        Reads the details of each repository listed, so bound it with ``since``.
        """
        repositories = _skipping_gone(self.get_repository, self.list_repositories(from_date=since))
        return _newest_tagged(repositories, identity, "repository")

    def job_url(self, job_id: str) -> str:
        """The API URL of a job's status, for logs and links."""
        return self.settings.api_url + _api.job_path(job_id)

    def job_log_tail(self, job_id: str, repository_id: str, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of each file in a job's logs ZIP (downloaded to a temporary folder)."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="vbrain-logs-") as folder:
            return log_tail(self.download_job_logs(job_id, repository_id, folder), lines)

    def job_failure(
        self, job_id: str, repository_id: str, job_status: str = "failed"
    ) -> VBrainJobFailedError:
        """The error for a failed job, quoting the end of its logs when they can be read."""
        import zipfile

        try:
            tail = self.job_log_tail(job_id, repository_id)
        except (VBrainError, OSError, zipfile.BadZipFile) as err:
            tail = f"(its logs could not be read: {err})"
        detail = f"end of its logs:\n{tail}" if tail else "its logs are empty"
        return VBrainJobFailedError(job_id, repository_id, job_status, detail)

    def _call(self, request: ApiRequest) -> Any:
        return self._run(request, None)

    def _download(self, request: ApiRequest, destination: Destination, stem: str) -> str:
        sink = _Sink(destination, f"{stem}.zip")
        self._run(request, sink)
        return sink.location

    def _run(self, request: ApiRequest, sink: _Sink | None) -> Any:
        settings = self.settings
        steps: Exchange = _api.exchange(request, settings.retry)
        command = next(steps)
        while True:
            try:
                if isinstance(command, Send):
                    outcome: Response | TransportFailure | None = self._send(settings, command, sink)
                else:
                    time.sleep(command.seconds)
                    outcome = None
                command = steps.send(outcome)
            except StopIteration as done:
                return done.value

    def _send(
        self, settings: VBrainSettings, command: Send, sink: _Sink | None
    ) -> Response | TransportFailure:
        import requests

        request = command.request
        kwargs: dict[str, Any] = {
            "headers": self._headers(settings, request),
            "params": request.query,
            "timeout": settings.timeout,
            "verify": settings.verify,
            "stream": request.download,
            "allow_redirects": False,  # a redirect would carry the API key to another host
        }
        log.debug("VBrain %s (attempt %d)", request.endpoint, command.attempt)
        with _open_upload(request.upload) as file:
            if file is not None and request.upload is not None:
                kwargs["files"] = {"file": (request.upload.name, file, request.upload.content_type)}
                kwargs["data"] = dict(request.form or {})
            elif request.json_body is not None:
                kwargs["json"] = request.json_body
            try:
                with self.session.request(
                    request.method, settings.api_url + request.path, **kwargs
                ) as answer:
                    headers = {k.lower(): v for k, v in answer.headers.items()}
                    if sink is not None and answer.status_code == 200:
                        sink.write(answer.iter_content(_CHUNK))
                        return Response(answer.status_code, headers)
                    return Response(answer.status_code, headers, answer.content)
            except requests.exceptions.RequestException as err:
                return _classify_requests_error(err)


class VBrainAsyncHook(_VBrainHookBase):
    """The asyncio twin of :class:`VBrainHook` for triggers: status, result, logs and listing.

    All instances running on one event loop share one ``aiohttp.ClientSession``,
    so a triggerer waiting on many jobs reuses its connections.
    """

    async def get_settings(self) -> VBrainSettings:
        """The connection's settings, read without blocking the event loop.

        Hooks on one event loop share a reading for :data:`CONNECTION_REUSE_SECONDS`:
        a triggerer that starts a thousand waits reads the connection once, not a
        thousand times (each read costs Airflow about 0.4 ms of CPU).
        """
        if self._settings is None:
            return self._use(await _loop_settings(self.vbrain_conn_id))
        return self._settings

    async def get_job_status(self, job_id: str, repository_id: str) -> JobStatus:
        """The job's typed status (see :meth:`VBrainHook.get_job_status`)."""
        return await self._call(_api.get_job_status(job_id, repository_id))

    async def get_job_result(self, job_id: str, repository_id: str) -> Any:
        """The ``output`` of a finished job (see :meth:`VBrainHook.get_job_result`)."""
        return await self._call(_api.get_job_result(job_id, repository_id))

    async def get_job_logs(self, job_id: str, repository_id: str) -> bytes:
        """A job's log folder as ZIP bytes (logs are small; outputs use the sync hook)."""
        return await self._call(_api.download_job_logs(job_id, repository_id))

    async def list_jobs(self, repository_id: str) -> list[str]:
        """Ids of the jobs in a repository."""
        return await self._call(_api.list_jobs(repository_id))

    async def _call(self, request: ApiRequest) -> Any:
        settings = await self.get_settings()
        steps: Exchange = _api.exchange(request, settings.retry)
        command = next(steps)
        while True:
            try:
                if isinstance(command, Send):
                    outcome: Response | TransportFailure | None = await self._send(settings, command)
                else:
                    await asyncio.sleep(command.seconds)
                    outcome = None
                command = steps.send(outcome)
            except StopIteration as done:
                return done.value

    async def _send(self, settings: VBrainSettings, command: Send) -> Response | TransportFailure:
        import aiohttp

        request = command.request
        session = shared_session()
        if request.upload is not None:
            raise VBrainInputError("input_file", "uploads are sent with the sync VBrainHook")
        log.debug("VBrain %s (attempt %d)", request.endpoint, command.attempt)
        try:
            async with session.request(
                request.method,
                settings.api_url + request.path,
                headers=self._headers(settings, request),
                params=request.query,
                json=request.json_body,
                timeout=_client_timeout(settings.timeout),
                ssl=await _ssl_option(settings),
                allow_redirects=False,  # a redirect would carry the API key to another host
            ) as answer:
                body = await answer.read()
                return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, body)
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            return _classify_aiohttp_error(err)


# ---------------------------------------------------------------------- transport details

_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)
_SESSION_CLOSERS: set[asyncio.Task[None]] = set()
#: Connections the shared session keeps open at most (requests beyond wait for one to free up).
SHARED_SESSION_CONNECTIONS = 100


#: Seconds for which hooks on one event loop reuse a connection another hook read (a changed
#: connection is seen by new triggers after at most this long).
CONNECTION_REUSE_SECONDS = 30.0
_LOOP_SETTINGS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[float, asyncio.Task[VBrainSettings]]]
] = weakref.WeakKeyDictionary()


def _read_settings(conn: Any) -> VBrainSettings:
    settings = VBrainSettings.from_connection(conn)
    mask_secret(settings.api_key)
    return settings


async def _loop_settings(conn_id: str) -> VBrainSettings:
    """The connection's settings, read once per event loop and reuse period, however many ask at once."""
    loop = asyncio.get_running_loop()
    readings = _LOOP_SETTINGS.setdefault(loop, {})
    entry = readings.get(conn_id)
    if entry is None or entry[0] <= time.monotonic():

        async def read() -> VBrainSettings:
            return _read_settings(await aget_connection(conn_id))

        task = loop.create_task(read())

        def forget_if_failed(done: asyncio.Task[VBrainSettings]) -> None:
            # A failed reading is not kept: the next hook asks Airflow again.
            current = readings.get(conn_id)
            failed = done.cancelled() or done.exception() is not None
            if failed and current is not None and current[1] is done:
                readings.pop(conn_id, None)

        task.add_done_callback(forget_if_failed)
        entry = readings[conn_id] = (time.monotonic() + CONNECTION_REUSE_SECONDS, task)
    return await asyncio.shield(entry[1])


def shared_session() -> aiohttp.ClientSession:
    """The ``aiohttp.ClientSession`` of the running event loop, created on first use.

    It is closed when the loop shuts down (``asyncio.run`` cancels the task that
    owns it), so short-lived loops such as ``dag.test()``'s leave nothing open.
    """
    import aiohttp

    loop = asyncio.get_running_loop()
    session = _SESSIONS.get(loop)
    if session is None or session.closed:
        # A bounded pool: thousands of waiting triggers share a few reused connections instead of
        # opening one each per burst (each new TLS connection costs a handshake and a buffer).
        connector = aiohttp.TCPConnector(limit=SHARED_SESSION_CONNECTIONS, keepalive_timeout=30)
        session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        _SESSIONS[loop] = session
        closer = loop.create_task(_close_at_shutdown(loop, session), name="vbrain-session-closer")
        _SESSION_CLOSERS.add(closer)
        closer.add_done_callback(_SESSION_CLOSERS.discard)
    return session


async def _close_at_shutdown(loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        if _SESSIONS.get(loop) is session:
            del _SESSIONS[loop]
        await session.close()


async def close_shared_session() -> None:
    """Close the running loop's shared session (for tests and orderly shutdowns)."""
    session = _SESSIONS.pop(asyncio.get_running_loop(), None)
    if session is not None and not session.closed:
        await session.close()


@functools.lru_cache(maxsize=16)
def _client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    import aiohttp

    return aiohttp.ClientTimeout(total=seconds)


@functools.lru_cache(maxsize=16)
def _ssl_context(ca: str) -> Any:
    import ssl

    if os.path.isdir(ca):  # requests accepts a directory of certificates too
        return ssl.create_default_context(capath=ca)
    return ssl.create_default_context(cafile=ca)


async def _ssl_option(settings: VBrainSettings) -> Any:
    """aiohttp's ``ssl`` argument for the connection's ``verify``; a CA bundle is loaded off the loop."""
    if isinstance(settings.verify, bool):
        return settings.verify
    try:
        return await asyncio.to_thread(_ssl_context, settings.verify)
    except (OSError, ValueError) as err:
        raise VBrainConfigError(
            settings.conn_id, "extra verify", f"cannot load the CA bundle: {err}"
        ) from err


def _classify_requests_error(err: Exception) -> TransportFailure:
    import requests
    from urllib3.exceptions import NewConnectionError

    if isinstance(err, requests.exceptions.ConnectTimeout):
        return TransportFailure(FailureKind.CONNECT, err)
    if isinstance(err, requests.exceptions.Timeout):
        return TransportFailure(FailureKind.TIMEOUT, err)
    if isinstance(err, requests.exceptions.SSLError):
        return TransportFailure(FailureKind.TLS, err)
    if isinstance(err, requests.exceptions.ConnectionError):
        reason = getattr(err.args[0], "reason", None) if err.args else None
        if isinstance(reason, NewConnectionError):
            return TransportFailure(FailureKind.CONNECT, err)
    # A broken stream (ChunkedEncodingError) and the rest: the request may have been processed.
    return TransportFailure(FailureKind.DISCONNECTED, err)


def _classify_aiohttp_error(err: BaseException) -> TransportFailure:
    import aiohttp

    if isinstance(err, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return TransportFailure(FailureKind.TLS, err)
    if isinstance(err, aiohttp.ClientConnectorError):
        return TransportFailure(FailureKind.CONNECT, err)
    if isinstance(err, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return TransportFailure(FailureKind.TIMEOUT, err)
    return TransportFailure(FailureKind.DISCONNECTED, err)


def file_safe(resource: str) -> str:
    """An id as part of a file name: path separators and dots can't lead out of the folder."""
    return quote(resource, safe="-_")


def _skipping_gone(read: Callable[[str], Any], ids: list[str]) -> Any:
    """``(id, read(id))`` for each id, leaving out those deleted since they were listed."""
    for item_id in ids:
        try:
            yield item_id, read(item_id)
        except VBrainNotFoundError:
            continue


def _newest_tagged(candidates: Any, identity: Mapping[str, Any], what: str) -> Any:
    """Of ``(value, body)`` pairs, the value whose metadata names ``identity``, newest by ``created_on``.

    :raises VBrainReattachUnavailableError: there were candidates, and none carried metadata.
    """
    found, found_on, seen, with_metadata = None, "", 0, 0
    for value, body in candidates:
        seen += 1
        metadata = body.get("metadata")
        with_metadata += "metadata" in body
        if isinstance(metadata, Mapping) and metadata.get(AIRFLOW_METADATA_KEY) == dict(identity):
            created_on = str(body.get("created_on", ""))
            if found is None or created_on >= found_on:
                found, found_on = value, created_on
    if seen and not with_metadata:
        raise VBrainReattachUnavailableError(what)
    return found


def log_tail(zip_path: str | os.PathLike[str], lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of every text file in a logs ZIP, each under its name."""
    import zipfile

    parts = []
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            text = archive.read(info).decode("utf-8", errors="replace").splitlines()
            parts.append(f"--- {info.filename} ---")
            parts.extend(text[-lines:])
    return "\n".join(parts)


def _is_local(location: Any) -> bool:
    """Whether ``location`` is a local path (``ObjectStoragePath`` is path-like too, but uses fsspec)."""
    return isinstance(location, str | os.PathLike) and not hasattr(location, "fs")


def _upload(input_file: InputFile | None) -> Upload | None:
    """Describe ``input_file`` for sending, checking it exists and has an accepted extension."""
    if input_file is None:
        return None
    if _is_local(input_file):
        path = Path(input_file)
        _api.input_name("input_file", path.name)
        if not path.is_file():
            raise VBrainInputError("input_file", f"{os.fspath(path)!r} does not exist or is not a file")
        return Upload(path.name, lambda: path.open("rb"))
    name = str(getattr(input_file, "name", "") or "")
    opener = getattr(input_file, "open", None)
    if not name or opener is None:
        raise VBrainInputError(
            "input_file", f"must be a path or object-storage path, got {type(input_file).__name__}"
        )
    _api.input_name("input_file", name)
    exists = getattr(input_file, "exists", None)
    if callable(exists) and not exists():
        raise VBrainInputError("input_file", f"{input_file!s} does not exist")
    return Upload(name, functools.partial(opener, "rb"))


class _open_upload:
    """Open an upload for one attempt and close it afterwards (no-op without one)."""

    def __init__(self, upload: Upload | None) -> None:
        self._upload = upload
        self._file: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes] | None:
        if self._upload is not None:
            self._file = self._upload.open()
        return self._file

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


class _Sink:
    """Where a download goes: streamed to a temporary file, then moved into place.

    A local destination is never left half-written: an interrupted download
    leaves the previous file (if any) untouched.
    """

    def __init__(self, destination: Destination, default_name: str) -> None:
        self._remote: Any = None
        if _is_local(destination):
            path = Path(destination)
            if path.is_dir() or os.fspath(destination).endswith(os.sep):
                path = path / default_name
            self.location = os.fspath(path)
            self._path: Path | None = path
        elif callable(getattr(destination, "open", None)):
            self._remote = destination
            self._path = None
            self.location = str(destination)
        else:
            raise VBrainInputError(
                "destination", f"must be a path or object-storage path, got {type(destination).__name__}"
            )

    def write(self, chunks: Any) -> None:
        if self._remote is not None:
            with self._remote.open("wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            return
        assert self._path is not None
        self._path.parent.mkdir(parents=True, exist_ok=True)
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(tmp, self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
