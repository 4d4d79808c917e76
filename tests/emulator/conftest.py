"""Shared fixtures for the emulator's tests: a thin ``requests`` client that sends the scoping headers.

Tests get helpers through fixtures only (``api``), never by importing this module, so they work
under any pytest import mode.
"""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

import pytest
import requests

from vbrain_emulator.server import EmulatorServer

HEADERS = {
    "organization_id": "acme",
    "application_id": "Tutorial",
    "client_id": "ops",
    "username": "ana",
    "x-api-key": "emulator-key",
}


class Api:
    """Calls ``<server>/api/v1<path>`` with the five scoping headers (and ``repository_id`` if given)."""

    def __init__(self, server: EmulatorServer, **headers: str) -> None:
        self.server = server
        self.headers = {**HEADERS, **headers}

    def with_headers(self, **headers: str) -> Api:
        return Api(self.server, **{**self.headers, **headers})

    def request(
        self,
        method: str,
        path: str,
        *,
        repository_id: str | None = None,
        drop: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if repository_id is not None:
            headers["repository_id"] = repository_id
        for name in drop:
            headers.pop(name, None)
        return requests.request(
            method, f"{self.server.url}/api/v1{path}", headers=headers, timeout=10, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create_repository(self, **kwargs: Any) -> str:
        response = self.post("/repository", **kwargs)
        assert response.status_code == 201, response.text
        return response.json()["repository_id"]

    def execute(self, repository_id: str, **kwargs: Any) -> str:
        response = self.post("/job/execute", repository_id=repository_id, **kwargs)
        assert response.status_code == 201, response.text
        return response.json()["job_id"]

    @staticmethod
    def unzip(data: bytes) -> dict[str, bytes]:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}

    @staticmethod
    def make_zip(files: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        return buffer.getvalue()

    def wait(self, repository_id: str, job_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Poll the job until it answers 200; return the status body."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.get(f"/job/{job_id}", repository_id=repository_id)
            if response.status_code == 200:
                return response.json()
            assert response.status_code == 202, response.text
            assert time.monotonic() < deadline, f"job {job_id} still {response.json()['job_status']}"
            time.sleep(0.02)


@pytest.fixture
def api(vbrain_emulator: EmulatorServer) -> Api:
    """A client of a clean emulator (the plugin's ``vbrain_emulator`` fixture)."""
    return Api(vbrain_emulator)


@pytest.fixture(scope="module")
def keyed_server() -> Any:
    """An emulator that accepts only the API key ``secret``."""
    with EmulatorServer(api_keys=["secret"], queue_seconds=0.1, run_seconds=0.2) as server:
        yield server
