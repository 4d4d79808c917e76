"""The trigger that waits on a VBrain job inside Airflow's triggerer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_vbrain._form import DEFAULT_CONN_ID
from airflow_provider_vbrain._waiting import JobWait
from airflow_provider_vbrain.exceptions import VBrainError
from airflow_provider_vbrain.hooks.vbrain import VBrainAsyncHook
from airflow_provider_vbrain.jobs import JobEvent, JobState, JobStatus

__all__ = ["VBrainJobTrigger"]


class VBrainJobTrigger(BaseTrigger):
    """Poll a VBrain job until it ends, then fire one event.

    Events carry ``status`` (see :class:`~airflow_provider_vbrain.jobs.EventStatus`:
    ``succeeded``, ``failed``, ``timeout`` or ``error``), ``job_id``,
    ``repository_id``, ``job_status`` and ``message``; never a result or a secret.
    Transient polling failures (429, 5xx, lost connections, after the hook's own
    retries) are tolerated up to
    :data:`~airflow_provider_vbrain.jobs.MAX_CONSECUTIVE_POLL_FAILURES` in a row.

    :param job_id: the job to wait on.
    :param repository_id: its repository.
    :param vbrain_conn_id: the Airflow connection, read asynchronously in the triggerer.
    :param application_id: overrides the connection's ``application_id``.
    :param poll_interval: seconds between status polls.
    :param end_time: wall-clock deadline (seconds since the epoch) or None. Absolute, so a
        trigger rebuilt after a triggerer restart keeps the original deadline.
    :param last_state: the job's state as the deferring task last saw it, so that the
        trigger logs only changes from there.
    """

    def __init__(
        self,
        job_id: str,
        repository_id: str,
        vbrain_conn_id: str = DEFAULT_CONN_ID,
        application_id: str | None = None,
        poll_interval: float = 10.0,
        end_time: float | None = None,
        last_state: str | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.repository_id = repository_id
        self.vbrain_conn_id = vbrain_conn_id
        self.application_id = application_id
        self.poll_interval = poll_interval
        self.end_time = end_time
        self.last_state = last_state

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "repository_id": self.repository_id,
                "vbrain_conn_id": self.vbrain_conn_id,
                "application_id": self.application_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "last_state": self.last_state,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event = await self._wait()
        yield TriggerEvent(event.payload())

    async def _wait(self) -> JobEvent:
        hook = VBrainAsyncHook(self.vbrain_conn_id, self.application_id)
        wait = JobWait(
            self.job_id,
            self.repository_id,
            poll_interval=self.poll_interval,
            end_time=self.end_time,
            last_state=_state(self.last_state),
            log=self.log,
        )
        while True:
            try:
                outcome: JobStatus | VBrainError = await hook.get_job_status(self.job_id, self.repository_id)
            except VBrainError as err:
                outcome = err
            step = wait.after(outcome)
            if isinstance(step, JobEvent):
                return step
            await asyncio.sleep(step)


def _state(value: str | None) -> JobState | None:
    try:
        return None if value is None else JobState(value)
    except ValueError:
        return None
