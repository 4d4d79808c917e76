"""The endpoint builders: paths, bodies, and the checks that fail before anything is sent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_vbrain._client import endpoints
from airflow_provider_vbrain.exceptions import VBrainInputError


@pytest.mark.parametrize(
    ("builder", "endpoint"),
    [
        (lambda: endpoints.list_repositories(), "GET /api/v1/repository"),
        (lambda: endpoints.get_repository("20200923162939869"), "GET /api/v1/repository/20200923162939869"),
        (lambda: endpoints.get_repository("a/b"), "GET /api/v1/repository/a%2Fb"),
        (lambda: endpoints.get_repository("x?y=1"), "GET /api/v1/repository/x%3Fy%3D1"),
        (lambda: endpoints.get_repository("../job"), "GET /api/v1/repository/..%2Fjob"),
        (lambda: endpoints.get_repository("with space"), "GET /api/v1/repository/with%20space"),
        (lambda: endpoints.get_repository("çà"), "GET /api/v1/repository/%C3%A7%C3%A0"),
        (lambda: endpoints.get_job_result("j/../k", "r"), "GET /api/v1/job/j%2F..%2Fk/result"),
        (lambda: endpoints.delete_job("j", "r"), "DELETE /api/v1/job/j"),
        (lambda: endpoints.delete_repository("r"), "DELETE /api/v1/repository/r"),
        (lambda: endpoints.download_job_logs("j", "r"), "GET /api/v1/job/j/logs"),
    ],
)
def test_ids_are_percent_encoded_into_one_path_segment(builder: Any, endpoint: str) -> None:
    assert builder().endpoint == endpoint


@pytest.mark.parametrize("bad", ["", " ", ".", "..", "a\nb", None])
def test_unusable_ids_fail_before_sending(bad: Any) -> None:
    with pytest.raises(VBrainInputError, match="job_id"):
        endpoints.get_job_status(bad, "r")


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
        endpoints.execute_job("r", params)


def nested(levels: int) -> dict[str, Any]:
    """Mappings and lists ``levels`` deep."""
    value: Any = {}
    for level in range(levels - 1):
        value = {"a": value} if level % 2 else [value]
    return value


def test_nesting_has_a_limit_of_its_own_not_the_interpreters() -> None:
    """Python 3.13's JSON encoder nests deeper than 3.11's recursion limit allowed: the limit is ours."""
    endpoints.execute_job("r", {"deep": nested(endpoints.MAX_JSON_DEPTH - 1)})  # 500 levels in all
    with pytest.raises(VBrainInputError, match="params: is nested more than 500 levels deep"):
        endpoints.execute_job("r", {"deep": nested(endpoints.MAX_JSON_DEPTH)})
    looped: dict[str, Any] = {}
    looped["again"] = [looped, looped]
    with pytest.raises(VBrainInputError, match="metadata: is nested more than 500 levels deep"):
        endpoints.execute_job("r", None, looped)


def test_repositories_are_created_with_form_data_as_the_reference_documents() -> None:
    request = endpoints.create_repository({"a": 1}, {"tag": "x"})
    assert request.json_body is None
    assert request.form == {"params": '{"a": 1}', "metadata": '{"tag": "x"}'}
    assert request.upload is None
    empty = endpoints.create_repository()  # nothing to send: no body, as the tutorial posts
    assert (empty.json_body, empty.form) == (None, None)


def test_downloads_ask_for_a_zip_and_the_rest_for_json() -> None:
    assert endpoints.download_job_output("j", "r").accept == "application/zip, */*"
    assert endpoints.download_job_logs("j", "r").accept == "application/zip, */*"
    assert endpoints.download_repository_input("r").accept == "application/zip, */*"
    assert endpoints.get_job_status("j", "r").accept == "application/json"


def test_bodies_json_without_file_and_multipart_with_one() -> None:
    assert endpoints.create_repository().json_body is None
    assert endpoints.execute_job("r", {"a": 10, "b": 20}).json_body == {"params": {"a": 10, "b": 20}}
    upload = endpoints.Upload("in.csv", lambda: open(__file__, "rb"))  # noqa: SIM115
    request = endpoints.execute_job("r", {"a": 1}, {"tag": "x"}, upload)
    assert request.json_body is None
    assert request.form == {"params": '{"a": 1}', "metadata": '{"tag": "x"}'}
    assert request.upload is upload


@pytest.mark.parametrize("name", ["data.txt", "archive.tar.gz", "noext"])
def test_input_files_need_an_accepted_extension(name: str) -> None:
    with pytest.raises(VBrainInputError, match=r"must be a ZIP, \.csv, \.xlsx or \.json"):
        endpoints.input_name("input_file", name)


def test_listing_dates() -> None:
    request = endpoints.list_jobs("r", datetime(2026, 11, 28, 9, 5), "202612010000")
    assert request.query == {"from_date": "202611280905", "to_date": "202612010000"}
    with pytest.raises(VBrainInputError, match="to_date"):
        endpoints.list_repositories(to_date="yesterday")


def test_aware_listing_dates_are_sent_in_utc() -> None:
    lisbon_summer = timezone(timedelta(hours=1))
    request = endpoints.list_repositories(datetime(2026, 7, 1, 0, 30, tzinfo=lisbon_summer))
    assert request.query == {"from_date": "202606302330"}
