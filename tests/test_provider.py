"""Registration with Airflow: what `airflow providers ...` and the connection form see."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_provider_vbrain
from airflow_provider_vbrain import get_provider_info
from airflow_provider_vbrain._airflow.form import FORM_FIELDS


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


#: Prints what Airflow's UI gets for the vbrain connection form, in one shape for every line.
READ_THE_FORM = """
import json
try:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
except ImportError:  # Airflow 2: the Flask-AppBuilder UI reads the providers manager
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    behaviour = manager.field_behaviours.get("vbrain") or {}
    form = {
        "fields": {w.field_name: str(w.field.args[0]) for k, w in widgets.items() if "__vbrain__" in k},
        "labels": behaviour.get("relabeling", {}),
        "hidden": sorted(behaviour.get("hidden_fields", [])),
        "host_placeholder": behaviour.get("placeholders", {}).get("host"),
    }
else:  # Airflow 3: what the UI's connection form fetches (GET /ui/connections/hook_meta)
    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "vbrain"]
    standard = meta.model_dump()["standard_fields"] or {}
    names = {"url_schema": "schema"}
    form = {
        "fields": {k: v["schema"]["title"] for k, v in (meta.extra_fields or {}).items()},
        "labels": {k: f["title"] for k, f in standard.items() if f and f["title"]},
        "hidden": sorted(names.get(k, k) for k, f in standard.items() if f and f["hidden"]),
        "host_placeholder": (standard.get("host") or {}).get("placeholder"),
    }
print("FORM", json.dumps(form))
"""

#: What the form should show: every field _form describes, our labels, Port shown (Airflow 3.3.1
#: and 3.3.2 refuse the Test button of a connection whose Port is empty and hidden).
FORM = {
    "fields": {field.name: field.label for field in FORM_FIELDS},
    "labels": {"host": "Base URL", "login": "Username", "password": "API key"},
    "hidden": ["schema"],
    "host_placeholder": "https://vbrain.visagio.com",
}


def test_the_connection_form_has_our_fields_and_labels() -> None:
    """Read in a fresh interpreter, as a starting webserver or API server reads it.

    Airflow 3.2+ reads the provider info; 2.x, 3.0 and 3.1 ask the hook. Airflow 3.0 asks
    through Flask-AppBuilder, which a plain install lacks: it then shows no provider's
    fields and labels (extras are typed in the Extra box), and that is what is checked there.
    """
    import airflow

    done = subprocess.run(
        [sys.executable, "-c", READ_THE_FORM], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    form = json.loads(done.stdout[done.stdout.index("FORM ") + 5 :])
    if airflow.__version__.startswith("3.0.") and importlib.util.find_spec("flask_appbuilder") is None:
        assert form == {"fields": {}, "labels": {}, "hidden": [], "host_placeholder": None}
    else:
        assert form == FORM


#: Imports a module with every warning recorded; prints where each came from.
IMPORT_AND_LIST_WARNINGS = """
import json, warnings
import airflow
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import {module}
print("WARNINGS", json.dumps([[w.filename, w.lineno, w.category.__name__, str(w.message)] for w in caught]))
"""


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
    """A fresh interpreter: no warning points at our code.

    Airflow points a deprecation at the code that used the deprecated import path or
    name, so any warning located in this package is ours to fix. Warnings Airflow locates
    in itself (2.11 warns about its own metrics settings, say) are not about our code.
    """
    code = IMPORT_AND_LIST_WARNINGS.format(module=module)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    caught = json.loads(done.stdout[done.stdout.index("WARNINGS ") + 9 :])
    package = str(Path(airflow_provider_vbrain.__file__).parent)
    assert [w for w in caught if w[0].startswith(package)] == []


def test_the_form_types_the_extras_and_starts_from_the_defaults() -> None:
    """Airflow 3.2+ renders conn-fields from their JSON schema: number inputs, a switch-or-path, defaults."""
    form = get_provider_info()["connection-types"][0]["conn-fields"]
    types = {name: field["schema"]["type"] for name, field in form.items()}
    assert types == {
        "organization_id": "string",
        "client_id": "string",
        "application_id": ["string", "null"],
        "timeout": ["number", "null"],
        "download_timeout": ["number", "null"],
        "verify": ["boolean", "string", "null"],
        "retry_attempts": ["integer", "null"],
        "retry_base_delay": ["number", "null"],
        "retry_max_delay": ["number", "null"],
        "max_answer_bytes": ["integer", "null"],
        "max_download_bytes": ["integer", "null"],
        "job_url_template": ["string", "null"],
        "proxy": ["string", "null"],
    }
    defaults = {name: field["schema"].get("default") for name, field in form.items()}
    assert defaults == {
        "organization_id": None,
        "client_id": None,
        "application_id": None,
        "timeout": 60.0,
        "download_timeout": 21600.0,
        "verify": True,
        "retry_attempts": 5,
        "retry_base_delay": 1.0,
        "retry_max_delay": 30.0,
        "max_answer_bytes": 8 * 1024 * 1024,
        "max_download_bytes": None,
        "job_url_template": None,
        "proxy": None,
    }
    assert form["timeout"]["label"] == "Timeout (seconds)"
    assert all(field["description"] for field in form.values())


def test_the_forms_defaults_are_the_providers() -> None:
    """An extra left at the form's default reads the same as one never set."""
    from airflow_provider_vbrain.connection import VBrainSettings

    class Conn:
        conn_id, host, port, login, password = "c", None, None, "ana", "key"
        extra = json.dumps(
            {"organization_id": "a", "client_id": "b"}
            | {
                name: field["schema"].get("default")
                for name, field in _conn_fields().items()
                if name not in ("organization_id", "client_id")
            }
        )

    class Bare(Conn):
        extra = json.dumps({"organization_id": "a", "client_id": "b"})

    assert VBrainSettings.from_connection(Conn()) == VBrainSettings.from_connection(Bare())  # type: ignore[arg-type]


def _conn_fields() -> dict:
    return get_provider_info()["connection-types"][0]["conn-fields"]
