"""Apache Airflow provider for VBrain, Visagio's AI-applications platform."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict:
    """Describe this provider to Airflow's ``ProvidersManager``."""
    return {
        "package-name": "airflow-provider-vbrain",
        "name": "VBrain",
        "description": "Run VBrain applications (repositories and jobs) from Apache Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "VBrain",
                "external-doc-url": "https://vbrain.visagio.com",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "VBrain",
                "python-modules": ["airflow_provider_vbrain.hooks.vbrain"],
            }
        ],
        "operators": [
            {
                "integration-name": "VBrain",
                "python-modules": ["airflow_provider_vbrain.operators.vbrain"],
            }
        ],
        "sensors": [
            {
                "integration-name": "VBrain",
                "python-modules": ["airflow_provider_vbrain.sensors.vbrain"],
            }
        ],
        "triggers": [
            {
                "integration-name": "VBrain",
                "python-modules": ["airflow_provider_vbrain.triggers.vbrain"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_vbrain.hooks.vbrain.VBrainHook",
                "connection-type": "vbrain",
                "hook-name": "VBrain",
                # Read by Airflow 3.2+; earlier lines ask the hook, which answers from these.
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "Base URL", "login": "Username", "password": "API key"},
                    "placeholders": {
                        "host": "https://vbrain.visagio.com",
                        "login": "the VBrain user name",
                        "extra": '{"timeout": 60, "verify": true}',
                    },
                },
                "conn-fields": {
                    "organization_id": {
                        "label": "Organization ID",
                        "description": "Sent as the organization_id header (required).",
                        "schema": {"type": "string", "minLength": 1},
                    },
                    "client_id": {
                        "label": "Client ID",
                        "description": "Sent as the client_id header (required).",
                        "schema": {"type": "string", "minLength": 1},
                    },
                    "application_id": {
                        "label": "Application ID",
                        "description": "Default application, e.g. Tutorial; tasks may override it.",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
    }
