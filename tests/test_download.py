"""A download's rules, with no I/O: the stall rule, resuming with Range, the ZIP check, the cap, the
download's own deadline, and when progress is worth a log line."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_vbrain._client import endpoints
from airflow_provider_vbrain._client.download import (
    Body,
    Progress,
    Restart,
    Stall,
    Transfer,
    download_exchange,
)
from airflow_provider_vbrain._client.http import FailureKind, Response
from airflow_provider_vbrain._client.retry import RetryPolicy
from airflow_provider_vbrain.exceptions import (
    VBrainAnswerTooLargeError,
    VBrainAPIError,
    VBrainConnectionError,
)
from tests.core import answer, failure, run

OUTPUT = endpoints.download_job_output("job-1", "repo-1")
ZIP = b"PK\x03\x04" + bytes(range(256)) * 4


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def transfer(clock: Clock | None = None, **kwargs: Any) -> Transfer:
    options: dict[str, Any] = {"max_bytes": None, "stall_window": 10.0, "clock": clock or Clock(), **kwargs}
    return Transfer(OUTPUT, **options)


# -- the stall rule ------------------------------------------------------------------------------


def test_stall_rule_waits_a_whole_window_before_judging() -> None:
    stall = Stall(10.0, 1000, now=0.0)
    assert not stall.stalled(9.9), "no window has passed yet"
    assert stall.stalled(10.0), "nothing arrived in the first 10 s"


def test_a_steady_transfer_above_the_minimum_never_stalls() -> None:
    stall = Stall(10.0, 1000, now=0.0)
    for tenth in range(1, 1000):  # 20 bytes every 0.1 s: 2,000 bytes in any 10 s
        stall.feed(20, tenth / 10)
        assert not stall.stalled(tenth / 10), f"stalled at {tenth / 10} s"


def test_a_trickle_below_the_minimum_stalls_within_the_window() -> None:
    stall = Stall(10.0, 1000, now=0.0)
    stall.feed(100_000, 1.0)  # a fast start
    for second in range(2, 30):  # then 50 bytes a second: 500 in any 10 s
        stall.feed(50, float(second))
        if stall.stalled(float(second)):
            break
    assert second <= 1 + 10 + 10 / 8 + 1, f"the trickle went on until {second} s"


def test_a_transfer_gone_silent_stalls_within_a_window_and_a_half() -> None:
    stall = Stall(10.0, 1000, now=0.0)
    stall.feed(100_000, 0.5)  # a fast start, then nothing
    checks = [tick * stall.check_every for tick in range(1, 40)]
    first = next(at for at in checks if stall.stalled(at))
    assert 10.5 <= first <= 0.5 + 1.5 * 10, f"stalled at {first} s"


def test_stall_rule_keeps_a_bounded_record_however_the_bytes_arrive() -> None:
    stall = Stall(10.0, 1000, now=0.0)
    for tick in range(200_000):  # a byte every 0.5 ms for 100 s
        stall.feed(1, tick / 2000)
    assert not stall.stalled(100.0)
    assert len(stall._marks) <= 2 * 8 + 2


# -- answers and Range ---------------------------------------------------------------------------


def test_a_whole_answer_is_written_from_the_start_and_a_cut_one_resumes_with_range() -> None:
    state = transfer()
    assert state.range_headers() == {}
    body = state.answer(200, {"content-length": str(len(ZIP)), "etag": '"abc"'})
    assert body == Body(0, len(ZIP))
    assert state.feed(ZIP[:2]) == b"", "held until the ZIP signature is seen"
    assert state.feed(ZIP[2:600]) == ZIP[:600]
    assert state.range_headers() == {"range": "bytes=600-", "if-range": '"abc"'}
    resumed = state.answer(206, {"content-range": f"bytes 600-{len(ZIP) - 1}/{len(ZIP)}"})
    assert resumed == Body(600, len(ZIP))
    assert state.feed(ZIP[600:]) == ZIP[600:], "the rest is not checked again: it is not the start"
    state.end()
    assert state.kept == len(ZIP)


def test_a_server_that_ignores_range_answers_200_and_the_file_starts_over() -> None:
    state = transfer()
    state.answer(200, {})
    state.feed(ZIP[:600])
    assert state.range_headers() == {"range": "bytes=600-"}
    assert state.answer(200, {}) == Body(0, None)
    assert state.feed(ZIP[:3]) == b"", "a new start is checked again"


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        pytest.param(206, {"content-range": "bytes 0-99/1028"}, id="other-start"),
        pytest.param(206, {}, id="no-content-range"),
        pytest.param(416, {"content-range": "bytes */5000"}, id="416-another-size"),
    ],
)
def test_answers_that_cannot_continue_start_over(status: int, headers: dict[str, str]) -> None:
    state = transfer()
    state.answer(200, {})
    state.feed(ZIP[:600])
    assert isinstance(state.answer(status, headers), Restart)
    assert state.range_headers() == {}, "the next attempt asks for the whole file"
    assert state.kept == 0


def test_416_for_a_file_already_whole_keeps_it() -> None:
    state = transfer()
    state.answer(200, {})
    state.feed(ZIP)
    kept = state.answer(416, {"content-range": f"bytes */{len(ZIP)}"})
    assert isinstance(kept, Response)
    assert kept.status == 200


def test_a_partial_answer_nobody_asked_for_starts_over() -> None:
    assert isinstance(transfer().answer(206, {"content-range": "bytes 0-9/10"}), Restart)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"content-encoding": "gzip"}, {}, id="compressed-never-resumes"),
        pytest.param({"etag": 'W/"weak"', "last-modified": "Wed, 02 Dec 2026 18:00:00 GMT"},
                     {"range": "bytes=600-", "if-range": "Wed, 02 Dec 2026 18:00:00 GMT"}, id="weak-etag"),
        pytest.param({}, {"range": "bytes=600-"}, id="no-validator"),
    ],
)  # fmt: skip
def test_what_a_resumed_request_sends(headers: dict[str, str], expected: dict[str, str]) -> None:
    state = transfer()
    state.answer(200, headers)
    state.feed(ZIP[:600])
    assert state.range_headers() == expected


def test_error_answers_are_read_as_answers() -> None:
    assert transfer().answer(202, {}) is None
    assert transfer().answer(404, {}) is None


# -- the ZIP check and the cap -------------------------------------------------------------------


def test_a_body_that_is_not_a_zip_is_refused_quoting_it_without_secrets() -> None:
    state = transfer(secrets=("KEY-123",))
    state.answer(200, {"content-type": "application/json"})
    assert state.feed(b'{"message": "session KEY-123 ') == b""
    assert state.feed(b'expired"}') == b""
    with pytest.raises(VBrainAPIError, match="expected a ZIP") as caught:
        state.end()
    assert "KEY-123" not in str(caught.value)
    assert "session" in str(caught.value)


def test_a_body_shorter_than_the_signature_is_refused_at_its_end() -> None:
    state = transfer()
    state.answer(200, {})
    assert state.feed(b"PK") == b""
    with pytest.raises(VBrainAPIError, match="expected a ZIP"):
        state.end()


def test_the_cap_counts_the_whole_file_across_attempts() -> None:
    state = transfer(max_bytes=1000)
    state.answer(200, {})
    state.feed(ZIP[:600])
    state.answer(206, {"content-range": f"bytes 600-{len(ZIP) - 1}/{len(ZIP)}"})
    with pytest.raises(VBrainAnswerTooLargeError, match="max_download_bytes"):
        state.feed(ZIP[600:])


# -- the download's own deadline -----------------------------------------------------------------


def test_retries_stop_when_the_download_deadline_leaves_no_time() -> None:
    clock = Clock()
    state = transfer(clock, budget=30.0)
    steps = download_exchange(OUTPUT, RetryPolicy(max_attempts=5, base_delay=10), state, rng=lambda: 1.0)
    command = next(steps)
    clock.now += 25  # the first attempt stalled after 25 s: the 10 s wait would end past the deadline
    with pytest.raises(VBrainConnectionError, match="timed out") as caught:
        steps.send(failure(FailureKind.TIMEOUT))
    assert command.attempt == 1
    assert caught.value.attempts == 1


def test_retries_go_on_while_the_deadline_allows() -> None:
    state = transfer(budget=3600.0)
    steps = download_exchange(OUTPUT, RetryPolicy(max_attempts=3), state, rng=lambda: 0.0)
    value, _, sends = run(steps, [failure(FailureKind.DISCONNECTED), answer(200, b"")])
    assert (value, sends) == (b"", 2)


def test_the_cut_reason_names_the_stall_or_the_deadline() -> None:
    clock = Clock()
    state = transfer(clock, budget=100.0, stall_window=10.0)
    assert state.cut_reason() is None
    clock.now += 11
    assert "stalled" in (state.cut_reason() or "")
    state.stall.feed(10**6, clock.now)
    clock.now += 95
    state.stall.feed(10**6, clock.now)
    assert "download_timeout" in (state.cut_reason() or "")


# -- progress ------------------------------------------------------------------------------------


def test_progress_is_a_line_every_few_seconds_at_most() -> None:
    progress = Progress(now=0.0, interval=5.0)
    assert progress.line(1024, None, 1.0) is None
    line = progress.line(2 * 1024 * 1024, 4 * 1024 * 1024, 5.0)
    assert line == "2.0 MiB of 4.0 MiB (50 %) at 409.6 KiB/s"
    assert progress.line(3 * 1024 * 1024, None, 6.0) is None
    assert progress.line(3 * 1024 * 1024, None, 10.0) == "3.0 MiB at 307.2 KiB/s"
