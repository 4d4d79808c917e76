"""Lost answers and lagging listings, over real HTTP: what exactly-once submission has to survive.

A create (``POST /repository``, ``POST /job/execute``) can be processed while its answer is lost (a
gateway error, a dropped connection) or arrives after the client gave up, and the new object can show
up in the listings only some time later.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from conftest import Api

CREATES = ["repository", "job"]


class Create:
    """One of the two creates, with the ways to see what it created."""

    def __init__(self, api: Api, kind: str) -> None:
        self.api = api
        self.kind = kind
        # A job needs a repository to run in; create it before any fault is injected.
        self.repository_id = api.create_repository() if kind == "job" else None
        self.path = "^/api/v1/repository$" if kind == "repository" else "^/api/v1/job/execute$"

    def send(self, *, timeout: float = 10) -> requests.Response:
        api = self.api
        if self.kind == "repository":
            url, headers, body = f"{api.server.url}/api/v1/repository", api.headers, None
        else:
            url = f"{api.server.url}/api/v1/job/execute"
            headers = {**api.headers, "repository_id": self.repository_id or ""}
            body = {"params": {"a": 2, "b": 3}}
        return requests.post(url, headers=headers, json=body, timeout=timeout)

    def new_id(self, response: requests.Response) -> str:
        assert response.status_code == 201, response.text
        return response.json()["repository_id" if self.kind == "repository" else "job_id"]

    def created(self) -> list[str]:
        """Every id the emulator really created, listed yet or not."""
        if self.kind == "repository":
            return [repository["repository_id"] for repository in self.api.server.repositories()]
        return [job["job_id"] for job in self.api.server.jobs()]

    def listed(self) -> list[str]:
        """What the API's listing shows."""
        if self.kind == "repository":
            response = self.api.get("/repository")
        else:
            response = self.api.get("/job", repository_id=self.repository_id)
        assert response.status_code == 200, response.text
        return response.json()

    def read(self, new_id: str) -> requests.Response:
        """Read the new object by id."""
        if self.kind == "repository":
            return self.api.get(f"/repository/{new_id}")
        return self.api.get(f"/job/{new_id}", repository_id=self.repository_id)


@pytest.fixture(params=CREATES)
def create(request: pytest.FixtureRequest, api: Api) -> Create:
    return Create(api, request.param)


def _wait_until_listed(create: Create, new_id: str, timeout: float = 20.0) -> float:
    """Poll the listing until it shows ``new_id``; return the wall-clock time it was first seen."""
    deadline = time.monotonic() + timeout
    while new_id not in create.listed():
        assert time.monotonic() < deadline, f"{new_id} never listed"
        time.sleep(0.05)
    return time.time()


@pytest.mark.parametrize(
    "fault",
    [{"status": 500}, {"status": 502}, {"status": 504}, {"drop": True}],
    ids=["500", "502", "504", "drop"],
)
def test_processed_but_the_answer_is_lost(create: Create, fault: dict) -> None:
    before = create.created()
    create.api.server.inject_fault(method="POST", path=create.path, after=True, **fault)
    if fault.get("drop"):
        with pytest.raises(requests.ConnectionError):
            create.send()
    else:
        response = create.send()
        assert response.status_code == fault["status"]
        assert "message" in response.json()
    new = [item for item in create.created() if item not in before]
    assert len(new) == 1
    assert new[0] in create.listed()
    assert create.read(new[0]).status_code in (200, 201, 202)


def test_answer_delay_answers_after_the_client_gave_up(create: Create) -> None:
    before = create.created()
    create.api.server.inject_fault(method="POST", path=create.path, answer_delay=1.0)
    with pytest.raises(requests.Timeout):
        create.send(timeout=0.2)
    # Processed before the delay: it exists as soon as the client gives up.
    new = [item for item in create.created() if item not in before]
    assert len(new) == 1
    assert create.listed().count(new[0]) == 1


def test_answer_delay_sends_the_real_answer_late(create: Create) -> None:
    before = create.created()
    create.api.server.inject_fault(method="POST", path=create.path, answer_delay=0.4)
    started = time.monotonic()
    response = create.send()
    assert time.monotonic() - started >= 0.4
    new_id = create.new_id(response)
    assert [item for item in create.created() if item not in before] == [new_id]
    assert create.api.server.requests()[-1]["status"] == 201


def test_answer_delay_then_a_gateway_timeout(create: Create) -> None:
    before = create.created()
    create.api.server.inject_fault(method="POST", path=create.path, answer_delay=0.3, status=504)
    started = time.monotonic()
    response = create.send()
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 504
    assert response.json() == {"message": "Gateway Timeout"}
    assert len([item for item in create.created() if item not in before]) == 1


