"""Apache Airflow provider for VBrain, Visagio's AI-applications platform."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict:
    """Describe this provider to Airflow's ``ProvidersManager``."""
    from airflow_provider_vbrain._airflow.form import provider_form
    from airflow_provider_vbrain._client.wire import DEFAULT_BASE_URL
    from airflow_provider_vbrain.connection import CONN_TYPE

    return {
        "package-name": "airflow-provider-vbrain",
        "name": "VBrain",
        "description": "Run VBrain applications (repositories and jobs) from Apache Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "VBrain",
                "external-doc-url": DEFAULT_BASE_URL,
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
        # Airflow 2's webserver rebuilds a task's links only from registered classes.
        "extra-links": ["airflow_provider_vbrain.links.vbrain.VBrainJobLink"],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_vbrain.hooks.vbrain.VBrainHook",
                "connection-type": CONN_TYPE,
                "hook-name": "VBrain",
                # Read by Airflow 3.2+; earlier lines ask the hook class, which describes the same form.
                **provider_form(),
            }
        ],
    }
