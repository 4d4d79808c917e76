"""The VBrain connection's form in Airflow's UI, described once for every Airflow line.

Airflow 3.2 and later read it from the provider info (``conn-fields``, JSON-schema typed);
earlier lines ask the hook class (WTForms widgets). Imports nothing of Airflow: the provider
info is read while Airflow starts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from airflow_provider_vbrain._client.retry import RetryPolicy
from airflow_provider_vbrain._client.wire import DEFAULT_BASE_URL
from airflow_provider_vbrain.connection import (
    DEFAULT_DOWNLOAD_TIMEOUT,
    DEFAULT_MAX_ANSWER_BYTES,
    DEFAULT_TIMEOUT,
)

__all__ = [
    "FORM_FIELDS",
    "LABELS",
    "hook_field_behaviour",
    "hook_form_widgets",
    "provider_form",
]

_RETRY = RetryPolicy()


@dataclasses.dataclass(frozen=True)
class _FormField:
    """One extra of the connection, as the connection form shows it.

    :param kind: ``text``, ``integer``, ``number`` (seconds, fractions allowed) or ``verify``
        (true, false or a CA-bundle path).
    :param default: the value the provider uses when the extra is unset; the form of Airflow
        3.2+ starts from it.
    """

    name: str
    label: str
    description: str
    kind: str = "text"
    required: bool = False
    default: Any = None

    def schema(self) -> dict[str, Any]:
        """The field's JSON schema, as ``conn-fields`` takes it (Airflow 3.2+)."""
        if self.required:
            return {"type": "string", "minLength": 1}
        if self.kind == "integer":
            schema: dict[str, Any] = {"type": ["integer", "null"], "minimum": 1}
        elif self.kind == "number":
            schema = {"type": ["number", "null"], "exclusiveMinimum": 0}
        elif self.kind == "verify":
            # A switch for the common case; a CA bundle's path goes in as text.
            schema = {"type": ["boolean", "string", "null"]}
        else:
            schema = {"type": ["string", "null"]}
        if self.default is not None:
            schema["default"] = self.default
        return schema


#: The extras with fields of their own in the connection form, in the order shown.
FORM_FIELDS = (
    _FormField("organization_id", "Organization ID", "Sent as the organization_id header.", required=True),
    _FormField("client_id", "Client ID", "Sent as the client_id header.", required=True),
    _FormField(
        "application_id",
        "Application ID",
        "Default application, e.g. Tutorial; a task's application_id overrides it. The Test button "
        "needs it: VBrain checks every request against an application.",
    ),
    _FormField(
        "timeout",
        "Timeout (seconds)",
        f"Seconds allowed for each API request, from connecting to the answer's last byte "
        f"(default {DEFAULT_TIMEOUT:g}). A download's headers must arrive within it, and a download "
        "fails when less than 1 KiB per second of it arrived in the last this many seconds.",
        "number",
        default=DEFAULT_TIMEOUT,
    ),
    _FormField(
        "download_timeout",
        "Download timeout (seconds)",
        f"Seconds a download (output, logs, input) may take in all, its retries included "
        f'(default {DEFAULT_DOWNLOAD_TIMEOUT:g}, 6 hours); "none" in the extra JSON for no limit.',
        "number",
        default=DEFAULT_DOWNLOAD_TIMEOUT,
    ),
    _FormField(
        "verify",
        "Verify TLS",
        "Check the server's TLS certificate (default true). False only for testing; or the path of "
        "a CA bundle (PEM) on every Airflow machine.",
        "verify",
        default=True,
    ),
    _FormField(
        "retry_attempts",
        "Retry attempts",
        f"Attempts per request, the first included; 1 disables retries (default {_RETRY.max_attempts}).",
        "integer",
        default=_RETRY.max_attempts,
    ),
    _FormField(
        "retry_base_delay",
        "Retry base delay (seconds)",
        f"Longest wait before the first retry, doubled for each further one (default {_RETRY.base_delay:g}).",
        "number",
        default=_RETRY.base_delay,
    ),
    _FormField(
        "retry_max_delay",
        "Retry max delay (seconds)",
        f"Cap on any single wait, a server's Retry-After included (default {_RETRY.max_delay:g}).",
        "number",
        default=_RETRY.max_delay,
    ),
    _FormField(
        "max_answer_bytes",
        "Max answer size (bytes)",
        f"Most bytes of an answer read, after decompression (default {DEFAULT_MAX_ANSWER_BYTES:,}); a "
        "larger answer fails. Downloads are not counted here.",
        "integer",
        default=DEFAULT_MAX_ANSWER_BYTES,
    ),
    _FormField(
        "max_download_bytes",
        "Max download size (bytes)",
        "Optional: most bytes of a downloaded file (output, logs, input); a larger download fails and "
        "leaves no file. Default: no limit.",
        "integer",
    ),
    _FormField(
        "job_url_template",
        "Job page URL",
        "Optional: a job's page in VBrain's web UI, shown as the task's \"VBrain job\" link, e.g. "
        "https://vbrain.example.com/jobs/{job_id}. Placeholders: {job_id}, {repository_id}, "
        "{organization_id}, {client_id}, {application_id}.",
    ),
    _FormField(
        "proxy",
        "Proxy URL",
        "Optional: the HTTP(S) proxy for this connection's requests, e.g. http://proxy.example.com:3128; "
        "it overrides HTTPS_PROXY, HTTP_PROXY and NO_PROXY. It may hold credentials "
        "(http://user:password@proxy.example.com:3128), which are masked in logs but visible to whoever "
        "can edit this connection: prefer the environment variables to keep them out of the UI.",
    ),
)