def test_delay_before_processing_still_creates_after_the_client_gave_up(create: Create) -> None:
    # The client times out while the request waits; the server processes it anyway, later.
    before = create.created()
    create.api.server.inject_fault(method="POST", path=create.path, delay=0.5)
    sent = time.time()
    with pytest.raises(requests.Timeout):
        create.send(timeout=0.1)
    deadline = time.monotonic() + 20
    while not [item for item in create.created() if item not in before]:
        assert time.monotonic() < deadline, "the request was never processed"
        time.sleep(0.05)
    assert time.time() - sent >= 0.5
    assert len([item for item in create.created() if item not in before]) == 1


def test_listing_delay_fault_lists_the_new_object_late(create: Create) -> None:
    create.api.server.inject_fault(method="POST", path=create.path, listing_delay=0.5)
    sent = time.time()
    new_id = create.new_id(create.send())
    # A read by id works at once; only the listing lags.
    assert create.read(new_id).status_code in (200, 202)
    seen = _wait_until_listed(create, new_id)
    assert seen - sent >= 0.5
    # Only the faulty request's object lags.
    other = create.new_id(create.send())
    assert other in create.listed()


def test_listing_delay_hides_the_new_object_until_it_is_over(create: Create) -> None:
    create.api.server.inject_fault(method="POST", path=create.path, listing_delay=600)
    new_id = create.new_id(create.send())
    assert new_id not in create.listed()
    assert new_id in create.created()
    if create.kind == "job":
        # A repository's details list its jobs too: the same lag applies there.
        details = create.api.get(f"/repository/{create.repository_id}").json()
        assert new_id not in details["jobs"]
        assert new_id in create.api.server.repositories()[0]["jobs"]


def test_lost_answer_and_late_listing_together(create: Create) -> None:
    before = create.created()
    create.api.server.inject_fault(method="POST", path=create.path, after=True, status=502, listing_delay=600)
    assert create.send().status_code == 502
    new = [item for item in create.created() if item not in before]
    assert len(new) == 1
    assert new[0] not in create.listed()


def test_eventual_listing_profile_lists_every_new_object_late(create: Create) -> None:
    create.api.server.set_profile("eventual-listing=0.5")
    sent = time.time()
    new_id = create.new_id(create.send())
    assert create.read(new_id).status_code in (200, 202)
    seen = _wait_until_listed(create, new_id)
    assert seen - sent >= 0.5


def test_fault_listing_delay_replaces_the_profiles(create: Create) -> None:
    create.api.server.set_profile("eventual-listing=600")
    create.api.server.inject_fault(method="POST", path=create.path, listing_delay=0)
    immediate = create.new_id(create.send())
    lagging = create.new_id(create.send())
    listed = create.listed()
    assert immediate in listed
    assert lagging not in listed


def test_listing_delay_and_date_filters_combine(api: Api) -> None:
    api.server.inject_fault(method="POST", path="^/api/v1/repository$", listing_delay=600)
    hidden = api.create_repository()
    shown = api.create_repository()
    assert api.get("/repository", params={"from_date": "200001010000"}).json() == [shown]
    assert hidden in [r["repository_id"] for r in api.server.repositories()]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"delay": 1, "answer_delay": 1}, "give one of them"),
        ({"answer_delay": -1}, "answer_delay must be a non-negative number"),
        ({"listing_delay": "soon"}, "listing_delay must be a non-negative number"),
        ({"after": True, "listing_delay": 1}, "after needs a status or drop"),
    ],
)
def test_invalid_lost_answer_faults(api: Api, spec: dict, message: str) -> None:
    response = requests.post(f"{api.server.url}/_emulator/faults", json=spec, timeout=5)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_new_fault_fields_over_the_control_api(api: Api) -> None:
    repository_id = api.create_repository()
    response = requests.post(
        f"{api.server.url}/_emulator/faults",
        json={"method": "POST", "path": "/job/execute$", "answer_delay": 0.2, "listing_delay": 600},
        timeout=5,
    )
    assert response.status_code == 201
    fault = response.json()["fault"]
    assert (fault["answer_delay"], fault["listing_delay"], fault["after"]) == (0.2, 600, False)
    job_id = api.execute(repository_id)
    assert api.get("/job", repository_id=repository_id).json() == []
    assert [job["job_id"] for job in api.server.jobs()] == [job_id]
