"""The VBrain connection's form in Airflow's UI, described once for every Airflow line.

Airflow 3.2 and later read it from the provider info; earlier lines ask the hook
class. Imports nothing of Airflow: the provider info is read while Airflow starts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from airflow_provider_vbrain._wire import DEFAULT_BASE_URL

__all__ = [
    "CONN_TYPE",
    "DEFAULT_CONN_ID",
    "FORM_FIELDS",
    "hook_field_behaviour",
    "hook_form_widgets",
    "provider_form",
]

CONN_TYPE = "vbrain"
DEFAULT_CONN_ID = "vbrain_default"


@dataclasses.dataclass(frozen=True)
class _FormField:
    """One extra of the connection, as the connection form shows it."""

    name: str
    label: str
    description: str
    required: bool = False


#: The extras with fields of their own in the connection form, in the order shown.
FORM_FIELDS = (
    _FormField("organization_id", "Organization ID", "Sent as the organization_id header (required).", True),
    _FormField("client_id", "Client ID", "Sent as the client_id header (required).", True),
    _FormField(
        "application_id", "Application ID", "Default application, e.g. Tutorial; tasks may override it."
    ),
    _FormField(
        "job_url_template",
        "Job page URL",
        "Optional: a job's page in VBrain's web UI, shown as the task's \"VBrain job\" link, e.g. "
        "https://vbrain.example.com/jobs/{job_id}. Placeholders: {job_id}, {repository_id}, "
        "{organization_id}, {client_id}, {application_id}.",
    ),
)
_HIDDEN_FIELDS = ["schema", "port"]
_RELABELING = {"host": "Base URL", "login": "Username", "password": "API key"}
_PLACEHOLDERS = {
    "host": DEFAULT_BASE_URL,
    "login": "the VBrain user name",
    "extra": '{"timeout": 60, "verify": true}',
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
            field.name: {
                "label": field.label,
                "description": field.description,
                "schema": {"type": "string", "minLength": 1}
                if field.required
                else {"type": ["string", "null"]},
            }
            for field in FORM_FIELDS
        },
    }


def hook_field_behaviour() -> dict[str, Any]:
    """The form's relabelling as a hook's ``get_ui_field_behaviour`` returns it (earlier Airflow lines)."""
    return {
        "hidden_fields": list(_HIDDEN_FIELDS),
        "relabeling": dict(_RELABELING),
        "placeholders": dict(_PLACEHOLDERS),
    }


def hook_form_widgets() -> dict[str, Any]:
    """The extra fields as a hook's ``get_connection_form_widgets`` returns them (earlier Airflow lines)."""
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
