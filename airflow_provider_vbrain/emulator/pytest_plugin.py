"""Pytest fixtures serving the VBrain emulator (auto-loaded through the ``pytest11`` entry point).

``vbrain_emulator_server`` starts one server per test session with short job durations;
``vbrain_emulator`` hands each test that server reset to a clean slate::

    def test_my_dag(vbrain_emulator, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", vbrain_emulator.airflow_connection())
        ...

This module is imported in every pytest run of a project that installs the provider, so it imports
nothing heavy (and never Airflow) until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_vbrain.emulator.server import EmulatorServer

# Short enough for fast tests, long enough that a client sees ``queued`` and ``started`` when polling.
FIXTURE_QUEUE_SECONDS = 0.1
FIXTURE_RUN_SECONDS = 0.2


@pytest.fixture(scope="session")
def vbrain_emulator_server() -> Iterator[EmulatorServer]:
    """One emulator for the whole session: a free port, control API on, jobs queue 0.1 s and run 0.2 s.

    Prefer ``vbrain_emulator``, which also resets it between tests.
    """
    from airflow_provider_vbrain.emulator.server import EmulatorServer

    with EmulatorServer(
        queue_seconds=FIXTURE_QUEUE_SECONDS, run_seconds=FIXTURE_RUN_SECONDS, control=True
    ) as server:
        yield server


@pytest.fixture
def vbrain_emulator(vbrain_emulator_server: EmulatorServer) -> EmulatorServer:
    """The session's emulator, emptied (no repositories, jobs, faults or logged requests) and with the
    default durations restored, so each test starts clean."""
    vbrain_emulator_server.reset()
    return vbrain_emulator_server


@pytest.fixture
def vbrain_emulator_connection(vbrain_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point Airflow's ``vbrain_default`` connection at a clean emulator; return the connection id.

    Sets ``AIRFLOW_CONN_VBRAIN_DEFAULT`` for the test's duration, with the defaults of
    :meth:`EmulatorServer.airflow_connection`.
    """
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", vbrain_emulator.airflow_connection())
    return "vbrain_default"
