"""What the client counts, with no I/O: each attempt's status and each retry, under names from fixed
sets, reported to the process's meter."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import pytest

from airflow_provider_vbrain._client import endpoints, metering
from airflow_provider_vbrain._client.download import download_exchange
from airflow_provider_vbrain._client.endpoints import ENDPOINT_NAMES
from airflow_provider_vbrain._client.exchange import exchange
from airflow_provider_vbrain._client.http import FailureKind
from airflow_provider_vbrain._client.metering import (
    NOOP,
    endpoint_name,
    meter,
    outcome_name,
    set_meter,
    status_class,
)
from airflow_provider_vbrain._client.retry import RetryPolicy
from airflow_provider_vbrain._client.waiting import JobWait
from airflow_provider_vbrain.exceptions import VBrainConnectionError, VBrainServerError
from airflow_provider_vbrain.jobs import EventStatus, JobStatus
from tests.core import Recorder, answer, failure, run
from tests.test_download import Clock, transfer

GET = endpoints.get_job_status("job-1", "repo-1")


def every_request() -> list[endpoints.ApiRequest[Any]]:
    """One request from each endpoint's builder, every argument filled in."""
    values = {"repository_id": "repo-1", "job_id": "job-1"}
    builders = [getattr(endpoints, name) for name in sorted(ENDPOINT_NAMES)]
    return [
        builder(**{name: values[name] for name in inspect.signature(builder).parameters if name in values})
        for builder in builders
    ]


def test_each_endpoint_carries_its_own_name() -> None:
    requests = every_request()
    assert sorted(request.name for request in requests) == sorted(ENDPOINT_NAMES)
    assert len({(request.method, request.path.replace("job-1", "{id}")) for request in requests}) == 14


def test_the_names_are_the_hook_methods() -> None:
    from airflow_provider_vbrain.hooks.vbrain import VBrainHook

    assert all(callable(getattr(VBrainHook, name, None)) for name in ENDPOINT_NAMES)


def test_the_exchange_reports_each_attempt_and_each_retry(recorded: Recorder) -> None:
    steps = exchange(GET, RetryPolicy(), rng=lambda: 0.0)
    outcomes = [answer(503), failure(FailureKind.TIMEOUT), answer(429, retry_after="0"), answer(202)]
    run(steps, outcomes)
    assert recorded.calls == [
        ("request", "get_job_status", 503),
        ("retry", "get_job_status"),
        ("request", "get_job_status", None),
        ("retry", "get_job_status"),
        ("request", "get_job_status", 429),
        ("retry", "get_job_status"),
        ("request", "get_job_status", 202),
    ]


def test_the_last_attempt_is_counted_and_no_retry_after_it(recorded: Recorder) -> None:
    with pytest.raises(VBrainServerError):
        run(exchange(GET, RetryPolicy(max_attempts=2), rng=lambda: 0.0), [answer(503), answer(502)])
    assert recorded.calls == [
        ("request", "get_job_status", 503),
        ("retry", "get_job_status"),
        ("request", "get_job_status", 502),
    ]


def test_a_proxy_refusal_counts_as_the_answer_it_was(recorded: Recorder) -> None:
    request = endpoints.list_repositories()
    with pytest.raises(VBrainConnectionError):
        run(exchange(request, RetryPolicy(max_attempts=1)), [answer(407)])
    assert recorded.calls == [("request", "list_repositories", 407)]


def test_a_download_stopped_at_its_deadline_counts_no_retry(recorded: Recorder) -> None:
    clock = Clock()
    output = endpoints.download_job_output("job-1", "repo-1")
    steps = download_exchange(
        output, RetryPolicy(base_delay=10), transfer(clock, budget=30.0), rng=lambda: 1.0
    )
    next(steps)
    clock.now += 25  # the 10 s wait would end past the deadline: the call fails instead
    with pytest.raises(VBrainConnectionError):
        steps.send(failure(FailureKind.TIMEOUT))
    assert recorded.calls == [("request", "download_job_output", None)]


def test_a_download_that_resumes_counts_both_attempts(recorded: Recorder) -> None:
    output = endpoints.download_job_output("job-1", "repo-1")
    steps = download_exchange(output, RetryPolicy(), transfer(budget=3600.0), rng=lambda: 0.0)
    run(steps, [failure(FailureKind.DISCONNECTED), answer(200, b"")])
    assert recorded.calls == [
        ("request", "download_job_output", None),
        ("retry", "download_job_output"),
        ("request", "download_job_output", 200),
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(None, "error", id="no-answer"),
        pytest.param(101, "1xx", id="101"),
        pytest.param(200, "2xx", id="200"),
        pytest.param(206, "2xx", id="206"),
        pytest.param(302, "3xx", id="302"),
        pytest.param(404, "4xx", id="404"),
        pytest.param(429, "4xx", id="429"),
        pytest.param(503, "5xx", id="503"),
        pytest.param(524, "5xx", id="524"),
        pytest.param(99, "other", id="99"),
        pytest.param(600, "other", id="600"),
    ],
)
def test_status_classes(status: int | None, expected: str) -> None:
    assert status_class(status) == expected
    assert expected in metering.STATUS_CLASSES


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        pytest.param("get_job_status", "get_job_status", id="a-name"),
        pytest.param("GET /api/v1/job/job-1", "other", id="an-endpoint-text"),
        pytest.param("job-1", "other", id="an-id"),
        pytest.param("", "other", id="empty"),
    ],
)
def test_only_endpoint_names_pass(endpoint: str, expected: str) -> None:
    assert endpoint_name(endpoint) == expected


@pytest.mark.parametrize("status", list(EventStatus), ids=[status.value for status in EventStatus])
def test_every_wait_outcome_has_its_name(status: EventStatus) -> None:
    assert outcome_name(status) == outcome_name(status.value) == status.value


def test_an_unknown_outcome_is_other() -> None:
    assert outcome_name("job-1 finished") == "other"


def test_the_default_meter_drops_everything() -> None:
    assert meter() is NOOP
    assert NOOP.request("get_job_status", 200) is None
    assert NOOP.retry("get_job_status") is None
    assert NOOP.wait_ended("succeeded", 3, 1.5) is None
    assert NOOP.held(0.5) is None


def test_set_meter_none_puts_the_no_op_meter_back(recorded: Recorder) -> None:
    assert meter() is recorded
    assert set_meter(None) is recorded
    assert meter() is NOOP
    set_meter(recorded)


def test_a_wait_reports_its_end_its_polls_and_its_duration(recorded: Recorder) -> None:
    now = [100.0]
    log = logging.getLogger("tests.metering")
    wait = JobWait("job-1", "repo-1", poll_interval=10, log=log, clock=lambda: now[0])
    for state, code in (("queued", 202), ("started", 202), ("finished", 200)):
        step = wait.after(JobStatus.from_answer("job-1", "repo-1", code, {"job_status": state}))
        if isinstance(step, float):
            now[0] += step
    ((_, outcome, polls, seconds),) = [call for call in recorded.calls if call[0] == "wait_ended"]
    assert (outcome, polls) == ("succeeded", 3)
    assert seconds == pytest.approx(now[0] - 100.0)
