"""Reading the VBrain connection from Airflow: once per hook on a worker, shared per event loop on
the triggerer. Its secrets (the key, the proxy's URL and password) are registered with Airflow's
secrets masker as it is read, and the settings carry the User-Agent both hooks send."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import platform
import time
import weakref
from typing import Any

from asgiref.sync import sync_to_async

from airflow_provider_vbrain._airflow.compat import aget_connection, mask_secret
from airflow_provider_vbrain.connection import VBrainSettings

__all__ = ["CONNECTION_REUSE_SECONDS", "loop_settings", "read_settings", "user_agent"]

#: Seconds for which hooks on one event loop reuse a connection another hook read (a changed
#: connection is seen by new triggers after at most this long).
CONNECTION_REUSE_SECONDS = 30.0

_LOOP_SETTINGS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[float, asyncio.Task[VBrainSettings]]]
] = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=1)
def user_agent() -> str:
    """What both hooks send as ``User-Agent``, e.g. ``airflow-provider-vbrain/0.1.0 Airflow/3.3.2
    Python/3.11.7``: the versions a VBrain operator needs to tell which clients call it."""
    from airflow import __version__ as airflow_version

    from airflow_provider_vbrain import __version__

    return (
        f"airflow-provider-vbrain/{__version__} Airflow/{airflow_version} Python/{platform.python_version()}"
    )


def read_settings(conn: Any, conn_id: str | None = None) -> VBrainSettings:
    """Settings from an Airflow connection, its secrets registered with Airflow's secrets masker.

    :param conn_id: the id to name in messages, when not ``conn.conn_id``.
    """
    settings = dataclasses.replace(VBrainSettings.from_connection(conn, conn_id), user_agent=user_agent())
    for secret in settings.secrets:
        mask_secret(secret)
    return settings


async def loop_settings(conn_id: str) -> VBrainSettings:
    """The connection's settings, read once per event loop and reuse period, however many ask at once.

    A triggerer that starts a thousand waits reads the connection once, not a thousand times (each
    read costs Airflow about 0.4 ms of CPU).
    """
    loop = asyncio.get_running_loop()
    readings = _LOOP_SETTINGS.setdefault(loop, {})
    entry = readings.get(conn_id)
    if entry is None or entry[0] <= time.monotonic():

        async def read() -> VBrainSettings:
            connection = await aget_connection(conn_id)
            # Off the loop: registering the key with the secrets masker talks to the supervisor
            # through a synchronous bridge that Airflow 3.0's triggerer refuses on its event loop.
            # asgiref's thread, not asyncio's: that bridge then sends from this event loop, in
            # turn with the triggerer's own messages. From a plain thread it would send from a
            # loop of its own, and the two could read each other's answers (3.0.6's trigger
            # runner then dies: "Response read out of order").
            return await sync_to_async(read_settings)(connection)

        task = loop.create_task(read())

        def forget_if_failed(done: asyncio.Task[VBrainSettings]) -> None:
            # A failed reading is not kept: the next hook asks Airflow again.
            current = readings.get(conn_id)
            failed = done.cancelled() or done.exception() is not None
            if failed and current is not None and current[1] is done:
                readings.pop(conn_id, None)

        task.add_done_callback(forget_if_failed)
        entry = readings[conn_id] = (time.monotonic() + CONNECTION_REUSE_SECONDS, task)
    return await asyncio.shield(entry[1])
