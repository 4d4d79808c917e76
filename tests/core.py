"""Canned answers and failures for the I/O-free core's tests, and a driver for its exchanges."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_vbrain._client.exchange import Exchange, Send, Sleep
from airflow_provider_vbrain._client.http import FailureKind, Response, TransportFailure

#: A fixed "now" for tests of time arithmetic.
NOW = 1_800_000_000.0


def answer(status: int, body: Any = None, **headers: str) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
    return Response(status, {k.replace("_", "-").lower(): v for k, v in headers.items()}, raw)


def failure(kind: FailureKind) -> TransportFailure:
    return TransportFailure(kind, OSError("boom"))


def run(steps: Exchange[Any], outcomes: list[Any]) -> tuple[Any, list[float], int]:
    """Drive an exchange with canned outcomes; return its value, the sleeps, the sends."""
    sleeps: list[float] = []
    sends = 0
    command = next(steps)
    try:
        while True:
            if isinstance(command, Send):
                sends += 1
                command = steps.send(outcomes.pop(0))
            else:
                assert isinstance(command, Sleep)
                sleeps.append(command.seconds)
                command = steps.send(None)
    except StopIteration as done:
        return done.value, sleeps, sends
