"""Files in and out: a failed job's log tail reads a bounded part of its logs ZIP, downloads never
replace what is not a regular file, and uploads stream from disk with memory flat in the file's size."""

from __future__ import annotations

import io
import os
import re
import socket
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from tests.hostile import expect, probe
from tests.hostile.conftest import (
    EXECUTE,
    JOB,
    LOGS,
    MEMORY_BOUND_TIME,
    MEMORY_TIMEOUT,
    OUTPUT,
    QUICK,
    REPO,
    REPOSITORIES,
    connect,
)
from tests.hostile.server import (
    GiB,
    HostileServer,
    MiB,
    reply,
    small_zip,
    zip_many_members,
    zip_one_huge_member,
)

LOG_TAIL = "The failed-job log tail reads the whole logs ZIP: every member whole, every member quoted"
NOT_REGULAR = (
    "Downloading onto an existing non-regular file (a FIFO, a socket) replaces it with a regular file"
)
UPLOAD = "Uploads are held in memory: the whole input_file is read before sending"

#: A failed job's message quotes the end of its logs; this much is plenty, and fits a task log.
MESSAGE_LIMIT = 64 * 1024
#: The log tail may decompress a large member as a stream: allow it that long.
LOG_TAIL_TIME = 15.0


@pytest.fixture
def logs_server(server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> HostileServer:
    connect(monkeypatch, server.url, timeout=MEMORY_TIMEOUT)
    return server


@pytest.mark.parametrize("method", ["job_failure", "job_log_tail"])
def test_log_tail_of_a_1GiB_member_is_bounded(logs_server: HostileServer, method: str) -> None:
    logs_server.route(LOGS, reply(200, zip_one_huge_member(GiB), content_type="application/zip"))
    report = probe.sync(method, JOB, REPO, time_limit=LOG_TAIL_TIME)
    tail = expect.clean_return(report)
    if method == "job_failure":  # it returns the error for the caller to raise
        assert "VBrainJobFailedError" in (report.error or {}).get("type", ""), report.describe()
        text, size = report.message, report.message_length
    else:
        text, size = tail, report.value_length
    assert size <= MESSAGE_LIMIT, f"a tail of {size:,} characters"
    assert "huge.log" in text, f"the tail does not name the member: {report.describe()}"


def test_a_corrupt_logs_zip_is_a_clear_error(logs_server: HostileServer) -> None:
    """A body that starts as a ZIP but is not one: the hook raises a VBrainError naming the job, and
    a failed job's error says its logs could not be read."""
    corrupt = small_zip({"job.log": b"x" * 100})[:30] + b"\0" * 64
    logs_server.route(LOGS, reply(200, corrupt, content_type="application/zip"))
    expect.clean_failure(
        probe.sync("job_log_tail", JOB, REPO, time_limit=QUICK), says=[JOB, "cannot be read"]
    )
    report = probe.sync("job_failure", JOB, REPO, time_limit=QUICK)
    expect.clean_return(report)
    assert "logs could not be read" in report.message, report.describe()


def test_failed_job_with_5000_log_members_gets_a_bounded_message(logs_server: HostileServer) -> None:
    logs_server.route(LOGS, reply(200, zip_many_members(5000), content_type="application/zip"))
    report = probe.sync("job_failure", JOB, REPO, time_limit=LOG_TAIL_TIME)
    expect.clean_return(report)
    assert "VBrainJobFailedError" in (report.error or {}).get("type", ""), report.describe()
    assert report.message_length <= MESSAGE_LIMIT, f"a message of {report.message_length:,} characters"


def test_failed_job_names_the_log_files_it_does_not_quote(logs_server: HostileServer) -> None:
    logs_server.route(LOGS, reply(200, zip_many_members(30, lines=1), content_type="application/zip"))
    report = probe.sync("job_failure", JOB, REPO, time_limit=QUICK)
    expect.clean_return(report)
    assert "--- worker-00009.log ---" in report.message, report.describe()
    assert "20 more files not quoted: worker-00010.log" in report.message, report.describe()


def _lying(archive: bytes, size: int) -> bytes:
    """``archive`` (one member) with the member's uncompressed size stated as ``size`` in both headers."""
    data = bytearray(archive)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature)
        data[at + offset : at + offset + 4] = struct.pack("<I", size)
    return bytes(data)


def test_log_member_that_inflates_past_its_stated_size_is_read_no_further(
    logs_server: HostileServer,
) -> None:
    bomb = _lying(zip_one_huge_member(GiB), 4096)  # states 4 KiB, inflates to 1 GiB
    logs_server.route(LOGS, reply(200, bomb, content_type="application/zip"))
    report = probe.sync("job_log_tail", JOB, REPO, time_limit=QUICK)
    tail = expect.clean_return(report, memory_mb=100)
    assert "huge.log" in tail, report.describe()


def test_logs_zip_with_a_huge_index_is_not_opened(logs_server: HostileServer) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # 100,000 empty members: an index of 5.5 MB
        for number in range(100_000):
            archive.writestr(f"{number}.log", b"")
    logs_server.route(LOGS, reply(200, buffer.getvalue(), content_type="application/zip"))
    report = probe.sync("job_failure", JOB, REPO, time_limit=QUICK)
    expect.clean_return(report)
    assert re.search(r"index takes 5\.\d MiB", report.message), report.describe()


