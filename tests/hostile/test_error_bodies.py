"""Error bodies built to be expensive: pathological HTML (quadratic to clean with regexes) and JSON
nested deeper than Python's recursion limit. Each must end in a clear ``VBrainError`` at once."""

from __future__ import annotations

import time

import pytest

from tests.hostile import expect, probe
from tests.hostile.conftest import (
    EXECUTE,
    JOB,
    JOBS,
    QUICK,
    REPO,
    REPOSITORIES,
    RESULT,
    STATUS,
    TRIGGER_BOUND,
    trigger_kwargs,
)
from tests.hostile.probe import Call
from tests.hostile.server import HostileServer, MiB, nested_json, reply

#: 1 MiB of ``<``: every position starts a tag that runs to the end (today about 16 minutes).
LT = b"<" * MiB
#: 1 MiB of ``<title>``: every title opens and none closes.
TITLES = b"<title>" * (MiB // 7)
#: An answer nested 100,000 levels deep.
DEEP = nested_json(100_000)


def test_pathological_html_fails_fast_sync(server: HostileServer) -> None:
    """``<`` x 1 MiB in a 500, unclosed ``<title>`` x 1 MiB in a 200, ``<`` x 1 MiB in a 404: each call
    fails within the quick bound (run at once: today each takes minutes)."""
    server.route(STATUS, reply(500, LT, content_type="text/html"))
    server.route(RESULT, reply(200, TITLES, content_type="text/html"))
    server.route(JOBS, reply(404, LT, content_type="text/html"))
    calls = [
        Call("sync", "get_job_status", (JOB, REPO)),
        Call("sync", "get_job_result", (JOB, REPO)),
        Call("sync", "list_jobs", (REPO,)),
    ]
    reports = probe.run_many(calls, time_limit=QUICK)
    expect.clean_failures(reports, [f"/job/{JOB}", f"/job/{JOB}/result", "/api/v1/job"])


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(202, DEEP, id="nested-100k-status-answer"),
        pytest.param(500, DEEP, id="nested-100k-error-body"),
    ],
)
@pytest.mark.parametrize("hook", ["sync", "async"])
def test_deeply_nested_answer_fails_clearly(
    server: HostileServer, hook: str, status: int, body: bytes
) -> None:
    server.route(STATUS, reply(status, body))
    run = probe.sync if hook == "sync" else probe.asynchronous
    expect.clean_failure(run("get_job_status", JOB, REPO, time_limit=QUICK), endpoint=f"/job/{JOB}")


@pytest.mark.parametrize("hook", ["sync", "async"])
def test_deeply_nested_job_list_fails_clearly(server: HostileServer, hook: str) -> None:
    server.route(JOBS, reply(200, DEEP))
    run = probe.sync if hook == "sync" else probe.asynchronous
    expect.clean_failure(run("list_jobs", REPO, time_limit=QUICK), endpoint="/api/v1/job")


@pytest.mark.parametrize(
    ("method", "args", "path"),
    [
        pytest.param(
            "execute_job", (REPO, probe.Nested(2000)), EXECUTE, id="execute_job-job_params-2000-deep"
        ),
        pytest.param(
            "create_repository", (probe.Nested(2000),), REPOSITORIES, id="create_repository-params-2000-deep"
        ),
        pytest.param(
            "execute_job", (REPO, None, probe.Nested(2000)), EXECUTE, id="execute_job-metadata-2000-deep"
        ),
    ],
)
def test_deeply_nested_arguments_are_refused_before_sending(
    server: HostileServer, method: str, args: tuple, path: str
) -> None:
    server.route(path, reply(201, json={"job_id": JOB, "repository_id": REPO}))
    report = probe.sync(method, *args, time_limit=QUICK)
    expect.clean_failure(report, says=[r"params|metadata"])
    assert not server.requests(), "the request was sent"


def test_deeply_nested_status_ends_the_trigger_with_an_error_event(trigger_server: HostileServer) -> None:
    trigger_server.route(STATUS, reply(202, DEEP))
    report = probe.trigger(time_limit=TRIGGER_BOUND, **trigger_kwargs(end_time=time.time() + TRIGGER_BOUND))
    expect.clean_event(report, status="error")
