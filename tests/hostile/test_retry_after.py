"""Absurd ``Retry-After`` values: far-future dates, huge, negative, not-a-number or garbage. Whatever
the server asks, the wait is capped by ``retry_max_delay`` and the call goes on (here: the retry
finds the job running), in both hooks; the trigger keeps waiting and ends with an event."""

from __future__ import annotations

import pytest

from tests.hostile import expect, probe
from tests.hostile.conftest import EXECUTE, JOB, QUICK, REPO, STATUS, TRIGGER_BOUND, trigger_kwargs
from tests.hostile.server import HostileServer, reply

OVERFLOWING = [
    pytest.param("Fri, 31 Dec 99999999999999999999 23:59:59 GMT", id="date-in-year-10e20"),
    pytest.param("Fri, 31 Dec 2099 23:59:59 +99999999999999999999", id="date-with-absurd-zone-offset"),
]
HARMLESS = [
    pytest.param("Fri, 31 Dec 9999 23:59:59 GMT", id="date-in-year-9999"),
    pytest.param("99999999999999999999999999", id="huge-number"),
    pytest.param("1e400", id="number-beyond-float"),
    pytest.param("inf", id="infinity"),
    pytest.param("nan", id="not-a-number"),
    pytest.param("-5", id="negative"),
    pytest.param("soon, I promise", id="garbage"),
    pytest.param("Mon, 01 Jan 0001 00:00:00 GMT", id="date-in-year-1"),
]
ALL = [*OVERFLOWING, *HARMLESS]


def _limited_then_running(server: HostileServer, value: str) -> None:
    server.route(
        STATUS,
        reply(429, json={"message": "Too Many Requests"}, headers={"Retry-After": value}),
        reply(202, json={"job_status": "started"}),
    )


@pytest.mark.parametrize("value", ALL)
def test_retry_after_is_capped_and_the_sync_call_goes_on(server: HostileServer, value: str) -> None:
    _limited_then_running(server, value)
    status = expect.clean_return(probe.sync("get_job_status", JOB, REPO, time_limit=QUICK))
    assert status["raw_state"] == "started"
    assert len(server.requests(STATUS)) == 2


@pytest.mark.parametrize("value", [*ALL[:2], HARMLESS[1], HARMLESS[4]])
def test_retry_after_is_capped_and_the_async_call_goes_on(server: HostileServer, value: str) -> None:
    _limited_then_running(server, value)
    status = expect.clean_return(probe.asynchronous("get_job_status", JOB, REPO, time_limit=QUICK))
    assert status["raw_state"] == "started"


def test_far_future_retry_after_on_a_503_create_still_creates(server: HostileServer) -> None:
    """A 503 proves the job was not created, so the create is retried: after a capped wait."""
    server.route(
        EXECUTE,
        reply(503, json={"message": "busy"}, headers={"Retry-After": OVERFLOWING[0].values[0]}),
        reply(201, json={"message": "Job created", "job_id": JOB}),
    )
    assert expect.clean_return(probe.sync("execute_job", REPO, {"a": 1}, time_limit=QUICK)) == JOB


@pytest.mark.parametrize("value", [ALL[0], HARMLESS[1]])
def test_trigger_waits_through_an_absurd_retry_after(server: HostileServer, value: str) -> None:
    # Two attempts per poll: the 429 is retried within the poll, so its Retry-After is read.
    server.route(
        STATUS,
        reply(429, json={"message": "Too Many Requests"}, headers={"Retry-After": value}),
        reply(202, json={"job_status": "started"}),
        reply(200, json={"job_status": "finished"}),
    )
    event = expect.clean_event(
        probe.trigger(time_limit=TRIGGER_BOUND, **trigger_kwargs()), status="succeeded"
    )
    assert event["job_status"] == "finished"
