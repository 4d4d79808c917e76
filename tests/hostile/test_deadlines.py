"""Every call is bounded in total time: the connection's ``timeout`` is a deadline for the whole request
(connect, headers, body), in both hooks. A server that trickles one byte at a time, or sends interim
``100 Continue`` answers forever, must not hold a worker slot past ``timeout`` x attempts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile import expect, probe
from tests.hostile.conftest import (
    DEADLINE_BOUND,
    EXECUTE,
    JOB,
    JOBS,
    OUTPUT,
    REPO,
    RESULT,
    STATUS,
    TRIGGER_BOUND,
    trigger_kwargs,
)
from tests.hostile.probe import Call
from tests.hostile.server import HostileServer, interim_forever, silent, trickle

#: Headers complete, then the body trickles (one byte every 0.2 s; a read never waits long).
BODY_TRICKLE = trickle(
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", interval=0.2
)
#: The status line arrives, then one header never ends.
HEADER_TRICKLE = trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ", drip=b"a", interval=0.2)
#: A ZIP download whose body trickles.
DOWNLOAD_TRICKLE = trickle(
    b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: 10000000\r\n\r\nPK\x03\x04",
    interval=0.2,
)

#: Attacks on distinct endpoints, so one test runs them all at once: their deadlines overlap.
SYNC_CASES = [
    (STATUS, BODY_TRICKLE, "get_job_status", (JOB, REPO), f"/job/{JOB}"),
    (JOBS, HEADER_TRICKLE, "list_jobs", (REPO,), "/api/v1/job"),
    (OUTPUT, DOWNLOAD_TRICKLE, "download_job_output", (JOB, REPO), f"/job/{JOB}/output"),
    (EXECUTE, BODY_TRICKLE, "execute_job", (REPO, {"a": 1}), "/api/v1/job/execute"),
    (RESULT, interim_forever(), "get_job_result", (JOB, REPO), f"/job/{JOB}/result"),
]


def test_trickling_or_endlessly_interim_answers_end_within_the_deadline_sync(
    server: HostileServer, tmp_path: Path
) -> None:
    """Trickling status body, trickling header, trickling download, trickling answer to a create, and
    endless ``100 Continue``: each sync call fails within ``timeout`` x attempts."""
    calls = []
    for path, answer, method, args, _ in SYNC_CASES:
        server.route(path, answer)
        if method == "download_job_output":
            args = (*args, str(tmp_path / "out.zip"))
        calls.append(Call("sync", method, args))
    reports = probe.run_many(calls, time_limit=DEADLINE_BOUND)
    expect.clean_failures(reports, [endpoint for *_, endpoint in SYNC_CASES], says=["timed out|deadline"])


def test_trickling_or_endlessly_interim_answers_end_within_the_deadline_async(server: HostileServer) -> None:
    cases = [case for case in SYNC_CASES if case[2] in ("get_job_status", "list_jobs", "get_job_result")]
    for path, answer, *_ in cases:
        server.route(path, answer)
    reports = probe.run_many(
        [Call("async", method, args) for _, _, method, args, _ in cases], time_limit=DEADLINE_BOUND
    )
    expect.clean_failures(reports, [endpoint for *_, endpoint in cases], says=["timed out|deadline"])


@pytest.mark.parametrize("hook", ["sync", "async"])
def test_silent_server_ends_within_the_deadline(server: HostileServer, hook: str) -> None:
    server.route(STATUS, silent())
    run = probe.sync if hook == "sync" else probe.asynchronous
    report = run("get_job_status", JOB, REPO, time_limit=DEADLINE_BOUND)
    expect.clean_failure(report, endpoint=f"/job/{JOB}", says=["timed out"])
    assert len(server.requests(STATUS)) == 2, "each of the two attempts should have been sent"


def test_trickling_status_ends_the_trigger_with_an_error_event(trigger_server: HostileServer) -> None:
    trigger_server.route(STATUS, BODY_TRICKLE)
    # Five polls in a row, each cut at the deadline, then the trigger gives up.
    report = probe.trigger(time_limit=TRIGGER_BOUND + 5 * 0.5, **trigger_kwargs())
    expect.clean_event(report, status="error", says=["timed out"])


def test_trickling_download_ends_within_the_deadline_and_leaves_no_file(
    server: HostileServer, tmp_path: Path
) -> None:
    """A ZIP that arrives a byte at a time: cut at the deadline on each attempt, nothing kept."""
    server.route(OUTPUT, DOWNLOAD_TRICKLE)
    destination = tmp_path / "out" / "output.zip"
    report = probe.sync("download_job_output", JOB, REPO, str(destination), time_limit=DEADLINE_BOUND)
    expect.clean_failure(report, endpoint=f"/job/{JOB}/output", says=["timed out", "deadline"])
    assert len(server.requests(OUTPUT)) == 2, "each of the two attempts should have been sent"
    left = list(destination.parent.iterdir()) if destination.parent.exists() else []
    assert not left, f"a download cut at its deadline left {left}"
