"""The pytest fixtures, used the way a DAG author would."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from vbrain_emulator import EmulatorServer


def test_vbrain_emulator_fixture(vbrain_emulator: EmulatorServer) -> None:
    assert vbrain_emulator.url.startswith("http://127.0.0.1:")
    assert vbrain_emulator.jobs() == []
    assert vbrain_emulator.requests() == []
    config = requests.get(f"{vbrain_emulator.url}/_emulator/config", timeout=5).json()
    assert config == {"queue_seconds": 0.1, "run_seconds": 0.2, "rate_limit": None}


def test_airflow_connection_value(vbrain_emulator: EmulatorServer) -> None:
    value = json.loads(vbrain_emulator.airflow_connection(api_key="KEY", extra={"timeout": 5}))
    assert value == {
        "conn_type": "vbrain",
        "host": vbrain_emulator.url,
        "login": "ana",
        "password": "KEY",
        "extra": {"organization_id": "acme", "client_id": "ops", "application_id": "Tutorial", "timeout": 5},
    }


def test_connection_fixture_sets_the_environment(vbrain_emulator_connection: str) -> None:
    assert vbrain_emulator_connection == "vbrain_default"
    assert json.loads(os.environ["AIRFLOW_CONN_VBRAIN_DEFAULT"])["conn_type"] == "vbrain"


def test_each_test_starts_clean(pytester: pytest.Pytester) -> None:
    # A user's test module, with the plugin loaded the way an installed provider's is: by entry point.
    pytester.makepyfile(
        """
        import requests

        HEADERS = {"organization_id": "o", "application_id": "Tutorial", "client_id": "c",
                   "username": "u", "x-api-key": "k"}

        def test_creates(vbrain_emulator):
            vbrain_emulator.configure(queue_seconds=30)
            url = vbrain_emulator.url + "/api/v1/repository"
            assert requests.post(url, headers=HEADERS).status_code == 201

        def test_sees_nothing_left_over(vbrain_emulator, vbrain_emulator_server):
            assert vbrain_emulator is vbrain_emulator_server
            url = vbrain_emulator.url + "/api/v1/repository"
            assert requests.get(url, headers=HEADERS).json() == []
            assert vbrain_emulator.state.queue_seconds == 0.1
        """
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_emulator_never_imports_airflow() -> None:
    # Users and benchmarks run the emulator where Airflow is not installed; a fresh interpreter shows
    # what importing every emulator module pulls in.
    code = (
        "import sys\n"
        "import vbrain_emulator.__main__, vbrain_emulator.pytest_plugin\n"
        "from vbrain_emulator import EmulatorServer, create_app\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_profile_fixture_marker_and_helper(pytester: pytest.Pytester) -> None:
    # A user's suite running tests under reference profiles, with the plugin loaded by entry point.
    pytester.makepyfile(
        """
        import pytest

        from vbrain_emulator import PROFILES, Profile
        from vbrain_emulator.pytest_plugin import under_profiles

        SEEN = []

        def test_every_profile(vbrain_emulator, vbrain_emulator_profile):
            assert isinstance(vbrain_emulator_profile, Profile)
            assert vbrain_emulator.profile == vbrain_emulator_profile
            SEEN.append(str(vbrain_emulator_profile))

        def test_saw_each_profile_once():
            assert SEEN == [str(Profile.parse(name)) for name in PROFILES]

        @under_profiles("application-scoped", "no-metadata,form-only-repository")
        def test_some(vbrain_emulator, vbrain_emulator_profile):
            assert str(vbrain_emulator.profile) in (
                "job-metadata,application-scoped", "no-metadata,form-only-repository"
            )

        @under_profiles(exclude=["job-metadata", "eventual-listing"])
        def test_all_but_two(vbrain_emulator_profile):
            assert vbrain_emulator_profile != Profile()
            assert "eventual-listing" not in vbrain_emulator_profile

        @pytest.mark.vbrain_emulator_profile("metadata-string", "application-scoped")
        def test_marker(vbrain_emulator):
            assert str(vbrain_emulator.profile) == "metadata-string,application-scoped"

        def test_back_to_the_default(vbrain_emulator):
            assert vbrain_emulator.profile == Profile()
        """
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", "--strict-markers")
    result.assert_outcomes(passed=11 + 1 + 2 + 9 + 1 + 1)
    result.stdout.fnmatch_lines(
        [
            "*test_every_profile[[]metadata-string[]] PASSED*",
            "*test_every_profile[[]eventual-listing[]] PASSED*",
            "*test_some[[]no-metadata,form-only-repository[]] PASSED*",
        ]
    )


def test_under_profiles_refuses_unknown_names_at_collection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from vbrain_emulator.pytest_plugin import under_profiles

        @under_profiles("metadata-strnig")
        def test_typo(vbrain_emulator_profile):
            pass
        """
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*Unknown profile 'metadata-strnig'*"])
