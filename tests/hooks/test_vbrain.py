"""VBrainHook and VBrainAsyncHook over real HTTP against the emulator."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_vbrain._client.retry import RetryPolicy
from airflow_provider_vbrain._transport.aio import close_shared_session, shared_session
from airflow_provider_vbrain.exceptions import (
    VBrainAPIError,
    VBrainAuthError,
    VBrainBadRequestError,
    VBrainConnectionError,
    VBrainInputError,
    VBrainJobNotFinishedError,
    VBrainMaybeCreatedError,
    VBrainNotFoundError,
    VBrainServerError,
)
from airflow_provider_vbrain.hooks.vbrain import VBrainAsyncHook, VBrainHook
from airflow_provider_vbrain.jobs import JobState
from tests.conftest import API_KEY, connection_json

STATUS_PATH = r"^/api/v1/job/[^/]+$"


@pytest.fixture
def hook(vbrain_conn: Any) -> VBrainHook:
    return VBrainHook()


def tutorial_job(hook: VBrainHook, **params: Any) -> tuple[str, str]:
    repository_id = hook.create_repository()
    return repository_id, hook.execute_job(repository_id, params or {"a": 10, "b": 20})


def api_requests(emulator: Any, method: str, pattern: str = "") -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["method"] == method and pattern in r["path"]]


def test_the_platform_tutorial_through_the_hook(hook: VBrainHook) -> None:
    repository_id, job_id = tutorial_job(hook)
    seen: list[JobState] = []
    final = hook.wait_for_job(
        job_id, repository_id, poll_interval=0.05, on_status=lambda s: seen.append(s.state)
    )
    assert (final.state, final.http_status) == (JobState.FINISHED, 200)
    assert seen[-1] is JobState.FINISHED
    assert seen[0] in (JobState.QUEUED, JobState.STARTED)
    assert hook.get_job_result(job_id, repository_id) == {"value": 200}
    assert final.body["job_id"] == job_id


def test_repository_endpoints(hook: VBrainHook, tmp_path: Path) -> None:
    archive = tmp_path / "inputs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("stores.csv", "store,sales\na,1\nb,2\n")
        zf.writestr("calendar.json", "{}")
    repository_id = hook.create_repository({"a": 2}, {"team": "ops"}, input_file=archive)

    assert repository_id in hook.list_repositories()
    details = hook.get_repository(repository_id)
    assert sorted(details["input"]) == ["calendar.json", "stores.csv"]
    assert details["metadata"] == {"team": "ops"}
    assert details["params"] is True
    assert hook.get_repository_params(repository_id) == {"a": 2}

    written = hook.download_repository_input(repository_id, tmp_path / "back")
    with zipfile.ZipFile(written) as zf:
        assert sorted(zf.namelist()) == ["calendar.json", "stores.csv"]

    hook.delete_repository(repository_id)
    assert repository_id not in hook.list_repositories()
    with pytest.raises(
        VBrainNotFoundError, match=r"GET /api/v1/repository/\d+ answered HTTP 404: Invalid repository_id"
    ):
        hook.get_repository(repository_id)


def test_listing_by_date(hook: VBrainHook) -> None:
    repository_id = hook.create_repository()
    assert hook.list_repositories(from_date="200001010000", to_date="209901010000") == [repository_id]
    assert hook.list_repositories(to_date="200001010000") == []
    job_id = hook.execute_job(repository_id, {"a": 1, "b": 2})
    assert hook.list_jobs(repository_id, from_date="200001010000") == [job_id]
    assert hook.list_jobs(repository_id, from_date="209901010000") == []


def test_job_endpoints_and_downloads(hook: VBrainHook, vbrain_conn: Any, tmp_path: Path) -> None:
    repository_id = hook.create_repository({"a": 3, "b": 4})
    job_id = hook.execute_job(repository_id, {"b": 5}, {"run": "nightly"})
    assert hook.list_jobs(repository_id) == [job_id]
    assert hook.get_job_params(job_id, repository_id) == {"a": 3, "b": 5}
    vbrain_conn.finish_job(job_id)
    assert hook.get_job_status(job_id, repository_id).state is JobState.FINISHED
    assert hook.get_job_result(job_id, repository_id) == {"value": 15}

    output = hook.download_job_output(job_id, repository_id, tmp_path)
    assert output == str(tmp_path / f"{job_id}-output.zip")
    logs = hook.download_job_logs(job_id, repository_id, tmp_path / "logs" / "job.zip")
    assert logs == str(tmp_path / "logs" / "job.zip")
    for path in (output, logs):
        with zipfile.ZipFile(path) as zf:
            assert zf.testzip() is None
            assert zf.namelist()
    assert not list(tmp_path.glob("**/*.part"))

    hook.delete_job(job_id, repository_id)
    assert hook.list_jobs(repository_id) == []
    with pytest.raises(VBrainNotFoundError, match="Invalid job_id"):
        hook.get_job_status(job_id, repository_id)


def test_result_before_the_end_and_after_a_failure(
    hook: VBrainHook, vbrain_conn: Any, tmp_path: Path
) -> None:
    repository_id = hook.create_repository()
    running = hook.execute_job(repository_id, {"a": 1, "b": 2}, {"emulator_run_seconds": 60})
    with pytest.raises(VBrainJobNotFinishedError, match=r"/result answered HTTP 202: Job not yet finished"):
        hook.get_job_result(running, repository_id)
    with pytest.raises(VBrainJobNotFinishedError):
        hook.download_job_output(running, repository_id, tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()

    failing = hook.execute_job(repository_id, {"a": 1})  # Tutorial needs b
    status = hook.wait_for_job(failing, repository_id, poll_interval=0.05)
    assert (status.state, status.http_status) == (JobState.FAILED, 200)
    with pytest.raises(VBrainServerError, match=r"answered HTTP 500: Job failed"):
        hook.get_job_result(failing, repository_id)
    with zipfile.ZipFile(hook.download_job_logs(failing, repository_id, tmp_path)) as zf:
        text = "".join(zf.read(name).decode() for name in zf.namelist())
    assert "b" in text


def test_json_and_multipart_bodies_reach_the_application(hook: VBrainHook, tmp_path: Path) -> None:
    sales = tmp_path / "sales.csv"
    sales.write_text("store,units\nnorth,3\nsouth,5\n")
    hook_csv = VBrainHook(application_id="CsvSummary")
    repository_id = hook_csv.create_repository(input_file=sales)
    job_id = hook_csv.execute_job(repository_id, {"note": "x"}, {"by": "test"})
    hook_csv.wait_for_job(job_id, repository_id, poll_interval=0.05)
    assert hook_csv.get_job_result(job_id, repository_id)["rows"] == 2

    job_with_file = hook_csv.execute_job(repository_id, {"k": 1}, input_file=sales)
    assert hook_csv.get_job_params(job_with_file, repository_id) == {"k": 1}


def test_input_file_problems_fail_before_any_request(
    hook: VBrainHook, vbrain_conn: Any, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(VBrainInputError, match=r"input_file: 'notes.txt' must be a ZIP"):
        hook.create_repository(input_file=tmp_path / "notes.txt")
    with pytest.raises(VBrainInputError, match=r"input_file: .*missing.csv' does not exist"):
        hook.create_repository(input_file=tmp_path / "missing.csv")
    with pytest.raises(VBrainInputError, match="params: must be a mapping"):
        hook.execute_job("123", ["a"])  # type: ignore[arg-type]
    assert vbrain_conn.requests() == []


def test_ids_cannot_reach_another_endpoint(hook: VBrainHook, vbrain_conn: Any) -> None:
    repository_id, job_id = tutorial_job(hook)
    vbrain_conn.clear_requests()
    for evil in ("../repository", f"{job_id}/result", f"{job_id}?x=1", "spaced id", "ünï"):
        with pytest.raises(VBrainNotFoundError, match="Invalid job_id"):
            hook.get_job_status(evil, repository_id)
    # Each reached the status endpoint with the whole id as one segment (the log shows it decoded).
    logged = vbrain_conn.requests()
    assert [(r["path"].removeprefix("/api/v1/job/"), r["status"]) for r in logged] == [
        ("../repository", 404),
        (f"{job_id}/result", 404),
        (f"{job_id}?x=1", 404),
        ("spaced id", 404),
        ("ünï", 404),
    ]


def test_unknown_application_is_a_client_error(vbrain_conn: Any) -> None:
    with pytest.raises(
        VBrainBadRequestError, match=r"POST /api/v1/repository answered HTTP 400: Unknown application"
    ):
        VBrainHook(application_id="NoSuchApp").create_repository()


def test_a_job_from_another_repository_is_not_found(hook: VBrainHook) -> None:
    _, job_id = tutorial_job(hook)
    other = hook.create_repository()
    with pytest.raises(VBrainNotFoundError):
        hook.get_job_status(job_id, other)


def test_wrong_key_is_an_auth_error_that_never_shows_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from vbrain_emulator import EmulatorServer

    with EmulatorServer(api_keys=("the-right-key",)) as server:
        monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(server.url))
        with pytest.raises(VBrainAuthError) as caught:
            VBrainHook().list_repositories()
    assert "GET /api/v1/repository answered HTTP 403: Forbidden" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert caught.value.attempts == 1  # 403 is not retried


RETRY_NOTE = re.compile(
    r"VBrain GET \S+: attempt \d+ of \d+ failed: [^;]*; retrying in [\d.]+ s"
    r"(?: \(Retry-After: '[^']*'\))?"
)


def retry_notes(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> list[str]:
    """The retries reported, wherever this Airflow's hook logger writes (stdlib records on
    Airflow 2, structlog's output on 3), each once and in attempt order."""
    out, err = capfd.readouterr()
    text = "\n".join([*(r.getMessage() for r in caplog.records), out, err])
    return sorted(set(RETRY_NOTE.findall(text)))


