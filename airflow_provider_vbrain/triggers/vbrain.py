"""The trigger that waits on a VBrain job inside Airflow's triggerer."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_vbrain._airflow.compat import (
    end_event_xcoms_intact,
    push_task_xcoms,
    task_end_event,
    trigger_can_push_xcoms,
)
from airflow_provider_vbrain._client.answers import checked_result
from airflow_provider_vbrain._client.endpoints import job_path
from airflow_provider_vbrain._client.polling import DEFAULT_MAX_POLL_INTERVAL
from airflow_provider_vbrain._client.waiting import (
    JobWait,
    ResultAnswer,
    asks_result,
    job_goes_on,
    refused_failure,
    result_answer,
)
from airflow_provider_vbrain.connection import DEFAULT_CONN_ID
from airflow_provider_vbrain.exceptions import VBrainError
from airflow_provider_vbrain.hooks.vbrain import VBrainAsyncHook
from airflow_provider_vbrain.jobs import EventStatus, JobEvent, JobState, JobStatus
from airflow_provider_vbrain.links.vbrain import JOB_LINK_XCOM_KEY

__all__ = ["VBrainJobTrigger"]

T = TypeVar("T")


class VBrainJobTrigger(BaseTrigger):
    """Poll a VBrain job until it ends, then fire one event (or, told to, end the task itself).

    Events carry ``status`` (see :class:`~airflow_provider_vbrain.jobs.EventStatus`:
    ``succeeded``, ``failed``, ``timeout`` or ``error``), ``job_id``,
    ``repository_id``, ``job_status`` and ``message``; never a result or a secret.
    Transient polling failures (429, 5xx, lost connections, after the hook's own
    retries) are tolerated up to
    :data:`~airflow_provider_vbrain._client.waiting.MAX_CONSECUTIVE_POLL_FAILURES` in a row.

    :param job_id: the job to wait on.
    :param repository_id: its repository.
    :param vbrain_conn_id: the Airflow connection, read asynchronously in the triggerer.
    :param application_id: overrides the connection's ``application_id``.
    :param poll_interval: seconds between status polls at first.
    :param end_time: wall-clock deadline (seconds since the epoch) or None. Absolute, so a
        trigger rebuilt after a triggerer restart keeps the original deadline.
    :param last_state: the job's state as the deferring task last saw it, so that the
        trigger logs only changes from there.
    :param end_task: when the job finished, end the task here (Airflow 2.10+), without resuming
        it on a worker: the job's output is pushed as ``return_value`` with its "VBrain job" link,
        and Airflow marks the task ``success``. On Airflow 2 Airflow pushes them with the event;
        on Airflow 3 the trigger pushes them itself first, as a worker does (see
        :func:`~airflow_provider_vbrain._airflow.compat.push_task_xcoms`). Where neither can be done
        (a trigger run outside a triggerer), the event resumes the task on a worker.
    :param end_failed_task: with ``end_task``, also end the task here, ``failed``, when the job
        failed or polling failed for good, logging the same error the task would raise (a
        failed job's log tail). A timeout always resumes the task, which times out or skips.
    :param fetch_result: with ``end_task``, push the job's output as ``return_value``.
    :param max_result_bytes: with ``end_task``, an output larger than this as JSON fails the
        task instead (see :class:`~airflow_provider_vbrain.exceptions.VBrainResultTooLargeError`).
    :param max_poll_interval: the longest interval the polls grow to as the job runs on (see
        :class:`~airflow_provider_vbrain._client.polling.PollSchedule`); None polls every
        ``poll_interval``.
    :param started_at: when the wait began (seconds since the epoch). The interval grows with the
        time since, so a trigger rebuilt after a triggerer restart goes on with its schedule instead
        of starting over. None (a task started on the triggerer): the task instance's start, else
        when the trigger first runs.
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
        end_task: bool = False,
        end_failed_task: bool = False,
        fetch_result: bool = True,
        max_result_bytes: int | None = None,
        max_poll_interval: float | None = DEFAULT_MAX_POLL_INTERVAL,
        started_at: float | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.repository_id = repository_id
        self.vbrain_conn_id = vbrain_conn_id
        self.application_id = application_id
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.started_at = started_at
        self.end_time = end_time
        self.last_state = last_state
        self.end_task = end_task
        self.end_failed_task = end_failed_task
        self.fetch_result = fetch_result
        self.max_result_bytes = max_result_bytes

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
                "end_task": self.end_task,
                "end_failed_task": self.end_failed_task,
                "fetch_result": self.fetch_result,
                "max_result_bytes": self.max_result_bytes,
                "max_poll_interval": self.max_poll_interval,
                "started_at": self.started_at,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            event = await self._wait()
        except asyncio.CancelledError:
            # The task was cleared, marked or killed (or this triggerer stops and another takes
            # the wait over): VBrain has no cancel endpoint, so say the job goes on.
            await self._say_the_job_goes_on()
            raise
        end = await self._task_end(event) if self.end_task else None
        yield end if end is not None else TriggerEvent(event.payload())

    async def _task_end(self, event: JobEvent) -> TriggerEvent | None:
        """The event that ends the task here, or None to resume it on a worker with ``event``."""
        if event.status is EventStatus.TIMEOUT:
            return None
        if event.status is not EventStatus.SUCCEEDED and not self.end_failed_task:
            return None
        # Hooks on one event loop share the connection's reading and the HTTP session.
        hook = VBrainAsyncHook(self.vbrain_conn_id, self.application_id)
        xcoms: dict[str, Any] = {}
        try:
            settings = await hook.get_settings()
            url = settings.job_web_url(self.job_id, self.repository_id, self.application_id)
            pushes = url is not None or (event.status is EventStatus.SUCCEEDED and self.fetch_result)
            if pushes and not self._pushes_xcoms():
                return None  # a worker pushes them
            if url is not None:
                xcoms[JOB_LINK_XCOM_KEY] = url
                self.log.info("VBrain job page: %s", url)
            if event.status is EventStatus.SUCCEEDED:
                if asks_result(event.job_status, self.fetch_result):
                    result = await self._result(hook, event.job_status)
                    if self.fetch_result:
                        xcoms["return_value"] = checked_result(self.job_id, result, self.max_result_bytes)
                self.log.info("VBrain job %s finished", self.job_id)
                return await self._end(True, xcoms)
            if event.status is EventStatus.FAILED:
                raise await hook.job_failure(self.job_id, self.repository_id, event.job_status)
            raise event.error or VBrainError(event.message or f"waiting on VBrain job {self.job_id} failed")
        except VBrainError as err:
            if not self.end_failed_task:
                return None  # the worker the task resumes on fails it, or tries again
            self.log.error("%s", err)  # what the task's log shows when the task raises it
            return await self._end(False, xcoms)

    async def _result(self, hook: VBrainAsyncHook, job_status: str) -> Any:
        """The job's output; an end state other than ``finished`` that ``/result`` refuses raises the
        job's failure (see :func:`~airflow_provider_vbrain._client.waiting.result_error`)."""
        try:
            return await hook.get_job_result(self.job_id, self.repository_id)
        except VBrainError as err:
            answer = result_answer(job_status, err, self.fetch_result)
            if answer is ResultAnswer.CONFIRMS:
                return None
            if answer is ResultAnswer.ERROR:
                raise
            state = job_status or "without a job_status"
            raise refused_failure(
                await hook.job_failure(self.job_id, self.repository_id, state), err
            ) from None

    def _pushes_xcoms(self) -> bool:
        """Whether the task's XComs can be pushed from here, intact for the tasks that pull them."""
        return end_event_xcoms_intact() or trigger_can_push_xcoms(getattr(self, "task_instance", None))

    async def _end(self, succeeded: bool, xcoms: dict[str, Any]) -> TriggerEvent:
        """The event that ends the task, its XComs pushed: by Airflow with the event (Airflow 2), or
        here first, as a worker pushes them (Airflow 3, whose triggerer would store the event's
        XComs as JSON text)."""
        if xcoms and not end_event_xcoms_intact():
            await push_task_xcoms(self.task_instance, xcoms)
            xcoms = {}
        return task_end_event(succeeded, xcoms)

    async def _say_the_job_goes_on(self) -> None:
        api_url = f"repository {self.repository_id}"
        page = None
        try:
            settings = await VBrainAsyncHook(self.vbrain_conn_id, self.application_id).get_settings()
            api_url = settings.api_url + job_path(self.job_id)
            page = settings.job_web_url(self.job_id, self.repository_id, self.application_id)
        except (VBrainError, asyncio.CancelledError):
            pass  # the ids alone still say which job
        self.log.warning("%s", job_goes_on(self.job_id, api_url, page))

    async def _wait(self) -> JobEvent:
        hook = VBrainAsyncHook(self.vbrain_conn_id, self.application_id)
        wait = JobWait(
            self.job_id,
            self.repository_id,
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
            started_at=self.started_at or _start_of(getattr(self, "task_instance", None)),
            end_time=self.end_time,
            last_state=_state(self.last_state),
            log=self.log,
        )

        async def read_status() -> JobStatus:
            # A poll held back by the connection's back-off still ends at the wait's deadline (a poll
            # due at the deadline gets a second, to read the job's last state).
            remaining = wait.remaining()
            limit = None if remaining is None else max(remaining, 1.0)
            return await _within(hook.get_job_status(self.job_id, self.repository_id), limit)

        # The job was just submitted or asked about: the first poll comes somewhere in the interval.
        step: JobEvent | float = wait.first_delay()
        while not isinstance(step, JobEvent):
            if step > 0:
                await asyncio.sleep(step)
            try:
                step = await wait.apoll(read_status)
            except asyncio.TimeoutError:
                return wait.timed_out()
        return step


async def _within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """``awaitable``'s value, or :class:`TimeoutError` after ``seconds`` (None: no limit)."""
    if seconds is None:
        return await awaitable
    if sys.version_info >= (3, 11):  # a timer on the loop, no task of its own
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


def _start_of(task_instance: Any) -> float | None:
    """When the task instance started (seconds since the epoch), if it says."""
    timestamp = getattr(getattr(task_instance, "start_date", None), "timestamp", None)
    return timestamp() if callable(timestamp) else None


def _state(value: str | None) -> JobState | None:
    try:
        return None if value is None else JobState(value)
    except ValueError:
        return None
