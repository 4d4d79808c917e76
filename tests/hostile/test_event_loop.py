"""One triggerer event loop runs every deferred wait of a deployment: no answer may hold it.

The async hook and the trigger run on a real event loop in debug mode, with asyncio reporting every
callback that holds the loop longer than 50 ms. Against pathological bodies each call must still end
in a clear error (the trigger: in an event), and no callback may hold the loop past
:data:`~tests.hostile.expect.LOOP_BLOCK_LIMIT`.
"""

from __future__ import annotations

import functools
import time

import pytest

from tests.hostile import expect, probe
from tests.hostile.conftest import (
    JOB,
    QUICK,
    REPO,
    RESULT,
    STATUS,
    TRIGGER_BOUND,
    trigger_kwargs,
)
from tests.hostile.probe import Call
from tests.hostile.server import HostileServer, MiB, reply


#: 32 KiB of ``<`` or of unclosed ``<title>``: small enough that today's quadratic cleaning ends
#: (about a second of CPU, all of it inside one callback) and asyncio reports the block; 1 MiB, the
#: real attack, never ends (see ``test_error_bodies.py``).
LT = b"<" * (32 * 1024)
TITLES = b"<title>" * (32 * 1024 // 7)
#: Today's cleaning takes a few seconds of a loaded machine here; a linear one, milliseconds.
MEASURED = 10.0


@functools.lru_cache(maxsize=1)
def huge_status() -> bytes:
    """A valid status answer of 48 MiB."""
    return b'{"job_status": "started", "padding": "' + b"x" * (48 * MiB) + b'"}'


def test_pathological_html_never_blocks_the_loop_async(server: HostileServer) -> None:
    """``<`` x 32 KiB in a 500 on the status, unclosed ``<title>`` x 32 KiB in a 200 on the result."""
    server.route(STATUS, reply(500, LT, content_type="text/html"))
    server.route(RESULT, reply(200, TITLES, content_type="text/html"))
    calls = [Call("async", "get_job_status", (JOB, REPO)), Call("async", "get_job_result", (JOB, REPO))]
    reports = probe.run_many(calls, time_limit=MEASURED)
    expect.clean_failures(reports, [f"/job/{JOB}", f"/job/{JOB}/result"])


def test_valid_48MiB_answer_is_refused_async(memory_server: HostileServer) -> None:
    """Refused for its size, before it is parsed on the event loop."""
    memory_server.route(STATUS, reply(202, huge_status()))
    report = probe.asynchronous("get_job_status", JOB, REPO, time_limit=QUICK)
    expect.clean_failure(report, endpoint=f"/job/{JOB}", says=[expect.TOO_LARGE])


def test_pathological_html_status_never_blocks_the_trigger(trigger_server: HostileServer) -> None:
    """``<`` x 32 KiB in a 500 on every poll: after five polls the trigger gives up with an error
    event, and no poll held the loop."""
    trigger_server.route(STATUS, reply(500, LT, content_type="text/html"))
    report = probe.trigger(time_limit=MEASURED, **trigger_kwargs(end_time=time.time() + MEASURED))
    expect.clean_event(report, status="error", says=["500"])


def test_a_normal_wait_does_not_block_the_loop(trigger_server: HostileServer) -> None:
    """The measurement itself: an ordinary wait reports no slow callback worth failing on."""
    trigger_server.route(
        STATUS, reply(202, json={"job_status": "started"}), reply(200, json={"job_status": "finished"})
    )
    event = expect.clean_event(
        probe.trigger(time_limit=TRIGGER_BOUND, **trigger_kwargs()), status="succeeded"
    )
    assert event["job_status"] == "finished"
