"""One back-off per connection per event loop: what one wait learns of the server's load holds the
others, requests in flight are capped, and a wait's own deadline still wins over a hold.

Many calls run on one real event loop (as the triggers of one triggerer do) against a server that
answers as each test tells it to; what is checked is when requests reached it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_provider_vbrain._transport.aio import close_shared_session
from airflow_provider_vbrain._transport.gate import CONCURRENT_REQUESTS
from airflow_provider_vbrain.hooks.vbrain import VBrainAsyncHook
from airflow_provider_vbrain.triggers.vbrain import VBrainJobTrigger
from tests.core import Recorder, first_event, recording
from tests.hostile.conftest import JOB, REPO, STATUS, connect
from tests.hostile.server import HostileServer, Request, reply

RUNNING = reply(202, json={"job_status": "started"})
#: How early a held request may reach the server: the server logs a request when it has read it,
#: a little after the client sent it.
EARLY = 0.05


def statuses(count: int) -> list[Any]:
    return [VBrainAsyncHook().get_job_status(JOB, REPO) for _ in range(count)]


async def gathered(*calls: Any) -> list[Any]:
    try:
        return await asyncio.gather(*calls)
    finally:
        await close_shared_session()


async def after_first_answer(recorded: Recorder) -> None:
    """Wait until the client has read the answer to one request (the exchange counts it then)."""
    while not [call for call in recorded.calls if call[0] == "request"]:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("retry_after", ["1", None], ids=["retry-after", "no-retry-after"])
def test_a_429_seen_by_one_wait_holds_the_others_on_the_connection(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, retry_after: str | None
) -> None:
    """Without ``Retry-After`` the hold is the retry policy's first back-off (``retry_base_delay``)."""
    connect(monkeypatch, server.url, retry_attempts=3, retry_base_delay=1.0, retry_max_delay=5.0)
    headers = {"Retry-After": retry_after} if retry_after else {}
    server.route(STATUS, reply(429, json={"message": "Too Many Requests"}, headers=headers), RUNNING)

    async def scenario(recorded: Recorder) -> list[Any]:
        first = asyncio.ensure_future(VBrainAsyncHook().get_job_status(JOB, REPO))
        await after_first_answer(recorded)
        return await gathered(first, *statuses(10))

    with recording() as recorded:
        results = asyncio.run(scenario(recorded))
    assert [status.raw_state for status in results] == ["started"] * 11
    throttled, *later = server.requests(STATUS)
    assert len(later) == 11
    assert min(request.time for request in later) >= throttled.time + 1.0 - EARLY
    # The hold is counted: the ten waits that came after the 429 were each held most of a second.
    held = [call[1] for call in recorded.calls if call[0] == "held"]
    assert len([seconds for seconds in held if seconds > 0.5]) >= 10


def test_a_run_of_503s_holds_every_wait_on_the_connection(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three waits are told 503 (each call tries once); the wait that comes next waits out the back-off."""
    connect(monkeypatch, server.url, retry_attempts=1, retry_base_delay=1.0, retry_max_delay=5.0)
    busy = reply(503, json={"message": "Service Unavailable"})
    server.route(STATUS, busy, busy, busy, RUNNING)

    async def scenario() -> Any:
        for _ in range(3):  # one after another: the run is seen in order
            with pytest.raises(Exception, match="503"):
                await VBrainAsyncHook().get_job_status(JOB, REPO)
        return (await gathered(*statuses(1)))[0]

    assert asyncio.run(scenario()).raw_state == "started"
    *unavailable, after = server.requests(STATUS)
    assert after.time >= unavailable[-1].time + 1.0 - EARLY


def test_a_single_503_holds_no_other_wait(server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # A hold would last the policy's 5 s: far from the next request's moments on a busy machine.
    connect(monkeypatch, server.url, retry_attempts=1, retry_base_delay=5.0, retry_max_delay=10.0)
    server.route(STATUS, reply(503, json={"message": "Service Unavailable"}), RUNNING)

    async def scenario() -> Any:
        with pytest.raises(Exception, match="503"):
            await VBrainAsyncHook().get_job_status(JOB, REPO)
        return (await gathered(*statuses(1)))[0]

    assert asyncio.run(scenario()).raw_state == "started"
    unavailable, after = server.requests(STATUS)
    assert after.time - unavailable.time < 4.0


def test_requests_in_flight_are_capped_per_connection(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hundred waits poll at once against a slow server: at most the cap are in flight, the rest
    queue on the loop, and every one gets its answer."""
    connect(monkeypatch, server.url, timeout=30.0)
    in_flight, peak = [0], [0]

    async def slow(request: Request, wire: Any) -> None:
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        try:
            # The first answers wait for the cap's worth of requests (up to 10 s), so that a busy
            # machine opening connections slowly still shows how many may be in flight at once.
            for _ in range(1000):
                if peak[0] >= CONCURRENT_REQUESTS:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            await RUNNING(request, wire)
        finally:
            in_flight[0] -= 1

    server.route(STATUS, slow)
    results = asyncio.run(gathered(*statuses(200)))
    assert [status.raw_state for status in results] == ["started"] * 200
    assert peak[0] == CONCURRENT_REQUESTS


def test_the_deadline_of_a_wait_wins_over_a_hold(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server asks for 30 s; the trigger's deadline, a second away, ends the wait in time."""
    connect(monkeypatch, server.url, retry_attempts=1, retry_max_delay=30.0)
    server.route(STATUS, reply(429, json={"message": "Too Many Requests"}, headers={"Retry-After": "30"}))
    trigger = VBrainJobTrigger(JOB, REPO, poll_interval=0.1, end_time=time.time() + 1.5)

    async def scenario() -> dict[str, Any]:
        try:
            return await first_event(trigger)
        finally:
            await close_shared_session()

    started = time.monotonic()
    event = asyncio.run(scenario())
    assert event["status"] == "timeout"
    assert time.monotonic() - started < 10
    assert len(server.requests(STATUS)) == 1  # the held poll never left