def test_server_errors_are_retried_with_backoff(
    hook: VBrainHook, vbrain_conn: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    repository_id, job_id = tutorial_job(hook)
    vbrain_conn.clear_requests()
    vbrain_conn.inject_fault(503, count=2, method="GET", path=STATUS_PATH)
    vbrain_conn.inject_fault(502, count=1, method="GET", path=STATUS_PATH, html=True)
    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        assert hook.get_job_status(job_id, repository_id).job_id == job_id
    assert [r["status"] for r in vbrain_conn.requests()] == [503, 503, 502, 202]
    # Each retry is visible in the task log: one WARNING per retried attempt.
    retries = retry_notes(caplog, capfd)
    assert [note.split(" failed: ")[1][:8] for note in retries] == ["HTTP 503", "HTTP 503", "HTTP 502"]
    assert all(f"GET /api/v1/job/{job_id}: attempt" in note for note in retries)


def test_retries_give_up_with_the_last_answer(hook: VBrainHook, vbrain_conn: Any) -> None:
    repository_id, job_id = tutorial_job(hook)
    vbrain_conn.inject_fault(502, count=10, method="GET", path=STATUS_PATH, html=True)
    with pytest.raises(VBrainServerError) as caught:
        hook.get_job_status(job_id, repository_id)
    assert caught.value.attempts == 5
    assert "HTTP 502 (after 5 attempts): non-JSON answer (text/html): 502 Bad Gateway" in str(caught.value)


def test_retry_after_is_honoured(vbrain_conn: Any) -> None:
    hook = VBrainHook(retry_policy=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=5))
    repository_id, job_id = tutorial_job(hook)
    vbrain_conn.inject_fault(429, method="GET", path=STATUS_PATH, retry_after="1")
    started = time.monotonic()
    hook.get_job_status(job_id, repository_id)
    assert time.monotonic() - started >= 1.0


