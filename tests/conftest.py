"""Test set-up shared by the whole suite.

Airflow reads ``AIRFLOW_HOME`` when first imported and creates it if missing,
so a throwaway home is made here, before any test module imports Airflow.
"""

from __future__ import annotations

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="vbrain-airflow-home-")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The DAG files end-to-end tests run: the examples and the test DAGs, linked into one folder.
DAGS_FOLDER = os.path.join(_HOME, "dags")
os.makedirs(DAGS_FOLDER)
for _folder in ("example_dags", os.path.join("tests", "e2e", "dags")):
    _source = os.path.join(_REPO, _folder)
    for _name in sorted(os.listdir(_source)) if os.path.isdir(_source) else ():
        if _name.endswith(".py") and not _name.startswith("_"):
            os.symlink(os.path.join(_source, _name), os.path.join(DAGS_FOLDER, _name))
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = DAGS_FOLDER
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ.pop("AIRFLOW_CONN_VBRAIN_DEFAULT", None)

import json  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

# pytester runs the emulator's pytest plugin the way a user's project would.
pytest_plugins = ["pytester"]

#: The API key of every test connection: long and full of characters that tempt
#: escaping bugs, so a leak is easy to grep for.
API_KEY = "k3y-<&\"'%s{}\\/ spaces-and-ünïcode-9f8e7d"


def connection_json(url: str, **overrides: Any) -> str:
    """The ``AIRFLOW_CONN_*`` value for a VBrain connection to ``url``."""
    conn: dict[str, Any] = {
        "conn_type": "vbrain",
        "host": url,
        "login": "ana",
        "password": API_KEY,
        "extra": {"organization_id": "acme", "client_id": "ops", "application_id": "Tutorial"},
    }
    extra = overrides.pop("extra", None)
    conn.update(overrides)
    if extra:
        conn["extra"].update(extra)
    return json.dumps(conn)


@pytest.fixture
def vbrain_conn(vbrain_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A ``vbrain_default`` connection to a clean emulator, with fast retries."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_VBRAIN_DEFAULT",
        connection_json(vbrain_emulator.url, extra={"retry_base_delay": 0.01, "retry_max_delay": 0.05}),
    )
    return vbrain_emulator


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata database, made once per session for the tests that run DAGs."""
    from airflow.utils.db import resetdb

    resetdb()


@pytest.fixture(scope="session")
def dag_bag(airflow_db: None) -> Any:
    """Every DAG in :data:`DAGS_FOLDER`, parsed once; import errors fail the test that asks."""
    from airflow.models import DagBag

    bag = DagBag(dag_folder=DAGS_FOLDER)
    assert not bag.import_errors, bag.import_errors
    return bag
