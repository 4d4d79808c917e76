"""How lineage names files, repositories and jobs (the run itself is in tests/e2e/test_lineage.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_vbrain._airflow.compat import object_storage_path
from airflow_provider_vbrain._tasks.lineage import Place, file_place, job_place, repository_place
from airflow_provider_vbrain.connection import VBrainSettings


@pytest.mark.parametrize(
    ("location", "place"),
    [
        pytest.param("/data/sales.csv", Place("file", "/data/sales.csv"), id="absolute"),
        pytest.param(Path("/data/in.zip"), Place("file", "/data/in.zip"), id="pathlib"),
        pytest.param("file:///data/logs.zip", Place("file", "/data/logs.zip"), id="file-url"),
        pytest.param("s3://bucket/dir/in.zip", Place("s3://bucket", "dir/in.zip"), id="s3"),
        pytest.param("gs://bucket/in.csv", Place("gs://bucket", "in.csv"), id="gcs"),
    ],
)
def test_files_are_named_as_openlineage_names_them(location: Any, place: Place) -> None:
    assert file_place(location) == place


def test_a_relative_path_is_made_absolute() -> None:
    assert file_place("in.csv") == Place("file", os.path.join(os.getcwd(), "in.csv"))


def test_an_object_storage_path_is_named_by_its_url() -> None:
    assert file_place(object_storage_path("s3://bucket/key.zip")) == Place("s3://bucket", "key.zip")


def test_repositories_and_jobs_are_scoped_like_vbrain_scopes_them() -> None:
    settings = VBrainSettings(
        conn_id="c",
        base_url="https://vbrain.example.com:8443",
        username="ana",
        api_key="secret",
        organization_id="acme",
        client_id="ops",
        application_id="Tutorial",
    )
    assert repository_place(settings, None, "r1") == Place(
        "vbrain://vbrain.example.com:8443", "acme/ops/Tutorial/repositories/r1"
    )
    assert job_place(settings, "Forecast", "r1", "j1") == Place(
        "vbrain://vbrain.example.com:8443", "acme/ops/Forecast/repositories/r1/jobs/j1"
    )