#: Form labels by connection field, for messages that send the user to the form.
LABELS = {
    "host": "Base URL",
    "port": "Port",
    "login": "Username",
    "password": "API key",
    **{field.name: field.label for field in FORM_FIELDS},
}

# Port stays visible: Airflow 3.3.1 and 3.3.2 refuse the Test button of a connection whose
# Port is empty (their UI sends 0 for it, which the API takes for another destination).
_HIDDEN_FIELDS = ["schema"]
_RELABELING = {"host": "Base URL", "login": "Username", "password": "API key"}
_PLACEHOLDERS = {
    "host": DEFAULT_BASE_URL,
    "port": "e.g. 443; optional when the Base URL has one",
    "login": "the VBrain user name",
    "extra": '{"organization_id": "acme", "client_id": "ops"}',
}


def provider_form() -> dict[str, Any]:
    """The form as the provider info describes it (read by Airflow 3.2 and later)."""
    return {
        "ui-field-behaviour": {
            "hidden-fields": list(_HIDDEN_FIELDS),
            "relabeling": dict(_RELABELING),
            "placeholders": dict(_PLACEHOLDERS),
        },
        "conn-fields": {
            field.name: {"label": field.label, "description": field.description, "schema": field.schema()}
            for field in FORM_FIELDS
        },
    }


def hook_field_behaviour() -> dict[str, Any]:
    """The form's relabelling as a hook's ``get_ui_field_behaviour`` returns it (earlier Airflow lines)."""
    placeholders = dict(_PLACEHOLDERS)
    # Earlier lines show placeholders in the extra fields too: the default an empty field means.
    for field in FORM_FIELDS:
        if field.default is not None:
            placeholders[field.name] = (
                str(field.default).lower()
                if field.kind == "verify"
                else str(field.default)
                if field.kind == "integer"
                else f"{field.default:g}"
            )
    return {
        "hidden_fields": list(_HIDDEN_FIELDS),
        "relabeling": dict(_RELABELING),
        "placeholders": placeholders,
    }


def hook_form_widgets() -> dict[str, Any]:
    """The extra fields as a hook's ``get_connection_form_widgets`` returns them (earlier Airflow lines).

    Every field is text: those lines offer no decimal field, and their form stores an emptied
    number field as null but drops an empty text field, so an empty field means the default.
    The provider reads numbers and true/false from text.
    """
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import StringField
    from wtforms.validators import InputRequired, Optional

    return {
        field.name: StringField(
            lazy_gettext(field.label),
            description=field.description,
            widget=BS3TextFieldWidget(),
            validators=[InputRequired() if field.required else Optional()],
        )
        for field in FORM_FIELDS
    }
