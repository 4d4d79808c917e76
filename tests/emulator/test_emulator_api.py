"""The emulated VBrain API over real HTTP: every endpoint's success and error answers."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import requests

from vbrain_emulator import ApplicationResult, register_application, unregister_application

if TYPE_CHECKING:
    from conftest import Api

    from vbrain_emulator import EmulatorServer

SLOW = {"metadata": {"emulator_queue_seconds": 60}}
JOB_PATHS = ["", "/result", "/params", "/output", "/logs"]


def test_tutorial_flow_exactly_as_the_platform_documents_it(vbrain_emulator: EmulatorServer) -> None:
    # The seed tutorial, with plain requests and only the base URL changed.
    base = f"{vbrain_emulator.url}/api/v1"
    headers = {
        "organization_id": "acme",
        "application_id": "Tutorial",
        "client_id": "ops",
        "username": "ana",
        "x-api-key": "any-key",
    }
    response = requests.post(f"{base}/repository", headers=headers, timeout=10)
    assert response.status_code == 201
    assert response.json()["message"] == "Repository created successfully"
    headers["repository_id"] = response.json()["repository_id"]

    response = requests.post(
        f"{base}/job/execute", headers=headers, json={"params": {"a": 10, "b": 20}}, timeout=10
    )
    assert response.status_code == 201
    assert response.json()["message"] == "Job created"
    job_id = response.json()["job_id"]

    seen = []
    for _ in range(100):
        response = requests.get(f"{base}/job/{job_id}", headers=headers, timeout=10)
        seen.append((response.status_code, response.json()["job_status"]))
        if response.status_code == 200:
            break
        time.sleep(0.02)
    assert seen[-1] == (200, "finished")
    assert {status for code, status in seen if code == 202} <= {"queued", "started"}
    assert seen[0] == (202, "queued")

    response = requests.get(f"{base}/job/{job_id}/result", headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"output": {"value": 200}}


def test_creation_answers_and_id_formats(api: Api) -> None:
    response = api.post("/repository")
    assert response.status_code == 201
    body = response.json()
    assert body == {"message": "Repository created successfully", "repository_id": body["repository_id"]}
    repository_id = body["repository_id"]
    assert re.fullmatch(r"20\d{16}", repository_id)
    assert repository_id[:8] == time.strftime("%Y%m%d", time.gmtime())

    response = api.post("/job/execute", repository_id=repository_id, json={"params": {"a": 1, "b": 2}})
    assert response.status_code == 201
    body = response.json()
    assert body == {"message": "Job created", "job_id": body["job_id"]}
    assert uuid.UUID(body["job_id"]).version == 4


def test_repository_ids_are_unique(api: Api) -> None:
    ids = {api.create_repository() for _ in range(50)}
    assert len(ids) == 50
    assert sorted(api.get("/repository").json()) == sorted(ids)


def test_repository_details(api: Api) -> None:
    repository_id = api.create_repository(
        json={"params": {"a": 3}, "metadata": {"name": "forecast", "team": "ops"}}
    )
    job_id = api.execute(repository_id, json={"params": {"b": 4}})
    details = api.get(f"/repository/{repository_id}").json()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{2}:\d{2}:\d{2}", details.pop("created_on"))
    assert details == {
        "repository_id": repository_id,
        "name": "forecast",
        "input": [],
        "created_by": "ana",
        "params": True,
        "jobs": [job_id],
        "metadata": {"name": "forecast", "team": "ops"},
    }
    assert api.get(f"/repository/{repository_id}/params").json() == {"a": 3}
    assert api.get(f"/repository/{api.create_repository()}").json()["params"] is False


def test_job_params_merge_over_repository_params(api: Api) -> None:
    repository_id = api.create_repository(json={"params": {"a": 3, "b": 1, "unit": "kg"}})
    job_id = api.execute(repository_id, json={"params": {"b": 5}, "metadata": {"run": 1}})
    assert api.get(f"/job/{job_id}/params", repository_id=repository_id).json() == {
        "a": 3,
        "b": 5,
        "unit": "kg",
    }
    body = api.wait(repository_id, job_id)
    assert body["job_id"] == job_id
    assert body["repository_id"] == repository_id
    assert body["metadata"] == {"run": 1}
    assert body["params"] == {"a": 3, "b": 5, "unit": "kg"}
    assert api.get(f"/job/{job_id}/result", repository_id=repository_id).json() == {"output": {"value": 15}}


@pytest.mark.parametrize("header", ["organization_id", "application_id", "client_id", "username"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/repository"), ("POST", "/repository"), ("GET", "/repository/1"), ("GET", "/job")],
)
def test_missing_scoping_header_is_400(api: Api, header: str, method: str, path: str) -> None:
    response = api.request(method, path, repository_id="1", drop=(header,))
    assert response.status_code == 400
    assert response.json() == {"error": f"Missing {header}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/job"), ("POST", "/job/execute")]
    + [("GET", f"/job/some-id{suffix}") for suffix in JOB_PATHS]
    + [("DELETE", "/job/some-id")],
)
def test_job_endpoints_need_repository_id(api: Api, method: str, path: str) -> None:
    response = api.request(method, path)
    assert response.status_code == 400
    assert response.json() == {"error": "Missing repository_id"}


def test_unknown_application_is_400(api: Api) -> None:
    response = api.with_headers(application_id="Nope").get("/repository")
    assert response.status_code == 400
    assert response.json() == {"error": "Unknown application_id: Nope"}


def test_any_non_empty_key_is_accepted_when_none_configured(api: Api) -> None:
    assert api.with_headers(**{"x-api-key": "whatever"}).get("/repository").status_code == 200
    response = api.get("/repository", drop=("x-api-key",))
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}


@pytest.mark.parametrize(("key", "status"), [("secret", 200), ("wrong", 403), (None, 403), ("", 403)])
def test_configured_api_keys(keyed_server: EmulatorServer, key: str | None, status: int) -> None:
    headers: dict[str, str] = {
        "organization_id": "acme",
        "application_id": "Tutorial",
        "client_id": "ops",
        "username": "ana",
    }
    if key is not None:
        headers["x-api-key"] = key
    response = requests.get(f"{keyed_server.url}/api/v1/repository", headers=headers, timeout=10)
    assert response.status_code == status
    if status == 403:
        assert response.json() == {"message": "Forbidden"}


def test_key_is_checked_before_scoping_headers(keyed_server: EmulatorServer) -> None:
    response = requests.get(
        f"{keyed_server.url}/api/v1/repository", headers={"x-api-key": "wrong"}, timeout=10
    )
    assert response.status_code == 403
    response = requests.get(
        f"{keyed_server.url}/api/v1/repository", headers={"x-api-key": "secret"}, timeout=10
    )
    assert response.json() == {"error": "Missing organization_id"}


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("DELETE", ""), ("GET", "/input"), ("GET", "/params")]
)
def test_unknown_repository_is_404(api: Api, method: str, suffix: str) -> None:
    response = api.request(method, f"/repository/202001010000000000{suffix}")
    assert response.status_code == 404
    assert response.json() == {"error": "Invalid repository_id"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/job"), ("POST", "/job/execute"), ("DELETE", "/job/x")]
    + [("GET", f"/job/x{s}") for s in JOB_PATHS],
)
def test_job_endpoints_with_unknown_repository_are_404(api: Api, method: str, path: str) -> None:
    response = api.request(method, path, repository_id="202001010000000000")
    assert response.status_code == 404
    assert response.json() == {"error": "Invalid repository_id"}


@pytest.mark.parametrize(("method", "suffix"), [("GET", s) for s in JOB_PATHS] + [("DELETE", "")])
def test_unknown_job_and_job_of_another_repository_are_404(api: Api, method: str, suffix: str) -> None:
    first, second = api.create_repository(), api.create_repository()
    job_id = api.execute(first, json={"params": {"a": 1, "b": 1}})
    for repository_id, path in ((first, f"/job/{uuid.uuid4()}{suffix}"), (second, f"/job/{job_id}{suffix}")):
        response = api.request(method, path, repository_id=repository_id)
        assert response.status_code == 404
        assert response.json() == {"error": "Invalid job_id"}


def test_result_and_output_answer_202_before_the_job_ends(api: Api) -> None:
    repository_id = api.create_repository()
    job_id = api.execute(repository_id, json={"params": {"a": 1, "b": 2}, **SLOW})
    status = api.get(f"/job/{job_id}", repository_id=repository_id)
    assert (status.status_code, status.json()["job_status"]) == (202, "queued")
    for suffix in ("/result", "/output"):
        response = api.get(f"/job/{job_id}{suffix}", repository_id=repository_id)
        assert response.status_code == 202
        assert response.json() == {"message": "Job not yet finished"}
    logs = api.unzip(api.get(f"/job/{job_id}/logs", repository_id=repository_id).content)["job.log"].decode()
    assert "queued" in logs
    assert "started" not in logs

    api.server.finish_job(job_id)
    assert api.get(f"/job/{job_id}/result", repository_id=repository_id).json() == {"output": {"value": 2}}


def test_job_status_goes_queued_started_finished(api: Api) -> None:
    repository_id = api.create_repository()
    meta = {"emulator_queue_seconds": 0.3, "emulator_run_seconds": 0.3}
    job_id = api.execute(repository_id, json={"params": {"a": 1, "b": 2}, "metadata": meta})
    statuses: list[tuple[int, str]] = []
    deadline = time.monotonic() + 5
    while not statuses or statuses[-1][1] not in ("finished", "failed"):
        assert time.monotonic() < deadline
        response = api.get(f"/job/{job_id}", repository_id=repository_id)
        statuses.append((response.status_code, response.json()["job_status"]))
        time.sleep(0.03)
    assert [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]] == [
        (202, "queued"),
        (202, "started"),
        (200, "finished"),
    ]


@pytest.mark.parametrize("value", ["soon", -1, True])
def test_invalid_duration_override_is_400(api: Api, value: Any) -> None:
    repository_id = api.create_repository()
    response = api.post(
        "/job/execute", repository_id=repository_id, json={"metadata": {"emulator_run_seconds": value}}
    )
    assert response.status_code == 400
    assert "emulator_run_seconds" in response.json()["error"]


def test_failed_tutorial_answers_500_and_logs_why(api: Api) -> None:
    repository_id = api.create_repository()
    job_id = api.execute(repository_id, json={"params": {"a": 10}})
    body = api.wait(repository_id, job_id)
    assert body["job_status"] == "failed"
    for suffix in ("/result", "/output"):
        response = api.get(f"/job/{job_id}{suffix}", repository_id=repository_id)
        assert response.status_code == 500
        assert response.json() == {"error": "Job failed"}
    response = api.get(f"/job/{job_id}/logs", repository_id=repository_id)
    assert response.headers["Content-Type"] == "application/zip"
    log = api.unzip(response.content)["job.log"].decode()
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO job started$", log, re.MULTILINE)
    assert "ERROR job failed: Tutorial needs numeric parameters 'a' and 'b': missing parameter 'b'" in log


def test_crashing_application_fails_the_job_with_its_traceback(api: Api) -> None:
    def crash(params: dict[str, Any], input_files: dict[str, bytes]) -> ApplicationResult:
        raise RuntimeError("model exploded")

    register_application("Crash", crash)
    try:
        crash_api = api.with_headers(application_id="Crash")
        repository_id = crash_api.create_repository()
        job_id = crash_api.execute(repository_id)
        assert crash_api.wait(repository_id, job_id)["job_status"] == "failed"
        log = api.unzip(crash_api.get(f"/job/{job_id}/logs", repository_id=repository_id).content)["job.log"]
        assert "ERROR job failed: RuntimeError: model exploded" in log.decode()
        assert "Traceback (most recent call last)" in log.decode()
    finally:
        unregister_application("Crash")


def test_output_zip_holds_output_json_and_files(api: Api) -> None:
    repository_id = api.create_repository()
    job_id = api.execute(repository_id, json={"params": {"a": 6, "b": 7}})
    api.wait(repository_id, job_id)
    response = api.get(f"/job/{job_id}/output", repository_id=repository_id)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/zip"
    assert json.loads(api.unzip(response.content)["output.json"]) == {"value": 42}
    log = api.unzip(api.get(f"/job/{job_id}/logs", repository_id=repository_id).content)["job.log"].decode()
    assert log.splitlines()[-1].endswith("INFO job finished")


def test_multipart_repository_with_zip_input_round_trips(api: Api) -> None:
    files = {"sales.csv": b"qty,price\n1,2.5\n3,4\n", "ref/regions.json": b'{"north": 1}'}
    response = api.post(
        "/repository",
        files={"file": ("inputs.zip", api.make_zip(files), "application/zip")},
        data={"params": json.dumps({"a": 2}), "metadata": json.dumps({"source": "erp"})},
    )
    assert response.status_code == 201, response.text
    repository_id = response.json()["repository_id"]
    details = api.get(f"/repository/{repository_id}").json()
    assert details["input"] == ["ref/regions.json", "sales.csv"]
    assert details["metadata"] == {"source": "erp"}
    assert api.get(f"/repository/{repository_id}/params").json() == {"a": 2}
    response = api.get(f"/repository/{repository_id}/input")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/zip"
    assert api.unzip(response.content) == files


@pytest.mark.parametrize("name", ["data.csv", "book.xlsx", "cfg.json"])
def test_single_input_file_is_kept_as_is(api: Api, name: str) -> None:
    repository_id = api.create_repository(files={"file": (name, b"content")})
    assert api.get(f"/repository/{repository_id}").json()["input"] == [name]
    assert api.unzip(api.get(f"/repository/{repository_id}/input").content) == {name: b"content"}


def test_csv_summary_job_with_a_file_attached_to_the_execution(api: Api) -> None:
    summary = api.with_headers(application_id="CsvSummary")
    repository_id = summary.create_repository(
        files={"file": ("in.zip", api.make_zip({"north/sales.csv": b"region,qty\nn,1\nn,2\n"}))}
    )
    job_id = summary.execute(
        repository_id,
        files={"file": ("more.csv", b"region,qty\ns,3\n")},
        data={"metadata": json.dumps({"batch": 7})},
    )
    assert summary.wait(repository_id, job_id)["metadata"] == {"batch": 7}
    result = summary.get(f"/job/{job_id}/result", repository_id=repository_id).json()["output"]
    assert result["rows"] == 3
    assert result["columns"] == {"qty": {"count": 3, "sum": 6.0, "mean": 2.0}}
    output = api.unzip(summary.get(f"/job/{job_id}/output", repository_id=repository_id).content)
    assert set(output) == {"output.json", "summary.json", "summary.csv"}
    assert json.loads(output["summary.json"]) == result
    assert output["summary.csv"].decode().splitlines() == ["column,count,sum,mean", "qty,3,6.0,2.0"]
    # The file attached to the job is the job's, not the repository's.
    assert summary.get(f"/repository/{repository_id}").json()["input"] == ["north/sales.csv"]


def test_csv_summary_without_csv_fails_clearly(api: Api) -> None:
    summary = api.with_headers(application_id="CsvSummary")
    repository_id = summary.create_repository()
    job_id = summary.execute(repository_id)
    assert summary.wait(repository_id, job_id)["job_status"] == "failed"
    log = api.unzip(summary.get(f"/job/{job_id}/logs", repository_id=repository_id).content)["job.log"]
    assert "CsvSummary needs at least one .csv input file" in log.decode()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            "Invalid JSON in request body",
        ),
        ({"json": [1, 2]}, "request body must be a JSON object, got list"),
        ({"json": {"params": [1]}}, "params must be a JSON object, got list"),
        ({"json": {"params": {}, "files": 1}}, "Unexpected field(s) in body: files"),
        ({"data": {"params": "{bad"}}, "Invalid JSON in params"),
        ({"data": {"metadata": "3"}}, "metadata must be a JSON object, got int"),
        ({"files": {"file": ("notes.txt", b"x")}}, "Unsupported file type: 'notes.txt'"),
        ({"files": {"file": ("inputs.zip", b"not a zip")}}, "Invalid ZIP file: inputs.zip"),
        ({"files": {"upload": ("a.csv", b"x")}}, "Unexpected form field: upload"),
    ],
    ids=[
        "bad-json",
        "not-object",
        "params-list",
        "unknown-key",
        "bad-form-json",
        "metadata-int",
        "bad-extension",
        "bad-zip",
        "unknown-form-field",
    ],
)
def test_bad_bodies_are_400(api: Api, kwargs: dict[str, Any], error: str) -> None:
    for path, repository_id in (("/repository", None), ("/job/execute", api.create_repository())):
        response = api.post(path, repository_id=repository_id, **kwargs)
        assert response.status_code == 400, response.text
        assert response.json()["error"].startswith(error)


def test_zip_with_unsafe_paths_is_refused(api: Api) -> None:
    response = api.post("/repository", files={"file": ("x.zip", api.make_zip({"../evil.csv": b"1"}))})
    assert response.status_code == 400
    assert "Unsafe path" in response.json()["error"]


def test_date_filters(api: Api) -> None:
    repository_id = api.create_repository()
    job_id = api.execute(repository_id, json={"params": {"a": 1, "b": 1}})
    created = api.get(f"/repository/{repository_id}").json()["created_on"]
    minute = re.sub(r"\D", "", created)[:12]
    cases = [
        ({"from_date": minute, "to_date": minute}, True),
        ({"from_date": minute}, True),
        ({"to_date": "200001010000"}, False),
        ({"from_date": "299912312359"}, False),
    ]
    for query, included in cases:
        assert (repository_id in api.get("/repository", params=query).json()) is included, query
        jobs = api.get("/job", repository_id=repository_id, params=query).json()
        assert (job_id in jobs) is included, query


@pytest.mark.parametrize("name", ["from_date", "to_date"])
@pytest.mark.parametrize("value", ["2020-01-01", "202001011260", "20200101"])
def test_bad_date_filter_is_400_naming_the_parameter(api: Api, name: str, value: str) -> None:
    response = api.get("/repository", params={name: value})
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"Invalid {name}")
    repository_id = api.create_repository()
    assert api.get("/job", repository_id=repository_id, params={name: value}).status_code == 400


def test_list_jobs_of_a_repository(api: Api) -> None:
    first, second = api.create_repository(), api.create_repository()
    jobs = [api.execute(first) for _ in range(3)]
    api.execute(second)
    assert api.get("/job", repository_id=first).json() == jobs


def test_delete_job(api: Api) -> None:
    repository_id = api.create_repository()
    job_id = api.execute(repository_id, json=SLOW)
    response = api.delete(f"/job/{job_id}", repository_id=repository_id)
    assert response.status_code == 200
    assert response.json() == {"message": "Jobs deleted"}
    assert api.get(f"/job/{job_id}", repository_id=repository_id).status_code == 404
    assert api.get("/job", repository_id=repository_id).json() == []
    assert api.server.jobs() == []


def test_delete_repository_deletes_its_jobs(api: Api) -> None:
    repository_id = api.create_repository()
    job_id = api.execute(repository_id)
    other = api.execute(api.create_repository())
    response = api.delete(f"/repository/{repository_id}")
    assert response.status_code == 200
    assert response.json() == {"message": "Repository and jobs deleted"}
    assert api.get(f"/repository/{repository_id}").status_code == 404
    assert api.get(f"/job/{job_id}", repository_id=repository_id).json() == {"error": "Invalid repository_id"}
    assert [job["job_id"] for job in api.server.jobs()] == [other]


@pytest.mark.parametrize(
    "other", [{"client_id": "finance"}, {"organization_id": "globex"}], ids=["other-client", "other-org"]
)
def test_tenants_are_isolated(api: Api, other: dict[str, str]) -> None:
    repository_id = api.create_repository(json={"params": {"a": 1}})
    job_id = api.execute(repository_id)
    stranger = api.with_headers(**other)
    assert stranger.get("/repository").json() == []
    for path in (f"/repository/{repository_id}", f"/repository/{repository_id}/params"):
        assert stranger.get(path).status_code == 404
    assert stranger.delete(f"/repository/{repository_id}").status_code == 404
    response = stranger.get(f"/job/{job_id}", repository_id=repository_id)
    assert response.json() == {"error": "Invalid repository_id"}
    assert api.get("/repository").json() == [repository_id]


def test_unknown_route_and_wrong_method_answer_gateway_style(api: Api) -> None:
    response = api.get("/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}
    response = api.request("PUT", "/repository")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
