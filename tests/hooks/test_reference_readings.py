"""The hook on the wire under the readings of the reference that bodies and downloads depend on."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_vbrain.exceptions import VBrainAPIError
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from vbrain_emulator.profiles import Profile
from vbrain_emulator.pytest_plugin import under_profiles


@pytest.fixture
def hook(vbrain_emulator_profile: Profile, vbrain_conn: Any) -> VBrainHook:
    return VBrainHook()


@under_profiles()
def test_repository_params_and_metadata_reach_every_reading(hook: VBrainHook) -> None:
    """Sent as form data, as the reference documents: a server that reads only form fields keeps them."""
    repository_id = hook.create_repository({"a": 2}, {"team": "ops", "airflow": {"task_id": "create"}})
    assert hook.get_repository_params(repository_id) == {"a": 2}
    assert hook.get_repository(repository_id)["metadata"] == {"team": "ops", "airflow": {"task_id": "create"}}


@under_profiles("non-zip-downloads", "html-downloads", "base64-downloads")
@pytest.mark.parametrize("kind", ["output", "logs"])
def test_a_download_that_is_not_a_zip_fails_and_leaves_no_file(
    hook: VBrainHook, vbrain_conn: Any, tmp_path: Path, kind: str
) -> None:
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, {"a": 2, "b": 3})
    vbrain_conn.finish_job(job_id)
    target = tmp_path / "out.zip"
    download = hook.download_job_output if kind == "output" else hook.download_job_logs
    with pytest.raises(
        VBrainAPIError, match=rf"GET /api/v1/job/{job_id}/{kind} answered HTTP 200: expected a ZIP, got "
    ):
        download(job_id, repository_id, target)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a partial one


@under_profiles("job-metadata")
def test_a_real_zip_is_kept(hook: VBrainHook, vbrain_conn: Any, tmp_path: Path) -> None:
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, {"a": 2, "b": 3})
    vbrain_conn.finish_job(job_id)
    written = hook.download_job_output(job_id, repository_id, tmp_path)
    assert zipfile.is_zipfile(written)
