"""The one place that knows where each Airflow line keeps things, and how they behave.

Every name is looked up on its own, newest location first: Airflow 3 moved
the authoring API to ``airflow.sdk`` a piece at a time (``BaseOperator`` in
3.0, ``BaseHook`` in 3.1, the exceptions in 3.2), and the old paths warn
where the new ones exist. Deciding by major version, or importing a group of
names in one ``try``, breaks on the lines in between. Everything else in this
package imports Airflow's authoring names from here, and asks here about what
differs between lines: how a timed-out deferral comes back to a task, and in
which shape Airflow reads the connection form.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

__all__ = [
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "DeferralTimeout",
    "PokeReturnValue",
    "aget_connection",
    "airflow_stats",
    "default_deferrable",
    "deferral_timed_out",
    "end_event_xcoms_intact",
    "find",
    "mask_secret",
    "object_storage_path",
    "push_task_xcoms",
    "scheduler_starts_from_trigger",
    "start_trigger_args",
    "task_end_event",
    "task_state_store",
    "trigger_can_push_xcoms",
    "trigger_failures_retry",
    "triggerer_renders_templates",
    "xcom_arg_template",
    "xcom_value",
]


def find(name: str, *modules: str) -> Any:
    """``name`` from the first of ``modules`` that has it, or None when none does.

    List the newest location first: an old path that still works on a newer
    line usually warns there.
    """
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    return None


def _require(name: str, *modules: str) -> Any:
    found = find(name, *modules)
    if found is None:
        raise ImportError(f"this Airflow has no {name} in any of {', '.join(modules)}")
    return found


class _NoDeferralTimeout(Exception):
    """Stands in where Airflow has no deferral-timeout error (2.x): see :func:`deferral_timed_out`."""


if TYPE_CHECKING:
    from airflow.sdk import BaseHook, BaseOperator, BaseOperatorLink, BaseSensorOperator, PokeReturnValue
    from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException
    from airflow.sdk.exceptions import TaskDeferralTimeout as DeferralTimeout
    from airflow.sdk.log import mask_secret
else:
    BaseHook = _require("BaseHook", "airflow.sdk", "airflow.hooks.base")  # sdk: 3.1+
    BaseOperator = _require("BaseOperator", "airflow.sdk", "airflow.models.baseoperator")  # sdk: 3.0+
    BaseSensorOperator = _require("BaseSensorOperator", "airflow.sdk", "airflow.sensors.base")
    BaseOperatorLink = _require("BaseOperatorLink", "airflow.sdk", "airflow.models.baseoperatorlink")
    PokeReturnValue = _require("PokeReturnValue", "airflow.sdk", "airflow.sensors.base")
    # airflow.sdk.exceptions has these from 3.2; airflow.exceptions before (and warns after).
    AirflowSensorTimeout = _require("AirflowSensorTimeout", "airflow.sdk.exceptions", "airflow.exceptions")
    AirflowSkipException = _require("AirflowSkipException", "airflow.sdk.exceptions", "airflow.exceptions")
    DeferralTimeout = (
        find("TaskDeferralTimeout", "airflow.sdk.exceptions", "airflow.exceptions") or _NoDeferralTimeout
    )
    mask_secret = _require("mask_secret", "airflow.sdk.log", "airflow.utils.log.secrets_masker")

# How Airflow resumes a task only to fail it (its trigger failed, or its deferral timed out):
# next_method "__fail__" and the reason in next_kwargs["error"]. Airflow 3 names the reasons
# (TriggerFailureReason, beside BaseOperator in the task SDK) and raises DeferralTimeout for a
# timeout itself; Airflow 2's scheduler writes this text and raises a plain TaskDeferralError.
_TRIGGER_FAIL = find("TRIGGER_FAIL_REPR", "airflow.sdk.bases.operator") or "__fail__"
_REASONS = find("TriggerFailureReason", "airflow.sdk.bases.operator")
_DEFERRAL_TIMEOUT_ERROR = _REASONS.TRIGGER_TIMEOUT.value if _REASONS else "Trigger/execution timeout"


def deferral_timed_out(next_method: str, next_kwargs: Mapping[str, Any] | None) -> bool:
    """Whether Airflow resumes a task because its deferral timed out before any trigger fired.

    :param next_method: what Airflow resumes the task with (``resume_execution``'s argument).
    :param next_kwargs: the arguments Airflow resumes it with.
    """
    return next_method == _TRIGGER_FAIL and (next_kwargs or {}).get("error") == _DEFERRAL_TIMEOUT_ERROR


async def aget_connection(conn_id: str) -> Any:
    """Read an Airflow connection without blocking the event loop."""
    if hasattr(BaseHook, "aget_connection"):
        return await BaseHook.aget_connection(conn_id)
    from asgiref.sync import sync_to_async

    return await sync_to_async(BaseHook.get_connection)(conn_id)


def airflow_stats() -> Any:
    """Airflow's ``Stats``, which sends to whatever the deployment's ``[metrics]`` configures.

    From 3.2, the task SDK's (``airflow.sdk.observability.stats``): the one tasks and the triggerer
    set up, where ``airflow.stats`` warns. Before, ``airflow.stats`` (set up at first use).
    """
    return _require("Stats", "airflow.sdk.observability.stats", "airflow.stats")


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable`` setting."""
    from airflow.configuration import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)


