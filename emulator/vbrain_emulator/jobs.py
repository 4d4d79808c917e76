"""A job: its status computed from the clock, its answers (status body, output, logs), and its run.

A job's status is a function of time: ``queued`` until ``created + queue_seconds``, ``started`` until
``+ run_seconds``, then ``finished`` or ``failed``. No task runs per job, so 10,000 jobs cost nothing
while they wait. The application itself runs once, when the job is created (it is a cheap function);
its outcome is only revealed when the job's time is up, as the platform would.

The state strings are the reference's (``vbrain_emulator.wire``).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vbrain_emulator._values import is_non_negative_number
from vbrain_emulator.applications import Application, ApplicationError, ApplicationResult
from vbrain_emulator.dates import created_on, log_time, utc
from vbrain_emulator.errors import EmulatorError
from vbrain_emulator.wire import FAILED, FINISHED, QUEUED, STARTED

__all__ = [
    "FAILED",
    "FINISHED",
    "QUEUED",
    "QUEUE_SECONDS_KEY",
    "RUN_SECONDS_KEY",
    "STARTED",
    "Job",
    "Tenant",
    "duration",
    "run_application",
]

Tenant = tuple[str, str]
"""``(organization_id, client_id)``: everything a client owns lives under this key."""

# Metadata keys a job can carry to override the emulator's durations for itself alone.
QUEUE_SECONDS_KEY = "emulator_queue_seconds"
RUN_SECONDS_KEY = "emulator_run_seconds"


@dataclass
class Job:
    """One execution. Its status is derived from the clock; see :meth:`status`."""

    job_id: str
    repository_id: str
    tenant: Tenant
    application_id: str
    created_at: float
    queue_seconds: float
    run_seconds: float
    params: dict[str, Any]
    metadata: dict[str, Any]
    input_files: dict[str, bytes]
    result: ApplicationResult | None
    error: str | None
    error_detail: list[str] = field(default_factory=list)
    forced_end_at: float | None = None
    #: When the job starts to show up in listings (later than ``created_at`` under a listing delay).
    listed_at: float = 0.0

    @property
    def end_at(self) -> float:
        """When the job is (or will be) over."""
        natural = self.created_at + self.queue_seconds + self.run_seconds
        return natural if self.forced_end_at is None else min(natural, self.forced_end_at)

    @property
    def start_at(self) -> float:
        """When the job leaves the queue (no later than its end, when it was ended early)."""
        return min(self.created_at + self.queue_seconds, self.end_at)

    def status(self, now: float) -> str:
        """The job's status at ``now``.

        :param now: a clock reading, in the state's clock's units (seconds since the epoch).
        """
        if now >= self.end_at:
            return FAILED if self.error is not None else FINISHED
        return STARTED if now >= self.start_at else QUEUED

    def end(self, now: float) -> None:
        """End the job at ``now`` with its application's outcome; a job already over is left as it is.

        :param now: the clock reading.
        """
        if now < self.end_at:
            self.forced_end_at = now

    def fail(self, now: float, error: str) -> None:
        """Make the job fail at ``now`` with ``error``, even if it already finished.

        :param now: the clock reading.
        :param error: the failure message for its logs.
        """
        self.end(now)
        self.error, self.error_detail = error, []

    def view(self, now: float) -> dict[str, Any]:
        """The body of ``GET /job/{id}`` when it carries the job's own metadata as an object (the
        default profile; :func:`.store.status_body` applies the others).

        :param now: the clock reading to compute the status at.
        """
        return {
            "job_id": self.job_id,
            "repository_id": self.repository_id,
            "job_status": self.status(now),
            "created_on": created_on(utc(self.created_at)),
            "params": self.params,
            "metadata": self.metadata,
        }

    def output_files(self) -> dict[str, bytes]:
        """The output folder: ``output.json`` plus the files the application wrote."""
        assert self.result is not None, "only a finished job has output"
        return {"output.json": json.dumps(self.result.output, indent=2).encode(), **self.result.files}

    def log_files(self, now: float) -> dict[str, bytes]:
        """The log folder at ``now``: one ``job.log``.

        :param now: the clock reading.
        """
        return {"job.log": self.log_text(now).encode()}

    def log_text(self, now: float) -> str:
        """The ``job.log`` of the job as it stands at ``now``: lines appear as the job progresses.

        :param now: the clock reading.
        """
        status = self.status(now)
        lines = [
            f"{log_time(self.created_at)} INFO job {self.job_id} queued "
            f"(application {self.application_id}, repository {self.repository_id})"
        ]
        if status != QUEUED:
            lines.append(f"{log_time(self.start_at)} INFO job started")
        if status in (FINISHED, FAILED):
            started = log_time(self.start_at)
            if self.result is not None:
                lines.extend(f"{started} INFO {line}" for line in self.result.logs)
            ended = log_time(self.end_at)
            if status == FAILED:
                lines.append(f"{ended} ERROR job failed: {self.error}")
                lines.extend(self.error_detail)
            else:
                lines.append(f"{ended} INFO job finished")
        return "\n".join(lines) + "\n"

    def summary(self, now: float) -> dict[str, Any]:
        """The control API's description of the job (``GET /_emulator/jobs``).

        :param now: the clock reading.
        """
        return {
            "job_id": self.job_id,
            "repository_id": self.repository_id,
            "organization_id": self.tenant[0],
            "client_id": self.tenant[1],
            "application_id": self.application_id,
            "status": self.status(now),
            "params": self.params,
            "metadata": self.metadata,
            "error": self.error if self.status(now) == FAILED else None,
        }


def duration(metadata: Mapping[str, Any], key: str, default: float) -> float:
    """A job's duration: its metadata's override under ``key``, else ``default``.

    :param metadata: the job's metadata, as sent.
    :param key: :data:`QUEUE_SECONDS_KEY` or :data:`RUN_SECONDS_KEY`.
    :param default: the emulator's duration.
    :raises EmulatorError: 400 when the override is not a non-negative number.
    """
    value = metadata.get(key)
    if value is None:
        return default
    if not is_non_negative_number(value):
        raise EmulatorError(400, f"metadata {key} must be a non-negative number of seconds, got {value!r}")
    return float(value)


def run_application(
    fn: Application, params: dict[str, Any], files: dict[str, bytes]
) -> tuple[ApplicationResult | None, str | None, list[str]]:
    """Run an application and sort its outcome into (result, error, traceback lines).

    :param fn: the application.
    :param params: the job's params (the application gets a copy).
    :param files: the job's input files (the application gets a copy).
    """
    try:
        result = fn(dict(params), dict(files))
    except ApplicationError as err:
        return None, str(err), []
    except Exception as err:
        # A user's application crashing is the job failing, not the emulator failing: keep the
        # traceback in the job's logs where the user will look for it.
        return None, f"{type(err).__name__}: {err}", traceback.format_exc().rstrip().splitlines()
    if not isinstance(result, ApplicationResult):
        return None, f"application returned {type(result).__name__}, not ApplicationResult", []
    try:
        json.dumps(result.output)
    except (TypeError, ValueError) as err:
        return None, f"application output is not JSON serializable: {err}", []
    return result, None, []
