"""One call from first attempt to value or typed error, driven with canned outcomes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider_vbrain._client import endpoints
from airflow_provider_vbrain._client.exchange import exchange
from airflow_provider_vbrain._client.http import FailureKind, TransportFailure
from airflow_provider_vbrain._client.retry import RetryPolicy
from airflow_provider_vbrain.exceptions import (
    VBrainAPIError,
    VBrainConnectionError,
    VBrainInputError,
    VBrainJobNotFinishedError,
    VBrainMaybeCreatedError,
    VBrainRateLimitError,
)
from tests.core import NOW, answer, failure, run

GET = endpoints.get_job_status("job-1", "repo-1")
CREATE_JOB = endpoints.execute_job("repo-1", {"a": 1})


def test_exchange_retries_then_parses() -> None:
    steps = exchange(GET, RetryPolicy(), clock=lambda: NOW, rng=lambda: 1.0)
    outcomes = [answer(503), answer(429, retry_after="3"), answer(202, {"job_status": "started"})]
    status, sleeps, sends = run(steps, outcomes)
    assert status.state.value == "started"
    assert sleeps == [1.0, 3.0]
    assert sends == 3


def test_exchange_gives_up_after_max_attempts_with_the_last_answer() -> None:
    steps = exchange(GET, RetryPolicy(max_attempts=3), rng=lambda: 0.0)
    with pytest.raises(VBrainRateLimitError) as caught:
        run(steps, [answer(503), answer(503), answer(429, {"message": "Too Many Requests"})])
    assert caught.value.attempts == 3
    assert "GET /api/v1/job/job-1 answered HTTP 429 (after 3 attempts): Too Many Requests" in str(
        caught.value
    )


def test_exchange_connection_failures_become_connection_error() -> None:
    steps = exchange(GET, RetryPolicy(max_attempts=2), rng=lambda: 0.0)
    with pytest.raises(
        VBrainConnectionError, match=r"GET /api/v1/job/job-1 failed after 2 attempts: timed out"
    ):
        run(steps, [failure(FailureKind.TIMEOUT), failure(FailureKind.TIMEOUT)])


@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param(answer(500, {"error": "Internal"}), id="500"),
        pytest.param(answer(502, b"<html><title>502 Bad Gateway</title></html>"), id="502-html"),
        pytest.param(answer(504), id="504"),
        *(pytest.param(answer(status), id=str(status)) for status in range(520, 525)),
        pytest.param(failure(FailureKind.TIMEOUT), id="read-timeout"),
        pytest.param(failure(FailureKind.DISCONNECTED), id="dropped"),
    ],
)
def test_create_job_is_not_repeated_when_it_may_have_been_processed(outcome: Any) -> None:
    steps = exchange(CREATE_JOB, RetryPolicy(), rng=lambda: 0.0)
    with pytest.raises(VBrainMaybeCreatedError) as caught:
        run(steps, [outcome])
    message = str(caught.value)
    assert "POST /api/v1/job/execute may have created a job" in message
    assert "repository repo-1" in message
    assert "list_jobs" in message


def test_create_job_is_repeated_when_the_server_refused_it() -> None:
    steps = exchange(CREATE_JOB, RetryPolicy(), rng=lambda: 0.0)
    job_id, _, sends = run(
        steps, [failure(FailureKind.CONNECT), answer(503), answer(429), answer(201, {"job_id": "j-9"})]
    )
    assert (job_id, sends) == ("j-9", 4)


def test_success_answers_that_are_not_json_name_the_endpoint() -> None:
    steps = exchange(endpoints.list_repositories(), RetryPolicy())
    with pytest.raises(VBrainAPIError, match=r"GET /api/v1/repository answered HTTP 200: expected JSON"):
        run(steps, [answer(200, b"<html>login page</html>")])


def test_result_before_the_job_ends_is_not_a_value() -> None:
    steps = exchange(endpoints.get_job_result("j", "r"), RetryPolicy())
    with pytest.raises(VBrainJobNotFinishedError, match="Job not yet finished"):
        run(steps, [answer(202, {"message": "Job not yet finished"})])


SECRET = 's3cr"et/ü-key'


@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param(answer(403, {"message": f"bad key {SECRET}"}), id="json-message"),
        pytest.param(answer(401, f"<title>no {SECRET}</title>".encode()), id="html-title"),
        pytest.param(answer(302, location=f"https://x.example/?k={quote(SECRET, safe='')}"), id="location"),
    ],
)
def test_an_echoed_key_is_redacted_from_the_error(outcome: Any) -> None:
    steps = exchange(GET, RetryPolicy(max_attempts=1), secrets=(SECRET,))
    with pytest.raises(VBrainAPIError) as caught:
        run(steps, [outcome])
    shown = f"{caught.value} {caught.value.args!r}"
    assert "***" in shown
    for piece in ("s3cr", "ü-key", "%C3%BC-key"):
        assert piece not in shown


def test_an_echoed_key_is_redacted_from_the_value() -> None:
    steps = exchange(GET, RetryPolicy(), secrets=(SECRET,))
    status, _, _ = run(steps, [answer(202, {"job_status": SECRET})])
    assert status.raw_state == "***"


def test_a_request_refused_before_sending_is_not_retried_nor_maybe_created() -> None:
    steps = exchange(CREATE_JOB, RetryPolicy(), rng=lambda: 0.0)
    with pytest.raises(VBrainInputError, match="refused to send") as caught:
        run(steps, [failure(FailureKind.NOT_SENT)])
    assert caught.value.__cause__ is None


def test_a_connection_error_names_its_kind_and_chains_no_library_error() -> None:
    steps = exchange(GET, RetryPolicy(max_attempts=1))
    with pytest.raises(VBrainConnectionError) as caught:
        run(steps, [failure(FailureKind.TIMEOUT)])
    assert caught.value.kind == "timed out"
    assert caught.value.__cause__ is None
    assert "OSError: boom" in str(caught.value)


# ---------------------------------------------------------------- proxies

PROXY_PASSWORD = "pr0xy/p@ss:w%rd"
PROXY = f"http://ana:{quote(PROXY_PASSWORD, safe='')}@proxy.example.com:3128"


def test_a_407_is_the_proxys_refusal_so_even_a_create_is_retried_and_then_cannot_connect() -> None:
    steps = exchange(CREATE_JOB, RetryPolicy(max_attempts=2), rng=lambda: 0.0)
    with pytest.raises(VBrainConnectionError) as caught:
        run(steps, [answer(407, b"Proxy Authentication Required"), answer(407)])
    assert not isinstance(caught.value, VBrainMaybeCreatedError)
    assert (caught.value.kind, caught.value.attempts) == ("could not connect", 2)
    assert "the proxy refused the request: HTTP 407 Proxy Authentication Required" in str(caught.value)


def test_a_407_then_an_answer_is_a_value() -> None:
    status, _, sends = run(exchange(GET, RetryPolicy(), rng=lambda: 0.0), [answer(407), answer(200, {})])
    assert (status.http_status, sends) == (200, 2)


@pytest.mark.parametrize(
    "detail",
    [
        pytest.param(f"Cannot connect via url='{PROXY}'", id="whole-url"),
        pytest.param(f"auth {PROXY_PASSWORD} refused", id="password-decoded"),
        pytest.param(f"auth {quote(PROXY_PASSWORD, safe='')} refused", id="password-encoded"),
    ],
)
def test_every_secret_of_the_connection_is_redacted_from_failures(detail: str) -> None:
    from airflow_provider_vbrain._client.http import TransportFailure
    from airflow_provider_vbrain._client.proxy import proxy_secrets

    steps = exchange(GET, RetryPolicy(max_attempts=1), secrets=(SECRET, *proxy_secrets(PROXY)))
    with pytest.raises(VBrainConnectionError) as caught:
        run(steps, [TransportFailure(FailureKind.CONNECT, OSError(detail))])
    shown = f"{caught.value} {caught.value.args!r}"
    assert "***" in shown
    for piece in (PROXY_PASSWORD, quote(PROXY_PASSWORD, safe=""), "p@ss", "w%rd", "w%25rd"):
        assert piece not in shown, piece


def test_every_secret_is_redacted_from_answers() -> None:
    steps = exchange(GET, RetryPolicy(max_attempts=1), secrets=(SECRET, PROXY, PROXY_PASSWORD))
    with pytest.raises(VBrainAPIError) as caught:
        run(steps, [answer(403, {"message": f"key {SECRET}, proxy {PROXY}, password {PROXY_PASSWORD}"})])
    assert str(caught.value).endswith("key ***, proxy ***, password ***")


class _Lines:
    """A logger that keeps what it is given, formatted."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def warning(self, message: str, *args: Any) -> None:
        self.lines.append(("WARNING", message % args))


