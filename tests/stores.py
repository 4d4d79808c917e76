"""A stand-in for Airflow 3.3's task state store, for tests that run on every Airflow line."""

from __future__ import annotations

import copy
import json
from typing import Any


class MemoryStore:
    """``context["task_state_store"]`` as Airflow 3.3 offers it: JSON values by key, shared by every
    try of one task instance. ``ops`` lists what was done, in order (``("set", key)``, ...)."""

    def __init__(self, **values: Any) -> None:
        self.values: dict[str, Any] = dict(values)
        self.ops: list[tuple[str, str]] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.ops.append(("get", key))
        return copy.deepcopy(self.values.get(key, default))

    def set(self, key: str, value: Any) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        json.dumps(value)  # JSON values only, as Airflow's store
        self.ops.append(("set", key))
        self.values[key] = copy.deepcopy(value)

    def delete(self, key: str) -> None:
        self.ops.append(("delete", key))
        self.values.pop(key, None)


def has_task_state_store() -> bool:
    """Whether the running Airflow gives tasks a task state store (3.3 and later)."""
    from airflow_provider_vbrain._airflow.compat import find

    return find("TaskStateStoreAccessor", "airflow.sdk.execution_time.context") is not None