def object_storage_path(url: str) -> Any:
    """Airflow's ``ObjectStoragePath`` for ``url`` (imported only when used)."""
    return _require("ObjectStoragePath", "airflow.sdk", "airflow.io.path")(url)


def xcom_value(ti_key: Any, key: str) -> Any:
    """The XCom ``key`` of the task instance ``ti_key``, or None.

    Airflow 3 asks for it on a worker (through the task SDK, when a task ends);
    Airflow 2 in the webserver (from the metadata database).
    """
    xcom = _require("XCom", "airflow.sdk.execution_time.xcom", "airflow.models.xcom")
    return xcom.get_value(ti_key=ti_key, key=key)


def start_trigger_args(**kwargs: Any) -> Any:
    """Airflow's ``StartTriggerArgs``: the trigger a task starts with when it starts on the triggerer."""
    return _require("StartTriggerArgs", "airflow.triggers.base")(**kwargs)


def task_end_event(succeeded: bool, xcoms: Mapping[str, Any] | None = None) -> Any:
    """The trigger event that ends a task on the triggerer, without resuming it on a worker; None
    where this Airflow has none (``TaskSuccessEvent`` and ``TaskFailedEvent``, from Airflow 2.10).

    :param succeeded: end the task ``success`` (else ``failed``).
    :param xcoms: XComs Airflow pushes for the task as it ends it (key to JSON value).
    """
    event = find("TaskSuccessEvent" if succeeded else "TaskFailedEvent", "airflow.triggers.base")
    return None if event is None else event(xcoms=dict(xcoms) if xcoms else None)


def end_event_xcoms_intact() -> bool:
    """Whether tasks pulling the XComs that a task-end event carries get the values pushed.

    Airflow 2 writes and reads them through the same ``XCom`` serialization. Airflow 3's
    triggerer stores them serialized (``XComModel.set``) where the task SDK expects the values
    themselves, so a task pulling one gets its JSON text: ``'{"value": 200}'`` for a dict, a
    quoted string for a string (seen on 3.0.6 and 3.3.2 with a real scheduler and triggerer).
    There, trigger code pushes them itself (:func:`push_task_xcoms`).
    """
    return find("XCom", "airflow.sdk.execution_time.xcom") is None


def trigger_can_push_xcoms(task_instance: Any) -> bool:
    """Whether trigger code can push XComs for ``task_instance`` as a worker does (Airflow 3).

    Airflow 3's triggerer gives trigger code the task SDK's channel to its supervisor, which
    relays an XCom write to the execution API, as a task's supervisor does (``SetXCom``,
    accepted by the triggerer from 3.0), and gives the trigger the task instance it runs for.
    Neither exists outside a triggerer (a trigger run by hand, or on Airflow 2).

    :param task_instance: the trigger's ``task_instance``.
    """
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return (
        not end_event_xcoms_intact()
        and hasattr(runner, "SUPERVISOR_COMMS")
        and all(getattr(task_instance, name, None) is not None for name in ("dag_id", "task_id", "run_id"))
    )


