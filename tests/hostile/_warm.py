"""Imported by the probes' fork server only: what a worker or triggerer has done long before it calls
VBrain, done once here so that no probe pays for it inside its time bound.

A worker has read connections before: the first read loads Airflow's secrets backends (and on
Airflow 2 configures every SQLAlchemy mapper for the ORM ``Connection``), about a second on a loaded
machine. It has imported its HTTP clients too. Both are done here, with a connection of its own.
"""

from __future__ import annotations

import contextlib
import json
import os

import aiohttp  # noqa: F401
import requests  # noqa: F401

from airflow_provider_vbrain._airflow.compat import BaseHook
from airflow_provider_vbrain._airflow.connections import read_settings

_WARM = "vbrain_hostile_warm"
os.environ[f"AIRFLOW_CONN_{_WARM.upper()}"] = json.dumps(
    {
        "conn_type": "vbrain",
        "host": "http://127.0.0.1:9",
        "login": "warm-up-user",
        "password": "warm-up-key",
        "extra": {"organization_id": "warm-up-org", "client_id": "warm-up-client"},
    }
)
with contextlib.suppress(Exception):
    read_settings(BaseHook.get_connection(_WARM))
del os.environ[f"AIRFLOW_CONN_{_WARM.upper()}"]