def test_every_retry_is_one_warning_naming_endpoint_cause_attempt_and_wait() -> None:
    log = _Lines()
    steps = exchange(GET, RetryPolicy(max_attempts=4), clock=lambda: NOW, rng=lambda: 0.5, log=log)
    outcomes = [
        answer(503, {"message": "busy"}),
        answer(429, retry_after="7"),
        failure(FailureKind.DISCONNECTED),
        answer(202, {"job_status": "started"}),
    ]
    run(steps, outcomes)
    assert [level for level, _ in log.lines] == ["WARNING"] * 3
    first, second, third = (line for _, line in log.lines)
    assert first.startswith("VBrain GET /api/v1/job/job-1: attempt 1 of 4 failed: HTTP 503: busy;")
    assert first.endswith("retrying in 0.5 s")
    assert "attempt 2 of 4 failed: HTTP 429" in second
    assert second.endswith("retrying in 7.0 s (Retry-After: '7')")
    assert "attempt 3 of 4 failed: connection lost" in third


def test_no_warning_without_a_retry_and_none_for_the_last_attempt() -> None:
    log = _Lines()
    run(exchange(GET, RetryPolicy(), log=log), [answer(202, {"job_status": "started"})])
    with pytest.raises(VBrainRateLimitError):
        run(exchange(GET, RetryPolicy(max_attempts=2), rng=lambda: 0.0, log=log), [answer(429), answer(429)])
    assert len(log.lines) == 1  # the one retry; the second 429 is the error, not a retry


def test_a_retry_warning_never_quotes_a_secret() -> None:
    log = _Lines()
    key = "sk-very-secret-key"
    steps = exchange(GET, RetryPolicy(max_attempts=3), rng=lambda: 0.0, log=log, secrets=(key,))
    run(
        steps,
        [
            answer(503, {"message": f"bad key {key}"}, retry_after=key),
            TransportFailure(FailureKind.TIMEOUT, OSError(f"read from https://x/?key={key}")),
            answer(202, {"job_status": "started"}),
        ],
    )
    assert len(log.lines) == 2
    assert all(key not in line for _, line in log.lines)
