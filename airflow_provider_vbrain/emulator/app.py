"""The aiohttp application: VBrain's REST API under ``/api/v1``, the test control API under ``/_emulator``
and read-only job pages under ``/ui`` (rendered by :mod:`.pages`).

Handlers only translate HTTP to :class:`.state.EmulatorState` calls and back; where the reference
leaves an answer open, they answer by the state's :class:`.profiles.Profile`. One middleware is the
gateway in front of the API: it applies injected faults, checks ``x-api-key`` (before any scoping
header, like an API gateway), turns errors into the platform's JSON bodies, and logs every request.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField

from airflow_provider_vbrain.emulator import pages
from airflow_provider_vbrain.emulator.faults import Fault, FaultSpecError
from airflow_provider_vbrain.emulator.profiles import (
    HTML_DOWNLOADS,
    NON_ZIP_DOWNLOADS,
    PROFILE_DESCRIPTIONS,
    ProfileError,
)
from airflow_provider_vbrain.emulator.state import (
    FAILED,
    FINISHED,
    EmulatorError,
    EmulatorState,
    Job,
    Repository,
    Tenant,
    input_files_from_upload,
    parse_date_filter,
    zip_files,
)

__all__ = ["API_PREFIX", "CONTROL_PREFIX", "STATE_KEY", "UI_PREFIX", "create_app"]

API_PREFIX = "/api/v1"
CONTROL_PREFIX = "/_emulator"
UI_PREFIX = "/ui"
# How many jobs the /ui/ index shows, newest first.
UI_INDEX_JOBS = 200
# Uploads are whole input folders; aiohttp's 1 MiB default would refuse realistic ZIPs.
MAX_UPLOAD_BYTES = 512 * 1024**2
SCOPE_HEADERS = ("organization_id", "application_id", "client_id", "username")
SUBMISSION_FIELDS = ("params", "metadata")


@dataclass(frozen=True)
class _Settings:
    api_keys: frozenset[str]
    control: bool
    ui: bool


STATE_KEY = web.AppKey("vbrain_emulator_state", EmulatorState)
_SETTINGS_KEY = web.AppKey("vbrain_emulator_settings", _Settings)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _FaultEffects:
    """What an injected fault asks of the handler serving the request it matched."""

    state: EmulatorState
    #: The state's generation when the request arrived (see :attr:`.state.EmulatorState.generation`).
    generation: int
    #: Seconds before what the request creates is listed (None: the profile's delay).
    listing_delay: float | None = None
    #: Seconds to wait once the body is read and before anything is processed.
    hold: float = 0.0

    def outlived_reset(self) -> bool:
        """Whether the state was reset since the request arrived: after a wait, such a request is
        dropped unprocessed, so it cannot change the next test's state."""
        return self.state.generation != self.generation


_RESET_WHILE_WAITING = "The emulator was reset while this request waited"


# The current request's fault effects, for its handler. A context variable rather than a request key:
# the middleware and the handler run in the same task, and aiohttp 3.9 has no typed request keys.
_FAULT_EFFECTS: contextvars.ContextVar[_FaultEffects | None] = contextvars.ContextVar(
    "vbrain_emulator_fault_effects", default=None
)


def _fault_listing_delay() -> float | None:
    effects = _FAULT_EFFECTS.get()
    return effects.listing_delay if effects is not None else None


