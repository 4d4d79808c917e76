"""Registration with Airflow: what `airflow providers ...` and the connection form see."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_provider_vbrain
from airflow_provider_vbrain import get_provider_info


def airflow_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def json_rows(out: str) -> list[dict]:
    """The JSON table in a CLI's output (Airflow may log lines around it)."""
    rows, _ = json.JSONDecoder().raw_decode(out[out.index("[{") :])
    return rows


def test_provider_info_validates_against_airflows_schema() -> None:
    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_provider_info_names_the_distribution_and_version() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-vbrain"
    assert info["versions"] == [airflow_provider_vbrain.__version__]


def test_every_class_and_module_named_in_provider_info_imports() -> None:
    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for conn in info["connection-types"]:
        module, _, name = conn["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == conn["connection-type"] == "vbrain"
    for path in info["extra-links"]:
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name)().name == "VBrain job"


def test_airflow_registers_the_job_link() -> None:
    from airflow.providers_manager import ProvidersManager

    assert "airflow_provider_vbrain.links.vbrain.VBrainJobLink" in ProvidersManager().extra_links_class_names


def test_airflow_providers_list_shows_the_provider() -> None:
    out = airflow_cli("providers", "list", "--output", "json")
    names = {row["package_name"]: row for row in json_rows(out)}
    assert names["airflow-provider-vbrain"]["version"] == airflow_provider_vbrain.__version__


def test_airflow_providers_hooks_shows_the_vbrain_connection_type() -> None:
    out = airflow_cli("providers", "hooks", "--output", "json")
    rows = {row["connection_type"]: row for row in json_rows(out)}
    assert rows["vbrain"]["class"] == "airflow_provider_vbrain.hooks.vbrain.VBrainHook"


def test_connection_form_fields_and_labels() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    for field in ("organization_id", "client_id", "application_id", "job_url_template"):
        assert f"extra__vbrain__{field}" in widgets
    behaviour = manager.field_behaviours["vbrain"]
    assert behaviour["relabeling"] == {"host": "Base URL", "login": "Username", "password": "API key"}
    assert "vbrain.visagio.com" in str(behaviour["placeholders"])


@pytest.mark.parametrize(
    "module",
    [
        "airflow_provider_vbrain.hooks.vbrain",
        "airflow_provider_vbrain.operators.vbrain",
        "airflow_provider_vbrain.sensors.vbrain",
        "airflow_provider_vbrain.triggers.vbrain",
        "airflow_provider_vbrain.links.vbrain",
    ],
)
def test_importing_our_modules_warns_nothing(module: str) -> None:
    """A fresh interpreter with warnings as errors: no deprecation warning from our imports."""
    code = f"import airflow, warnings; warnings.simplefilter('error'); import {module}"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
