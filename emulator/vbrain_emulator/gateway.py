"""The gateway in front of the API, as one aiohttp middleware: it applies injected faults, checks
``x-api-key`` (before any scoping header, like an API gateway), throttles each key to the rate limit,
turns errors into the platform's JSON bodies, and logs every API request.

It also routes the emulator's own paths: the control API (when enabled) gets the error bodies only,
and the job pages (:mod:`.ui`) bypass it all. Handlers reach the fault matched to their request
through :func:`hold` and :func:`fault_listing_delay`.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from vbrain_emulator._web import (
    CONTROL_PREFIX,
    SETTINGS_KEY,
    UI_PREFIX,
    Handler,
    json_response,
    state_of,
)
from vbrain_emulator.errors import EmulatorError
from vbrain_emulator.faults import Fault
from vbrain_emulator.state import EmulatorState
from vbrain_emulator.ui import serve_page
from vbrain_emulator.wire import (
    API_KEY_HEADER,
    APPLICATION_HEADER,
    CLIENT_HEADER,
    ORGANIZATION_HEADER,
    REPOSITORY_HEADER,
)

__all__ = ["fault_listing_delay", "gateway", "hold"]

# The scoping headers each logged request keeps (never the API key), under their own names.
_LOGGED_HEADERS = (ORGANIZATION_HEADER, CLIENT_HEADER, REPOSITORY_HEADER, APPLICATION_HEADER)


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


def fault_listing_delay() -> float | None:
    """Seconds the current request's fault keeps what it creates out of the listings (None: the
    profile's delay)."""
    effects = _FAULT_EFFECTS.get()
    return effects.listing_delay if effects is not None else None


async def hold() -> None:
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


def _under(prefix: str, path: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run a handler, turning emulator errors into ``{"error"}`` and HTTP errors into gateway-style
    ``{"message"}`` bodies (unknown route, method not allowed, upload too large)."""
    try:
        return await handler(request)
    except EmulatorError as err:
        return json_response(err.status, {"error": err.message})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {name: value for name, value in exc.headers.items() if name.lower() == "allow"}
        return json_response(exc.status, {"message": exc.reason}, headers)


async def _serve_api(request: web.Request, handler: Handler) -> web.StreamResponse:
    api_keys = request.app[SETTINGS_KEY].api_keys
    key = request.headers.get(API_KEY_HEADER, "")
    if not key or (api_keys and key not in api_keys):
        return json_response(403, {"message": "Forbidden"})
    # Throttled per key once the key is known good, as an API gateway's usage plan does.
    retry_after = state_of(request).rate_limiter.admit(key)
    if retry_after is not None:
        return json_response(429, {"message": "Too Many Requests"}, {"Retry-After": str(retry_after)})
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
    return json_response(status, body, headers)


def _log_entry(request: web.Request) -> dict[str, Any]:
    """The request log's entry for an API request, before it is answered."""
    return {
        "method": request.method,
        # Decoded whole, "%2F" included (older aiohttp releases leave it encoded in request.path).
        "path": unquote(request.raw_path.partition("?")[0]),
        "query": dict(request.query),
        "status": None,
        "time": time.time(),
        **{name: request.headers.get(name) for name in _LOGGED_HEADERS},
        # Which client sent it (the provider names its version, Airflow's and Python's).
        "user_agent": request.headers.get("User-Agent"),
        "fault": None,
    }


@web.middleware
async def gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The middleware: route by path prefix; for the API, apply faults, check the key, log.

    :param request: any request to the emulator.
    :param handler: the handler aiohttp routed it to.
    """
    state = state_of(request)
    settings = request.app[SETTINGS_KEY]
    if _under(CONTROL_PREFIX, request.path):
        if not settings.control:
            return json_response(404, {"message": "Not Found"})
        return await _answer(request, handler)
    if _under(UI_PREFIX, request.path):
        # Web pages for a browser: no key, no faults, not logged as API traffic.
        if not settings.ui:
            return json_response(404, {"message": "Not Found"})
        return await serve_page(request, handler)

    entry = _log_entry(request)
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
                # A create waits with its body read (see hold): aiohttp does not cancel a handler whose
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
                response = json_response(503, {"error": _RESET_WHILE_WAITING})
            else:
                response = await _serve_api(request, handler)
        entry["status"] = None if fault is not None and fault.drop else response.status
        return response
    finally:
        _FAULT_EFFECTS.reset(token)
        # A request from before a reset is not logged: the log now belongs to the next test.
        if not effects.outlived_reset():
            state.record_request(entry)
