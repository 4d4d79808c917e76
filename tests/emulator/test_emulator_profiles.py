"""Reference profiles: each reading of the API reference, selected at run time, answered over real HTTP."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from typing import TYPE_CHECKING, Any

import pytest
import requests

from vbrain_emulator import PROFILES, EmulatorServer, Profile, ProfileError

if TYPE_CHECKING:
    from conftest import Api

ZIP_SIGNATURE = b"PK\x03\x04"


# -- selecting a profile -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selection", "names"),
    [
        (None, ["job-metadata"]),
        ("", ["job-metadata"]),
        ("job-metadata", ["job-metadata"]),
        ("application-scoped", ["job-metadata", "application-scoped"]),
        (" no-metadata , form-only-repository ", ["no-metadata", "form-only-repository"]),
        (["non-zip-downloads", "repository-metadata"], ["repository-metadata", "non-zip-downloads"]),
        (["application-scoped,html-downloads"], ["job-metadata", "application-scoped", "html-downloads"]),
        ("eventual-listing", ["job-metadata", "eventual-listing"]),
        ("eventual-listing=0.5", ["job-metadata", "eventual-listing=0.5"]),
        ("eventual-listing=0", ["job-metadata"]),
        ("metadata-string,metadata-string", ["metadata-string"]),
    ],
)
def test_profile_selections(selection: Any, names: list[str]) -> None:
    profile = Profile.parse(selection)
    assert list(profile.names) == names
    assert Profile.parse(str(profile)) == profile
    assert all(name in profile for name in names)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ("nope", "Unknown profile 'nope' (known: job-metadata, repository-metadata,"),
        (
            "no-metadata,metadata-string",
            "'no-metadata' and 'metadata-string' both set the GET /job/{job_id} body",
        ),
        ("html-downloads,base64-downloads", "both set the ZIP downloads"),
        ("eventual-listing=2,eventual-listing=3", "both set the listing delay"),
        ("eventual-listing=-1", "the listing delay must be a non-negative number of seconds"),
        ("eventual-listing=soon", "the listing delay must be a non-negative number of seconds"),
        ("application-scoped=1", "takes no value"),
        ([3], "A profile is named by a string, got 3"),
    ],
)
def test_bad_profile_selections(selection: Any, message: str) -> None:
    with pytest.raises(ProfileError) as info:
        Profile.parse(selection)
    assert message in str(info.value)


def test_profiles_lists_every_reading() -> None:
    assert PROFILES == (
        "job-metadata",
        "repository-metadata",
        "metadata-string",
        "no-metadata",
        "form-only-repository",
        "application-scoped",
        "non-zip-downloads",
        "html-downloads",
        "base64-downloads",
        "ignores-range",
        "eventual-listing",
    )
    # Each one alone is a valid selection, and they are all different readings.
    assert len({Profile.parse(name) for name in PROFILES}) == len(PROFILES)


def test_profile_over_the_control_api(api: Api) -> None:
    url = f"{api.server.url}/_emulator/profile"
    view = requests.get(url, timeout=5).json()
    assert view["profile"] == ["job-metadata"]
    assert view["listing_delay"] == 0.0
    assert list(view["profiles"]) == list(PROFILES)
    assert "JSON string" in view["profiles"]["metadata-string"]

    for body, names in (
        ({"profile": "application-scoped"}, ["job-metadata", "application-scoped"]),
        ({"profile": ["no-metadata", "eventual-listing=1.5"]}, ["no-metadata", "eventual-listing=1.5"]),
        ({"profile": "metadata-string,html-downloads"}, ["metadata-string", "html-downloads"]),
    ):
        response = requests.put(url, json=body, timeout=5)
        assert response.status_code == 200, response.text
        assert response.json()["profile"] == names
        assert requests.get(url, timeout=5).json()["profile"] == names
        assert list(api.server.profile.names) == names
    assert requests.get(url, timeout=5).json()["listing_delay"] == 0.0
    assert (
        requests.put(url, json={"profile": ["no-metadata", "eventual-listing=1.5"]}, timeout=5).json()[
            "listing_delay"
        ]
        == 1.5
    )

    for body, error in (
        ({"profile": "nope"}, "Unknown profile 'nope'"),
        ({"profile": "no-metadata,metadata-string"}, "both set"),
        ({"profile": 7}, "A profile is named by a string or a list of strings, got 7"),
        ({"profile": {"no-metadata": True}}, "A profile is named by a string or a list of strings"),
        ({"profiles": "no-metadata"}, "Unknown profile field(s): profiles"),
    ):
        response = requests.put(url, json=body, timeout=5)
        assert response.status_code == 400
        assert error in response.json()["error"]
    # A refused selection leaves the profile as it was.
    assert api.server.profile == Profile.parse("no-metadata,eventual-listing=1.5")

    # An empty body (or a null profile) is the default profile; reset comes back to it as well.
    assert requests.put(url, timeout=5).json()["profile"] == ["job-metadata"]
    api.server.set_profile("application-scoped")
    assert requests.post(f"{api.server.url}/_emulator/reset", timeout=5).status_code == 200
    assert requests.get(url, timeout=5).json()["profile"] == ["job-metadata"]
    # The config answer is unchanged by profiles.
    assert requests.get(f"{api.server.url}/_emulator/config", timeout=5).json() == {
        "queue_seconds": 0.1,
        "run_seconds": 0.2,
        "rate_limit": None,
    }


def test_server_profile_is_restored_by_reset() -> None:
    with EmulatorServer(profile=["application-scoped", "no-metadata"]) as server:
        assert server.profile == Profile(status_body="no-metadata", application_scoped=True)
        assert server.set_profile("html-downloads").downloads == "html-downloads"
        assert server.profile.status_body == "job-metadata"
        server.reset()
        assert str(server.profile) == "no-metadata,application-scoped"
        with pytest.raises(ValueError, match="Unknown profile 'nope'"):
            server.set_profile("nope")
        assert str(server.profile) == "no-metadata,application-scoped"
    with pytest.raises(ProfileError):
        EmulatorServer(profile="nope")


# -- GET /job/{job_id}: what the status body carries ---------------------------------------------


@pytest.fixture
def job(api: Api) -> dict[str, Any]:
    """A repository with metadata and a job with its own metadata, still queued."""
    repository_id = api.create_repository(
        json={"params": {"a": 3}, "metadata": {"name": "forecast", "team": "ops"}}
    )
    job_id = api.execute(
        repository_id,
        json={"params": {"b": 4}, "metadata": {"run": 1, "emulator_queue_seconds": 60}},
    )
    return {"repository_id": repository_id, "job_id": job_id}


def _status(api: Api, job: dict[str, Any]) -> requests.Response:
    return api.get(f"/job/{job['job_id']}", repository_id=job["repository_id"])


def test_job_metadata_is_the_default(api: Api, job: dict[str, Any]) -> None:
    body = _status(api, job).json()
    assert body["metadata"] == {"run": 1, "emulator_queue_seconds": 60}
    assert body["job_id"] == job["job_id"]


def test_repository_metadata_answers_the_repositorys_details(api: Api, job: dict[str, Any]) -> None:
    api.server.set_profile("repository-metadata")
    response = _status(api, job)
    assert response.status_code == 202
    body = response.json()
    details = api.get(f"/repository/{job['repository_id']}").json()
    assert body == {**details, "job_status": "queued"}
    assert body["metadata"] == {"name": "forecast", "team": "ops"}
    assert body["name"] == "forecast"
    assert body["jobs"] == [job["job_id"]]
    assert "job_id" not in body
    api.server.finish_job(job["job_id"])
    response = _status(api, job)
    assert (response.status_code, response.json()["job_status"]) == (200, "finished")


def test_metadata_string_answers_the_metadata_as_json_text(api: Api, job: dict[str, Any]) -> None:
    api.server.set_profile("metadata-string")
    body = _status(api, job).json()
    assert isinstance(body["metadata"], str)
    assert json.loads(body["metadata"]) == {"run": 1, "emulator_queue_seconds": 60}
    assert (body["job_id"], body["job_status"], body["params"]) == (job["job_id"], "queued", {"a": 3, "b": 4})


def test_no_metadata_leaves_the_field_out(api: Api, job: dict[str, Any]) -> None:
    api.server.set_profile("no-metadata")
    response = _status(api, job)
    assert response.status_code == 202
    body = response.json()
    assert "metadata" not in body
    assert (body["job_id"], body["job_status"]) == (job["job_id"], "queued")


def test_status_body_profiles_change_only_the_status_answer(api: Api, job: dict[str, Any]) -> None:
    for name in ("repository-metadata", "metadata-string", "no-metadata"):
        api.server.set_profile(name)
        assert api.get(f"/job/{job['job_id']}/params", repository_id=job["repository_id"]).json() == {
            "a": 3,
            "b": 4,
        }
        assert api.server.jobs()[0]["metadata"] == {"run": 1, "emulator_queue_seconds": 60}
        assert api.get(f"/repository/{job['repository_id']}").json()["metadata"] == {
            "name": "forecast",
            "team": "ops",
        }


# -- POST /repository: form data only ------------------------------------------------------------


def test_form_only_repository_drops_a_json_body(api: Api) -> None:
    api.server.set_profile("form-only-repository")
    response = api.post("/repository", json={"params": {"a": 3}, "metadata": {"name": "kept?"}})
    assert response.status_code == 201
    assert response.json()["message"] == "Repository created successfully"
    repository_id = response.json()["repository_id"]
    details = api.get(f"/repository/{repository_id}").json()
    assert (details["params"], details["metadata"], details["name"]) == (False, {}, repository_id)
    assert api.get(f"/repository/{repository_id}/params").json() == {}
    # Not even parsed: a body the default profile refuses goes through.
    assert (
        api.post("/repository", data=b"{not json", headers={"Content-Type": "application/json"}).status_code
        == 201
    )


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_form_only_repository_reads_form_fields(api: Api, encoding: str) -> None:
    api.server.set_profile("form-only-repository")
    fields = {"params": json.dumps({"a": 3}), "metadata": json.dumps({"name": "kept"})}
    if encoding == "multipart":
        response = api.post("/repository", files={"file": ("in.csv", b"x\n1\n")}, data=fields)
    else:
        response = api.post("/repository", data=fields)
    assert response.status_code == 201, response.text
    repository_id = response.json()["repository_id"]
    details = api.get(f"/repository/{repository_id}").json()
    assert (details["params"], details["metadata"]) == (True, {"name": "kept"})
    assert api.get(f"/repository/{repository_id}/params").json() == {"a": 3}
    # Form fields are still checked as usual.
    assert api.post("/repository", data={"params": "{bad"}).status_code == 400


def test_form_only_repository_leaves_job_execute_alone(api: Api) -> None:
    api.server.set_profile("form-only-repository")
    repository_id = api.create_repository()
    job_id = api.execute(repository_id, json={"params": {"a": 6, "b": 7}, "metadata": {"run": 2}})
    assert api.get(f"/job/{job_id}/params", repository_id=repository_id).json() == {"a": 6, "b": 7}
    assert api.wait(repository_id, job_id)["metadata"] == {"run": 2}


# -- scoping by organization, application and client ---------------------------------------------


def test_application_scoped_hides_repositories_from_other_applications(api: Api) -> None:
    api.server.set_profile("application-scoped")
    repository_id = api.create_repository(json={"params": {"a": 2, "b": 5}})
    job_id = api.execute(repository_id)
    other = api.with_headers(application_id="CsvSummary")
    assert other.get("/repository").json() == []
    for method, path, repository_header in (
        ("GET", f"/repository/{repository_id}", None),
        ("GET", f"/repository/{repository_id}/params", None),
        ("GET", f"/repository/{repository_id}/input", None),
        ("DELETE", f"/repository/{repository_id}", None),
        ("GET", "/job", repository_id),
        ("POST", "/job/execute", repository_id),
        ("GET", f"/job/{job_id}", repository_id),
        ("GET", f"/job/{job_id}/result", repository_id),
        ("DELETE", f"/job/{job_id}", repository_id),
    ):
        response = other.request(method, path, repository_id=repository_header)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"error": "Invalid repository_id"}, (method, path)
    # Its own application still sees everything, and nothing was deleted.
    assert api.get("/repository").json() == [repository_id]
    assert api.get("/job", repository_id=repository_id).json() == [job_id]
    # Under the default scoping (organization and client), the other application sees it again.
    api.server.set_profile(None)
    assert other.get("/repository").json() == [repository_id]
    assert other.get(f"/job/{job_id}/params", repository_id=repository_id).status_code == 200


def test_application_scoped_lists_each_applications_own(api: Api) -> None:
    api.server.set_profile("application-scoped")
    other = api.with_headers(application_id="CsvSummary")
    mine, theirs = api.create_repository(), other.create_repository()
    assert api.get("/repository").json() == [mine]
    assert other.get("/repository").json() == [theirs]
    # Organization and client still scope as before.
    assert api.with_headers(client_id="finance").get("/repository").json() == []


# -- ZIP downloads behind a gateway --------------------------------------------------------------


@pytest.fixture
def downloads(api: Api) -> dict[str, str]:
    """The three ZIP downloads of a finished job, by name: path and repository header."""
    repository_id = api.create_repository(files={"file": ("in.csv", b"x\n1\n")})
    job_id = api.execute(repository_id, json={"params": {"a": 2, "b": 3}})
    api.server.finish_job(job_id)
    return {
        "input": f"/repository/{repository_id}/input",
        "output": f"/job/{job_id}/output",
        "logs": f"/job/{job_id}/logs",
        "repository_id": repository_id,
    }


def _download(api: Api, downloads: dict[str, str], which: str) -> requests.Response:
    repository_id = downloads["repository_id"] if which != "input" else None
    return api.get(downloads[which], repository_id=repository_id)


@pytest.mark.parametrize("which", ["input", "output", "logs"])
@pytest.mark.parametrize(
    ("profile", "content_type"),
    [
        ("non-zip-downloads", "application/json"),
        ("html-downloads", "text/html"),
        ("base64-downloads", "text/plain"),
    ],
)
def test_non_zip_download_profiles(
    api: Api, downloads: dict[str, str], which: str, profile: str, content_type: str
) -> None:
    real = _download(api, downloads, which)
    assert real.content.startswith(ZIP_SIGNATURE)
    api.server.set_profile(profile)
    response = _download(api, downloads, which)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(content_type)
    assert not response.content.startswith(ZIP_SIGNATURE)
    if profile == "non-zip-downloads":
        assert response.json() == {"message": "Internal server error"}
    elif profile == "html-downloads":
        assert response.text.startswith("<!DOCTYPE html>")
    else:
        # The same archive, as base64 text (the logs' timestamps are the same: the job is over).
        decoded = base64.b64decode(response.text, validate=True)
        with (
            zipfile.ZipFile(io.BytesIO(decoded)) as archive,
            zipfile.ZipFile(io.BytesIO(real.content)) as expected,
        ):
            assert {n: archive.read(n) for n in archive.namelist()} == {
                n: expected.read(n) for n in expected.namelist()
            }


def test_non_zip_downloads_leave_other_answers_alone(api: Api) -> None:
    api.server.set_profile("non-zip-downloads")
    repository_id = api.create_repository()
    job_id = api.execute(
        repository_id, json={"params": {"a": 2, "b": 3}, "metadata": {"emulator_queue_seconds": 60}}
    )
    response = api.get(f"/job/{job_id}/output", repository_id=repository_id)
    assert (response.status_code, response.json()) == (202, {"message": "Job not yet finished"})
    api.server.finish_job(job_id)
    assert api.get(f"/job/{job_id}/result", repository_id=repository_id).json() == {"output": {"value": 6}}


# -- every profile at once ---------------------------------------------------------------------


def test_the_tutorial_runs_under_every_profile(api: Api, vbrain_emulator_profile: Profile) -> None:
    # The four tutorial steps answer the same under every reading; only the open questions differ.
    response = api.post("/repository")
    assert response.status_code == 201
    repository_id = response.json()["repository_id"]
    job_id = api.execute(repository_id, json={"params": {"a": 10, "b": 20}})
    assert api.wait(repository_id, job_id)["job_status"] == "finished"
    assert api.get(f"/job/{job_id}/result", repository_id=repository_id).json() == {"output": {"value": 200}}
    assert api.server.profile == vbrain_emulator_profile
    listed = api.get("/job", repository_id=repository_id).json()
    if "eventual-listing" in vbrain_emulator_profile:
        assert listed in ([], [job_id])
    else:
        assert listed == [job_id]
