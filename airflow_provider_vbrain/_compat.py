"""The one place that knows where Airflow 2 and Airflow 3 keep things.

Airflow 3 moved the authoring API to ``airflow.sdk``; the old paths still work
there but warn. Everything else in this package imports from here.
"""

from __future__ import annotations

from typing import Any

try:  # Airflow 3
    from airflow.sdk import BaseHook, BaseOperator, BaseSensorOperator, PokeReturnValue
    from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException
    from airflow.sdk.exceptions import TaskDeferralTimeout as DeferralTimeout
    from airflow.sdk.log import mask_secret

    AIRFLOW_V3 = True
except ImportError:  # Airflow 2.10+
    from airflow.exceptions import AirflowSensorTimeout, AirflowSkipException  # type: ignore

    class DeferralTimeout(Exception):  # type: ignore[no-redef]
        """Airflow 2 has no deferral-timeout error: it resumes with ``__fail__`` (below) instead."""

    from airflow.hooks.base import BaseHook  # type: ignore
    from airflow.models.baseoperator import BaseOperator  # type: ignore
    from airflow.sensors.base import BaseSensorOperator, PokeReturnValue  # type: ignore
    from airflow.utils.log.secrets_masker import mask_secret  # type: ignore

    AIRFLOW_V3 = False

#: The errors with which Airflow 2 resumes a task (``next_method="__fail__"``) whose deferral timed out.
AIRFLOW_2_DEFERRAL_TIMEOUTS = frozenset({"Trigger/execution timeout", "Trigger timeout"})

__all__ = [
    "AIRFLOW_2_DEFERRAL_TIMEOUTS",
    "AIRFLOW_V3",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "DeferralTimeout",
    "PokeReturnValue",
    "aget_connection",
    "default_deferrable",
    "mask_secret",
    "object_storage_path",
]


async def aget_connection(conn_id: str) -> Any:
    """Read an Airflow connection without blocking the event loop."""
    if hasattr(BaseHook, "aget_connection"):
        return await BaseHook.aget_connection(conn_id)
    from asgiref.sync import sync_to_async

    return await sync_to_async(BaseHook.get_connection)(conn_id)


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable`` setting."""
    from airflow.configuration import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)


def object_storage_path(url: str) -> Any:
    """Airflow's ``ObjectStoragePath`` for ``url`` (imported only when used)."""
    try:
        from airflow.sdk import ObjectStoragePath
    except ImportError:
        from airflow.io.path import ObjectStoragePath  # type: ignore
    return ObjectStoragePath(url)
