"""The sensor that waits for a VBrain job to end."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_vbrain._airflow.compat import (
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    DeferralTimeout,
    PokeReturnValue,
    default_deferrable,
    deferral_timed_out,
    scheduler_starts_from_trigger,
    start_trigger_args,
    trigger_failures_retry,
    triggerer_renders_templates,
    xcom_arg_template,
)
from airflow_provider_vbrain._client.polling import DEFAULT_MAX_POLL_INTERVAL, PollSchedule
from airflow_provider_vbrain._client.waiting import JobWait
from airflow_provider_vbrain._tasks.task import (
    CONNECTION_FIELDS,
    DEFAULT_MAX_RESULT_BYTES,
    VBrainTaskMixin,
    deferral_backstop,
    max_interval,
    positive,
    seconds,
)
from airflow_provider_vbrain.jobs import EventStatus, JobEvent, read_event
from airflow_provider_vbrain.links.vbrain import VBrainJobLink

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["VBrainJobSensor"]

_TRIGGER = "airflow_provider_vbrain.triggers.vbrain.VBrainJobTrigger"
#: What the trigger is given when the task starts on the triggerer: the sensor's fields of the same names.
_TRIGGER_FIELDS = ("job_id", "repository_id", "vbrain_conn_id", "application_id")


class VBrainJobSensor(VBrainTaskMixin, BaseSensorOperator):
    """Wait for a VBrain job to end; return its ``output`` when it finished.

    Done when ``GET /job/{job_id}`` answers 200. A ``finished`` job's output
    (from ``/result``) becomes the task's return value (XCom ``return_value``);
    a ``failed`` job fails the task with an error naming the job and quoting the
    end of its logs, and so does a job that ended in any other state (``cancelled``, say)
    unless ``/result`` confirms it (asked then even with ``fetch_result=False``).
    Killing or clearing the sensor does not stop the job; the task log says so.

    Modes: ``poke`` and ``reschedule`` poll from a worker; ``deferrable=True``
    hands polling to :class:`~airflow_provider_vbrain.triggers.vbrain.VBrainJobTrigger`
    on the triggerer, holding no worker slot. ``timeout`` and ``soft_fail`` mean the
    same in all three: a timeout fails the task with ``AirflowSensorTimeout``, or
    skips it under ``soft_fail``; a failed job always fails it. In deferrable mode the
    deadline travels inside the trigger, and the deferral itself times out a little
    later as a backstop in case no triggerer runs.

    Transient polling failures (429, 5xx, lost connections) are tolerated up to
    :data:`~airflow_provider_vbrain._client.waiting.MAX_CONSECUTIVE_POLL_FAILURES` in a row in
    poke and deferrable modes; in reschedule mode each poke is a fresh start, so they
    are tolerated until the sensor's timeout.

    :param job_id: the job to wait on (templated).
    :param repository_id: its repository (templated).
    :param fetch_result: return the job's output; False (or ``do_xcom_push=False``) returns None
        and reads no output.
    :param vbrain_conn_id: the Airflow connection to use.
    :param application_id: overrides the connection's ``application_id``.
    :param deferrable: wait on the triggerer (default: Airflow's ``[operators] default_deferrable``).
    :param poke_interval: seconds between polls at first, in every mode.
    :param max_poll_interval: the longest interval between polls, which grow from ``poke_interval``
        to a tenth of the time waited so far (docs: "Polling"); None polls every ``poke_interval``.
        With ``exponential_backoff=True``, Airflow's own back-off paces the poke and reschedule modes.
    :param max_result_bytes: refuse an output larger than this as JSON (too big for XCom),
        with advice to download it instead; None for no limit.
    :param start_from_trigger: run the whole wait on the triggerer, without a worker (implies
        ``deferrable=True``): the trigger ends the task itself, pushing the job's output and
        link, and fails it when the job failed (logging why); a task with retries left is retried
        by Airflow (3.3 and later) or, before 3.3, resumes on a worker that fails it, so Airflow
        retries it.
        Where this Airflow cannot start it there (Airflow 3.1 and 3.2, whose scheduler does not;
        templated or XCom arguments before Airflow 3.3; a mapped sensor), the sensor warns and
        defers from a worker as usual. See the docs'
        "Deferrable, poke or reschedule".
    """

    template_fields: Sequence[str] = ("job_id", "repository_id", *CONNECTION_FIELDS)
    ui_color = "#d7ecf9"
    operator_extra_links = (VBrainJobLink(),)

    def __init__(
        self,
        *,
        job_id: str,
        repository_id: str,
        fetch_result: bool = True,
        vbrain_conn_id: str = "vbrain_default",
        application_id: str | None = None,
        deferrable: bool | None = None,
        poke_interval: float = 10,
        max_poll_interval: float | None = DEFAULT_MAX_POLL_INTERVAL,
        max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES,
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=positive("poke_interval", poke_interval), **kwargs)
        if start_from_trigger and deferrable is False:
            raise ValueError("start_from_trigger=True waits on the triggerer: it needs deferrable=True")
        self.max_result_bytes = max_result_bytes
        self.max_poll_interval = max_interval(max_poll_interval, float(self.poke_interval))
        self.job_id = job_id
        self.repository_id = repository_id
        self.fetch_result = fetch_result
        self.vbrain_conn_id = vbrain_conn_id
        self.application_id = application_id
        self.deferrable = start_from_trigger or (default_deferrable() if deferrable is None else deferrable)
        self._wait: JobWait | None = None
        self.start_from_trigger = start_from_trigger and self._start_on_the_triggerer()

    def _start_on_the_triggerer(self) -> bool:
        """Describe the trigger Airflow starts the task with, if this Airflow can; else warn and say no.

        The arguments are fixed when the DAG is parsed. Before Airflow 3.3 the triggerer passes
        them as written, so a Jinja or XCom value would reach the trigger unrendered; from 3.3
        it renders the templated ones (an ``XComArg`` as the Jinja pull it stands for).
        """
        arguments = {name: getattr(self, name) for name in _TRIGGER_FIELDS}
        late = [name for name, value in arguments.items() if _rendered_when_run(value)]
        if late and triggerer_renders_templates():
            for name in late:
                if not isinstance(arguments[name], str):
                    arguments[name] = xcom_arg_template(arguments[name])
            late = [name for name in late if arguments[name] is None]
        if not scheduler_starts_from_trigger():
            warnings.warn(
                f"{self.task_id}: start_from_trigger=True, but this Airflow's scheduler does not start "
                "tasks on the triggerer (Airflow 3.1 and 3.2): the sensor defers from a worker instead",
                UserWarning,
                stacklevel=3,
            )
            return False
        if late:
            warnings.warn(
                f"{self.task_id}: start_from_trigger=True, but {', '.join(late)} take their value when "
                "the task runs, and this Airflow's triggerer would get them unrendered (it renders "
                "Jinja and XCom values from Airflow 3.3): the sensor defers from a worker instead",
                UserWarning,
                stacklevel=3,
            )
            return False
        timeout = seconds(self.timeout)
        self.start_trigger_args = start_trigger_args(
            trigger_cls=_TRIGGER,
            trigger_kwargs={
                **arguments,
                "poll_interval": float(self.poke_interval),
                "max_poll_interval": self.max_poll_interval,
                "started_at": None,  # when the task starts there
                # The deadline is the deferral's own timeout, made absolute by Airflow when it defers.
                "end_time": None,
                "last_state": None,
                # The trigger ends the task itself, so no worker runs it at all. A failure goes back
                # to a worker when the task has retries and this Airflow would not retry a task its
                # trigger failed (before 3.3).
                "end_task": True,
                "end_failed_task": not self.retries or trigger_failures_retry(),
                "fetch_result": self.fetch_result and self.do_xcom_push,
                "max_result_bytes": self.max_result_bytes,
            },
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None if not timeout else timedelta(seconds=timeout),
        )
        return True

    def execute(self, context: Context) -> Any:
        self.push_job_link(context, self.job_id, self.repository_id)
        if not self.deferrable:
            return super().execute(context)
        # A job that is already over needs no trigger.
        done = self.poke(context)
        if isinstance(done, PokeReturnValue) and done.is_done:
            return done.xcom_value
        self.log.info("Deferring: waiting for VBrain job %s on the triggerer", self.job_id)
        last_state = self._wait.last_state if self._wait is not None else None
        self.defer(
            trigger=self.job_trigger(
                self.job_id, self.repository_id, self.poke_interval, self.timeout, last_state
            ),
            method_name="execute_complete",
            timeout=deferral_backstop(self.timeout, self.poke_interval),
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        if self._wait is None:  # built here: job_id and repository_id are rendered by now
            self._wait = JobWait(
                self.job_id,
                self.repository_id,
                poll_interval=self.poke_interval,
                max_poll_interval=self.max_poll_interval,
                log=self.log,
            )
        step = self._wait.poll(lambda: self.hook.get_job_status(self.job_id, self.repository_id))
        if not isinstance(step, JobEvent):
            return False
        self.raise_for_unsuccessful(step)
        return PokeReturnValue(is_done=True, xcom_value=self._result(step.job_status))

    def _get_next_poke_interval(
        self, started_at: Any, run_duration: Callable[[], float], poke_count: int
    ) -> float:
        """The sleep before the next poke (poke and reschedule modes): the wait's polling schedule,
        from the time the sensor has run (counted from its first poke when rescheduled)."""
        if self.exponential_backoff:
            return super()._get_next_poke_interval(started_at, run_duration, poke_count)
        schedule = PollSchedule(float(self.poke_interval), self.max_poll_interval, str(self.job_id))
        return schedule.delay(run_duration(), poke_count)

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Resume after the trigger fired: return the output, or fail, time out or skip."""
        job_event = read_event(event)
        if self.start_from_trigger:  # execute() never ran: record the link now
            self.push_job_link(context, self.job_id, self.repository_id)
        if job_event.status is EventStatus.TIMEOUT:
            raise self._timed_out(f"{job_event.message} (sensor timeout {self.timeout} s)")
        self.raise_for_unsuccessful(job_event)
        output = self._result(job_event.job_status)
        self.log.info("VBrain job %s finished", job_event.job_id)
        return output

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume after a deferral, with ``soft_fail`` meaning what it means when poking.

        Airflow's sensor base turns any error after a deferral into a skip under
        ``soft_fail``; when poking, only a timeout is skipped. A failed VBrain job
        fails the task in every mode, so the base's wrapper is bypassed here.
        """
        timed_out = (
            f"VBrain job {self.job_id} did not end within the sensor timeout ({self.timeout} s)"
            if self.start_from_trigger
            else f"VBrain job {self.job_id}: the deferral timed out, no triggerer answered in time"
        )
        if deferral_timed_out(next_method, next_kwargs):
            raise self._timed_out(timed_out)
        try:
            return super(BaseSensorOperator, self).resume_execution(next_method, next_kwargs, context)
        except DeferralTimeout as err:  # Airflow 3 also says it by raising this
            raise self._timed_out(timed_out) from err

    def _timed_out(self, message: str) -> Exception:
        return AirflowSkipException(message) if self.soft_fail else AirflowSensorTimeout(message)

    def waiting_on(self) -> tuple[str, str] | None:
        return self.job_id, self.repository_id

    def _result(self, job_status: str) -> Any:
        """The output (None unless asked for); an end state other than ``finished`` is confirmed first."""
        fetch = self.fetch_result and self.do_xcom_push
        return self.end_of(self.job_id, self.repository_id, job_status, fetch=fetch)


def _rendered_when_run(value: Any) -> bool:
    """Whether ``value`` takes its value only when the task runs: Jinja text or an XCom reference."""
    if isinstance(value, str):
        return any(mark in value for mark in ("{{", "{%", "{#"))
    return callable(getattr(value, "resolve", None))
