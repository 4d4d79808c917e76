"""What operators and the sensor share: the cached hook, the deferral, and the handling of a job's end."""

from __future__ import annotations

import functools
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_vbrain._client.answers import checked_result
from airflow_provider_vbrain._client.polling import DEFAULT_MAX_POLL_INTERVAL
from airflow_provider_vbrain._client.waiting import (
    ResultAnswer,
    asks_result,
    job_goes_on,
    refused_failure,
    result_answer,
)
from airflow_provider_vbrain.exceptions import (
    VBrainError,
    VBrainJobTimeoutError,
)
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from airflow_provider_vbrain.jobs import EventStatus, JobEvent, JobState, JobStatus
from airflow_provider_vbrain.links.vbrain import JOB_LINK_XCOM_KEY
from airflow_provider_vbrain.triggers.vbrain import VBrainJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


#: Outputs larger than this (as JSON) are refused for XCom: the metadata database is no file store.
DEFAULT_MAX_RESULT_BYTES = 1024 * 1024
#: How long a task waits on a job by default: a week, as Airflow's sensors (and dbt Cloud's
#: operator) do. Long enough for any forecast; finite, so a stuck job or a missing triggerer
#: ends in a clear timeout instead of a task deferred forever.
DEFAULT_WAIT_TIMEOUT = timedelta(days=7)
#: Templated on every task, as other providers template their connection ids: rendered before the
#: hook is first built (it is built on first use, inside ``execute``).
CONNECTION_FIELDS = ("vbrain_conn_id", "application_id")


class VBrainTaskMixin:
    """The connection arguments every VBrain task takes, and its hook."""

    vbrain_conn_id: str
    application_id: str | None
    max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES
    log: Any  # the operator's logger
    #: The longest interval between two polls of a job (None: every ``poll_interval``).
    max_poll_interval: float | None = DEFAULT_MAX_POLL_INTERVAL

    @functools.cached_property
    def hook(self) -> VBrainHook:
        """The task's hook, built on first use (never while the DAG file is parsed)."""
        return VBrainHook(self.vbrain_conn_id, self.application_id)

    def push_job_link(self, context: Context, job_id: str, repository_id: str) -> None:
        """Record the job's page for the "VBrain job" link: empty without a ``job_url_template``.

        Recorded even when empty: Airflow 3 asks the link for it when the task ends, and its task
        SDK logs an ERROR for every XCom it is asked that was never pushed.
        """
        url = self.hook.settings.job_web_url(job_id, repository_id, self.application_id)
        context["ti"].xcom_push(key=JOB_LINK_XCOM_KEY, value=url or "")
        if url is not None:
            self.log.info("VBrain job page: %s", url)

    def job_trigger(
        self,
        job_id: str,
        repository_id: str,
        poll_interval: float,
        timeout: float | None,
        last_state: JobState | None = None,
    ) -> VBrainJobTrigger:
        """The trigger to defer to, with the deadline and the wait's start made absolute so a triggerer
        restart keeps both."""
        return VBrainJobTrigger(
            job_id=job_id,
            repository_id=repository_id,
            vbrain_conn_id=self.vbrain_conn_id,
            application_id=self.application_id,
            poll_interval=poll_interval,
            max_poll_interval=self.max_poll_interval,
            started_at=time.time(),
            end_time=None if timeout is None else time.time() + timeout,
            last_state=None if last_state is None else last_state.value,
        )

    def wait_here(
        self, job_id: str, repository_id: str, poll_interval: float, timeout: float | None
    ) -> JobStatus:
        """Wait on the job in this process (blocking its worker), polling as :meth:`job_trigger` does."""
        return self.hook.wait_for_job(
            job_id,
            repository_id,
            poll_interval=poll_interval,
            max_poll_interval=self.max_poll_interval,
            timeout=timeout,
        )

    def waiting_on(self) -> tuple[str, str] | None:
        """The job this task waits on (job id, repository id), once known."""
        return None

    def on_kill(self) -> None:
        """Say that the job goes on: VBrain has no endpoint that stops a job, so killing or clearing
        this task leaves it running (the trigger says the same when its wait is cancelled)."""
        waited = self.waiting_on()
        if waited is None:
            return
        job_id, repository_id = waited
        try:
            api_url = self.hook.job_url(job_id)
            page = self.hook.settings.job_web_url(job_id, repository_id, self.application_id)
        except VBrainError:  # the connection cannot be read: the ids still say which job
            api_url, page = f"repository {repository_id}", None
        self.log.warning("%s", job_goes_on(job_id, api_url, page))

    def raise_for_unsuccessful(self, event: JobEvent) -> None:
        """Turn every event but ``succeeded`` into the matching error (timeouts are the caller's)."""
        if event.status is EventStatus.SUCCEEDED:
            return
        if event.error is not None:  # the wait ran in this process and kept its error
            raise event.error
        if event.status is EventStatus.FAILED:
            raise self.failure(event.job_id, event.repository_id, event.job_status)
        if event.status is EventStatus.TIMEOUT:
            raise VBrainJobTimeoutError(
                event.job_id, event.repository_id, None, event.job_status or "unfinished"
            )
        raise VBrainError(event.message or f"waiting on VBrain job {event.job_id} failed")

    def failure(self, job_id: str, repository_id: str, job_status: str) -> VBrainError:
        """The error for a failed job; its log tail also goes to the task log."""
        error = self.hook.job_failure(job_id, repository_id, job_status)
        self.log.error("%s", error)
        return error

    def end_of(self, job_id: str, repository_id: str, job_status: str, *, fetch: bool) -> Any:
        """What a job that is over and did not fail gives the task: its output when ``fetch``
        (checked against ``max_result_bytes``), else None.

        ``/result`` is asked only for the output, or to confirm an end state other than
        ``finished`` (:func:`~airflow_provider_vbrain.jobs.success_by_state`): such a job fails
        the task, naming its state, unless ``/result`` answers 200.
        """
        if not asks_result(job_status, fetch):
            return None
        try:
            output = self.hook.get_job_result(job_id, repository_id)
        except VBrainError as err:
            answer = result_answer(job_status, err, fetch)
            if answer is ResultAnswer.CONFIRMS:
                return None
            if answer is ResultAnswer.ERROR:
                raise
            state = job_status or "without a job_status"
            failure = refused_failure(self.hook.job_failure(job_id, repository_id, state), err)
            self.log.error("%s", failure)
            raise failure from None
        return checked_result(job_id, output, self.max_result_bytes) if fetch else None


