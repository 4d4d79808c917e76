"""The instruments themselves: the watchdog kills what runs too long or grows too much, asyncio's
slow-callback reports reach the report, and the key is found wherever it shows. Without these, every
other test in this folder could pass for the wrong reason."""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
import time
import zipfile
import zlib

import pytest

from airflow_provider_vbrain.exceptions import VBrainError
from tests.conftest import API_KEY
from tests.hostile import expect, probe
from tests.hostile.probe import Call, Killed
from tests.hostile.server import MiB, deflate_of, gzip_of, zip_one_huge_member

HERE = "tests.hostile.test_probe"


def allocate(megabytes: int) -> int:
    blocks = [bytearray(1024 * 1024) for _ in range(megabytes)]
    return len(blocks)


def sleep(seconds: float) -> None:
    time.sleep(seconds)


async def block_loop(seconds: float) -> None:
    await asyncio.sleep(0)
    end = time.thread_time() + seconds
    while time.thread_time() < end:  # busy on the loop's thread: what must be detected
        pass
    await asyncio.sleep(0)


def raise_with_key_in_cause() -> None:
    try:
        raise ValueError({"x-api-key": API_KEY})
    except ValueError as err:
        raise VBrainError("GET /api/v1/job failed") from err


def log_the_key() -> None:
    logging.getLogger("somewhere").warning("using %s", API_KEY)


def raise_recursion() -> None:
    raise RecursionError("maximum recursion depth exceeded")


def _run(name: str, *args: object, time_limit: float = 5.0) -> probe.Report:
    return probe.run(Call("function", f"{HERE}:{name}", args), time_limit=time_limit)


def test_a_child_growing_past_the_memory_bound_is_killed() -> None:
    report = _run("allocate", 2000)
    assert report.killed is Killed.MEMORY, report.describe()
    assert report.peak_mb >= probe.MEMORY_LIMIT_MB


def test_memory_is_measured_from_the_start_of_the_call() -> None:
    report = _run("allocate", 100)
    assert report.value == 100, report.describe()
    assert 90 <= report.peak_mb < 200, report.describe()


def test_a_child_running_past_the_time_bound_is_killed() -> None:
    started = time.monotonic()
    report = _run("sleep", 60, time_limit=0.5)
    assert report.killed is Killed.TIME, report.describe()
    assert time.monotonic() - started < 10


def test_a_blocked_event_loop_is_reported() -> None:
    report = _run("block_loop", 0.4)
    assert report.longest_block >= 0.4, report.describe()
    with pytest.raises(AssertionError, match="held its event loop"):
        expect.clean_return(report)


@pytest.mark.parametrize(("name", "where"), [("raise_with_key_in_cause", "chain"), ("log_the_key", "logs")])
def test_the_key_is_found_where_it_shows(name: str, where: str) -> None:
    report = _run(name)
    assert where in report.leaks, report.describe()
    with pytest.raises(AssertionError, match="showed the API key"):
        (expect.clean_failure if report.outcome == "raised" else expect.clean_return)(report)


def test_a_raw_error_is_not_a_clean_failure() -> None:
    report = _run("raise_recursion")
    with pytest.raises(AssertionError, match=r"raw builtins\.RecursionError"):
        expect.clean_failure(report)


def test_bombs_expand_to_what_they_claim() -> None:
    """The payloads are built from copies of one compressed block: they must still be valid streams."""
    size = 3 * MiB + 5
    assert gzip.decompress(gzip_of(size)) == b" " * size
    assert zlib.decompress(deflate_of(size)) == b" " * size
    with zipfile.ZipFile(io.BytesIO(zip_one_huge_member(size))) as archive:
        (info,) = archive.infolist()
        assert info.file_size == size
        assert archive.read(info).startswith(b"2026-12-02")  # read whole: the CRC is checked
    assert len(gzip_of(size)) < size / 100
