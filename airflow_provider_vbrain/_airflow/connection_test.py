"""The connection's Test button: one quick request, and a message that says what to fix."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from airflow_provider_vbrain._airflow.connections import read_settings
from airflow_provider_vbrain._airflow.form import LABELS
from airflow_provider_vbrain._client.endpoints import ApiRequest, list_repositories
from airflow_provider_vbrain._client.http import FailureKind
from airflow_provider_vbrain._client.retry import RetryPolicy
from airflow_provider_vbrain.connection import VBrainSettings
from airflow_provider_vbrain.exceptions import (
    VBrainAPIError,
    VBrainAuthError,
    VBrainBadRequestError,
    VBrainConfigError,
    VBrainConnectionError,
    VBrainError,
    VBrainNotFoundError,
    VBrainRateLimitError,
    VBrainServerError,
)

__all__ = ["TEST_TIMEOUT", "Call", "test_connection"]

#: Seconds the Test button's request may take at most: the UI waits for it.
TEST_TIMEOUT = 10.0

#: How the test sends its one request: a transport's ``call`` (settings, application, request).
Call = Callable[[VBrainSettings, str, ApiRequest[list[str]]], list[str]]


def test_connection(conn: Any, application_id: str | None, call: Call) -> tuple[bool, str]:
    """Check the Airflow connection ``conn``: one request, no retry, a short timeout.

    Lists the repositories visible to the connection, which checks the URL, the API key and
    the scoping headers at once, within about :data:`TEST_TIMEOUT` seconds whatever the
    connection's own timeout and retry settings. VBrain scopes every request by application:
    the test uses ``application_id`` (the hook's), else the connection's, and without either
    sends nothing and says so. Messages speak of "this connection": Airflow's UI tests a
    connection under a temporary id the user never typed. On failure they say what to
    change in the form.

    :param call: sends the request (the hook's transport).
    """
    try:
        settings = read_settings(conn)
    except VBrainConfigError as err:
        fix = f"Fix {_form_label(err.field)} in the connection's form."
        return False, f"This VBrain connection: {err.field} {err.problem}. {fix}"
    application = application_id or settings.application_id
    if not application:
        return False, (
            "This VBrain connection was not tested: VBrain checks every request against an "
            "application, and the connection has no Application ID. Set it (for example Tutorial, "
            "or any application this client may run; tasks can still pass their own application_id) "
            "and test again."
        )
    probe = dataclasses.replace(
        settings, timeout=min(settings.timeout, TEST_TIMEOUT), retry=RetryPolicy(max_attempts=1)
    )
    try:
        count = len(call(probe, application, list_repositories()))
    except VBrainError as err:
        hint = _test_failure_hint(err, probe)
        return False, f"This VBrain connection failed. {hint} Details: {err}"
    return True, (
        f"This VBrain connection works: {settings.base_url} accepted user {settings.username!r} "
        f"for organization {settings.organization_id!r}, client {settings.client_id!r} and application "
        f"{application!r} ({count} repositories visible)."
    )


def _form_label(field: str) -> str:
    """The form's label for a :class:`VBrainConfigError` field such as ``extra client_id``."""
    words = field.split()
    name = words[1] if words[0] == "extra" and len(words) > 1 else words[0]
    return LABELS.get(name, "Extra") if name != "extra" else "Extra (not a JSON object)"


def _test_failure_hint(err: VBrainError, settings: VBrainSettings) -> str:
    """What to check in the connection form after the Test button's request failed with ``err``."""
    base_url = settings.base_url
    if isinstance(err, VBrainConnectionError):
        kind = next((kind for kind in FailureKind if kind.value == err.kind), None)
        if kind is FailureKind.TLS:
            return (
                f"Check Verify TLS (the verify extra: the path of a CA bundle for a private certificate "
                f"authority, false only for testing) and that the Base URL's scheme is right for {base_url}."
            )
        if kind is FailureKind.TIMEOUT:
            return (
                f"Nothing answered within {settings.timeout:g} s: check the Base URL (host and port) "
                "and that VBrain is reachable from Airflow."
            )
        if kind is FailureKind.DISCONNECTED:
            return (
                "The server hung up without answering: check the Base URL's scheme (http or https) and port."
            )
        if settings.proxy:  # every request goes to the proxy first: it is what could not be used
            return (
                f"Check {LABELS['proxy']} (its host, port and credentials) and that the proxy can reach "
                f"{base_url}."
            )
        return (
            f"Check the Base URL ({base_url}): its host name and port, and that Airflow can reach it "
            "(proxy, firewall)."
        )
    if isinstance(err, VBrainAuthError):
        return "Check the API key (and Username): VBrain refused them."
    if isinstance(err, VBrainBadRequestError):
        return "Check Organization ID, Client ID and Application ID: VBrain refused the scoping."
    if isinstance(err, VBrainNotFoundError):
        return f"Check the Base URL: no VBrain API answers at {settings.api_url}."
    if isinstance(err, VBrainRateLimitError):
        return "VBrain is limiting requests: test again in a moment."
    if isinstance(err, VBrainServerError):
        return "VBrain (or a proxy in front of it) failed: test again later, and check the Base URL."
    if isinstance(err, VBrainAPIError):
        return f"Check the Base URL: what answers at {base_url} does not look like VBrain."
    return "Check the connection's fields."
