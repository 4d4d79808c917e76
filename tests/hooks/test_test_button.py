"""The connection form's Test button: ``VBrainHook.test_connection`` over real HTTP against the emulator.

What the user sees is the (status, message) pair Airflow shows: the message must speak of the
connection the user is looking at (never the temporary id under which Airflow's UI tests it), say
what to fix, and come back quickly whatever the connection's timeout and retry settings.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_vbrain._airflow.connection_test import TEST_TIMEOUT
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from tests.conftest import API_KEY, connection_json, key_leaks

#: Settings that made the Test button hang for minutes before it had its own: a long timeout, many retries.
SLOW = {"timeout": 120, "retry_attempts": 8, "retry_base_delay": 5}


def press_test(monkeypatch: pytest.MonkeyPatch, conn_id: str, url: str, **fields: Any) -> tuple[bool, str]:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_json(url, **fields))
    ok, message = VBrainHook(conn_id).test_connection()
    assert not key_leaks(message), message
    return ok, message


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_success_names_the_url_the_user_and_the_scope(
    vbrain_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_SETUP", connection_json(vbrain_emulator.url))
    VBrainHook("vbrain_setup").create_repository()
    ok, message = press_test(monkeypatch, "vbrain_prod", vbrain_emulator.url)
    assert ok, message
    assert message == (
        f"This VBrain connection works: {vbrain_emulator.url} accepted user 'ana' for "
        "organization 'acme', client 'ops' and application 'Tutorial' (1 repositories visible)."
    )
    assert [(r["method"], r["path"]) for r in vbrain_emulator.requests()][-1] == ("GET", "/api/v1/repository")


def test_a_wrong_key_says_check_the_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from vbrain_emulator import EmulatorServer

    with EmulatorServer(api_keys=("the-right-key",)) as server:
        ok, message = press_test(monkeypatch, "vbrain_prod", server.url, extra=SLOW)
        assert len(server.requests()) == 1  # refused once, not retried
    assert not ok
    assert message.startswith("This VBrain connection failed. Check the API key")
    assert "HTTP 403" in message


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("http://127.0.0.1:{port}", id="refused"),
        pytest.param("https://vbrain.invalid", id="unknown-host"),
    ],
)
def test_an_unreachable_url_says_check_the_base_url(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    started = time.monotonic()
    ok, message = press_test(monkeypatch, "vbrain_prod", host.format(port=free_port()), extra=SLOW)
    assert not ok
    assert message.startswith("This VBrain connection failed. Check the Base URL")
    assert "could not connect" in message
    assert "attempts" not in message  # one attempt
    assert time.monotonic() - started < 15


def test_a_server_that_never_answers_is_given_up_on_within_seconds(
    vbrain_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The connection allows 120 s per request and 8 attempts: the Test button must not wait that long.
    # Longer than the Test button waits, short enough not to hold up the emulator's shutdown.
    vbrain_emulator.inject_fault(delay=TEST_TIMEOUT + 5, path="^/api/v1/repository$")
    started = time.monotonic()
    ok, message = press_test(monkeypatch, "vbrain_prod", vbrain_emulator.url, extra=SLOW)
    elapsed = time.monotonic() - started
    assert not ok
    assert message.startswith("This VBrain connection failed. Nothing answered within 10 s")
    assert TEST_TIMEOUT - 1 < elapsed < 15 + TEST_TIMEOUT / 2, elapsed


def test_an_untrusted_certificate_points_at_verify(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import ssl

    from vbrain_emulator import EmulatorServer
    from vbrain_emulator.tls import self_signed_certificate

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*self_signed_certificate(tmp_path_factory.mktemp("tls")))
    with EmulatorServer(ssl_context=context) as server:
        ok, message = press_test(monkeypatch, "vbrain_prod", server.url, extra=SLOW)
    assert not ok
    assert message.startswith("This VBrain connection failed. Check Verify TLS (the verify extra")
    assert "certificate verify failed" in message


def test_an_unknown_application_says_check_the_scoping(
    vbrain_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, message = press_test(
        monkeypatch, "vbrain_prod", vbrain_emulator.url, extra={"application_id": "NoSuchApp"}
    )
    assert not ok
    assert message.startswith(
        "This VBrain connection failed. Check Organization ID, Client ID and Application ID"
    )
    assert "Unknown application_id: NoSuchApp" in message


def test_without_an_application_nothing_is_sent_and_the_message_says_why(
    vbrain_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = json.loads(connection_json(vbrain_emulator.url))
    del conn["extra"]["application_id"]
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_PER_TASK", json.dumps(conn))
    ok, message = VBrainHook("vbrain_per_task").test_connection()
    assert not ok
    assert message.startswith("This VBrain connection was not tested:")
    assert "has no Application ID. Set it" in message
    assert vbrain_emulator.requests() == []
    # A hook given an application tests with that one.
    ok, message = VBrainHook("vbrain_per_task", application_id="Tutorial").test_connection()
    assert ok, message
    assert "application 'Tutorial'" in message


@pytest.mark.parametrize(
    ("change", "label", "field"),
    [
        pytest.param({"extra": {"client_id": " "}}, "Client ID", "extra client_id", id="client_id"),
        pytest.param({"password": None}, "API key", "password (API key)", id="api-key"),
        pytest.param({"extra": {"timeout": "soon"}}, "Timeout (seconds)", "extra timeout", id="timeout"),
        pytest.param({"host": "ftp://vbrain.example.com"}, "Base URL", "host (base URL)", id="host"),
    ],
)
def test_a_bad_field_is_named_with_its_form_label(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], label: str, field: str
) -> None:
    url = change.pop("host", "http://127.0.0.1:1")
    ok, message = press_test(monkeypatch, "vbrain_prod", url, **change)
    assert not ok
    assert message.startswith(f"This VBrain connection: {field}")
    assert message.endswith(f"Fix {label} in the connection's form.")


# ---------------------------------------------------------------- through Airflow's own endpoint


def _post_test(body: dict[str, Any]) -> dict[str, Any]:
    """POST a connection to Airflow's test endpoint, as the UI's Test button does."""
    import airflow

    if int(airflow.__version__.split(".")[0]) >= 3:
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        client = TestClient(create_app(apps="core"))
        token = client.get("/auth/token").json()["access_token"]
        answer = client.post(
            "/api/v2/connections/test", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text
        return answer.json()
    from airflow.www.app import create_app as create_webserver

    app = create_webserver(testing=True)
    app.config["AUTH_ROLE_PUBLIC"] = "Admin"  # no login, as in a local demo
    flask_client = app.test_client()
    answer = flask_client.post("/api/v1/connections/test", json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def test_the_ui_never_shows_airflows_temporary_id(
    airflow_db: None, vbrain_emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Airflow tests a connection, saved or not, under a random id: the message never shows it."""
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    monkeypatch.setenv("AIRFLOW__API__AUTH_BACKENDS", "airflow.api.auth.backend.default")  # Airflow 2
    conn = json.loads(connection_json(vbrain_emulator.url))
    body = {
        "connection_id": "my_unsaved_vbrain",
        "conn_type": "vbrain",
        "host": conn["host"],
        "login": conn["login"],
        "password": API_KEY,
        "extra": json.dumps(conn["extra"]),
    }
    answer = _post_test(body)
    assert answer["status"] is True, answer
    assert answer["message"].startswith("This VBrain connection works:")

    body["extra"] = json.dumps({**conn["extra"], "client_id": ""})
    answer = _post_test(body)
    assert answer["status"] is False
    assert answer["message"] == (
        "This VBrain connection: extra client_id is required but empty. "
        "Fix Client ID in the connection's form."
    )
