"""The API key never comes back out: not when the server quotes it in an error, not in a redirect's
target, not in a status field, not in the repr of a chained library exception. Checked over the error's
text, its args, its whole cause chain (with reprs), what the call logged and printed, the connection
test's message and the trigger's event payload. (Chained aiohttp errors whose repr carries the request
headers are in ``test_protocol.py``, with the broken answers that raise them.)"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.hostile import expect, probe
from tests.hostile.conftest import (
    JOB,
    OUTPUT,
    QUICK,
    REPO,
    REPOSITORIES,
    STATUS,
    TRIGGER_BOUND,
    trigger_kwargs,
)
from tests.hostile.server import HostileServer, Request, redirect, reply


def _key(request: Request) -> str:
    return request.header("x-api-key") or ""


ECHOES = [
    pytest.param(
        lambda: reply(403, json=lambda r: {"message": f"Forbidden: key {_key(r)} is not valid"}),
        id="json-403",
    ),
    pytest.param(
        lambda: reply(
            403,
            lambda r: f"<html><head><title>Denied for {_key(r)}</title></head><body>no</body></html>",
            content_type="text/html",
        ),
        id="html-403-title",
    ),
    pytest.param(
        lambda: reply(401, lambda r: f"bad key {_key(r)}", content_type="text/plain"), id="text-401"
    ),
    pytest.param(
        lambda: reply(400, json=lambda r: {"error": f"Missing organization_id (x-api-key={_key(r)})"}),
        id="json-400-missing-header",
    ),
    pytest.param(
        lambda: redirect(302, lambda r: f"https://login.example.com/?key={quote(_key(r), safe='')}"),
        id="redirect-location",
    ),
]


@pytest.mark.parametrize("answer", ECHOES)
def test_echoed_key_is_redacted_sync(server: HostileServer, answer) -> None:
    server.route(STATUS, answer())
    expect.clean_failure(probe.sync("get_job_status", JOB, REPO, time_limit=QUICK), endpoint=f"/job/{JOB}")


def test_echoed_key_in_a_download_that_is_not_a_zip_is_redacted(server: HostileServer, tmp_path) -> None:
    """A gateway's 200 page instead of the ZIP, quoting the key: the error quotes the page, not the key."""
    server.route(OUTPUT, reply(200, json=lambda r: {"message": f"session for {_key(r)} expired"}))
    report = probe.sync("download_job_output", JOB, REPO, str(tmp_path), time_limit=QUICK)
    expect.clean_failure(report, says=["expected a ZIP", "session for"])
    assert not list(tmp_path.iterdir()), "a file was left behind"


@pytest.mark.parametrize("answer", [ECHOES[0], ECHOES[4]])
def test_echoed_key_is_redacted_async(server: HostileServer, answer) -> None:
    server.route(STATUS, answer())
    report = probe.asynchronous("get_job_status", JOB, REPO, time_limit=QUICK)
    expect.clean_failure(report, endpoint=f"/job/{JOB}")


@pytest.mark.parametrize(
    "answer",
    [
        ECHOES[0],
        pytest.param(lambda: reply(200, json=lambda r: {"job_status": _key(r)}), id="key-as-job_status"),
    ],
)
def test_echoed_key_stays_out_of_the_trigger_event(trigger_server: HostileServer, answer) -> None:
    trigger_server.route(STATUS, answer())
    expect.clean_event(probe.trigger(time_limit=TRIGGER_BOUND, **trigger_kwargs()))


def test_echoed_key_stays_out_of_the_connection_test(server: HostileServer) -> None:
    server.route(REPOSITORIES, ECHOES[0].values[0]())
    ok, message = expect.clean_return(probe.sync("test_connection", time_limit=QUICK))
    assert not ok
    assert "403" in message
