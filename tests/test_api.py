"""The I/O-free core: retry rule, backoff, error mapping and request building."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from airflow_provider_vbrain import _api
from airflow_provider_vbrain._api import (
    FailureKind,
    Response,
    RetryPolicy,
    Send,
    Sleep,
    TransportFailure,
)
from airflow_provider_vbrain.exceptions import (
    VBrainAPIError,
    VBrainAuthError,
    VBrainBadRequestError,
    VBrainConnectionError,
    VBrainError,
    VBrainInputError,
    VBrainJobFailedError,
    VBrainJobNotFinishedError,
    VBrainMaybeCreatedError,
    VBrainNotFoundError,
    VBrainRateLimitError,
    VBrainServerError,
)

GET = _api.get_job_status("job-1", "repo-1")
CREATE_JOB = _api.execute_job("repo-1", {"a": 1})
CREATE_REPO = _api.create_repository()


def answer(status: int, body: Any = None, **headers: str) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
    return Response(status, {k.replace("_", "-").lower(): v for k, v in headers.items()}, raw)


def failure(kind: FailureKind) -> TransportFailure:
    return TransportFailure(kind, OSError("boom"))


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
        pytest.param(_api.delete_job("j", "r"), answer(503), True, id="delete-503"),
    ],
)
def test_retry_rule(request_: _api.ApiRequest, outcome: Any, retried: bool) -> None:
    assert _api.should_retry(request_, outcome) is retried


@pytest.mark.parametrize(
    ("retry_number", "ceiling"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (20, 30.0)],
)
def test_backoff_is_exponential_with_full_jitter_and_capped(retry_number: int, ceiling: float) -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0)
    assert policy.backoff(retry_number, rng=lambda: 1.0) == ceiling
    assert policy.backoff(retry_number, rng=lambda: 0.0) == 0.0
    assert policy.backoff(retry_number, rng=lambda: 0.5) == ceiling / 2


NOW = 1_800_000_000.0


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
    assert _api.retry_after_seconds(header, NOW) == seconds


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
    assert _api.retry_delay(policy, 2, outcome, NOW, rng=lambda: 1.0) == delay


def run(steps: _api.Exchange, outcomes: list[Any]) -> tuple[Any, list[float], int]:
    """Drive an exchange with canned outcomes; return its value, the sleeps, the sends."""
    sleeps: list[float] = []
    sends = 0
    command = next(steps)
    try:
        while True:
            if isinstance(command, Send):
                sends += 1
                command = steps.send(outcomes.pop(0))
            else:
                assert isinstance(command, Sleep)
                sleeps.append(command.seconds)
                command = steps.send(None)
    except StopIteration as done:
        return done.value, sleeps, sends


def test_exchange_retries_then_parses() -> None:
    steps = _api.exchange(GET, RetryPolicy(), clock=lambda: NOW, rng=lambda: 1.0)
    outcomes = [answer(503), answer(429, retry_after="3"), answer(202, {"job_status": "started"})]
    status, sleeps, sends = run(steps, outcomes)
    assert status.state.value == "started"
    assert sleeps == [1.0, 3.0]
    assert sends == 3


def test_exchange_gives_up_after_max_attempts_with_the_last_answer() -> None:
    steps = _api.exchange(GET, RetryPolicy(max_attempts=3), rng=lambda: 0.0)
    with pytest.raises(VBrainRateLimitError) as caught:
        run(steps, [answer(503), answer(503), answer(429, {"message": "Too Many Requests"})])
    assert caught.value.attempts == 3
    assert "GET /api/v1/job/job-1 answered HTTP 429 (after 3 attempts): Too Many Requests" in str(
        caught.value
    )


def test_exchange_connection_failures_become_connection_error() -> None:
    steps = _api.exchange(GET, RetryPolicy(max_attempts=2), rng=lambda: 0.0)
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
        pytest.param(failure(FailureKind.TIMEOUT), id="read-timeout"),
        pytest.param(failure(FailureKind.DISCONNECTED), id="dropped"),
    ],
)
def test_create_job_is_not_repeated_when_it_may_have_been_processed(outcome: Any) -> None:
    steps = _api.exchange(CREATE_JOB, RetryPolicy(), rng=lambda: 0.0)
    with pytest.raises(VBrainMaybeCreatedError) as caught:
        run(steps, [outcome])
    message = str(caught.value)
    assert "POST /api/v1/job/execute may have created a job" in message
    assert "repository repo-1" in message
    assert "list_jobs" in message


def test_create_job_is_repeated_when_the_server_refused_it() -> None:
    steps = _api.exchange(CREATE_JOB, RetryPolicy(), rng=lambda: 0.0)
    job_id, _, sends = run(
        steps, [failure(FailureKind.CONNECT), answer(503), answer(429), answer(201, {"job_id": "j-9"})]
    )
    assert (job_id, sends) == ("j-9", 4)


@pytest.mark.parametrize(
    ("status", "body", "error_type", "message"),
    [
        pytest.param(
            400,
            {"error": "Missing organization_id"},
            VBrainAuthError,
            "Missing organization_id",
            id="400-header",
        ),
        pytest.param(
            400, {"error": "params must be an object"}, VBrainBadRequestError, "params must", id="400-other"
        ),
        pytest.param(403, {"message": "Forbidden"}, VBrainAuthError, "Forbidden", id="403"),
        pytest.param(404, {"error": "Invalid job_id"}, VBrainNotFoundError, "Invalid job_id", id="404"),
        pytest.param(429, {"message": "Too Many Requests"}, VBrainRateLimitError, "Too Many", id="429"),
        pytest.param(500, {"error": "Job failed"}, VBrainServerError, "Job failed", id="500"),
        pytest.param(
            502,
            b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            VBrainServerError,
            "502 Bad Gateway",
            id="html-proxy-page",
        ),
        pytest.param(503, b"", VBrainServerError, "(empty body)", id="empty"),
        pytest.param(418, b"plain words", VBrainAPIError, "plain words", id="text"),
    ],
)
def test_error_answers_map_to_typed_errors(status: int, body: Any, error_type: type, message: str) -> None:
    error = _api.api_error("GET /api/v1/job/x", answer(status, body, content_type="text/html"))
    assert type(error) is error_type
    assert error.status == status
    assert error.endpoint == "GET /api/v1/job/x"
    assert message in error.server_message
    assert f"HTTP {status}" in str(error)


def test_long_server_messages_are_clipped() -> None:
    error = _api.api_error("GET /x", answer(500, {"error": "x" * 5000}))
    assert len(error.server_message) <= 300


@pytest.mark.parametrize(
    ("builder", "endpoint"),
    [
        (lambda: _api.list_repositories(), "GET /api/v1/repository"),
        (lambda: _api.get_repository("20200923162939869"), "GET /api/v1/repository/20200923162939869"),
        (lambda: _api.get_repository("a/b"), "GET /api/v1/repository/a%2Fb"),
        (lambda: _api.get_repository("x?y=1"), "GET /api/v1/repository/x%3Fy%3D1"),
        (lambda: _api.get_repository("../job"), "GET /api/v1/repository/..%2Fjob"),
        (lambda: _api.get_repository("with space"), "GET /api/v1/repository/with%20space"),
        (lambda: _api.get_repository("çà"), "GET /api/v1/repository/%C3%A7%C3%A0"),
        (lambda: _api.get_job_result("j/../k", "r"), "GET /api/v1/job/j%2F..%2Fk/result"),
        (lambda: _api.delete_job("j", "r"), "DELETE /api/v1/job/j"),
        (lambda: _api.delete_repository("r"), "DELETE /api/v1/repository/r"),
        (lambda: _api.download_job_logs("j", "r"), "GET /api/v1/job/j/logs"),
    ],
)
def test_ids_are_percent_encoded_into_one_path_segment(builder: Any, endpoint: str) -> None:
    assert builder().endpoint == endpoint


@pytest.mark.parametrize("bad", ["", " ", ".", "..", "a\nb", None])
def test_unusable_ids_fail_before_sending(bad: Any) -> None:
    with pytest.raises(VBrainInputError, match="job_id"):
        _api.get_job_status(bad, "r")


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        pytest.param([1, 2], "must be a mapping", id="list"),
        pytest.param("a=1", "must be a mapping", id="string"),
        pytest.param({"when": datetime(2026, 1, 1)}, "not JSON-serialisable", id="datetime-value"),
        pytest.param({"x": float("nan")}, "not JSON-serialisable", id="nan"),
        pytest.param({1: "a"}, "keys must be strings", id="int-key"),
    ],
)
def test_params_must_be_json_objects(params: Any, problem: str) -> None:
    with pytest.raises(VBrainInputError, match=f"params: .*{problem}"):
        _api.execute_job("r", params)


def test_bodies_json_without_file_and_multipart_with_one() -> None:
    assert _api.create_repository().json_body is None
    assert _api.execute_job("r", {"a": 10, "b": 20}).json_body == {"params": {"a": 10, "b": 20}}
    upload = _api.Upload("in.csv", lambda: open(__file__, "rb"))  # noqa: SIM115
    request = _api.execute_job("r", {"a": 1}, {"tag": "x"}, upload)
    assert request.json_body is None
    assert request.form == {"params": '{"a": 1}', "metadata": '{"tag": "x"}'}
    assert request.upload is upload


@pytest.mark.parametrize("name", ["data.txt", "archive.tar.gz", "noext"])
def test_input_files_need_an_accepted_extension(name: str) -> None:
    with pytest.raises(VBrainInputError, match=r"must be a ZIP, \.csv, \.xlsx or \.json"):
        _api.input_name("input_file", name)


def test_listing_dates() -> None:
    request = _api.list_jobs("r", datetime(2026, 11, 28, 9, 5), "202612010000")
    assert request.query == {"from_date": "202611280905", "to_date": "202612010000"}
    with pytest.raises(VBrainInputError, match="to_date"):
        _api.list_repositories(to_date="yesterday")


def test_success_answers_that_are_not_json_name_the_endpoint() -> None:
    steps = _api.exchange(_api.list_repositories(), RetryPolicy())
    with pytest.raises(VBrainAPIError, match=r"GET /api/v1/repository answered HTTP 200: expected JSON"):
        run(steps, [answer(200, b"<html>login page</html>")])


def test_result_before_the_job_ends_is_not_a_value() -> None:
    steps = _api.exchange(_api.get_job_result("j", "r"), RetryPolicy())
    with pytest.raises(VBrainJobNotFinishedError, match="Job not yet finished"):
        run(steps, [answer(202, {"message": "Job not yet finished"})])


@pytest.mark.parametrize(
    "error",
    [
        VBrainServerError("GET /x", 500, "boom", 3),
        VBrainConnectionError("GET /x", "timed out", 2),
        VBrainMaybeCreatedError("POST /x", "job", "timed out", "check"),
        VBrainJobFailedError("j", "r", "failed", "tail"),
        VBrainInputError("params", "bad"),
    ],
    ids=type,
)
def test_errors_survive_pickling(error: VBrainError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
