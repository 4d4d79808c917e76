"""Imported by the probes' fork server only: what a worker or triggerer has done long before it calls
VBrain, done once here so that no probe pays for it inside its time bound.

Airflow 2 builds an ORM ``Connection`` for every connection it reads, and the first one configures
every SQLAlchemy mapper (about a second on a loaded machine).
"""

from __future__ import annotations

import contextlib

import airflow

if airflow.__version__.startswith("2."):
    with contextlib.suppress(Exception):
        from airflow.models.connection import Connection  # noqa: F401
        from sqlalchemy.orm import configure_mappers

        configure_mappers()
