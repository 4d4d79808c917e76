"""The one retry rule: what is retried, backoff, and Retry-After."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from airflow_provider_vbrain._client import endpoints
from airflow_provider_vbrain._client.endpoints import ApiRequest
from airflow_provider_vbrain._client.http import FailureKind, Response
from airflow_provider_vbrain._client.retry import RetryPolicy, retry_after_seconds, retry_delay, should_retry
from tests.core import NOW, answer, failure

GET = endpoints.get_job_status("job-1", "repo-1")
CREATE_JOB = endpoints.execute_job("repo-1", {"a": 1})
CREATE_REPO = endpoints.create_repository()


@pytest.mark.parametrize(
    ("request_", "outcome", "retried"),
    [
        pytest.param(GET, answer(429), True, id="get-429"),
        pytest.param(GET, answer(502), True, id="get-502"),
        pytest.param(GET, answer(503), True, id="get-503"),
        pytest.param(GET, answer(504), True, id="get-504"),
        pytest.param(GET, answer(500), False, id="get-500-is-an-answer"),
        pytest.param(GET, answer(400), False, id="get-400"),
        pytest.param(GET, answer(403), False, id="get-403"),
        pytest.param(GET, answer(404), False, id="get-404"),
        pytest.param(GET, failure(FailureKind.CONNECT), True, id="get-connect"),
        pytest.param(GET, failure(FailureKind.TIMEOUT), True, id="get-timeout"),
        pytest.param(GET, failure(FailureKind.DISCONNECTED), True, id="get-disconnected"),
        pytest.param(GET, failure(FailureKind.TLS), False, id="get-tls-failure-is-permanent"),
        pytest.param(CREATE_JOB, failure(FailureKind.TLS), False, id="post-tls-failure-is-permanent"),
        pytest.param(GET, failure(FailureKind.NOT_SENT), False, id="get-refused-before-sending"),
        pytest.param(CREATE_JOB, failure(FailureKind.NOT_SENT), False, id="post-refused-before-sending"),
        pytest.param(CREATE_JOB, answer(429), True, id="post-429-not-processed"),
        pytest.param(CREATE_JOB, answer(503), True, id="post-503-not-processed"),
        pytest.param(CREATE_JOB, failure(FailureKind.CONNECT), True, id="post-connect-never-sent"),
        pytest.param(CREATE_JOB, answer(500), False, id="post-500-maybe-processed"),
        pytest.param(CREATE_JOB, answer(502), False, id="post-502-maybe-processed"),
        pytest.param(CREATE_JOB, answer(504), False, id="post-504-maybe-processed"),
        pytest.param(CREATE_JOB, failure(FailureKind.TIMEOUT), False, id="post-timeout-maybe-processed"),
        pytest.param(
            CREATE_REPO, failure(FailureKind.DISCONNECTED), False, id="post-dropped-maybe-processed"
        ),
        pytest.param(endpoints.delete_job("j", "r"), answer(503), True, id="delete-503"),
    ],
)
def test_retry_rule(request_: ApiRequest[Any], outcome: Any, retried: bool) -> None:
    assert should_retry(request_.creates is not None, outcome) is retried


@pytest.mark.parametrize(
    ("retry_number", "ceiling"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (20, 30.0)],
)
def test_backoff_is_exponential_with_full_jitter_and_capped(retry_number: int, ceiling: float) -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0)
    assert policy.backoff(retry_number, rng=lambda: 1.0) == ceiling
    assert policy.backoff(retry_number, rng=lambda: 0.0) == 0.0
    assert policy.backoff(retry_number, rng=lambda: 0.5) == ceiling / 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param("7", 7.0, id="delta-seconds"),
        pytest.param("2.5", 2.5, id="fractional"),
        pytest.param("-3", 0.0, id="negative-is-now"),
        pytest.param(
            format_datetime(datetime.fromtimestamp(NOW + 12, tz=timezone.utc), usegmt=True),
            12.0,
            id="http-date",
        ),
        pytest.param(
            format_datetime(datetime.fromtimestamp(NOW - 60, tz=timezone.utc), usegmt=True),
            0.0,
            id="past-date",
        ),
        pytest.param("soon", None, id="unreadable"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds


@pytest.mark.parametrize(
    ("outcome", "delay"),
    [
        pytest.param(answer(429, retry_after="7"), 7.0, id="retry-after-honoured"),
        pytest.param(answer(503, retry_after="120"), 30.0, id="retry-after-capped"),
        pytest.param(answer(503), 2.0, id="backoff-without-header"),
        pytest.param(failure(FailureKind.CONNECT), 2.0, id="backoff-on-failure"),
    ],
)
def test_retry_delay(outcome: Any, delay: float) -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0)
    assert retry_delay(policy, 2, outcome, NOW, rng=lambda: 1.0) == delay


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("Fri, 31 Dec 99999999999999999999 23:59:59 GMT", id="year-10e20"),
        pytest.param("Fri, 31 Dec 2099 23:59:59 +99999999999999999999", id="absurd-zone"),
    ],
)
def test_a_date_beyond_python_is_the_capped_wait(value: str) -> None:
    outcome = Response(429, {"retry-after": value})
    assert retry_delay(RetryPolicy(max_delay=7.0), 1, outcome, now=0.0) == 7.0
