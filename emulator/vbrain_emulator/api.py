"""The handlers of VBrain's REST API (``/api/v1``): repositories and jobs.

They only translate HTTP to :class:`.state.EmulatorState` calls and back; where the reference leaves
an answer open, they answer by the state's :class:`.profiles.Profile`. The gateway (:mod:`.gateway`)
has checked the API key and applied any fault before they run, and turns their
:class:`.errors.EmulatorError` into the platform's ``{"error": ...}`` bodies.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vbrain_emulator._web import json_response, state_of
from vbrain_emulator.archives import zip_files
from vbrain_emulator.dates import parse_date_filter
from vbrain_emulator.errors import EmulatorError
from vbrain_emulator.gateway import fault_listing_delay
from vbrain_emulator.jobs import Job
from vbrain_emulator.profiles import HTML_DOWNLOADS, NON_ZIP_DOWNLOADS
from vbrain_emulator.repositories import Repository
from vbrain_emulator.submissions import read_submission
from vbrain_emulator.tenants import Tenant
from vbrain_emulator.wire import (
    APPLICATION_HEADER,
    CLIENT_HEADER,
    FAILED,
    FINISHED,
    ORGANIZATION_HEADER,
    REPOSITORY_HEADER,
    SCOPE_HEADERS,
    USERNAME_HEADER,
)

__all__ = [
    "create_repository",
    "delete_job",
    "delete_repository",
    "execute_job",
    "get_job",
    "get_repository",
    "job_logs",
    "job_output",
    "job_params",
    "job_result",
    "list_jobs",
    "list_repositories",
    "repository_input",
    "repository_params",
]


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
    names = (*SCOPE_HEADERS, REPOSITORY_HEADER) if job else SCOPE_HEADERS
    values = {}
    for name in names:
        value = request.headers.get(name, "").strip()
        if not value:
            raise EmulatorError(400, f"Missing {name}")
        values[name] = value
    # Every endpoint runs behind an application on the platform, so an unknown one is refused everywhere.
    state_of(request).application(values[APPLICATION_HEADER])
    return _Scope(
        organization_id=values[ORGANIZATION_HEADER],
        application_id=values[APPLICATION_HEADER],
        client_id=values[CLIENT_HEADER],
        username=values[USERNAME_HEADER],
        repository_id=values.get(REPOSITORY_HEADER, ""),
    )


def _date_filters(request: web.Request) -> dict[str, Any]:
    return {name: parse_date_filter(name, request.query.get(name)) for name in ("from_date", "to_date")}


_GATEWAY_PAGE = (
    "<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>"
    "<h1>Service Unavailable</h1><p>The gateway could not fetch this file. Please try again later.</p>"
    "</body></html>"
)


_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.I)


def _wanted(request: web.Request, data: bytes, etag: str) -> tuple[int, int] | None:
    """The bytes (first, last) a ``Range`` header asks for, as common servers read it: one range
    (``N-``, ``N-M`` or the last ``-N``), and only of the file ``If-Range`` names; None means the whole
    file (no Range, several ranges, another file). Past the end raises 416 (``_Unsatisfiable``)."""
    match = _RANGE.match(request.headers.get("Range", ""))
    if match is None or request.headers.get("If-Range", etag) != etag:
        return None
    first, last = match.groups()
    size = len(data)
    if not first:  # the last N bytes
        if not last:
            return None
        return max(size - int(last), 0), size - 1
    if int(first) >= size:
        raise _Unsatisfiable(size)
    return int(first), min(int(last), size - 1) if last else size - 1


class _Unsatisfiable(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _file_response(request: web.Request, data: bytes, filename: str) -> web.Response:
    """A file, whole (200) or the part a ``Range`` asks for (206), unless the profile ignores Range."""
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if not state_of(request).profile.ranges:
        return web.Response(body=data, content_type="application/zip", headers=headers)
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    headers |= {"ETag": etag, "Accept-Ranges": "bytes"}
    try:
        wanted = _wanted(request, data, etag)
    except _Unsatisfiable as err:
        return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{err.size}"})
    if wanted is None:
        return web.Response(body=data, content_type="application/zip", headers=headers)
    first, last = wanted
    headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
    return web.Response(
        status=206, body=data[first : last + 1], content_type="application/zip", headers=headers
    )


def _zip_response(request: web.Request, data: bytes, filename: str) -> web.Response:
    """A ZIP download, or what the profile says a gateway makes of it (always with status 200)."""
    downloads = state_of(request).profile.downloads
    if downloads == NON_ZIP_DOWNLOADS:
        return json_response(200, {"message": "Internal server error"})
    if downloads == HTML_DOWNLOADS:
        return web.Response(text=_GATEWAY_PAGE, content_type="text/html")
    if downloads is not None:
        return web.Response(text=base64.b64encode(data).decode("ascii"), content_type="text/plain")
    return _file_response(request, data, filename)


# -- repositories ------------------------------------------------------------------------------


async def list_repositories(request: web.Request) -> web.Response:
    scope = _scope(request)
    repositories = state_of(request).list_repositories(
        scope.tenant, application_id=scope.application_id, **_date_filters(request)
    )
    return json_response(200, repositories)


async def create_repository(request: web.Request) -> web.Response:
    scope = _scope(request)
    state = state_of(request)
    body = await read_submission(request, form_only=state.profile.form_only_repository)
    repository = state.create_repository(
        scope.tenant,
        username=scope.username,
        params=body.params,
        metadata=body.metadata,
        input_files=body.input_files,
        application_id=scope.application_id,
        listing_delay=fault_listing_delay(),
    )
    return json_response(
        201, {"message": "Repository created successfully", "repository_id": repository.repository_id}
    )


def _repository(request: web.Request) -> Repository:
    scope = _scope(request)
    return state_of(request).get_repository(
        scope.tenant, request.match_info["repository_id"], application_id=scope.application_id
    )


async def get_repository(request: web.Request) -> web.Response:
    return json_response(200, state_of(request).repository_view(_repository(request)))


async def delete_repository(request: web.Request) -> web.Response:
    scope = _scope(request)
    state_of(request).delete_repository(
        scope.tenant, request.match_info["repository_id"], application_id=scope.application_id
    )
    return json_response(200, {"message": "Repository and jobs deleted"})


async def repository_input(request: web.Request) -> web.Response:
    repository = _repository(request)
    return _zip_response(request, zip_files(repository.input_files), f"{repository.repository_id}-input.zip")


async def repository_params(request: web.Request) -> web.Response:
    return json_response(200, _repository(request).params)


# -- jobs --------------------------------------------------------------------------------------


def _job(request: web.Request) -> Job:
    scope = _scope(request, job=True)
    return state_of(request).get_job(
        scope.tenant, scope.repository_id, request.match_info["job_id"], application_id=scope.application_id
    )


def _not_over(job: Job, status: str) -> web.Response | None:
    """The answer of result/output for a job that has nothing to give yet, or has failed."""
    if status == FAILED:
        return json_response(500, {"error": "Job failed"})
    if status != FINISHED:
        return json_response(202, {"message": "Job not yet finished"})
    return None


async def list_jobs(request: web.Request) -> web.Response:
    scope = _scope(request, job=True)
    jobs = state_of(request).list_jobs(
        scope.tenant, scope.repository_id, application_id=scope.application_id, **_date_filters(request)
    )
    return json_response(200, jobs)


async def execute_job(request: web.Request) -> web.Response:
    scope = _scope(request, job=True)
    state = state_of(request)
    # Refuse an unknown repository before reading a possibly large upload.
    state.get_repository(scope.tenant, scope.repository_id, application_id=scope.application_id)
    body = await read_submission(request)
    job = state.execute_job(
        scope.tenant,
        scope.repository_id,
        application_id=scope.application_id,
        params=body.params,
        metadata=body.metadata,
        input_files=body.input_files,
        listing_delay=fault_listing_delay(),
    )
    return json_response(201, {"message": "Job created", "job_id": job.job_id})


async def get_job(request: web.Request) -> web.Response:
    job = _job(request)
    body = state_of(request).job_status_body(job)
    return json_response(200 if body["job_status"] in (FINISHED, FAILED) else 202, body)


async def delete_job(request: web.Request) -> web.Response:
    scope = _scope(request, job=True)
    state_of(request).delete_job(
        scope.tenant, scope.repository_id, request.match_info["job_id"], application_id=scope.application_id
    )
    return json_response(200, {"message": "Jobs deleted"})


async def job_result(request: web.Request) -> web.Response:
    job = _job(request)
    refusal = _not_over(job, job.status(state_of(request).clock()))
    if refusal is not None:
        return refusal
    assert job.result is not None
    return json_response(200, {"output": job.result.output})


async def job_params(request: web.Request) -> web.Response:
    return json_response(200, _job(request).params)


async def job_output(request: web.Request) -> web.Response:
    job = _job(request)
    refusal = _not_over(job, job.status(state_of(request).clock()))
    if refusal is not None:
        return refusal
    return _zip_response(request, zip_files(job.output_files()), f"{job.job_id}-output.zip")


async def job_logs(request: web.Request) -> web.Response:
    job = _job(request)
    logs = zip_files(job.log_files(state_of(request).clock()))
    return _zip_response(request, logs, f"{job.job_id}-logs.zip")
