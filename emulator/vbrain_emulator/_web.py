"""What the emulator's handlers and its gateway share: where the app keeps its state and settings,
the path prefixes it serves, and JSON answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vbrain_emulator.state import EmulatorState

__all__ = [
    "CONTROL_PREFIX",
    "SETTINGS_KEY",
    "STATE_KEY",
    "UI_PREFIX",
    "Handler",
    "Settings",
    "json_response",
    "state_of",
]

#: The test control API (not VBrain's); VBrain's own prefix is the client's, ``_wire.API_PREFIX``.
CONTROL_PREFIX = "/_emulator"
#: The read-only job pages.
UI_PREFIX = "/ui"


@dataclass(frozen=True)
class Settings:
    """What :func:`.app.create_app` was asked to serve, for the gateway.

    :param api_keys: the accepted ``x-api-key`` values; empty: any non-empty key.
    :param control: whether the control API is served.
    :param ui: whether the job pages are served.
    """

    api_keys: frozenset[str]
    control: bool
    ui: bool


STATE_KEY = web.AppKey("vbrain_emulator_state", EmulatorState)
SETTINGS_KEY = web.AppKey("vbrain_emulator_settings", Settings)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def state_of(request: web.Request) -> EmulatorState:
    """The state the request's app serves.

    :param request: any request to the emulator.
    """
    return request.app[STATE_KEY]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer.

    :param status: the HTTP status.
    :param body: the JSON value.
    :param headers: extra headers.
    """
    return web.json_response(body, status=status, headers=headers)