def test_dropped_connections_and_timeouts_on_reads_are_retried(
    vbrain_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_VBRAIN_DEFAULT",
        connection_json(vbrain_conn.url, extra={"timeout": 0.5, "retry_base_delay": 0.01}),
    )
    hook = VBrainHook()
    repository_id, job_id = tutorial_job(hook)
    vbrain_conn.inject_fault(count=1, method="GET", path=STATUS_PATH, drop=True)
    vbrain_conn.inject_fault(count=1, method="GET", path=STATUS_PATH, delay=2.0)
    assert hook.get_job_status(job_id, repository_id).job_id == job_id


@pytest.mark.parametrize(
    ("fault", "jobs_created"),
    [
        pytest.param({"status": 500, "after": True}, 1, id="500-after-processing"),
        pytest.param({"status": 502, "after": True, "html": True}, 1, id="502-after-processing"),
        pytest.param({"drop": True, "after": True}, 1, id="dropped-after-processing"),
        pytest.param({"drop": True}, 0, id="dropped-before-processing"),
    ],
)
def test_execute_is_not_repeated_when_it_may_have_been_processed(
    hook: VBrainHook, vbrain_conn: Any, fault: dict[str, Any], jobs_created: int
) -> None:
    repository_id = hook.create_repository()
    vbrain_conn.inject_fault(method="POST", path="/job/execute", **fault)
    with pytest.raises(VBrainMaybeCreatedError, match=f"may have created a job .*repository {repository_id}"):
        hook.execute_job(repository_id, {"a": 1, "b": 2})
    assert len(api_requests(vbrain_conn, "POST", "/job/execute")) == 1
    assert len(hook.list_jobs(repository_id)) == jobs_created


