"""Bad input, clear errors: each row names what was wrong, and the API key never shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_vbrain.exceptions import (
    VBrainAPIError,
    VBrainBadRequestError,
    VBrainConfigError,
    VBrainInputError,
    VBrainNotFoundError,
    VBrainResultTooLargeError,
)
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor
from tests.conftest import API_KEY, connection_json


class World:
    """What a row needs: a hook on a clean emulator with one repository and one finished job."""

    def __init__(self, emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.emulator = emulator
        self.monkeypatch = monkeypatch
        self.tmp_path = tmp_path
        self.hook = VBrainHook()
        self.repository_id = self.hook.create_repository()
        self.job_id = self.hook.execute_job(self.repository_id, {"a": 10, "b": 20})
        emulator.finish_job(self.job_id)

    def hook_for(self, **conn: Any) -> VBrainHook:
        """A hook whose connection is the test connection changed by ``conn`` (None drops a field)."""
        value = json.loads(connection_json(self.emulator.url))
        for key, change in conn.items():
            target = value["extra"] if key in ("organization_id", "client_id") else value
            if change is None:
                target.pop(key, None)
            else:
                target[key] = change
        self.monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_BAD", json.dumps(value))
        return VBrainHook("vbrain_bad")


Row = Callable[[World], Any]

ROWS: list[Any] = [
    pytest.param(
        lambda w: w.hook_for(organization_id=None).list_repositories(),
        VBrainConfigError,
        ["'vbrain_bad'", "extra organization_id", "required"],
        id="connection-without-organization_id",
    ),
    pytest.param(
        lambda w: w.hook_for(client_id=None).list_repositories(),
        VBrainConfigError,
        ["'vbrain_bad'", "extra client_id"],
        id="connection-without-client_id",
    ),
    pytest.param(
        lambda w: w.hook_for(password=None).list_repositories(),
        VBrainConfigError,
        ["'vbrain_bad'", "password (API key)"],
        id="connection-without-api-key",
    ),
    pytest.param(
        lambda w: w.hook_for(host="htp//vbrain:x").list_repositories(),
        VBrainConfigError,
        ["'vbrain_bad'", "host (base URL)", "htp//vbrain:x"],
        id="malformed-base-url",
    ),
    pytest.param(
        lambda w: w.hook.execute_job(w.repository_id, ["a", "b"]),
        VBrainInputError,
        ["params", "must be a mapping", "list"],
        id="params-not-a-mapping",
    ),
    pytest.param(
        lambda w: w.hook.execute_job(w.repository_id, {"when": object()}),
        VBrainInputError,
        ["params", "not JSON-serialisable", "object"],
        id="params-not-json",
    ),
    pytest.param(
        lambda w: w.hook.create_repository(input_file=w.tmp_path / "missing.zip"),
        VBrainInputError,
        ["input_file", "missing.zip", "does not exist"],
        id="input-file-missing",
    ),
    pytest.param(
        lambda w: w.hook.create_repository(input_file=w.tmp_path / "notes.txt"),
        VBrainInputError,
        ["input_file", "notes.txt", "ZIP, .csv, .xlsx or .json"],
        id="input-file-unsupported-extension",
    ),
    *[
        pytest.param(
            lambda w, bad=bad: w.hook.get_job_result(bad, w.repository_id),
            VBrainNotFoundError,
            ["/result answered HTTP 404", "Invalid job_id"],
            id=f"job-id-with-{name}",
        )
        for name, bad in [
            ("slash", "x/../../repository"),
            ("dotdot", "../repository"),
            ("question-mark", "x?y=1"),
            ("space", "x y"),
            ("non-ascii", "tâche-ü"),
        ]
    ],
    pytest.param(
        lambda w: w.hook.get_job_status("..", w.repository_id),
        VBrainInputError,
        ["job_id", "'..' is not a valid id"],
        id="job-id-dotdot-alone",
    ),
    pytest.param(
        lambda w: VBrainHook(application_id="Forecast9000").create_repository(),
        VBrainBadRequestError,
        ["POST /api/v1/repository", "HTTP 400", "Forecast9000"],
        id="unknown-application",
    ),
    pytest.param(
        lambda w: w.hook.get_job_result(w.job_id, w.hook.create_repository()),
        VBrainNotFoundError,
        ["HTTP 404", "Invalid job_id"],
        id="job-id-from-another-repository",
    ),
    pytest.param(
        lambda w: (
            w.emulator.inject_fault(200, body="<html><title>Sign in</title></html>", html=True),
            w.hook.list_repositories(),
        ),
        VBrainAPIError,
        ["GET /api/v1/repository", "expected JSON", "Sign in"],
        id="non-json-answer",
    ),
    pytest.param(
        lambda w: VBrainJobSensor(
            task_id="wait", job_id=w.job_id, repository_id=w.repository_id, max_result_bytes=8
        ).end_of(w.job_id, w.repository_id, "finished", fetch=True),
        VBrainResultTooLargeError,
        ["over the 8-byte limit", "max_result_bytes", "VBrainDownloadJobFilesOperator(kind='output')"],
        id="result-too-large-for-xcom",
    ),
]


@pytest.mark.parametrize(("row", "error", "named"), ROWS)
def test_bad_input_gets_a_clear_error(
    vbrain_conn: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    row: Row,
    error: type[Exception],
    named: list[str],
) -> None:
    (tmp_path / "notes.txt").write_text("not an input VBrain takes")
    world = World(vbrain_conn, monkeypatch, tmp_path)
    with pytest.raises(error) as caught:
        row(world)
    message = str(caught.value)
    for culprit in named:
        assert culprit in message
    assert API_KEY not in message
