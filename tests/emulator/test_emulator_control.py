"""Injected faults, the request log and the rest of the control API, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import TYPE_CHECKING

import aiohttp
import pytest
import requests

from vbrain_emulator import EmulatorServer

if TYPE_CHECKING:
    from conftest import Api

JOB_STATUS_PATH = r"^/api/v1/job/[^/]+$"


def test_status_fault_with_retry_after_applies_count_times(api: Api) -> None:
    fault_id = api.server.inject_fault(429, count=2, retry_after="2")
    for _ in range(2):
        response = api.get("/repository")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "2"
        assert response.json() == {"message": "Too Many Requests"}
    assert api.get("/repository").status_code == 200
    assert [entry["fault"] for entry in api.server.requests()] == [fault_id, fault_id, None]


def test_fault_matches_method_and_path(api: Api) -> None:
    repository_id = api.create_repository()
    job_id = api.execute(repository_id, json={"params": {"a": 1, "b": 1}})
    api.server.inject_fault(503, method="get", path=JOB_STATUS_PATH)
    assert api.get(f"/job/{job_id}/params", repository_id=repository_id).status_code == 200
    assert api.delete("/job/x", repository_id=repository_id).status_code == 404
    response = api.get(f"/job/{job_id}", repository_id=repository_id)
    assert response.status_code == 503
    assert response.json() == {"message": "Service Unavailable"}
    assert api.get(f"/job/{job_id}", repository_id=repository_id).status_code in (200, 202)


def test_fault_precedes_the_key_check(keyed_server: EmulatorServer) -> None:
    keyed_server.inject_fault(502)
    try:
        response = requests.get(
            f"{keyed_server.url}/api/v1/repository", headers={"x-api-key": "bad"}, timeout=5
        )
        assert response.status_code == 502
    finally:
        keyed_server.clear_faults()


def test_html_fault_looks_like_a_proxy_page(api: Api) -> None:
    api.server.inject_fault(502, html=True)
    response = api.get("/repository")
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<html><head><title>502 Bad Gateway</title></head><body>")


@pytest.mark.parametrize(
    ("body", "expected"), [({"error": "custom"}, '{"error": "custom"}'), ("plain words", "plain words")]
)
def test_fault_body_overrides(api: Api, body: object, expected: str) -> None:
    api.server.inject_fault(500, body=body)
    response = api.get("/repository")
    assert response.status_code == 500
    assert response.text == expected


def test_delay_alone_serves_the_request_late(api: Api) -> None:
    api.server.inject_fault(delay=0.3)
    started = time.monotonic()
    response = api.get("/repository")
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200
    assert response.json() == []


def test_delay_makes_a_client_time_out(api: Api) -> None:
    api.server.inject_fault(delay=1.0)
    with pytest.raises(requests.Timeout):
        requests.get(f"{api.server.url}/api/v1/repository", headers=api.headers, timeout=0.2)


def test_drop_is_a_connection_error_for_requests(api: Api) -> None:
    api.server.inject_fault(drop=True)
    with pytest.raises(requests.ConnectionError):
        api.get("/repository")
    assert api.get("/repository").status_code == 200
    assert api.server.requests()[0]["status"] is None


async def test_drop_is_a_server_disconnect_for_aiohttp(vbrain_emulator: EmulatorServer) -> None:
    # count=2: aiohttp (3.14) transparently retries an idempotent request once after a disconnect.
    vbrain_emulator.inject_fault(drop=True, path="/repository$", count=2)
    headers = {
        "organization_id": "acme",
        "application_id": "Tutorial",
        "client_id": "ops",
        "username": "ana",
        "x-api-key": "k",
    }
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await session.get(f"{vbrain_emulator.url}/api/v1/repository", headers=headers)
        async with session.get(f"{vbrain_emulator.url}/api/v1/repository", headers=headers) as response:
            assert response.status == 200
    assert [entry["status"] for entry in vbrain_emulator.requests()] == [None, None, 200]


@pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}], ids=["status", "drop"])
def test_after_fault_creates_the_job_but_loses_the_answer(api: Api, fault: dict) -> None:
    repository_id = api.create_repository()
    api.server.inject_fault(method="POST", path="/job/execute$", after=True, **fault)
    try:
        response = api.post("/job/execute", repository_id=repository_id, json={"params": {"a": 1, "b": 2}})
    except requests.ConnectionError:
        assert fault.get("drop")
    else:
        assert response.status_code == 500
        assert response.json() == {"message": "Internal Server Error"}
    jobs = api.server.jobs()
    assert len(jobs) == 1
    assert jobs[0]["repository_id"] == repository_id
    assert api.get("/job", repository_id=repository_id).json() == [jobs[0]["job_id"]]


def test_request_log_records_scope_but_never_the_key(api: Api) -> None:
    repository_id = api.create_repository()
    api.get("/repository", params={"from_date": "202001010000"})
    api.get("/job", repository_id=repository_id, drop=("x-api-key",))
    log = api.server.requests()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("POST", "/api/v1/repository", 201),
        ("GET", "/api/v1/repository", 200),
        ("GET", "/api/v1/job", 403),
    ]
    assert log[1]["query"] == {"from_date": "202001010000"}
    assert log[2]["repository_id"] == repository_id
    assert all(e["organization_id"] == "acme" and e["client_id"] == "ops" for e in log)
    assert all(isinstance(e["time"], float) for e in log)
    assert "emulator-key" not in json.dumps(log)
    api.server.clear_requests()
    assert api.server.requests() == []


def test_request_log_records_the_user_agent(api: Api) -> None:
    api.get("/repository", headers={"User-Agent": "airflow-provider-vbrain/9.9 Airflow/3.3.2 Python/3.11.7"})
    api.get("/repository", headers={"User-Agent": "curl/8.0"})
    assert [entry["user_agent"] for entry in api.server.requests()] == [
        "airflow-provider-vbrain/9.9 Airflow/3.3.2 Python/3.11.7",
        "curl/8.0",
    ]
    served = requests.get(f"{api.server.url}/_emulator/requests", timeout=10).json()
    assert served[0]["user_agent"].startswith("airflow-provider-vbrain/9.9 ")


def test_finish_and_fail_jobs(api: Api) -> None:
    repository_id = api.create_repository()
    slow = {"params": {"a": 2, "b": 3}, "metadata": {"emulator_queue_seconds": 60}}
    done, broken = api.execute(repository_id, json=slow), api.execute(repository_id, json=slow)
    assert api.server.finish_job(done)["status"] == "finished"
    assert api.get(f"/job/{done}/result", repository_id=repository_id).json() == {"output": {"value": 6}}
    assert api.server.fail_job(broken, error="disk full")["status"] == "failed"
    assert api.get(f"/job/{broken}", repository_id=repository_id).json()["job_status"] == "failed"
    log = api.unzip(api.get(f"/job/{broken}/logs", repository_id=repository_id).content)["job.log"].decode()
    assert "ERROR job failed: disk full" in log
    with pytest.raises(KeyError):
        api.server.finish_job("no-such-job")


def test_configure_changes_durations_of_new_jobs(api: Api) -> None:
    api.server.configure(queue_seconds=60)
    repository_id = api.create_repository()
    job_id = api.execute(repository_id, json={"params": {"a": 1, "b": 1}})
    time.sleep(0.35)
    assert api.get(f"/job/{job_id}", repository_id=repository_id).json()["job_status"] == "queued"
    api.server.configure(queue_seconds=0, run_seconds=0)
    job_id = api.execute(repository_id, json={"params": {"a": 1, "b": 1}})
    assert api.get(f"/job/{job_id}", repository_id=repository_id).status_code == 200
    with pytest.raises(ValueError, match="run_seconds"):
        api.server.configure(run_seconds=-1)


def test_invalid_fault_is_refused(api: Api) -> None:
    with pytest.raises(ValueError, match="needs a status, drop or delay"):
        api.server.inject_fault()


def test_control_api_over_http(api: Api) -> None:
    ctl = f"{api.server.url}/_emulator"
    repository_id = api.create_repository()
    job_id = api.execute(
        repository_id, json={"params": {"a": 1, "b": 1}, "metadata": {"emulator_queue_seconds": 60}}
    )

    response = requests.post(f"{ctl}/faults", json={"status": 503, "path": "^/api/v1/repository$"}, timeout=5)
    assert response.status_code == 201
    fault_id = response.json()["fault_id"]
    assert [f["fault_id"] for f in requests.get(f"{ctl}/faults", timeout=5).json()] == [fault_id]
    # Control requests never match faults and are never logged.
    assert requests.get(f"{ctl}/requests", timeout=5).status_code == 200
    assert requests.delete(f"{ctl}/faults", timeout=5).status_code == 200
    assert api.get("/repository").status_code == 200
    bad = requests.post(f"{ctl}/faults", json={"status": "x"}, timeout=5)
    assert bad.status_code == 400
    assert "status" in bad.json()["error"]

    logged = requests.get(f"{ctl}/requests", timeout=5).json()
    assert [e["path"] for e in logged] == ["/api/v1/repository", "/api/v1/job/execute", "/api/v1/repository"]
    assert requests.delete(f"{ctl}/requests", timeout=5).json() == {"message": "Requests cleared"}

    jobs = requests.get(f"{ctl}/jobs", timeout=5).json()
    assert [(j["job_id"], j["status"], j["repository_id"]) for j in jobs] == [
        (job_id, "queued", repository_id)
    ]
    response = requests.post(f"{ctl}/jobs/{job_id}/fail", json={"error": "boom"}, timeout=5)
    assert response.json()["status"] == "failed"
    assert response.json()["error"] == "boom"
    assert requests.post(f"{ctl}/jobs/{job_id}/finish", timeout=5).json()["status"] == "failed"
    assert requests.post(f"{ctl}/jobs/nope/finish", timeout=5).status_code == 404

    response = requests.post(f"{ctl}/config", json={"queue_seconds": 5, "run_seconds": 6}, timeout=5)
    assert response.json() == {"queue_seconds": 5.0, "run_seconds": 6.0, "rate_limit": None}
    assert requests.post(f"{ctl}/config", json={"queue": 1}, timeout=5).status_code == 400

    assert requests.post(f"{ctl}/reset", timeout=5).status_code == 200
    assert requests.get(f"{ctl}/jobs", timeout=5).json() == []
    assert requests.get(f"{ctl}/requests", timeout=5).json() == []
    assert requests.get(f"{ctl}/config", timeout=5).json() == {
        "queue_seconds": 0.1,
        "run_seconds": 0.2,
        "rate_limit": None,
    }
    assert api.get("/repository").json() == []


def test_control_api_is_404_when_disabled() -> None:
    with EmulatorServer(control=False) as server:
        response = requests.get(f"{server.url}/_emulator/requests", timeout=5)
        assert response.status_code == 404
        assert requests.post(f"{server.url}/_emulator/reset", timeout=5).status_code == 404
        # The Python helpers still work: they do not go through HTTP.
        server.inject_fault(418)
        assert requests.get(f"{server.url}/api/v1/repository", timeout=5).status_code == 418


async def test_helpers_are_safe_while_requests_are_served(vbrain_emulator: EmulatorServer) -> None:
    # Hammer the server from the event loop while another thread uses the helpers.
    headers = {
        "organization_id": "acme",
        "application_id": "Tutorial",
        "client_id": "ops",
        "username": "ana",
        "x-api-key": "k",
    }
    async with aiohttp.ClientSession() as session:

        async def create() -> int:
            async with session.post(f"{vbrain_emulator.url}/api/v1/repository", headers=headers) as response:
                return response.status

        def use_helpers() -> None:
            for _ in range(20):
                vbrain_emulator.requests()
                vbrain_emulator.jobs()

        statuses, _ = await asyncio.gather(
            asyncio.gather(*(create() for _ in range(100))), asyncio.to_thread(use_helpers)
        )
    assert set(statuses) == {201}
    # Count the creates: the session's emulator also logs whatever else reaches it meanwhile
    # (under load, a GET from an earlier test has been seen to land after the reset).
    creates = [r for r in vbrain_emulator.requests() if r["method"] == "POST"]
    assert len(creates) == 100


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_request_waiting_across_a_reset_is_dropped(api: Api, method: str) -> None:
    # A delayed request still waiting when the next test resets the emulator must not create
    # anything in, or log itself into, the next test's emulator.
    api.server.inject_fault(method=method, path="^/api/v1/repository$", delay=1.0)
    answers: list[requests.Response] = []
    body = {"json": {"params": {"a": 1}}} if method == "POST" else {}
    waiting = threading.Thread(target=lambda: answers.append(api.request(method, "/repository", **body)))
    waiting.start()
    deadline = time.monotonic() + 10
    while requests.get(f"{api.server.url}/_emulator/faults", timeout=5).json():
        assert time.monotonic() < deadline, "the request never arrived"
        time.sleep(0.01)
    api.server.reset()
    waiting.join(20)
    (answer,) = answers
    assert answer.status_code == 503
    assert answer.json() == {"error": "The emulator was reset while this request waited"}
    assert api.server.requests() == []
    assert api.get("/repository").json() == []


def test_back_dated_jobs_give_a_repository_a_history(api: Api) -> None:
    """Jobs the control API adds days back: listed by their date (oldest first), over by now."""
    ctl = f"{api.server.url}/_emulator"
    repository_id = api.create_repository()
    new = api.execute(repository_id, json={"params": {"a": 1, "b": 1}})
    response = requests.post(
        f"{ctl}/repositories/{repository_id}/jobs",
        json={"count": 3, "age_seconds": 3 * 86400, "params": {"a": 2, "b": 3}, "metadata": {"run": "old"}},
        timeout=5,
    )
    assert response.status_code == 201
    old = response.json()["job_ids"]
    assert len(set(old)) == 3
    assert api.server.add_jobs(repository_id, 2, age_seconds=86400) != old
    listed = api.get("/job", repository_id=repository_id).json()
    assert listed[:3] == old  # oldest first by creation, whenever they were added
    assert listed[-1] == new
    today = time.strftime("%Y%m%d0000", time.gmtime())
    assert api.get("/job", repository_id=repository_id, params={"from_date": today}).json() == [new]
    status = api.get(f"/job/{old[0]}", repository_id=repository_id)
    assert (status.status_code, status.json()["job_status"]) == (200, "finished")
    created = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 3 * 86400))
    assert status.json()["created_on"].startswith(created)
    assert status.json()["metadata"] == {"run": "old"}
    assert [e["path"] for e in api.server.requests()].count("/api/v1/job/execute") == 1  # not logged
    for body, status_code in (
        ({"count": 0}, 400),
        ({"age_seconds": -1}, 400),
        ({"metadata": [1]}, 400),
        ({"when": 1}, 400),
    ):
        assert (
            requests.post(f"{ctl}/repositories/{repository_id}/jobs", json=body, timeout=5).status_code
            == status_code
        )
    assert requests.post(f"{ctl}/repositories/nope/jobs", json={}, timeout=5).status_code == 404