def test_execute_is_repeated_when_the_server_refused_it(hook: VBrainHook, vbrain_conn: Any) -> None:
    repository_id = hook.create_repository()
    vbrain_conn.inject_fault(503, method="POST", path="/job/execute")
    vbrain_conn.inject_fault(429, method="POST", path="/job/execute", retry_after="0")
    job_id = hook.execute_job(repository_id, {"a": 1, "b": 2})
    assert hook.list_jobs(repository_id) == [job_id]
    assert len(api_requests(vbrain_conn, "POST", "/job/execute")) == 3


def test_create_repository_follows_the_same_rule(hook: VBrainHook, vbrain_conn: Any) -> None:
    vbrain_conn.inject_fault(504, method="POST", path="/repository$", after=True)
    with pytest.raises(VBrainMaybeCreatedError, match="may have created a repository"):
        hook.create_repository()
    assert len(hook.list_repositories()) == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_VBRAIN_DEFAULT",
        connection_json(
            f"http://127.0.0.1:{free_port()}", extra={"retry_attempts": 2, "retry_base_delay": 0.01}
        ),
    )
    with pytest.raises(
        VBrainConnectionError, match=r"POST /api/v1/repository failed after 2 attempts: could not connect"
    ):
        VBrainHook().create_repository()


def test_the_key_never_reaches_logs_or_errors(
    vbrain_conn: Any, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = VBrainHook()
    texts: list[str] = [repr(hook), repr(hook.settings)]
    repository_id, job_id = tutorial_job(hook)
    hook.wait_for_job(job_id, repository_id, poll_interval=0.05)
    hook.download_job_logs(job_id, repository_id, tmp_path)
    vbrain_conn.inject_fault(503, count=10, method="GET")
    with pytest.raises(VBrainServerError) as server_error:
        hook.get_job_result(job_id, repository_id)
    vbrain_conn.clear_faults()
    with pytest.raises(VBrainBadRequestError) as bad_request:
        VBrainHook(application_id="Nope").list_repositories()
    texts += [
        text for caught in (server_error, bad_request) for text in (str(caught.value), repr(caught.value))
    ]
    texts += [record.getMessage() for record in caplog.records]
    texts.append(json.dumps(vbrain_conn.requests()))
    assert any("/api/v1/job/" in text for text in texts)  # the logs were captured at all
    assert not [text for text in texts if API_KEY in text]


# ---------------------------------------------------------------- async transport


@pytest.fixture
async def async_hook(vbrain_conn: Any) -> Any:
    yield VBrainAsyncHook()
    await close_shared_session()


async def test_async_status_result_params_and_listing(async_hook: VBrainAsyncHook, vbrain_conn: Any) -> None:
    sync = VBrainHook()
    repository_id, job_id = tutorial_job(sync)
    assert (await async_hook.get_job_status(job_id, repository_id)).state in (
        JobState.QUEUED,
        JobState.STARTED,
    )
    with pytest.raises(VBrainJobNotFinishedError):
        await async_hook.get_job_result(job_id, repository_id)
    vbrain_conn.finish_job(job_id)
    status = await async_hook.get_job_status(job_id, repository_id)
    assert (status.state, status.http_status) == (JobState.FINISHED, 200)
    assert await async_hook.get_job_result(job_id, repository_id) == {"value": 200}
    assert await async_hook.list_jobs(repository_id) == [job_id]
    assert await async_hook.get_job_params(job_id, repository_id) == {"a": 10, "b": 20}
    assert repository_id in await async_hook.list_repositories()
    assert (await async_hook.get_repository(repository_id))["jobs"] == [job_id]


def test_the_async_hook_mirrors_the_sync_hook() -> None:
    """Every method of the async hook has a sync twin of the same name, arguments and return type."""
    import inspect
    import typing

    names = [name for name in vars(VBrainAsyncHook) if not name.startswith("_") and name != "get_settings"]
    assert "get_job_status" in names
    for name in names:
        method = getattr(VBrainAsyncHook, name)
        assert inspect.iscoroutinefunction(method), name
        twin = getattr(VBrainHook, name)
        assert inspect.signature(method) == inspect.signature(twin), name
        assert typing.get_type_hints(method) == typing.get_type_hints(twin), name


async def test_async_retries_follow_the_same_rule(
    async_hook: VBrainAsyncHook,
    vbrain_conn: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    repository_id, job_id = tutorial_job(VBrainHook())
    vbrain_conn.clear_requests()
    vbrain_conn.inject_fault(503, method="GET", path=STATUS_PATH)
    vbrain_conn.inject_fault(method="GET", path=STATUS_PATH, drop=True)
    vbrain_conn.inject_fault(429, method="GET", path=STATUS_PATH, retry_after="0")
    capfd.readouterr()
    with caplog.at_level(logging.WARNING):
        assert (await async_hook.get_job_status(job_id, repository_id)).job_id == job_id
    assert [r["status"] for r in vbrain_conn.requests()][-1] == 202
    # The dropped connection may be retried by aiohttp itself first: the 503 and the 429 are ours.
    retries = retry_notes(caplog, capfd)
    assert "attempt 1 of 5 failed: HTTP 503" in retries[0]
    assert retries[-1].endswith("(Retry-After: '0')")
    vbrain_conn.inject_fault(404, method="GET", path=STATUS_PATH)
    with pytest.raises(VBrainNotFoundError, match="HTTP 404"):
        await async_hook.get_job_status(job_id, repository_id)


async def test_async_hooks_share_one_session_per_loop(async_hook: VBrainAsyncHook, vbrain_conn: Any) -> None:
    repository_id, job_id = tutorial_job(VBrainHook())
    other = VBrainAsyncHook()
    await async_hook.get_job_status(job_id, repository_id)
    first = shared_session()
    await other.get_job_status(job_id, repository_id)
    assert shared_session() is first


# ---------------------------------------------------------------- TLS


def test_tls_with_the_connections_ca_bundle(
    tls_emulator: Any, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_emulator.url.startswith("https://")
    monkeypatch.setenv(
        "AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(tls_emulator.url, extra={"verify": str(tls_files[0])})
    )
    repository_id, job_id = tutorial_job(VBrainHook())
    assert VBrainHook().wait_for_job(job_id, repository_id, poll_interval=0.05).state is JobState.FINISHED


def test_an_untrusted_certificate_fails_at_once_and_says_tls(
    tls_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(tls_emulator.url))
    with pytest.raises(VBrainConnectionError, match="TLS handshake failed") as caught:
        VBrainHook().create_repository()
    assert caught.value.attempts == 1
    assert tls_emulator.requests() == []


async def test_async_tls_with_the_connections_ca_bundle(
    tls_emulator: Any, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(tls_emulator.url, extra={"verify": str(tls_files[0])})
    )
    repository_id, job_id = tutorial_job(VBrainHook())
    status = await VBrainAsyncHook().get_job_status(job_id, repository_id)
    assert status.job_id == job_id
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_UNTRUSTED", connection_json(tls_emulator.url))
    with pytest.raises(VBrainConnectionError, match="TLS handshake failed"):
        await VBrainAsyncHook("vbrain_untrusted").get_job_status(job_id, repository_id)
    await close_shared_session()


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
async def test_both_hooks_trust_the_same_store(
    tls_emulator: Any, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    # A deployment that adds its CA the way requests reads it, with the default verify=True:
    # the trigger's hook trusts what the operator's hook trusts.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tls_files[0]))
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(tls_emulator.url))
    repository_id, job_id = tutorial_job(VBrainHook())
    status = await VBrainAsyncHook().get_job_status(job_id, repository_id)
    assert status.job_id == job_id
    await close_shared_session()


# ---------------------------------------------------------------- redirects and lookups


@pytest.fixture
def redirecting_server() -> Any:
    """A server on 127.0.0.1 that redirects everything to a second one on 127.0.0.2, which records
    the headers it receives."""
    import http.server
    import threading

    received: list[dict[str, str]] = []

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"[]")

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    elsewhere = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Elsewhere)

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.2:{elsewhere.server_port}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    redirect = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for server in (elsewhere, redirect):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{redirect.server_port}", received
    for server in (elsewhere, redirect):
        server.shutdown()
        server.server_close()


def test_redirects_are_not_followed_so_the_key_stays_home(
    redirecting_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = redirecting_server
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(url))
    for call in (VBrainHook().list_repositories, VBrainHook().create_repository):
        with pytest.raises(
            VBrainAPIError, match=r"answered HTTP 302: redirected to http://127\.0\.0\.2:\d+/api"
        ):
            call()

    async def async_call() -> None:
        try:
            await VBrainAsyncHook().get_job_status("j", "r")
        finally:
            await close_shared_session()

    with pytest.raises(VBrainAPIError, match="HTTP 302: redirected to"):
        asyncio.run(async_call())
    assert received == []


@pytest.mark.parametrize("job_id", ["x/../../tmp/evil", "../..", "a\\\\b"])
def test_download_file_names_stay_in_their_folder(job_id: str) -> None:
    from airflow_provider_vbrain._airflow.files import file_safe

    assert "/" not in file_safe(job_id)
    assert "\\\\" not in file_safe(job_id)


async def test_hooks_on_one_loop_read_the_connection_once(
    vbrain_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import airflow_provider_vbrain._airflow.connections as module

    reads: list[str] = []
    real = module.aget_connection

    async def counting(conn_id: str) -> Any:
        reads.append(conn_id)
        return await real(conn_id)

    monkeypatch.setattr(module, "aget_connection", counting)
    repository_id, job_id = tutorial_job(VBrainHook())
    statuses = await asyncio.gather(
        *(VBrainAsyncHook().get_job_status(job_id, repository_id) for _ in range(50))
    )
    assert {s.job_id for s in statuses} == {job_id}
    assert reads == ["vbrain_default"]

    # A reading that failed is not kept: once the connection exists, the next hook finds it.
    with pytest.raises(Exception, match="vbrain_later"):
        await VBrainAsyncHook("vbrain_later").get_settings()
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_LATER", connection_json(vbrain_conn.url))
    assert (await VBrainAsyncHook("vbrain_later").get_settings()).conn_id == "vbrain_later"
    await close_shared_session()


class _InMemoryPlace:
    """An object-storage path whose files have no descriptor (as most remote stores' files)."""

    def __init__(self, data: bytes) -> None:
        self.name = "inputs.zip"
        self._data = data

    def open(self, mode: str = "rb") -> io.BytesIO:
        return io.BytesIO(self._data)


@pytest.mark.parametrize("where", ["file-url", "no-descriptor"])
def test_input_file_from_object_storage_is_streamed_whole(
    hook: VBrainHook, tmp_path: Path, where: str
) -> None:
    from airflow_provider_vbrain._airflow.files import location

    archive = tmp_path / "inputs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("stores.csv", "store,sales\na,1\n" * 10_000)
    place = location(f"file://{archive}") if where == "file-url" else _InMemoryPlace(archive.read_bytes())
    repository_id = hook.create_repository({"a": 1}, input_file=place)
    assert hook.get_repository(repository_id)["input"] == ["stores.csv"]
    written = hook.download_repository_input(repository_id, tmp_path / "back.zip")
    with zipfile.ZipFile(written) as zf:
        assert zf.read("stores.csv") == b"store,sales\na,1\n" * 10_000
