"""Fixtures of the hostile-server suite: the server, the connection that points at it, the probes.

Set ``VBRAIN_HOSTILE_REPORT`` to a file path to get every probe's measurements (outcome, time, peak
memory, event-loop blocking, leaks) written there as JSON when the session ends.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import connection_json
from tests.hostile import probe
from tests.hostile.server import HostileServer

#: The ids every test asks about.
JOB = "job-1"
REPO = "repo-1"
#: Path patterns of the endpoints the tests route.
STATUS = rf"^/api/v1/job/{JOB}$"
RESULT = rf"^/api/v1/job/{JOB}/result$"
OUTPUT = rf"^/api/v1/job/{JOB}/output$"
LOGS = rf"^/api/v1/job/{JOB}/logs$"
JOBS = r"^/api/v1/job$"
EXECUTE = r"^/api/v1/job/execute$"
REPOSITORIES = r"^/api/v1/repository$"

#: The hostile connection's per-request ``timeout`` (seconds) and attempts per request.
TIMEOUT = 0.5
ATTEMPTS = 2
#: Its retry waits: short, so a bound is mostly the deadline.
BACKOFF = {"retry_base_delay": 0.05, "retry_max_delay": 0.2}
#: Room for the local round trips on a loaded 2-core machine: a call against this server that waits
#: on no timer takes 20-50 ms when the machine is idle.
SLACK = 2.0
#: A call that waits on no timer (it should fail on what it read) ends within this.
QUICK = SLACK
#: A call that has to wait out its deadline on every attempt ends within this.
DEADLINE_BOUND = TIMEOUT * ATTEMPTS + BACKOFF["retry_max_delay"] * (ATTEMPTS - 1) + SLACK
#: A trigger polls up to five times in a row through transient failures; its connection makes one
#: attempt per poll (see :func:`trigger_server`).
POLLS = 5
TRIGGER_BOUND = SLACK + 1.0
#: Attacks on memory run with a real-life ``timeout``, so that today's code shows what the attack
#: does to memory rather than running into the short test deadline first.
MEMORY_TIMEOUT = 30.0
#: They end within this: a capped read fails at once; an uncapped one reaches the memory bound first.
MEMORY_BOUND_TIME = 10.0


def trigger_kwargs(**changes: Any) -> dict[str, Any]:
    """Arguments of a trigger waiting on the test job, polling without pause."""
    return {"job_id": JOB, "repository_id": REPO, "poll_interval": 0.01, **changes}


@pytest.fixture(scope="session")
def hostile_server() -> Iterator[HostileServer]:
    server = HostileServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileServer]:
    server = HostileServer(tls_folder=tmp_path_factory.mktemp("hostile-tls")).start()
    yield server
    server.stop()


@pytest.fixture
def server(hostile_server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    """The hostile server, with no routes yet, and ``vbrain_default`` pointing at it."""
    hostile_server.reset()
    connect(monkeypatch, hostile_server.url)
    yield hostile_server
    hostile_server.reset()


@pytest.fixture
def trigger_server(server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> HostileServer:
    """The hostile server for a trigger: one attempt per poll, so its five polls stay quick."""
    connect(monkeypatch, server.url, retry_attempts=1)
    return server


@pytest.fixture
def memory_server(server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> HostileServer:
    """The hostile server for attacks on memory: a real-life ``timeout`` (see :data:`MEMORY_TIMEOUT`)."""
    connect(monkeypatch, server.url, timeout=MEMORY_TIMEOUT)
    return server


def connect(
    monkeypatch: pytest.MonkeyPatch, url: str, conn_id: str = "vbrain_default", **changes: Any
) -> None:
    """Point ``conn_id`` at ``url`` with the hostile defaults (short timeout, two attempts), changed by
    ``changes``: extras by name, or ``host``/``login``/``password``."""
    extra = {"timeout": TIMEOUT, "retry_attempts": ATTEMPTS, **BACKOFF}
    fields = {key: changes.pop(key) for key in ("host", "login", "password") if key in changes}
    extra.update(changes)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_json(url, extra=extra, **fields))


@pytest.fixture(autouse=True)
def _record_reports(request: pytest.FixtureRequest) -> Iterator[None]:
    probe.CURRENT_TEST = request.node.nodeid
    yield
    probe.CURRENT_TEST = ""


def pytest_collection_finish(session: pytest.Session) -> None:
    here = Path(__file__).parent
    if not session.config.option.collectonly and any(
        here in Path(item.path).parents for item in session.items
    ):
        probe.start_fork_server()


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("VBRAIN_HOSTILE_REPORT")
    if target and probe.RECORDED:
        Path(target).write_text(json.dumps(probe.RECORDED, indent=1, default=str))
