"""Connections that lie: credentials embedded in the host, timeouts of ``nan`` or ``inf``, a fractional
attempt count. Each is a configuration error that names the field, shows no credential, and is raised
before anything is sent (never a raw ``ValueError`` or ``OverflowError`` from deep inside a library)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.conftest import API_KEY
from tests.hostile import expect, probe
from tests.hostile.conftest import QUICK, REPO, connect
from tests.hostile.server import HostileServer, reply

QUOTED_KEY = quote(API_KEY, safe="")


def _shows_key(text: str) -> bool:
    # The raw key holds a "/", which ends a URL's authority: only its first part may show.
    from tests.conftest import key_leaks

    return key_leaks(text) or API_KEY.split("/")[0] in text or "k3y-<&" in text


@pytest.mark.parametrize(
    "host",
    [
        pytest.param(f"https://ana:{QUOTED_KEY}@127.0.0.1:9", id="https-user-and-encoded-key"),
        pytest.param(
            f"htps://ana:{QUOTED_KEY}@vbrain.example.com",
            id="mistyped-scheme-user-and-encoded-key",
        ),
        pytest.param(
            f"https://ana:{QUOTED_KEY}@vbrain.example.com//api/v1",
            id="double-slash-path-user-and-encoded-key",
        ),
        pytest.param(
            f"https://ana:{API_KEY}@vbrain.example.com",
            id="user-and-raw-key",
        ),
    ],
)
@pytest.mark.parametrize("method", ["list_jobs", "test_connection"])
def test_credentials_in_the_host_are_refused_without_echo(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, host: str, method: str
) -> None:
    connect(monkeypatch, server.url, host=host)
    report = probe.sync(method, *((REPO,) if method == "list_jobs" else ()), time_limit=QUICK)
    if method == "test_connection":
        ok, message = expect.clean_return(report)
        assert not ok
    else:
        expect.clean_failure(report, says=["host"])
        message = report.message
    assert "host" in message
    assert not _shows_key(message), f"the message shows the key: {message}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("timeout", "nan", id="timeout-nan"),
        pytest.param("timeout", "inf", id="timeout-inf"),
        pytest.param("timeout", 1e308 * 10, id="timeout-float-infinity"),
        pytest.param("retry_attempts", 0.5, id="retry_attempts-half"),
        pytest.param("retry_attempts", "inf", id="retry_attempts-inf"),
        pytest.param("retry_attempts", "nan", id="retry_attempts-nan"),
    ],
)
@pytest.mark.parametrize("hook", ["sync", "async"])
def test_impossible_numbers_are_configuration_errors(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, hook: str, field: str, value: object
) -> None:
    server.route(r"^/api/v1/job$", reply(200, json=["job-1"]))
    connect(monkeypatch, server.url, **{field: value})
    run = probe.sync if hook == "sync" else probe.asynchronous
    report = run("list_jobs", REPO, time_limit=QUICK)
    expect.clean_failure(report, says=[field])
    assert not server.requests(), "the request was sent with an impossible setting"
