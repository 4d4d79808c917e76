"""Every read is bounded: an endless body, a gzip bomb or a merely huge answer must fail with a clear
error that says the answer was too large, long before the worker or triggerer runs out of memory.

JSON answers are capped by the connection extra ``max_answer_bytes`` (a few MiB by default); downloads
stream to disk and stop at ``max_download_bytes`` when it is set. Sizes count decompressed bytes.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import pytest

from tests.hostile import expect, probe
from tests.hostile.conftest import (
    JOB,
    JOBS,
    LOGS,
    MEMORY_BOUND_TIME,
    MEMORY_TIMEOUT,
    OUTPUT,
    QUICK,
    REPO,
    RESULT,
    STATUS,
    connect,
    trigger_kwargs,
)
from tests.hostile.server import GiB, HostileServer, MiB, endless, gzip_bomb, reply, small_zip

#: A MiB that starts like a ZIP file.
ZIP_BLOCK = b"PK\x03\x04" + b" " * (MiB - 4)

ENDPOINTS = {
    "get_job_status": f"/job/{JOB}",
    "get_job_result": f"/job/{JOB}/result",
    "list_jobs": "/api/v1/job",
}
ENDLESS_STATUS = pytest.param(
    STATUS, lambda: endless(202), "get_job_status", id="endless-chunked-status-body"
)
GZIP_STATUS = pytest.param(STATUS, lambda: gzip_bomb(GiB, 202), "get_job_status", id="gzip-bomb-1GiB-status")
SYNC_ATTACKS = [
    ENDLESS_STATUS,
    pytest.param(
        RESULT,
        lambda: endless(200, chunked=False, prefix=b'{"output": "'),
        "get_job_result",
        id="endless-content-length-result-body",
    ),
    pytest.param(
        JOBS, lambda: gzip_bomb(GiB, 200, encoding="deflate"), "list_jobs", id="deflate-bomb-1GiB-job-list"
    ),
]
ASYNC_ATTACKS = [
    ENDLESS_STATUS,
    GZIP_STATUS,
    pytest.param(
        JOBS,
        lambda: endless(200, chunked=False, prefix=b"[", block=b'"job-0",' * 131072),
        "list_jobs",
        id="endless-content-length-job-list",
    ),
]


def _args(method: str) -> tuple[str, ...]:
    return (REPO,) if method == "list_jobs" else (JOB, REPO)


@pytest.mark.parametrize(("path", "answer", "method"), SYNC_ATTACKS)
def test_unbounded_body_fails_bounded_sync(
    memory_server: HostileServer, path: str, answer, method: str
) -> None:
    memory_server.route(path, answer())
    report = probe.sync(method, *_args(method), time_limit=MEMORY_BOUND_TIME)
    expect.clean_failure(report, endpoint=ENDPOINTS[method], says=[expect.TOO_LARGE])


@pytest.mark.parametrize(("path", "answer", "method"), ASYNC_ATTACKS)
def test_unbounded_body_fails_bounded_async(
    memory_server: HostileServer, path: str, answer, method: str
) -> None:
    memory_server.route(path, answer())
    report = probe.asynchronous(method, *_args(method), time_limit=MEMORY_BOUND_TIME)
    expect.clean_failure(report, endpoint=ENDPOINTS[method], says=[expect.TOO_LARGE])


@pytest.mark.parametrize(("path", "answer", "method"), [GZIP_STATUS])
def test_unbounded_status_body_ends_the_trigger_with_an_error_event(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, path: str, answer, method: str
) -> None:
    connect(monkeypatch, server.url, timeout=MEMORY_TIMEOUT, retry_attempts=1)
    server.route(path, answer())
    report = probe.trigger(
        time_limit=MEMORY_BOUND_TIME, **trigger_kwargs(end_time=time.time() + MEMORY_BOUND_TIME)
    )
    expect.clean_event(report, status="error", says=[expect.TOO_LARGE])


@functools.lru_cache(maxsize=1)
def _status_of(size: int) -> bytes:
    head = b'{"job_status": "started", "padding": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def test_valid_48MiB_status_answer_is_refused_by_the_default_cap(memory_server: HostileServer) -> None:
    memory_server.route(STATUS, reply(202, _status_of(48 * MiB)))
    report = probe.sync("get_job_status", JOB, REPO, time_limit=MEMORY_BOUND_TIME)
    expect.clean_failure(report, endpoint=f"/job/{JOB}", says=[expect.TOO_LARGE])


@pytest.mark.parametrize("hook", ["sync", "async"])
def test_answer_over_max_answer_bytes_fails_naming_the_cap(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, hook: str
) -> None:
    connect(monkeypatch, server.url, max_answer_bytes=64 * 1024)
    server.route(STATUS, reply(202, _status_of(MiB)))
    run = probe.sync if hook == "sync" else probe.asynchronous
    report = run("get_job_status", JOB, REPO, time_limit=QUICK)
    expect.clean_failure(report, endpoint=f"/job/{JOB}", says=[expect.TOO_LARGE, "65,?536|64 ?Ki"])


@pytest.mark.parametrize("hook", ["sync", "async"])
def test_answer_under_max_answer_bytes_is_read(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, hook: str
) -> None:
    connect(monkeypatch, server.url, max_answer_bytes=64 * 1024)
    server.route(STATUS, reply(202, _status_of(32 * 1024)))
    run = probe.sync if hook == "sync" else probe.asynchronous
    status = expect.clean_return(run("get_job_status", JOB, REPO, time_limit=QUICK))
    assert status["raw_state"] == "started"


@pytest.mark.parametrize(
    ("path", "answer", "method"),
    [
        pytest.param(
            OUTPUT,
            lambda: endless(200, prefix=b"PK\x03\x04", content_type="application/zip", limit=256 * MiB),
            "download_job_output",
            id="endless-chunked-output",
        ),
        pytest.param(
            LOGS,
            # Every MiB starts like a ZIP, so the body passes the ZIP check and only the cap stops it.
            lambda: gzip_bomb(64 * MiB, 200, content_type="application/zip", block=ZIP_BLOCK),
            "download_job_logs",
            id="gzip-bomb-64MiB-logs",
        ),
    ],
)
def test_download_over_max_download_bytes_fails_and_leaves_nothing(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path: str, answer, method: str
) -> None:
    connect(monkeypatch, server.url, max_download_bytes=8 * MiB)
    server.route(path, answer())
    destination = tmp_path / "out" / "files.zip"
    try:
        report = probe.sync(method, JOB, REPO, str(destination), time_limit=QUICK)
        expect.clean_failure(report, endpoint=f"/job/{JOB}/", says=[expect.TOO_LARGE])
        assert not destination.exists(), "a download over the cap was kept"
        left = [item.name for item in destination.parent.iterdir()] if destination.parent.exists() else []
        assert not left, f"a download over the cap left {left}"
    finally:
        for item in tmp_path.rglob("*"):  # today's code writes hundreds of MB here
            if item.is_file():
                item.unlink()


def test_download_under_max_download_bytes_is_kept(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    connect(monkeypatch, server.url, max_download_bytes=8 * MiB)
    archive = small_zip({"out.csv": b"a,b\n1,2\n" * 1000})
    server.route(OUTPUT, reply(200, archive, content_type="application/zip"))
    written = expect.clean_return(
        probe.sync("download_job_output", JOB, REPO, str(tmp_path), time_limit=QUICK)
    )
    assert Path(written).read_bytes() == archive


@pytest.mark.parametrize("hook", ["sync", "async"])
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_answer_is_capped_by_its_decompressed_size(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, hook: str, encoding: str
) -> None:
    """16 KiB on the wire, 16 MiB decompressed: the 64 KiB cap counts what the body expands to."""
    connect(monkeypatch, server.url, max_answer_bytes=64 * 1024)
    server.route(STATUS, gzip_bomb(16 * MiB, 202, encoding=encoding))
    run = probe.sync if hook == "sync" else probe.asynchronous
    report = run("get_job_status", JOB, REPO, time_limit=QUICK, memory_limit_mb=100)
    expect.clean_failure(
        report, endpoint=f"/job/{JOB}", says=[expect.TOO_LARGE, "65,536", "max_answer_bytes"]
    )
    assert len(server.requests(STATUS)) == 1, "an answer over the cap is an answer: not retried"


@pytest.mark.parametrize("hook", ["sync", "async"])
def test_endless_error_answer_is_cut_at_the_cap_and_retried_as_its_status(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, hook: str
) -> None:
    """An endless 503 page: its first ``max_answer_bytes`` are kept for the message, and the retry rule
    treats it as the 503 it is."""
    connect(monkeypatch, server.url, max_answer_bytes=64 * 1024)
    server.route(STATUS, endless(503, prefix=b"<html>busy ", block=b"x" * 65536, content_type="text/html"))
    run = probe.sync if hook == "sync" else probe.asynchronous
    report = run("get_job_status", JOB, REPO, time_limit=QUICK)
    expect.clean_failure(report, endpoint=f"/job/{JOB}", says=["503", "busy"])
    assert len(server.requests(STATUS)) == 2, "a 503 is retried, whatever the size of its page"
