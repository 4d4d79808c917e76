"""Run the emulator in a background thread, for tests, notebooks and benchmarks.

The server owns an event loop in its own thread; the state belongs to that loop. The helper methods
(``inject_fault``, ``finish_job``, ...) hop onto it with ``run_coroutine_threadsafe`` instead of
touching the state from the caller's thread, so they are safe while requests are being served.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from vbrain_emulator.app import UI_PREFIX, create_app
from vbrain_emulator.profiles import Profile, ProfileLike
from vbrain_emulator.state import DEFAULT_QUEUE_SECONDS, DEFAULT_RUN_SECONDS, EmulatorError, EmulatorState

__all__ = ["EmulatorServer", "start_site", "url_host"]

T = TypeVar("T")
# Polling storms open many connections at once; the OS default backlog (128) would refuse some.
BACKLOG = 4096
_START_TIMEOUT = 30.0
_CALL_TIMEOUT = 30.0


async def start_site(
    app: web.Application,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    access_log: bool = False,
) -> tuple[web.AppRunner, int]:
    """Start serving ``app`` on the running loop; return the runner (to clean up) and the bound port.

    :param app: the application, from :func:`.app.create_app`.
    :param host: the interface to bind.
    :param port: the port; 0 picks a free one.
    :param ssl_context: serve HTTPS with this context.
    :param access_log: log one line per request through the ``aiohttp.access`` logger.
    """
    runner = web.AppRunner(app, access_log=web.access_logger if access_log else None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=BACKLOG)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0]
    return runner, int(bound[1])


def url_host(host: str) -> str:
    # A wildcard bind is reachable on loopback; IPv6 literals need brackets in a URL.
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class EmulatorServer:
    """The VBrain emulator on a real socket, served from a background thread.

    >>> with EmulatorServer(queue_seconds=0.1, run_seconds=0.2) as server:
    ...     server.url  # doctest: +SKIP
    'http://127.0.0.1:54321'

    :param host: the interface to bind.
    :param port: the port; 0 (default) picks a free one, see :attr:`port`.
    :param queue_seconds: default time a job stays ``queued``.
    :param run_seconds: default time a job stays ``started``.
    :param api_keys: the accepted ``x-api-key`` values; empty accepts any non-empty key.
    :param control: serve the control API under ``/_emulator`` (the helpers here work either way).
    :param ssl_context: serve HTTPS with this server-side context.
    :param profile: the reading of the reference to follow (see :mod:`.profiles`): a name,
        comma-separated names, a list of names or a :class:`.profiles.Profile`; None is the default.
        :meth:`reset` comes back to it.
    :param ui: serve the read-only job pages under ``/ui``.
    :raises ProfileError: for an unknown or conflicting profile.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        queue_seconds: float = DEFAULT_QUEUE_SECONDS,
        run_seconds: float = DEFAULT_RUN_SECONDS,
        api_keys: Iterable[str] = (),
        control: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        profile: ProfileLike = None,
        ui: bool = True,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._ssl_context = ssl_context
        self._api_keys = tuple(api_keys)
        self._control = control
        self._ui = ui
        #: The store; owned by the server's event loop once started, so change it only through the
        #: helpers below (reading a value from a test is fine).
        self.state = EmulatorState(queue_seconds=queue_seconds, run_seconds=run_seconds, profile=profile)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        """Start serving; return once the socket listens.

        :raises RuntimeError: when already started, or the server could not start (the cause chained).
        """
        if self._thread is not None:
            raise RuntimeError("EmulatorServer is already started")
        # A fresh app per start: an aiohttp app is bound to the loop that first ran it. The state
        # carries over, so a stopped and restarted server remembers its repositories.
        app = create_app(self.state, api_keys=self._api_keys, control=self._control, ui=self._ui)
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._runner, self._port = loop.run_until_complete(
                    start_site(app, self.host, self._requested_port, ssl_context=self._ssl_context)
                )
            except BaseException as err:
                failure.append(err)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="vbrain-emulator", daemon=True)
        thread.start()
        if not ready.wait(_START_TIMEOUT):
            raise RuntimeError("VBrain emulator did not start in time")
        if failure:
            thread.join()
            raise RuntimeError(
                f"VBrain emulator could not start on {self.host}:{self._requested_port}"
            ) from (failure[0])
        self._loop, self._thread = loop, thread
        return self

    def stop(self) -> None:
        """Stop serving and end the thread (a no-op when not started)."""
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(_CALL_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_CALL_TIMEOUT)
        self._loop = self._thread = self._runner = None
        self._port = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on.

        :raises RuntimeError: before :meth:`start`.
        """
        if self._port is None:
            raise RuntimeError("EmulatorServer is not started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (no ``/api/v1``: clients add it)."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{url_host(self.host)}:{self.port}"

    @property
    def job_url_template(self) -> str:
        """The URL template of this server's job pages, e.g.
        ``http://127.0.0.1:54321/ui/jobs/{job_id}``: what a connection's job link template is set to."""
        return f"{self.url}{UI_PREFIX}/jobs/{{job_id}}"

    @property
    def profile(self) -> Profile:
        """The reading of the reference the server follows now."""
        return self.state.profile

    # -- helpers (run on the server's loop) ----------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        loop = self._loop
        if loop is None:
            raise RuntimeError("EmulatorServer is not started")

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(_CALL_TIMEOUT)

    def inject_fault(
        self,
        status: int | None = None,
        *,
        count: int = 1,
        method: str | None = None,
        path: str | None = None,
        retry_after: str | int | float | None = None,
        html: bool = False,
        delay: float = 0.0,
        drop: bool = False,
        after: bool = False,
        body: Any = None,
        answer_delay: float = 0.0,
        listing_delay: float | None = None,
    ) -> str:
        """Make the next ``count`` matching API requests misbehave; return the fault's id.

        :param status: answer this status instead (JSON ``{"message": <reason>}`` unless ``html``/``body``).
        :param count: how many matching requests it applies to.
        :param method: only requests with this method (None: any).
        :param path: only requests whose path this regex is found in, e.g. ``r"^/api/v1/job/[^/]+$"``.
        :param retry_after: the ``Retry-After`` header to send with ``status``.
        :param html: answer an HTML proxy error page instead of JSON.
        :param delay: seconds to wait before answering (alone: then serve the request normally).
        :param drop: close the connection without answering.
        :param after: process the request for real first, then answer the fault (or drop).
        :param body: the answer's body: a string as is, anything else as JSON.
        :param answer_delay: process the request at once, then wait this many seconds before answering
            (the real answer, or ``status``/``drop``): the create happened, the answer came too late.
        :param listing_delay: seconds before what the request creates (a repository, a job) shows up in
            listings, instead of the profile's listing delay.
        :raises ValueError: for an invalid combination (the message says which).
        """
        spec = {
            "status": status,
            "count": count,
            "method": method,
            "path": path,
            "retry_after": retry_after,
            "html": html,
            "delay": delay,
            "drop": drop,
            "after": after,
            "body": body,
            "answer_delay": answer_delay,
            "listing_delay": listing_delay,
        }
        return self._call(lambda: self.state.faults.add(spec).fault_id)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._call(self.state.faults.clear)

    def requests(self) -> list[dict[str, Any]]:
        """Every API request served so far (never the API key): method, path, query, status, time,
        organization_id, client_id, repository_id, application_id, user_agent, fault."""
        # A JSON round trip hands the caller copies it can keep, as the control API would.
        return self._call(lambda: json.loads(json.dumps(list(self.state.request_log))))

    def clear_requests(self) -> None:
        """Forget the logged requests."""
        self._call(self.state.request_log.clear)

    def add_jobs(self, repository_id: str, count: int = 1, **fields: Any) -> list[str]:
        """Add ``count`` jobs to a repository; ``fields``: ``age_seconds`` (back-dated by that much),
        ``application_id``, ``params``, ``metadata`` (see ``POST /_emulator/repositories/{id}/jobs``).
        Return their ids. :raises EmulatorError: 404 for an unknown repository, 400 for a bad field."""
        added = self.state.add_jobs
        return self._call(lambda: [job.job_id for job in added(repository_id, count=count, **fields)])

    def finish_job(self, job_id: str) -> dict[str, Any]:
        """End a job now with its application's outcome; return its description.

        :param job_id: the job (any tenant's).
        :raises KeyError: when no job has that id.
        """
        return self._job_call(lambda: self.state.finish_job(job_id), job_id)

    def fail_job(self, job_id: str, error: str = "Job failed by the emulator control API") -> dict[str, Any]:
        """Make a job fail now; return its description.

        :param job_id: the job (any tenant's).
        :param error: the failure message written to its logs.
        :raises KeyError: when no job has that id.
        """
        return self._job_call(lambda: self.state.fail_job(job_id, error), job_id)

    def _job_call(self, fn: Callable[[], Any], job_id: str) -> dict[str, Any]:
        def call() -> dict[str, Any] | None:
            try:
                job = fn()
            except EmulatorError:
                return None
            return json.loads(json.dumps(job.summary(self.state.clock())))

        summary = self._call(call)
        if summary is None:
            raise KeyError(f"No job {job_id!r} in the emulator")
        return summary

    def configure(self, queue_seconds: float | None = None, run_seconds: float | None = None) -> None:
        """Change the default durations for jobs created from now on (None keeps a value).

        :param queue_seconds: time ``queued``.
        :param run_seconds: time ``started``.
        """
        self._call(lambda: self.state.configure(queue_seconds=queue_seconds, run_seconds=run_seconds))

    def set_rate_limit(self, per_second: int | None) -> None:
        """Answer ``429 Too Many Requests`` past ``per_second`` API requests per second per API key
        (0 or None: no limit; :meth:`reset` removes it). :raises ValueError: for a bad value."""
        self._call(lambda: self.state.set_rate_limit(per_second))

    def reset(self) -> None:
        """Forget all repositories, jobs, faults and logged requests; restore the initial durations and
        profile, with no rate limit."""
        self._call(self.state.reset)

    def set_profile(self, profile: ProfileLike = None) -> Profile:
        """Follow another reading of the reference from now on; return it.

        :param profile: a name, comma-separated names, a list of names or a :class:`.profiles.Profile`;
            None is the default profile.
        :raises ProfileError: for an unknown or conflicting profile (a ``ValueError``).
        """
        # Parsed here so a mistake raises in the caller's thread with its own message.
        parsed = Profile.parse(profile)
        return self._call(lambda: self.state.set_profile(parsed))

    def repositories(self) -> list[dict[str, Any]]:
        """Every repository of every tenant, whether listed yet or not: repository_id, name, input,
        created_on, created_by, jobs, metadata, organization_id, client_id, application_id, params."""
        return self._call(lambda: json.loads(json.dumps(self.state.all_repositories())))

    def jobs(self) -> list[dict[str, Any]]:
        """Every job of every tenant: job_id, repository_id, organization_id, client_id,
        application_id, status, params, metadata, error."""
        return self._call(lambda: json.loads(json.dumps(self.state.all_jobs())))

    def airflow_connection(
        self,
        *,
        api_key: str = "emulator-key",
        organization_id: str = "acme",
        client_id: str = "ops",
        application_id: str = "Tutorial",
        login: str = "ana",
        extra: dict[str, Any] | None = None,
    ) -> str:
        """The JSON value of an ``AIRFLOW_CONN_<ID>`` variable pointing at this server.

        :param api_key: the connection's password (``x-api-key``).
        :param organization_id: extra ``organization_id``.
        :param client_id: extra ``client_id``.
        :param application_id: extra ``application_id``.
        :param login: the ``username`` header.
        :param extra: more extra fields (e.g. ``timeout``, ``verify``), overriding the above.
        """
        connection = {
            "conn_type": "vbrain",
            "host": self.url,
            "login": login,
            "password": api_key,
            "extra": {
                "organization_id": organization_id,
                "client_id": client_id,
                "application_id": application_id,
                **(extra or {}),
            },
        }
        return json.dumps(connection)
