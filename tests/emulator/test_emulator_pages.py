"""The read-only job pages under /ui, fetched over real HTTP the way a browser follows a task's link."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

import pytest
import requests

from vbrain_emulator import EmulatorServer

if TYPE_CHECKING:
    from conftest import Api

HOSTILE = "<script>alert('x')</script> & \"quoted\""


def _page(url: str, status: int = 200) -> str:
    # No headers at all: a browser has no API key and no scoping headers.
    response = requests.get(url, timeout=10)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    return response.text


def _job_page(api: Api, job_id: str, status: int = 200) -> str:
    return _page(api.server.job_url_template.format(job_id=job_id), status)


def test_job_url_template_points_at_the_job_page(vbrain_emulator: EmulatorServer) -> None:
    assert vbrain_emulator.job_url_template == f"{vbrain_emulator.url}/ui/jobs/{{job_id}}"


def test_finished_job_page(api: Api) -> None:
    repository_id = api.create_repository(json={"params": {"a": 6}})
    job_id = api.execute(repository_id, json={"params": {"b": 7}, "metadata": {"run": 3}})
    api.server.finish_job(job_id)
    text = _job_page(api, job_id)
    assert f"<title>VBrain job {job_id} (finished)</title>" in text
    assert '<span class="status status-finished">finished</span>' in text
    assert f'<a href="/ui/repositories/{repository_id}"><code>{repository_id}</code></a>' in text
    assert "<th>Application</th><td>Tutorial</td>" in text
    assert "<th>Organization</th><td>acme</td>" in text
    assert "<th>Client</th><td>ops</td>" in text
    assert html.escape('"a": 6') in text
    assert html.escape('"run": 3') in text
    assert "<h2>Result</h2>" in text
    assert html.escape('"value": 42') in text
    assert "<code>output.json</code>" in text
    assert "<h2>Log files</h2><ul><li><code>job.log</code></li></ul>" in text
    assert "INFO job finished" in text
    assert "<h2>Error</h2>" not in text
    # Over: nothing left to watch, so no reloading.
    assert 'http-equiv="refresh"' not in text


def test_failed_job_page_shows_the_error(api: Api) -> None:
    repository_id = api.create_repository()
    job_id = api.execute(repository_id, json={"params": {"a": 1, "b": 2}})
    api.server.fail_job(job_id, error=f"disk full {HOSTILE}")
    text = _job_page(api, job_id)
    assert '<span class="status status-failed">failed</span>' in text
    assert f"<h2>Error</h2><pre>disk full {html.escape(HOSTILE)}</pre>" in text
    assert "<h2>Result</h2>" not in text
    assert HOSTILE not in text


def test_running_job_page_reloads_and_has_no_result_yet(api: Api) -> None:
    repository_id = api.create_repository()
    job_id = api.execute(
        repository_id, json={"params": {"a": 1, "b": 2}, "metadata": {"emulator_queue_seconds": 60}}
    )
    text = _job_page(api, job_id)
    assert '<span class="status status-queued">queued</span>' in text
    assert '<meta http-equiv="refresh" content="2">' in text
    assert "<h2>Result</h2>" not in text
    assert "<h2>Error</h2>" not in text
    assert "<code>job.log</code>" in text


def test_everything_on_the_pages_is_escaped(api: Api) -> None:
    hostile = api.with_headers(organization_id=HOSTILE, client_id=HOSTILE, username=HOSTILE)
    repository_id = hostile.create_repository(
        json={"params": {HOSTILE: HOSTILE}, "metadata": {"name": HOSTILE, "note": HOSTILE}},
    )
    job_id = hostile.execute(
        repository_id, json={"params": {"a": 1, "b": 2, "x": HOSTILE}, "metadata": {"tag": HOSTILE}}
    )
    api.server.finish_job(job_id)
    pages = [
        _job_page(api, job_id),
        _page(f"{api.server.url}/ui/repositories/{repository_id}"),
        _page(f"{api.server.url}/ui/"),
    ]
    for text in pages:
        assert "<script>" not in text
        assert "&lt;script&gt;" in text
    # The one place raw markup could slip in is an attribute: links carry only quoted ids.
    assert all('href="/ui/' in text for text in pages)


def test_unknown_job_and_repository_answer_404_pages(vbrain_emulator: EmulatorServer) -> None:
    text = _page(f"{vbrain_emulator.url}/ui/jobs/%3Cb%3Enope%3C%2Fb%3E", 404)
    assert "<h1>No such job</h1>" in text
    assert "<code>&lt;b&gt;nope&lt;/b&gt;</code>" in text
    text = _page(f"{vbrain_emulator.url}/ui/repositories/202001010000000000", 404)
    assert "<h1>No such repository</h1>" in text
    text = _page(f"{vbrain_emulator.url}/ui/nothing-here", 404)
    assert "<h1>404 Not Found</h1>" in text
    response = requests.post(f"{vbrain_emulator.url}/ui/jobs/x", timeout=10)
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "GET" in response.headers["Allow"]


def test_index_lists_recent_jobs_newest_first(api: Api) -> None:
    assert "No jobs." in _page(f"{api.server.url}/ui/")
    repository_id = api.create_repository()
    first = api.execute(repository_id, json={"params": {"a": 1, "b": 1}})
    other_client = api.with_headers(client_id="finance")
    second = other_client.execute(other_client.create_repository(), json={"params": {"a": 1, "b": 1}})
    for address in (f"{api.server.url}/ui/", f"{api.server.url}/ui"):
        text = _page(address)
        links = re.findall(r'href="/ui/jobs/([^"]+)"', text)
        assert links == [second, first]
        assert "<td>finance</td>" in text


def test_repository_page(api: Api) -> None:
    repository_id = api.create_repository(
        files={"file": ("in.zip", api.make_zip({"sales.csv": b"x\n1\n", "ref/r.json": b"{}"}))},
        data={"metadata": '{"name": "weekly"}'},
    )
    jobs = [api.execute(repository_id, json={"params": {"a": 1, "b": n}}) for n in (1, 2)]
    text = _page(f"{api.server.url}/ui/repositories/{repository_id}")
    assert f"<h1>VBrain repository <code>{repository_id}</code></h1>" in text
    assert "<th>Name</th><td>weekly</td>" in text
    assert "<th>Created by</th><td>ana</td>" in text
    assert "<code>ref/r.json</code></li><li><code>sales.csv</code>" in text
    assert re.findall(r'href="/ui/jobs/([^"]+)"', text) == jobs[::-1]


def test_pages_need_no_key_and_bypass_faults_and_the_request_log(keyed_server: EmulatorServer) -> None:
    keyed_server.inject_fault(503)
    try:
        assert "Recent VBrain jobs" in _page(f"{keyed_server.url}/ui/")
        assert keyed_server.requests() == []
        # The fault still waits for the next API request.
        response = requests.get(f"{keyed_server.url}/api/v1/repository", timeout=10)
        assert response.status_code == 503
    finally:
        keyed_server.clear_faults()
        keyed_server.clear_requests()


def test_pages_show_jobs_whatever_the_profile(api: Api) -> None:
    # The pages are the emulator's own view: not scoped, not lagging, not behind the gateway.
    api.server.set_profile("application-scoped,eventual-listing=600,non-zip-downloads,no-metadata")
    repository_id = api.create_repository()
    job_id = api.execute(repository_id, json={"params": {"a": 1, "b": 2}, "metadata": {"tag": "t"}})
    assert api.get("/job", repository_id=repository_id).json() == []
    text = _job_page(api, job_id)
    assert html.escape('"tag": "t"') in text
    assert job_id in _page(f"{api.server.url}/ui/")


@pytest.mark.parametrize("path", ["/ui/", "/ui/jobs/x", "/ui/repositories/x"])
def test_pages_can_be_turned_off(path: str) -> None:
    with EmulatorServer(ui=False) as server:
        response = requests.get(f"{server.url}{path}", timeout=10)
        assert response.status_code == 404
        assert response.json() == {"message": "Not Found"}
