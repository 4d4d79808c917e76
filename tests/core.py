"""Canned answers and failures for the I/O-free core's tests, a driver for its exchanges, and a meter
that records what it is told."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

from airflow_provider_vbrain._client.exchange import Exchange, Send, Sleep
from airflow_provider_vbrain._client.http import FailureKind, Response, TransportFailure
from airflow_provider_vbrain._client.metering import Meter, set_meter
from airflow_provider_vbrain._client.polling import JITTER

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


class Recorder(Meter):
    """A meter that keeps every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def request(self, endpoint: str, status: int | None) -> None:
        self.calls.append(("request", endpoint, status))

    def retry(self, endpoint: str) -> None:
        self.calls.append(("retry", endpoint))

    def wait_ended(self, outcome: str, polls: int, seconds: float) -> None:
        self.calls.append(("wait_ended", outcome, polls, seconds))

    def held(self, seconds: float) -> None:
        self.calls.append(("held", seconds))


@contextlib.contextmanager
def recording() -> Iterator[Recorder]:
    """A :class:`Recorder` as the process's meter; the previous meter back after it."""
    recorder = Recorder()
    previous = set_meter(recorder)
    try:
        yield recorder
    finally:
        current = set_meter(previous)
    assert current is recorder, "the meter was swapped during the recording"


async def first_event(trigger: Any, timeout: float = 20) -> dict[str, Any]:
    """The payload of the first event ``trigger`` fires, within ``timeout`` seconds."""

    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    return await asyncio.wait_for(first(), timeout)


def jittered(pauses: list[float], interval: float) -> bool:
    """Whether every pause is ``interval`` less at most the schedule's jitter (never more)."""
    return all(interval * (1 - JITTER) <= pause <= interval for pause in pauses)