async def push_task_xcoms(task_instance: Any, xcoms: Mapping[str, Any]) -> None:
    """Push ``xcoms`` for ``task_instance`` from trigger code, through the task SDK's ``XCom`` (so
    through the configured XCom backend, as a worker pushes them): see :func:`trigger_can_push_xcoms`.

    :param task_instance: the trigger's ``task_instance``.
    :param xcoms: key to value.
    """
    xcom = _require("XCom", "airflow.sdk.execution_time.xcom")
    ids = {
        "dag_id": task_instance.dag_id,
        "task_id": task_instance.task_id,
        "run_id": task_instance.run_id,
        "map_index": getattr(task_instance, "map_index", -1),
    }
    for key, value in xcoms.items():
        if hasattr(xcom, "aset"):  # 3.3
            await xcom.aset(key, value, **ids)
        else:  # Off the event loop: 3.0 to 3.2's supervisor channel refuses a synchronous call on it.
            from asgiref.sync import sync_to_async

            await sync_to_async(xcom.set)(key, value, **ids)


@functools.lru_cache(maxsize=1)
def scheduler_starts_from_trigger() -> bool:
    """Whether Airflow's scheduler starts a task with ``start_trigger_args`` on the triggerer.

    Airflow 2.10 to 3.0, and 3.3, do. Airflow 3.1 and 3.2 keep ``start_trigger_args`` but their
    scheduler's code for it is commented out: the task starts on a worker like any other. No name
    marks it, so the check reads the scheduler's code (``DagRun.schedule_tis``).
    """
    dag_run = find("DagRun", "airflow.models.dagrun")
    try:
        source = inspect.getsource(dag_run.schedule_tis)
    except (AttributeError, OSError, TypeError):
        return False
    return any(".defer_task(" in line and not line.strip().startswith("#") for line in source.splitlines())


@functools.lru_cache(maxsize=1)
def trigger_failures_retry() -> bool:
    """Whether Airflow retries a task that its trigger failed (a ``TaskFailedEvent``) when the
    task has retries left, as it retries a task that raised (Airflow 3.3; earlier lines fail it
    for good).

    No name marks the change, so the check reads the code Airflow runs for the event.
    """
    handler = find("handle_event_submit", "airflow.models.trigger")
    event = find("BaseTaskEndEvent", "airflow.triggers.base")
    if event is None or not callable(getattr(handler, "dispatch", None)):
        return False
    try:
        source = inspect.getsource(handler.dispatch(event))
    except (OSError, TypeError):
        return False
    return "is_eligible_to_retry" in source


def triggerer_renders_templates() -> bool:
    """Whether the triggerer renders a task's templated trigger arguments (Airflow 3.3 and later).

    Earlier lines pass the trigger arguments of a task started from the triggerer as they
    were written in the DAG file: Jinja and XCom values would reach the trigger unrendered.
    """
    return callable(getattr(find("BaseTrigger", "airflow.triggers.base"), "render_template_fields", None))


def xcom_arg_template(value: Any) -> str | None:
    """A Jinja template pulling the same XCom as ``value`` (an ``XComArg`` such as ``task.output``);
    None for anything else, or an ``XComArg`` that is not a plain pull.

    The triggerer renders templates but cannot resolve an ``XComArg`` kept in trigger arguments:
    serialized with the DAG, it comes back as a bare reference.
    """
    plain = find("PlainXComArg", "airflow.sdk.definitions.xcom_arg", "airflow.models.xcom_arg")
    if plain is None or not isinstance(value, plain):
        return None
    task_id, key = json.dumps(value.operator.task_id), json.dumps(value.key)
    # map_indexes=-1 asks for the one value; without it Airflow 3.3's triggerer cannot answer the pull.
    return "{{ task_instance.xcom_pull(task_ids=" + task_id + ", key=" + key + ", map_indexes=-1) }}"


def task_state_store(context: Any) -> Any:
    """The task instance's state store, where this Airflow has one (3.3 and later, AIP-103), else None.

    ``context["task_state_store"]``: JSON values by key, kept across the tries of one task instance
    in one DAG run (``get(key, default)``, ``set(key, value)``, ``delete(key)``), listed under the
    task instance in Airflow's UI. Detected by what the context holds, not by version: a test's
    context, or a line without the store, has none.
    """
    getter = getattr(context, "get", None)
    store = getter("task_state_store") if callable(getter) else None
    has_api = callable(getattr(store, "get", None)) and callable(getattr(store, "set", None))
    return store if has_api else None
