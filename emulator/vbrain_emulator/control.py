"""The handlers of the test control API under ``/_emulator``: faults, the request log, ending jobs,
durations and the rate limit, the reference profile, reset (docs/emulator.md lists every endpoint).

Not part of VBrain: the app serves these only when asked to (``create_app(control=True)``,
``--control``). Errors answer ``{"error": ...}`` like the API's.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vbrain_emulator._web import json_response, state_of
from vbrain_emulator.errors import EmulatorError
from vbrain_emulator.faults import FaultSpecError
from vbrain_emulator.profiles import PROFILE_DESCRIPTIONS, ProfileError
from vbrain_emulator.ratelimit import parse_rate_limit
from vbrain_emulator.state import EmulatorState
from vbrain_emulator.submissions import json_object

__all__ = [
    "add_fault",
    "add_jobs",
    "clear_faults",
    "clear_requests",
    "fail_job",
    "finish_job",
    "get_config",
    "get_profile",
    "list_all_jobs",
    "list_all_repositories",
    "list_faults",
    "list_requests",
    "reset",
    "set_config",
    "set_profile",
]


async def _control_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    return json_object("request body", raw) if raw.strip() else {}


# -- faults and the request log ----------------------------------------------------------------


async def add_fault(request: web.Request) -> web.Response:
    spec = await _control_body(request)
    try:
        fault = state_of(request).faults.add(spec)
    except FaultSpecError as err:
        raise EmulatorError(400, str(err)) from None
    return json_response(201, {"fault_id": fault.fault_id, "fault": fault.to_dict()})


async def list_faults(request: web.Request) -> web.Response:
    return json_response(200, [fault.to_dict() for fault in state_of(request).faults.active()])


async def clear_faults(request: web.Request) -> web.Response:
    state_of(request).faults.clear()
    return json_response(200, {"message": "Faults cleared"})


async def list_requests(request: web.Request) -> web.Response:
    return json_response(200, list(state_of(request).request_log))


async def clear_requests(request: web.Request) -> web.Response:
    state_of(request).request_log.clear()
    return json_response(200, {"message": "Requests cleared"})


# -- jobs and repositories across tenants ------------------------------------------------------


async def finish_job(request: web.Request) -> web.Response:
    state = state_of(request)
    job = state.finish_job(request.match_info["job_id"])
    return json_response(200, job.summary(state.clock()))


async def fail_job(request: web.Request) -> web.Response:
    body = await _control_body(request)
    error = body.get("error", "Job failed by the emulator control API")
    if not isinstance(error, str) or not error:
        raise EmulatorError(400, "error must be a non-empty string")
    state = state_of(request)
    job = state.fail_job(request.match_info["job_id"], error)
    return json_response(200, job.summary(state.clock()))


async def add_jobs(request: web.Request) -> web.Response:
    """``count`` jobs added to a repository, back-dated by ``age_seconds``: a repository with history."""
    body = await _control_body(request)
    fields = {"count", "age_seconds", "application_id", "params", "metadata"}
    unknown = sorted(set(body) - fields)
    if unknown:
        raise EmulatorError(
            400, f"Unknown field(s): {', '.join(unknown)} (expected {', '.join(sorted(fields))})"
        )
    for name in ("params", "metadata"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise EmulatorError(400, f"{name} must be a JSON object")
    if body.get("application_id") is not None and not isinstance(body["application_id"], str):
        raise EmulatorError(400, "application_id must be a string")
    state = state_of(request)
    jobs = state.add_jobs(request.match_info["repository_id"], **body)
    return json_response(201, {"job_ids": [job.job_id for job in jobs]})


async def list_all_jobs(request: web.Request) -> web.Response:
    return json_response(200, state_of(request).all_jobs())


async def list_all_repositories(request: web.Request) -> web.Response:
    return json_response(200, state_of(request).all_repositories())


# -- settings ----------------------------------------------------------------------------------


_CONFIG_FIELDS = ("queue_seconds", "run_seconds", "rate_limit")


def _config_view(state: EmulatorState) -> dict[str, float | None]:
    return {field: getattr(state, field) for field in _CONFIG_FIELDS}


async def get_config(request: web.Request) -> web.Response:
    return json_response(200, _config_view(state_of(request)))


async def set_config(request: web.Request) -> web.Response:
    body = await _control_body(request)
    unknown = sorted(set(body) - set(_CONFIG_FIELDS))
    if unknown:
        raise EmulatorError(
            400, f"Unknown config field(s): {', '.join(unknown)} (expected {', '.join(_CONFIG_FIELDS)})"
        )
    state = state_of(request)
    try:
        # Checked before anything changes: a bad rate limit leaves the durations as they were.
        rate_limit = parse_rate_limit(body["rate_limit"]) if "rate_limit" in body else None
        state.configure(queue_seconds=body.get("queue_seconds"), run_seconds=body.get("run_seconds"))
    except ValueError as err:
        raise EmulatorError(400, str(err)) from None
    if "rate_limit" in body:
        # Absent: unchanged; null or 0: no limit.
        state.set_rate_limit(rate_limit)
    return json_response(200, _config_view(state))


def _profile_view(state: EmulatorState) -> dict[str, Any]:
    return {**state.profile.to_dict(), "profiles": PROFILE_DESCRIPTIONS}


async def get_profile(request: web.Request) -> web.Response:
    return json_response(200, _profile_view(state_of(request)))


async def set_profile(request: web.Request) -> web.Response:
    body = await _control_body(request)
    unknown = sorted(set(body) - {"profile"})
    if unknown:
        raise EmulatorError(400, f"Unknown profile field(s): {', '.join(unknown)} (expected profile)")
    state = state_of(request)
    try:
        state.set_profile(body.get("profile"))
    except ProfileError as err:
        raise EmulatorError(400, str(err)) from None
    return json_response(200, _profile_view(state))


async def reset(request: web.Request) -> web.Response:
    state_of(request).reset()
    return json_response(200, {"message": "Emulator reset"})
