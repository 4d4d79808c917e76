"""Broken HTTP: resets mid-body, malformed status lines, lying lengths, redirects, self-signed TLS.
These already end well; the tests keep them that way through the transports' restructuring."""

from __future__ import annotations

import pytest

from tests.hostile import expect, probe
from tests.hostile.conftest import (
    ATTEMPTS,
    EXECUTE,
    JOB,
    QUICK,
    REPO,
    STATUS,
    TRIGGER_BOUND,
    connect,
    trigger_kwargs,
)
from tests.hostile.server import HostileServer, raw, redirect, reply

STATUS_HEAD = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"

BROKEN = [
    pytest.param(
        raw(STATUS_HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"job_status": ', then="reset"),
        id="reset-mid-body",
    ),
    pytest.param(
        raw(STATUS_HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"job_status": '),
        id="short-body-then-close",
    ),
    pytest.param(raw(b""), id="closed-without-answer"),
    pytest.param(raw(b"HTTP/1.1 abc OK\r\n\r\n"), id="malformed-status-line"),
    pytest.param(raw(b"SMTP ready\r\n\r\n"), id="not-http"),
    pytest.param(
        raw(STATUS_HEAD + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nabc"),
        id="chunk-size-overflow",
    ),
    pytest.param(raw(STATUS_HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"), id="garbage-chunk-size"),
    pytest.param(raw(b"HTTP/1.1 200 OK\r\n" + b"X-Filler: y\r\n" * 200 + b"\r\n"), id="200-headers"),
]


@pytest.mark.parametrize("answer", BROKEN)
@pytest.mark.parametrize("hook", ["sync", "async"])
def test_broken_answer_is_a_connection_error_after_the_retries(
    server: HostileServer, hook: str, answer
) -> None:
    server.route(STATUS, answer)
    run = probe.sync if hook == "sync" else probe.asynchronous
    expect.clean_failure(run("get_job_status", JOB, REPO, time_limit=QUICK), endpoint=f"/job/{JOB}")
    assert len(server.requests(STATUS)) >= ATTEMPTS, "a lost answer to a GET is retried"


def test_create_whose_answer_is_lost_is_not_repeated(server: HostileServer) -> None:
    server.route(EXECUTE, raw(b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{", then="reset"))
    report = probe.sync("execute_job", REPO, {"a": 1}, time_limit=QUICK)
    expect.clean_failure(report, endpoint="/api/v1/job/execute", says=["may have created"])
    assert len(server.requests(EXECUTE)) == 1


@pytest.mark.parametrize("hook", ["sync", "async"])
@pytest.mark.parametrize("status", [302, 307])
def test_redirect_is_not_followed(server: HostileServer, hook: str, status: int) -> None:
    server.route(STATUS, redirect(status, f"{server.url}/elsewhere/api/v1/job/{JOB}"))
    server.route("/elsewhere", reply(202, json={"job_status": "started"}))
    run = probe.sync if hook == "sync" else probe.asynchronous
    report = run("get_job_status", JOB, REPO, time_limit=QUICK)
    expect.clean_failure(report, endpoint=f"/job/{JOB}", says=["redirect", "/elsewhere"])
    assert not server.requests("/elsewhere"), "the redirect was followed, API key and all"


@pytest.mark.parametrize("hook", ["sync", "async"])
def test_self_signed_certificate_fails_at_once(
    tls_server: HostileServer, monkeypatch: pytest.MonkeyPatch, hook: str
) -> None:
    tls_server.reset()
    tls_server.route(STATUS, reply(202, json={"job_status": "started"}))
    connect(monkeypatch, tls_server.url, retry_base_delay=5, retry_max_delay=5)
    run = probe.sync if hook == "sync" else probe.asynchronous
    # Not retried: a retry would wait 5 s first.
    expect.clean_failure(
        run("get_job_status", JOB, REPO, time_limit=QUICK), endpoint=f"/job/{JOB}", says=["TLS"]
    )
    assert not tls_server.requests()


@pytest.mark.parametrize("hook", ["sync", "async"])
def test_self_signed_certificate_trusted_through_verify_works(
    tls_server: HostileServer, monkeypatch: pytest.MonkeyPatch, hook: str
) -> None:
    tls_server.reset()
    tls_server.route(STATUS, reply(202, json={"job_status": "started"}))
    connect(monkeypatch, tls_server.url, verify=str(tls_server.cert_path))
    run = probe.sync if hook == "sync" else probe.asynchronous
    assert expect.clean_return(run("get_job_status", JOB, REPO, time_limit=QUICK))["raw_state"] == "started"


def test_self_signed_certificate_ends_the_trigger_with_an_error_event(
    tls_server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls_server.reset()
    connect(monkeypatch, tls_server.url, retry_attempts=1)
    expect.clean_event(
        probe.trigger(time_limit=TRIGGER_BOUND, **trigger_kwargs()), status="error", says=["TLS"]
    )


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        pytest.param(reply(200, b"", content_type="application/json"), "expected JSON", id="empty-200"),
        pytest.param(
            reply(202, json=["not", "an", "object"]), "expected a JSON object", id="list-for-status"
        ),
        pytest.param(
            reply(202, b"<html>maintenance</html>", content_type="text/html"), "maintenance", id="html-202"
        ),
        pytest.param(
            reply(202, b"\xff\xfe\x00garbage", content_type="application/json"),
            "expected JSON",
            id="binary-202",
        ),
    ],
)
@pytest.mark.parametrize("hook", ["sync", "async"])
def test_answer_of_the_wrong_shape_is_a_clear_error(
    server: HostileServer, hook: str, answer, says: str
) -> None:
    server.route(STATUS, answer)
    run = probe.sync if hook == "sync" else probe.asynchronous
    expect.clean_failure(
        run("get_job_status", JOB, REPO, time_limit=QUICK), endpoint=f"/job/{JOB}", says=[says]
    )
