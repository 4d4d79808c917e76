"""Pytest fixtures serving the VBrain emulator (auto-loaded through the ``pytest11`` entry point).

``vbrain_emulator_server`` starts one server per test session with short job durations;
``vbrain_emulator`` hands each test that server reset to a clean slate (and the default reference
profile)::

    def test_my_dag(vbrain_emulator, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", vbrain_emulator.airflow_connection())
        ...

A test that asks for ``vbrain_emulator_profile`` runs once under each reference profile (see
:mod:`.profiles`); :func:`under_profiles` narrows that down, and the ``vbrain_emulator_profile`` marker
runs a test under one (possibly combined) profile::

    def test_reattach_under_every_reading(vbrain_emulator_profile, vbrain_emulator_connection): ...

    @under_profiles("application-scoped", "metadata-string")
    def test_some_readings(vbrain_emulator_profile, vbrain_emulator_connection): ...

    @pytest.mark.vbrain_emulator_profile("application-scoped", "no-metadata")
    def test_one_combined_reading(vbrain_emulator_connection): ...

This module is imported in every pytest run of a project that installs the emulator, so it imports
nothing heavy (and never Airflow) until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import pytest

from vbrain_emulator.profiles import PROFILES, Profile, ProfileLike

if TYPE_CHECKING:
    from vbrain_emulator.server import EmulatorServer

__all__ = ["MARKER", "under_profiles"]

#: The marker that runs a test's ``vbrain_emulator`` under a profile: its arguments are profile names.
MARKER = "vbrain_emulator_profile"

# Short enough for fast tests, long enough that a client sees ``queued`` and ``started`` when polling.
FIXTURE_QUEUE_SECONDS = 0.1
FIXTURE_RUN_SECONDS = 0.2


@pytest.fixture(scope="session")
def vbrain_emulator_server() -> Iterator[EmulatorServer]:
    """One emulator for the whole session: a free port, control API on, jobs queue 0.1 s and run 0.2 s.

    Prefer ``vbrain_emulator``, which also resets it between tests.
    """
    from vbrain_emulator.server import EmulatorServer

    with EmulatorServer(
        queue_seconds=FIXTURE_QUEUE_SECONDS, run_seconds=FIXTURE_RUN_SECONDS, control=True
    ) as server:
        yield server


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*names): run the test's vbrain_emulator under these VBrain reference profiles, "
        "combined (e.g. 'application-scoped', 'no-metadata')",
    )


def _selection(values: tuple[object, ...]) -> ProfileLike:
    if len(values) == 1 and isinstance(values[0], Profile):
        return values[0]
    return [str(value) for value in values]


@pytest.fixture
def vbrain_emulator(vbrain_emulator_server: EmulatorServer, request: pytest.FixtureRequest) -> EmulatorServer:
    """The session's emulator, emptied (no repositories, jobs, faults or logged requests) and with the
    default durations and profile restored and no rate limit, so each test starts clean. A
    ``vbrain_emulator_profile`` marker on the test selects its profile."""
    vbrain_emulator_server.reset()
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        vbrain_emulator_server.set_profile(_selection(marker.args))
    return vbrain_emulator_server


@pytest.fixture(params=PROFILES)
def vbrain_emulator_profile(request: pytest.FixtureRequest, vbrain_emulator: EmulatorServer) -> Profile:
    """Run the test once under each reference profile (every name in ``PROFILES``), on the clean
    ``vbrain_emulator``; return the :class:`.profiles.Profile` in force, so a test can tell which
    reading it runs under (``"no-metadata" in vbrain_emulator_profile``).

    Parametrize it (see :func:`under_profiles`) to pick other profiles, combined ones included. It
    replaces a ``vbrain_emulator_profile`` marker's profile. Fixtures that create repositories or
    jobs should depend on it, so they create them under the test's profile.
    """
    return vbrain_emulator.set_profile(request.param)


def under_profiles(*profiles: ProfileLike, exclude: Iterable[str] = ()) -> pytest.MarkDecorator:
    """Run a test that uses ``vbrain_emulator_profile`` once under each of ``profiles``.

    :param profiles: profile selections (a name, comma-separated names, a list of names or a
        :class:`.profiles.Profile`; a combination runs as one); none: every profile in ``PROFILES``.
    :param exclude: names of profiles to leave out.
    :raises ProfileError: for an unknown or conflicting profile (at collection time).
    """
    selected = [Profile.parse(profile) for profile in (profiles or PROFILES)]
    left_out = [Profile.parse(name) for name in exclude]
    kept = [profile for profile in selected if profile not in left_out]
    return pytest.mark.parametrize(MARKER, kept, indirect=True, ids=[str(profile) for profile in kept])


@pytest.fixture
def vbrain_emulator_connection(vbrain_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point Airflow's ``vbrain_default`` connection at a clean emulator; return the connection id.

    Sets ``AIRFLOW_CONN_VBRAIN_DEFAULT`` for the test's duration, with the defaults of
    :meth:`EmulatorServer.airflow_connection`.
    """
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", vbrain_emulator.airflow_connection())
    return "vbrain_default"