async def _hold() -> None:
    """Wait out a fault's delay before processing, once per request.

    Creates call it after reading their body, so a client that gives up during the delay still gets
    its request processed (late), as behind a gateway that had already received it.
    """
    effects = _FAULT_EFFECTS.get()
    if effects is not None and effects.hold:
        seconds, effects.hold = effects.hold, 0.0
        await asyncio.sleep(seconds)
        if effects.outlived_reset():
            raise EmulatorError(503, _RESET_WHILE_WAITING)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _state(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


# -- request parsing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    organization_id: str
    application_id: str
    client_id: str
    username: str
    repository_id: str

    @property
    def tenant(self) -> Tenant:
        return (self.organization_id, self.client_id)


def _scope(request: web.Request, *, job: bool = False) -> _Scope:
    """Read the scoping headers, answering 400 for the first missing one and for unknown applications."""
    names = (*SCOPE_HEADERS, "repository_id") if job else SCOPE_HEADERS
    values = {}
    for name in names:
        value = request.headers.get(name, "").strip()
        if not value:
            raise EmulatorError(400, f"Missing {name}")
        values[name] = value
    # Every endpoint runs behind an application on the platform, so an unknown one is refused everywhere.
    _state(request).application(values["application_id"])
    values.setdefault("repository_id", "")
    return _Scope(**values)


def _date_filters(request: web.Request) -> dict[str, Any]:
    return {name: parse_date_filter(name, request.query.get(name)) for name in ("from_date", "to_date")}


def _json_object(name: str, text: str | bytes | bytearray) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise EmulatorError(400, f"Invalid JSON in {name}: {err}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EmulatorError(400, f"{name} must be a JSON object, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class _Submission:
    params: dict[str, Any]
    metadata: dict[str, Any]
    input_files: dict[str, bytes]


async def _submission(request: web.Request, *, form_only: bool = False) -> _Submission:
    """Read a repository's or job's body: nothing, JSON, or a form (multipart when a file is attached).

    :param form_only: read form fields only; any other body is read and ignored, as a server that
        only parses form data would (the ``form-only-repository`` profile).
    """
    fields: dict[str, dict[str, Any]] = {}
    files: dict[str, bytes] = {}
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.post()
        for name, value in form.items():
            if name == "file":
                if not isinstance(value, FileField):
                    raise EmulatorError(400, "file must be an uploaded file with a file name")
                files.update(input_files_from_upload(value.filename, value.file.read()))
            elif name in SUBMISSION_FIELDS:
                # Clients may attach params as a plain field or as a part with a file name.
                text = value.file.read() if isinstance(value, FileField) else value
                fields[name] = _json_object(name, text)
            else:
                # Strict on purpose: a misspelled field silently dropped is a client bug the
                # emulator should surface, not hide.
                raise EmulatorError(400, f"Unexpected form field: {name} (expected file, params, metadata)")
    elif form_only:
        # Read it all so the connection stays usable; its content is dropped without a word.
        await request.read()
    else:
        raw = await request.read()
        if raw.strip():
            body = _json_object("request body", raw)
            unexpected = sorted(set(body) - set(SUBMISSION_FIELDS))
            if unexpected:
                raise EmulatorError(
                    400, f"Unexpected field(s) in body: {', '.join(unexpected)} (expected params, metadata)"
                )
            for name in SUBMISSION_FIELDS:
                part = body.get(name)
                if part is not None and not isinstance(part, dict):
                    raise EmulatorError(400, f"{name} must be a JSON object, got {type(part).__name__}")
                fields[name] = part or {}
    await _hold()
    return _Submission(fields.get("params", {}), fields.get("metadata", {}), files)


_GATEWAY_PAGE = (
    "<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>"
    "<h1>Service Unavailable</h1><p>The gateway could not fetch this file. Please try again later.</p>"
    "</body></html>"
)


def _zip_response(request: web.Request, data: bytes, filename: str) -> web.Response:
    """A ZIP download, or what the profile says a gateway makes of it (always with status 200)."""
    downloads = _state(request).profile.downloads
    if downloads == NON_ZIP_DOWNLOADS:
        return _json(200, {"message": "Internal server error"})
    if downloads == HTML_DOWNLOADS:
        return web.Response(text=_GATEWAY_PAGE, content_type="text/html")
    if downloads is not None:
        return web.Response(text=base64.b64encode(data).decode("ascii"), content_type="text/plain")
    return web.Response(
        body=data,
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# -- repositories ------------------------------------------------------------------------------


async def list_repositories(request: web.Request) -> web.Response:
    scope = _scope(request)
    repositories = _state(request).list_repositories(
        scope.tenant, application_id=scope.application_id, **_date_filters(request)
    )
    return _json(200, repositories)


async def create_repository(request: web.Request) -> web.Response:
    scope = _scope(request)
    state = _state(request)
    body = await _submission(request, form_only=state.profile.form_only_repository)
    repository = state.create_repository(
        scope.tenant,
        username=scope.username,
        params=body.params,
        metadata=body.metadata,
        input_files=body.input_files,
        application_id=scope.application_id,
        listing_delay=_fault_listing_delay(),
    )
    return _json(
        201, {"message": "Repository created successfully", "repository_id": repository.repository_id}
    )


def _repository(request: web.Request) -> Repository:
    scope = _scope(request)
    return _state(request).get_repository(
        scope.tenant, request.match_info["repository_id"], application_id=scope.application_id
    )


async def get_repository(request: web.Request) -> web.Response:
    return _json(200, _state(request).repository_view(_repository(request)))


async def delete_repository(request: web.Request) -> web.Response:
    scope = _scope(request)
    _state(request).delete_repository(
        scope.tenant, request.match_info["repository_id"], application_id=scope.application_id
    )
    return _json(200, {"message": "Repository and jobs deleted"})


async def repository_input(request: web.Request) -> web.Response:
    repository = _repository(request)
    return _zip_response(request, zip_files(repository.input_files), f"{repository.repository_id}-input.zip")


async def repository_params(request: web.Request) -> web.Response:
    return _json(200, _repository(request).params)


# -- jobs --------------------------------------------------------------------------------------


def _job(request: web.Request) -> Job:
    scope = _scope(request, job=True)
    return _state(request).get_job(
        scope.tenant, scope.repository_id, request.match_info["job_id"], application_id=scope.application_id
    )


def _not_over(job: Job, status: str) -> web.Response | None:
    """The answer of result/output for a job that has nothing to give yet, or has failed."""
    if status == FAILED:
        return _json(500, {"error": "Job failed"})
    if status != FINISHED:
        return _json(202, {"message": "Job not yet finished"})
    return None


async def list_jobs(request: web.Request) -> web.Response:
    scope = _scope(request, job=True)
    jobs = _state(request).list_jobs(
        scope.tenant, scope.repository_id, application_id=scope.application_id, **_date_filters(request)
    )
    return _json(200, jobs)


async def execute_job(request: web.Request) -> web.Response:
    scope = _scope(request, job=True)
    state = _state(request)
    # Refuse an unknown repository before reading a possibly large upload.
    state.get_repository(scope.tenant, scope.repository_id, application_id=scope.application_id)
    body = await _submission(request)
    job = state.execute_job(
        scope.tenant,
        scope.repository_id,
        application_id=scope.application_id,
        params=body.params,
        metadata=body.metadata,
        input_files=body.input_files,
        listing_delay=_fault_listing_delay(),
    )
    return _json(201, {"message": "Job created", "job_id": job.job_id})


async def get_job(request: web.Request) -> web.Response:
    job = _job(request)
    body = _state(request).job_status_body(job)
    return _json(200 if body["job_status"] in (FINISHED, FAILED) else 202, body)


async def delete_job(request: web.Request) -> web.Response:
    scope = _scope(request, job=True)
    _state(request).delete_job(
        scope.tenant, scope.repository_id, request.match_info["job_id"], application_id=scope.application_id
    )
    return _json(200, {"message": "Jobs deleted"})


async def job_result(request: web.Request) -> web.Response:
    job = _job(request)
    refusal = _not_over(job, job.status(_state(request).clock()))
    if refusal is not None:
        return refusal
    assert job.result is not None
    return _json(200, {"output": job.result.output})


async def job_params(request: web.Request) -> web.Response:
    return _json(200, _job(request).params)


async def job_output(request: web.Request) -> web.Response:
    job = _job(request)
    refusal = _not_over(job, job.status(_state(request).clock()))
    if refusal is not None:
        return refusal
    return _zip_response(request, zip_files(job.output_files()), f"{job.job_id}-output.zip")


async def job_logs(request: web.Request) -> web.Response:
    job = _job(request)
    return _zip_response(request, zip_files(job.log_files(_state(request).clock())), f"{job.job_id}-logs.zip")


# -- control API -------------------------------------------------------------------------------


async def _control_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    return _json_object("request body", raw) if raw.strip() else {}


async def add_fault(request: web.Request) -> web.Response:
    spec = await _control_body(request)
    try:
        fault = _state(request).faults.add(spec)
    except FaultSpecError as err:
        raise EmulatorError(400, str(err)) from None
    return _json(201, {"fault_id": fault.fault_id, "fault": fault.to_dict()})


async def list_faults(request: web.Request) -> web.Response:
    return _json(200, [fault.to_dict() for fault in _state(request).faults.active()])


async def clear_faults(request: web.Request) -> web.Response:
    _state(request).faults.clear()
    return _json(200, {"message": "Faults cleared"})


async def list_requests(request: web.Request) -> web.Response:
    return _json(200, list(_state(request).request_log))


async def clear_requests(request: web.Request) -> web.Response:
    _state(request).request_log.clear()
    return _json(200, {"message": "Requests cleared"})


async def finish_job(request: web.Request) -> web.Response:
    state = _state(request)
    job = state.finish_job(request.match_info["job_id"])
    return _json(200, job.summary(state.clock()))


async def fail_job(request: web.Request) -> web.Response:
    body = await _control_body(request)
    error = body.get("error", "Job failed by the emulator control API")
    if not isinstance(error, str) or not error:
        raise EmulatorError(400, "error must be a non-empty string")
    state = _state(request)
    job = state.fail_job(request.match_info["job_id"], error)
    return _json(200, job.summary(state.clock()))


async def list_all_jobs(request: web.Request) -> web.Response:
    return _json(200, _state(request).all_jobs())


async def list_all_repositories(request: web.Request) -> web.Response:
    return _json(200, _state(request).all_repositories())


def _config_view(state: EmulatorState) -> dict[str, float]:
    return {"queue_seconds": state.queue_seconds, "run_seconds": state.run_seconds}


async def get_config(request: web.Request) -> web.Response:
    return _json(200, _config_view(_state(request)))


async def set_config(request: web.Request) -> web.Response:
    body = await _control_body(request)
    unknown = sorted(set(body) - {"queue_seconds", "run_seconds"})
    if unknown:
        raise EmulatorError(400, f"Unknown config field(s): {', '.join(unknown)}")
    state = _state(request)
    try:
        state.configure(queue_seconds=body.get("queue_seconds"), run_seconds=body.get("run_seconds"))
    except ValueError as err:
        raise EmulatorError(400, str(err)) from None
    return _json(200, _config_view(state))


def _profile_view(state: EmulatorState) -> dict[str, Any]:
    return {**state.profile.to_dict(), "profiles": PROFILE_DESCRIPTIONS}


async def get_profile(request: web.Request) -> web.Response:
    return _json(200, _profile_view(_state(request)))


async def set_profile(request: web.Request) -> web.Response:
    body = await _control_body(request)
    unknown = sorted(set(body) - {"profile"})
    if unknown:
        raise EmulatorError(400, f"Unknown profile field(s): {', '.join(unknown)} (expected profile)")
    state = _state(request)
    try:
        state.set_profile(body.get("profile"))
    except ProfileError as err:
        raise EmulatorError(400, str(err)) from None
    return _json(200, _profile_view(state))


async def reset(request: web.Request) -> web.Response:
    _state(request).reset()
    return _json(200, {"message": "Emulator reset"})


# -- web pages -------------------------------------------------------------------------------


def _page(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8")


async def ui_index(request: web.Request) -> web.Response:
    state = _state(request)
    return _page(200, pages.index_page(state.recent_jobs(UI_INDEX_JOBS), state.clock(), UI_PREFIX))


async def ui_job(request: web.Request) -> web.Response:
    state = _state(request)
    job_id = request.match_info["job_id"]
    job = state.find_job(job_id)
    if job is None:
        return _page(404, pages.not_found_page("job", job_id, UI_PREFIX))
    return _page(200, pages.job_page(job, state.clock(), UI_PREFIX))


async def ui_repository(request: web.Request) -> web.Response:
    state = _state(request)
    repository_id = request.match_info["repository_id"]
    repository = state.find_repository(repository_id)
    if repository is None:
        return _page(404, pages.not_found_page("repository", repository_id, UI_PREFIX))
    return _page(200, pages.repository_page(repository, state.clock(), UI_PREFIX))


async def _serve_page(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run a page handler, answering HTTP errors (unknown page, wrong method) as HTML pages too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _page(exc.status, pages.error_page(exc.status, exc.reason, UI_PREFIX))
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response


# -- the gateway middleware --------------------------------------------------------------------


def _under(prefix: str, path: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run a handler, turning emulator errors into ``{"error"}`` and HTTP errors into gateway-style
    ``{"message"}`` bodies (unknown route, method not allowed, upload too large)."""
    try:
        return await handler(request)
    except EmulatorError as err:
        return _json(err.status, {"error": err.message})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {name: value for name, value in exc.headers.items() if name.lower() == "allow"}
        return _json(exc.status, {"message": exc.reason}, headers)


async def _serve_api(request: web.Request, handler: Handler) -> web.StreamResponse:
    api_keys = request.app[_SETTINGS_KEY].api_keys
    key = request.headers.get("x-api-key", "")
    if not key or (api_keys and key not in api_keys):
        return _json(403, {"message": "Forbidden"})
    return await _answer(request, handler)


def _fault_response(request: web.Request, fault: Fault) -> web.StreamResponse:
    if fault.drop:
        # Closing before a byte of the answer is written is what a crashed proxy looks like: the
        # client sees the server disconnect. aiohttp quietly discards the response returned below.
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=500)
    status = fault.status or 500
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.html:
        reason = f"{status} {fault.reason()}"
        default = (
            f"<html><head><title>{reason}</title></head>"
            f"<body><center><h1>{reason}</h1></center></body></html>"
        )
        text = fault.body if isinstance(fault.body, str) else default
        return web.Response(status=status, text=text, content_type="text/html", headers=headers)
    if isinstance(fault.body, str):
        return web.Response(status=status, text=fault.body, content_type="text/plain", headers=headers)
    body = fault.body if fault.body is not None else {"message": fault.reason()}
    return _json(status, body, headers)


@web.middleware
async def _gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = _state(request)
    settings = request.app[_SETTINGS_KEY]
    if _under(CONTROL_PREFIX, request.path):
        if not settings.control:
            return _json(404, {"message": "Not Found"})
        return await _answer(request, handler)
    if _under(UI_PREFIX, request.path):
        # Web pages for a browser: no key, no faults, not logged as API traffic.
        if not settings.ui:
            return _json(404, {"message": "Not Found"})
        return await _serve_page(request, handler)

    entry: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "status": None,
        "time": time.time(),
        "organization_id": request.headers.get("organization_id"),
        "client_id": request.headers.get("client_id"),
        "repository_id": request.headers.get("repository_id"),
        "application_id": request.headers.get("application_id"),
        "fault": None,
    }
    fault = state.faults.take(request.method, request.path)
    effects = _FaultEffects(
        state, state.generation, listing_delay=fault.listing_delay if fault is not None else None
    )
    # Reset afterwards: aiohttp may serve the next request of a keep-alive connection in this same task.
    token = _FAULT_EFFECTS.set(effects)
    try:
        if fault is None:
            response = await _serve_api(request, handler)
        else:
            entry["fault"] = fault.fault_id
            real = None
            if fault.processes_first:
                # The request really happens (a job is created); only the reply is late, lost or replaced.
                real = await _serve_api(request, handler)
                await asyncio.sleep(fault.delay or fault.answer_delay)
            elif fault.delay and not fault.replaces_answer and request.body_exists:
                # A create waits with its body read (see _hold): aiohttp does not cancel a handler whose
                # client went away, so the request is processed late, after the client gave up.
                effects.hold = fault.delay
                real = await _serve_api(request, handler)
                if effects.hold:
                    # The handler answered without reading a body (a refusal): wait here instead.
                    await asyncio.sleep(effects.hold)
            else:
                await asyncio.sleep(fault.delay)
            if fault.replaces_answer:
                response = _fault_response(request, fault)
            elif real is not None:
                response = real
            elif effects.outlived_reset():
                response = _json(503, {"error": _RESET_WHILE_WAITING})
            else:
                response = await _serve_api(request, handler)
        entry["status"] = None if fault is not None and fault.drop else response.status
        return response
    finally:
        _FAULT_EFFECTS.reset(token)
        # A request from before a reset is not logged: the log now belongs to the next test.
        if not effects.outlived_reset():
            state.record_request(entry)


def create_app(
    state: EmulatorState | None = None,
    *,
    api_keys: Iterable[str] = (),
    control: bool = False,
    ui: bool = True,
) -> web.Application:
    """Build the emulator's aiohttp application, e.g. to embed it or run it with ``web.run_app``.

    :param state: the store to serve; a fresh one with default durations when None.
    :param api_keys: the accepted ``x-api-key`` values; when empty any non-empty key is accepted.
    :param control: serve the test control API under ``/_emulator`` (off: those paths answer 404).
    :param ui: serve the read-only job pages under ``/ui`` (off: those paths answer 404).
    """
    app = web.Application(middlewares=[_gateway], client_max_size=MAX_UPLOAD_BYTES)
    app[STATE_KEY] = state if state is not None else EmulatorState()
    app[_SETTINGS_KEY] = _Settings(api_keys=frozenset(api_keys), control=control, ui=ui)
    api = API_PREFIX
    app.router.add_routes(
        [
            web.get(f"{api}/repository", list_repositories),
            web.post(f"{api}/repository", create_repository),
            web.get(f"{api}/repository/{{repository_id}}", get_repository),
            web.delete(f"{api}/repository/{{repository_id}}", delete_repository),
            web.get(f"{api}/repository/{{repository_id}}/input", repository_input),
            web.get(f"{api}/repository/{{repository_id}}/params", repository_params),
            web.get(f"{api}/job", list_jobs),
            web.post(f"{api}/job/execute", execute_job),
            web.get(f"{api}/job/{{job_id}}", get_job),
            web.delete(f"{api}/job/{{job_id}}", delete_job),
            web.get(f"{api}/job/{{job_id}}/result", job_result),
            web.get(f"{api}/job/{{job_id}}/params", job_params),
            web.get(f"{api}/job/{{job_id}}/output", job_output),
            web.get(f"{api}/job/{{job_id}}/logs", job_logs),
        ]
    )
    if control:
        ctl = CONTROL_PREFIX
        app.router.add_routes(
            [
                web.get(f"{ctl}/faults", list_faults),
                web.post(f"{ctl}/faults", add_fault),
                web.delete(f"{ctl}/faults", clear_faults),
                web.get(f"{ctl}/requests", list_requests),
                web.delete(f"{ctl}/requests", clear_requests),
                web.get(f"{ctl}/jobs", list_all_jobs),
                web.get(f"{ctl}/repositories", list_all_repositories),
                web.post(f"{ctl}/jobs/{{job_id}}/finish", finish_job),
                web.post(f"{ctl}/jobs/{{job_id}}/fail", fail_job),
                web.get(f"{ctl}/config", get_config),
                web.post(f"{ctl}/config", set_config),
                web.get(f"{ctl}/profile", get_profile),
                web.put(f"{ctl}/profile", set_profile),
                web.post(f"{ctl}/reset", reset),
            ]
        )
    if ui:
        app.router.add_routes(
            [
                web.get(UI_PREFIX, ui_index),
                web.get(f"{UI_PREFIX}/", ui_index),
                web.get(f"{UI_PREFIX}/jobs/{{job_id}}", ui_job),
                web.get(f"{UI_PREFIX}/repositories/{{repository_id}}", ui_repository),
            ]
        )
    return app
