"""The trigger that waits on a VBrain job inside Airflow's triggerer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_vbrain.exceptions import VBrainError
from airflow_provider_vbrain.hooks.vbrain import VBrainAsyncHook
from airflow_provider_vbrain.jobs import EventStatus, JobEvent, Outcome, PollTracker, outcome_of

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
    """

    def __init__(
        self,
        job_id: str,
        repository_id: str,
        vbrain_conn_id: str = VBrainAsyncHook.default_conn_name,
        application_id: str | None = None,
        poll_interval: float = 10.0,
        end_time: float | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.repository_id = repository_id
        self.vbrain_conn_id = vbrain_conn_id
        self.application_id = application_id
        self.poll_interval = poll_interval
        self.end_time = end_time

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
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event = await self._wait()
        yield TriggerEvent(event.payload())

    async def _wait(self) -> JobEvent:
        hook = VBrainAsyncHook(self.vbrain_conn_id, self.application_id)
        tracker = PollTracker()
        last_raw = "unknown"
        while True:
            try:
                status = await hook.get_job_status(self.job_id, self.repository_id)
            except VBrainError as err:
                if not tracker.tolerate(err):
                    return self._event(EventStatus.ERROR, last_raw, str(err))
                self.log.warning(
                    "Polling VBrain job %s failed (%d in a row): %s", self.job_id, tracker.failures, err
                )
            else:
                last_raw = status.raw_state
                if tracker.observe(status):
                    self.log.info("VBrain job %s is %s", self.job_id, status.raw_state)
                outcome = outcome_of(status)
                if outcome is Outcome.SUCCEEDED:
                    return self._event(EventStatus.SUCCEEDED, last_raw)
                if outcome is Outcome.FAILED:
                    return self._event(EventStatus.FAILED, last_raw)
            pause = self.poll_interval
            if self.end_time is not None:
                remaining = self.end_time - time.time()
                if remaining <= 0:
                    return self._event(
                        EventStatus.TIMEOUT,
                        last_raw,
                        f"VBrain job {self.job_id} in repository {self.repository_id} still {last_raw} "
                        "when the wait's deadline passed",
                    )
                pause = min(pause, remaining)
            await asyncio.sleep(pause)

    def _event(self, status: EventStatus, job_status: str, message: str = "") -> JobEvent:
        return JobEvent(status, self.job_id, self.repository_id, job_status, message)