def wait_seconds(timeout: float | None, execution_timeout: Any, context: Any) -> float | None:
    """The wait's deadline in seconds: ``timeout``, or less when ``execution_timeout`` ends the task
    first (so that the wait's own timeout, with its clear message, comes before Airflow's)."""
    limit = seconds(execution_timeout)
    if not limit:
        return timeout
    started = getattr(context.get("ti"), "start_date", None)
    if started is not None:
        limit -= max(0.0, time.time() - started.timestamp())
    limit = max(limit, 1.0)
    return limit if timeout is None else min(timeout, limit)


def seconds(value: Any) -> float | None:
    """Seconds from a number or a ``timedelta`` (None stays None)."""
    if value is None:
        return None
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)


def deferral_backstop(timeout: float | None, poll_interval: float) -> timedelta | None:
    """The deferral's own timeout: after the trigger's deadline, so that the trigger's clear
    timeout event normally comes first, but finite, so a task never waits forever without a triggerer."""
    if timeout is None:
        return None
    return timedelta(seconds=timeout + max(60.0, 2 * poll_interval))


def max_interval(value: Any, poll_interval: float) -> float | None:
    """``max_poll_interval`` in seconds (None: fixed polling), checked against ``poll_interval``."""
    if value is None:
        return None
    limit = seconds(positive("max_poll_interval", value)) or 0.0
    if limit < poll_interval:
        raise ValueError(
            f"max_poll_interval ({value!r}) must not be below the first interval ({poll_interval!r} s); "
            "None polls at a fixed interval"
        )
    return limit


def positive(argument: str, value: Any) -> Any:
    """``value`` (seconds, or a ``timedelta``) if it is above zero: polling every 0 s would flood VBrain."""
    if (seconds(value) or 0) <= 0:
        raise ValueError(f"{argument} must be more than 0 seconds, got {value!r}")
    return value
