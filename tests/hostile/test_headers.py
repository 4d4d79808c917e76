"""Header values are checked and encoded the same way before either hook sends.

A value the HTTP library refuses never leaves the machine: it is not retried as a lost connection,
and a create is not reported as "may have been created". A value outside latin-1 is a clear error
(never a raw ``UnicodeEncodeError`` carrying headers and key). And the same value goes out as the same
bytes from the sync and the async hook.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import API_KEY
from tests.hostile import expect, probe
from tests.hostile.conftest import JOB, JOBS, QUICK, REPO, STATUS, connect
from tests.hostile.server import HostileServer, reply

RETRIED = r"after \d+ attempts|may have created"


@pytest.fixture
def answering(server: HostileServer) -> HostileServer:
    server.route(r"^/api/v1/job/execute$", reply(201, json={"message": "Job created", "job_id": JOB}))
    server.route(STATUS, reply(202, json={"job_status": "started"}))
    server.route(JOBS, reply(200, json=[JOB]))
    return server


def _refused_before_sending(report: probe.Report, server: HostileServer, header: str) -> None:
    expect.clean_failure(report, says=[header])
    assert not server.requests(), f"the request was sent: {report.describe()}"
    assert not re.search(RETRIED, report.message), f"treated as a network failure: {report.describe()}"


@pytest.mark.parametrize(
    ("method", "args", "hook", "header"),
    [
        pytest.param(
            "execute_job",
            (" repo-1", {"a": 1}),
            {},
            "repository_id",
            id="execute_job-leading-space-repository_id",
        ),
        pytest.param(
            "get_job_status",
            (JOB, " repo-1"),
            {},
            "repository_id",
            id="get_job_status-leading-space-repository_id",
        ),
        pytest.param(
            "list_jobs",
            (REPO,),
            {"application_id": " Tutorial"},
            "application_id",
            id="list_jobs-leading-space-application_id",
        ),
    ],
)
def test_header_refused_before_sending_is_not_a_lost_connection_sync(
    answering: HostileServer, method: str, args: tuple, hook: dict, header: str
) -> None:
    report = probe.sync(method, *args, hook=hook, time_limit=QUICK)
    _refused_before_sending(report, answering, header)


def test_header_refused_before_sending_async(answering: HostileServer) -> None:
    report = probe.asynchronous("get_job_status", JOB, " repo-1", time_limit=QUICK)
    _refused_before_sending(report, answering, "repository_id")


@pytest.mark.parametrize(
    ("method", "args", "hook", "changes", "header"),
    [
        pytest.param("get_job_status", (JOB, "repo-€"), {}, {}, "repository_id", id="euro-in-repository_id"),
        pytest.param(
            "list_jobs",
            (REPO,),
            {"application_id": "Tutorial-€"},
            {},
            "application_id",
            id="euro-in-application_id",
        ),
        pytest.param("list_jobs", (REPO,), {}, {"login": "анна"}, "username|login", id="cyrillic-login"),
        pytest.param(
            "list_jobs",
            (REPO,),
            {},
            {"password": API_KEY + "€"},
            "api.key|x-api-key|password",
            id="euro-in-api-key",
        ),
    ],
)
def test_non_latin1_header_is_a_clear_error_without_the_key_sync(
    answering: HostileServer,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    args: tuple,
    hook: dict,
    changes: dict,
    header: str,
) -> None:
    if changes:
        connect(monkeypatch, answering.url, **changes)
    report = probe.sync(method, *args, hook=hook, time_limit=QUICK)
    expect.clean_failure(report, says=[header])


def _outcome(answering: HostileServer, run: Any, repository_id: str) -> tuple[str, Any]:
    """What one hook did with ``repository_id``: the bytes it sent, or that it refused before sending."""
    before = len(answering.requests(STATUS))
    report = run("get_job_status", JOB, repository_id, time_limit=QUICK)
    sent = answering.requests(STATUS)[before:]
    if sent:
        return "sent", (sent[-1].raw_header("repository_id"), sent[-1].raw_header("x-api-key"))
    return "refused", (report.is_vbrain_error, "repository_id" in report.message, report.leaks)


@pytest.mark.parametrize(
    "repository_id",
    [
        pytest.param("repo-1", id="ascii-value-and-latin1-key"),
        pytest.param("répo-1", id="latin1-value"),
        pytest.param("repo-€", id="non-latin1-value"),
    ],
)
def test_both_hooks_treat_a_header_value_alike(answering: HostileServer, repository_id: str) -> None:
    """Same connection (its key holds ``ü`` and ``ï``), same value: same bytes sent, or both refuse."""
    sync_did = _outcome(answering, probe.sync, repository_id)
    async_did = _outcome(answering, probe.asynchronous, repository_id)
    assert sync_did == async_did, f"sync hook: {sync_did}; async hook: {async_did}"
    if sync_did[0] == "refused":
        assert sync_did[1] == (True, True, []), "refused without a clear error naming the header"


@pytest.mark.parametrize("hook", ["sync", "async"])
@pytest.mark.parametrize(
    "value", [pytest.param("repo\n1", id="newline"), pytest.param("repo\r\nX-Evil: 1", id="crlf-injection")]
)
def test_control_characters_are_refused_before_sending(
    answering: HostileServer, hook: str, value: str
) -> None:
    run = probe.sync if hook == "sync" else probe.asynchronous
    report = run("get_job_status", JOB, value, time_limit=QUICK)
    _refused_before_sending(report, answering, "repository_id")
