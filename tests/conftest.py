"""Test set-up shared by the whole suite.

Airflow reads ``AIRFLOW_HOME`` when first imported and creates it if missing,
so a throwaway home is made here, before any test module imports Airflow.
"""

from __future__ import annotations

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="vbrain-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(_HOME, "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ.pop("AIRFLOW_CONN_VBRAIN_DEFAULT", None)

import json  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

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