def test_failed_job_quotes_the_end_of_small_logs(logs_server: HostileServer) -> None:
    lines = b"".join(b"step %d\n" % number for number in range(200))
    logs_server.route(LOGS, reply(200, small_zip({"run.log": lines}), content_type="application/zip"))
    report = probe.sync("job_failure", JOB, REPO, time_limit=QUICK)
    expect.clean_return(report)
    assert "run.log" in report.message, report.describe()
    assert "step 199" in report.message, report.describe()


def _fifo(folder: Path) -> Path:
    path = folder / "pipe.zip"
    os.mkfifo(path)
    return path


def _socket(folder: Path) -> Path:
    path = folder / "socket.zip"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.close()
    return path


def _device(folder: Path) -> Path:
    return Path(os.devnull)


@pytest.mark.parametrize(
    ("make", "method", "kind"),
    [
        pytest.param(_fifo, "download_job_output", stat.S_ISFIFO, id="fifo-output"),
        pytest.param(_socket, "download_job_logs", stat.S_ISSOCK, id="socket-logs"),
        pytest.param(_device, "download_job_output", stat.S_ISCHR, id="device-output"),
    ],
)
def test_download_refuses_a_destination_that_is_not_a_regular_file(
    server: HostileServer, tmp_path: Path, make, method: str, kind
) -> None:
    archive = small_zip({"out.csv": b"a,b\n1,2\n"})
    server.route(OUTPUT, reply(200, archive, content_type="application/zip"))
    server.route(LOGS, reply(200, archive, content_type="application/zip"))
    destination = make(tmp_path)
    report = probe.sync(method, JOB, REPO, str(destination), time_limit=QUICK)
    still = kind(destination.lstat().st_mode)
    expect.clean_failure(report, says=["destination"])
    assert still, f"the {destination.name} was replaced: {report.describe()}"


def test_download_into_a_folder_refuses_a_fifo_under_the_default_name(
    server: HostileServer, tmp_path: Path
) -> None:
    server.route(OUTPUT, reply(200, small_zip({"out.csv": b"a,b\n"}), content_type="application/zip"))
    fifo = tmp_path / f"{JOB}-output.zip"
    os.mkfifo(fifo)
    report = probe.sync("download_job_output", JOB, REPO, str(tmp_path), time_limit=QUICK)
    expect.clean_failure(report, says=["destination", "FIFO", "left as it is"])
    assert stat.S_ISFIFO(fifo.lstat().st_mode), f"the FIFO was replaced: {report.describe()}"
    assert not server.requests(OUTPUT), "the download was requested though its destination is refused"


@pytest.fixture
def big_input(tmp_path: Path) -> Path:
    """A 512 MiB input file that takes no disk space (sparse)."""
    path = tmp_path / "inputs.zip"
    with path.open("wb") as file:
        file.truncate(512 * MiB)
    return path


@pytest.mark.parametrize(
    ("method", "args", "path", "answer"),
    [
        pytest.param(
            "create_repository",
            (),
            REPOSITORIES,
            {"repository_id": REPO},
            id="create_repository-512MiB-input_file",
        ),
        pytest.param(
            "execute_job",
            (REPO,),
            EXECUTE,
            {"job_id": JOB},
            id="execute_job-512MiB-input_file",
        ),
    ],
)
def test_upload_streams_from_disk(
    server: HostileServer,
    monkeypatch: pytest.MonkeyPatch,
    big_input: Path,
    method: str,
    args: tuple,
    path: str,
    answer,
) -> None:
    connect(monkeypatch, server.url, timeout=MEMORY_TIMEOUT)
    server.route(path, reply(201, json=answer))
    report = probe.sync(method, *args, input_file=str(big_input), time_limit=MEMORY_BOUND_TIME * 2)
    assert expect.clean_return(report) == next(iter(answer.values()))
    (sent,) = server.requests(path)
    assert sent.body_size > 512 * MiB, "the file was not sent whole"
    assert sent.header("content-length") == str(sent.body_size), "no Content-Length, or a wrong one"
    assert sent.header("transfer-encoding") is None, "sent chunked: servers that refuse that would fail"


def test_a_retried_upload_sends_the_file_again_from_its_start(server: HostileServer, tmp_path: Path) -> None:
    path = tmp_path / "inputs.csv"
    path.write_bytes(b"a,b\n" * (4 * MiB))  # 16 MiB
    server.route(
        REPOSITORIES,
        reply(429, json={"message": "slow down"}, headers={"Retry-After": "0"}),
        reply(201, json={"repository_id": REPO}),
    )
    report = probe.sync("create_repository", {"a": 1}, input_file=str(path), time_limit=MEMORY_BOUND_TIME)
    assert expect.clean_return(report) == REPO
    first, second = server.requests(REPOSITORIES)
    assert first.body_size == second.body_size > 16 * MiB, (first.body_size, second.body_size)
