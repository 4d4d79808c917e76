"""Answers into values or typed errors: error mapping and server messages."""

from __future__ import annotations

import time
from typing import Any

import pytest

from airflow_provider_vbrain._client.answers import api_error, json_object, server_message
from airflow_provider_vbrain._client.http import Response
from airflow_provider_vbrain.exceptions import (
    VBrainAPIError,
    VBrainAuthError,
    VBrainBadRequestError,
    VBrainNotFoundError,
    VBrainRateLimitError,
    VBrainServerError,
)
from tests.core import answer


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
    error = api_error("GET /api/v1/job/x", answer(status, body, content_type="text/html"))
    assert type(error) is error_type
    assert error.status == status
    assert error.endpoint == "GET /api/v1/job/x"
    assert message in error.server_message
    assert f"HTTP {status}" in str(error)


def test_long_server_messages_are_clipped() -> None:
    error = api_error("GET /x", answer(500, {"error": "x" * 5000}))
    assert len(error.server_message) <= 300


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param(b"<" * 1024 * 1024, "(markup only)", id="1MiB-of-lt"),
        pytest.param(b"<title>" * 150_000, "non-JSON answer", id="unclosed-titles"),
        pytest.param(b"<p>Bad <b>gateway</b></p>", "Bad gateway", id="tags-stripped"),
        pytest.param(b"<html><TITLE>502 Bad Gateway</TITLE>", "502 Bad Gateway", id="title"),
        pytest.param(b"[" * 10_000 + b"]" * 10_000, "nested too deeply", id="nested-json"),
    ],
)
def test_server_message_is_linear_and_bounded(body: bytes, says: str) -> None:
    started = time.perf_counter()
    message = server_message(Response(500, {"content-type": "text/html"}, body))
    assert time.perf_counter() - started < 0.5
    assert says in message
    assert len(message) <= 300


def test_a_deeply_nested_answer_is_a_typed_error() -> None:
    with pytest.raises(VBrainAPIError, match="nested too deeply"):
        json_object("GET /x", Response(200, {}, b"[" * 100_000 + b"]" * 100_000))
