"""The checks of the one job: its body, its status answers, the lookup by tag, its run and downloads."""

from __future__ import annotations

import json
import time
import zipfile
from datetime import datetime, timedelta, timezone

from airflow_provider_vbrain._client.endpoints import ApiRequest
from airflow_provider_vbrain._client.http import Response, clip
from airflow_provider_vbrain._tasks.reattach import Seen, find_job
from airflow_provider_vbrain._tasks.tag import CLOCK_SKEW, LOOKUP_MARGIN
from airflow_provider_vbrain.exceptions import VBrainError
from airflow_provider_vbrain.jobs import JobState, JobStatus
from airflow_provider_vbrain.probe._base import FAIL, NOTE, OK, WARN, ProbeBase, contains, decoded, pause
from airflow_provider_vbrain.probe._downloads import describe, download_meaning

__all__ = ["JobChecks"]

#: How much of the end of a failed job's logs the table quotes.
LOG_END = 200


class JobChecks(ProbeBase):
    """Checks around the one job the probe submits."""

    def submit(self, repository: str) -> str | None:
        """Submit the job with a JSON body, as VBrain's tutorial (and the hook, without a file) does."""
        params = dict(self.options.job_params)
        check = "job: JSON body"
        self.say(f"submitting one job with params {json.dumps(params)}")
        try:
            # A job whose answer is lost goes with its repository at clean-up.
            job = self.hook.execute_job(repository, params, self.job_metadata)
            self.submitted = time.monotonic()
            self.jobs.append((job, repository))
            back = self.hook.get_job_params(job, repository)
        except VBrainError as err:
            self.report.add(check, FAIL, str(err), "VBrainExecuteJobOperator cannot submit jobs")
            return None
        did = f"POST /job/execute: 201, job {job}; /params gives {json.dumps(back)}"
        if contains(back, params):
            means = "job_params arrive (the provider sends JSON when there is no input file)"
            self.report.add(check, OK, did, means)
        else:
            self.report.add(check, FAIL, did, "job_params are lost")
        return job

    def status_body(self, repository: str, job: str) -> None:
        """What ``GET /job/{id}`` carries besides ``job_status``: the job's metadata, and in what shape."""
        check = "job status echoes metadata"
        try:
            status = self.hook.get_job_status(job, repository)
            _, repository_metadata = decoded(self.hook.get_repository(repository).get("metadata"))
        except VBrainError as err:
            self.report.add(check, FAIL, str(err), "the sensor cannot read a job's status")
            return
        shape, value = decoded(status.body.get("metadata"))
        if value == self.job_metadata:
            self.echo, what = (
                shape,
                f"the job's own metadata, as {'an' if shape[0] in 'aeiou' else 'a'} {shape}",
            )
        elif shape == "absent":
            self.echo, what = "none", "no metadata field"
        elif value == repository_metadata:
            self.echo, what = "the repository's", "the repository's metadata, not the job's"
        else:
            self.echo, what = "unreadable", f"metadata that is not the job's: {clip(str(value))}"
        did = f"HTTP {status.http_status}, job_status {status.raw_state!r}, {what}"
        if value == self.job_metadata:
            self.report.add(check, OK, did, "a job can be told by the task that submitted it")
        else:
            self.report.add(check, NOTE, did, "a job cannot be told by the task that submitted it")

    def listing_dates(self, repository: str, job: str) -> None:
        """In which time zone the server reads ``from_date``: a retry lists from its DAG run's start
        less ``LOOKUP_MARGIN``, 12 hours of which are for a server that reads it west of UTC."""
        check = "listing dates"
        submitted = datetime.now(timezone.utc) - timedelta(seconds=time.monotonic() - self.submitted)
        try:
            near = job in self.hook.list_jobs(repository, from_date=submitted - CLOCK_SKEW)
            wide = near or job in self.hook.list_jobs(repository, from_date=submitted - LOOKUP_MARGIN)
        except VBrainError as err:
            self.report.add(check, WARN, str(err), "cannot tell")
            return
        minutes = f"{CLOCK_SKEW.total_seconds() / 60:.0f} minutes"
        if near:
            did = f"from_date in UTC, {minutes} before the submit, lists the job"
            self.report.add(
                check, OK, did, "from_date is read as UTC (or east of it): retries find their jobs"
            )
        elif wide:
            did = f"from_date in UTC, {minutes} before the submit, misses the job; 12 hours earlier lists it"
            means = "from_date is read west of UTC: the lookups' 12-hour margin is what finds a retry's jobs"
            self.report.add(check, NOTE, did, means)
        else:
            did = "from_date 12 hours and 10 minutes before the submit, in UTC, misses the job"
            self.report.add(check, FAIL, did, "a retry would not find its job: set reattach_on_retry=False")

    def job_lookup(self, repository: str, job: str) -> None:
        """What a retried ``VBrainExecuteJobOperator`` would find, by the same lookup."""
        check = "reattach for jobs"
        # Listed from the submit less the margin, as a retry lists from its DAG run's start.
        since = (
            datetime.now(timezone.utc) - timedelta(seconds=time.monotonic() - self.submitted) - LOOKUP_MARGIN
        )
        try:
            lookup = find_job(self.hook, repository, self.job_tag, since)
        except VBrainError as err:
            self.report.add(check, WARN, str(err), "cannot tell")
            return
        if lookup.seen is Seen.FOUND and lookup.value is not None and lookup.value.job_id == job:
            did = f"available ({self.echo}): the lookup by tag found job {job}"
            means = (
                "a retried VBrainExecuteJobOperator reuses its job; on_unknown_earlier='fail' (the "
                "default) only meets answers it cannot read"
            )
            self.report.add(check, OK, did, means)
        elif lookup.seen is Seen.UNKNOWN:
            means = (
                "run the tasks on Airflow 3.3 or later: a retry there reattaches by the job id its task "
                "state store recorded, and only a submit whose answer never reached the worker is left to "
                "the rule below. Before 3.3 a retry cannot tell whether an earlier try submitted a job: "
                "on_unknown_earlier='fail' (default) fails it for a person to decide, never a duplicate; "
                "'submit' submits again and may run a job twice"
            )
            self.report.add(check, WARN, f"unavailable ({self.echo}): {lookup.reason}", means)
        else:
            did = f"the lookup by tag answered {lookup.seen.value} although job {job} is listed"
            means = "a retry would submit a second job: do not rely on reattach_on_retry here"
            self.report.add(check, FAIL, did, means)

    def wait(self, repository: str, job: str) -> JobStatus | None:
        """Poll the job until it is over (bounded), then read its result.

        :return: its last status, or None when it did not end in time or could not be read.
        """
        check = "job run"
        timeout, interval = self.options.job_timeout, self.options.poll_interval
        self.say(f"waiting for job {job} (up to {timeout:g} s, polling every {interval:g} s)")
        deadline = time.monotonic() + timeout
        states: list[str] = []
        try:
            while True:
                status = self.hook.get_job_status(job, repository)
                seen = f"{status.raw_state} ({status.http_status})"
                if not states or states[-1] != seen:
                    states.append(seen)
                left = deadline - time.monotonic()
                if status.terminal or left <= 0:
                    break
                pause(min(interval, left))
            if not status.terminal:
                did = f"still {status.raw_state} after {timeout:g} s"
                means = "no verdict on the job's end or output: raise --job-timeout"
                self.report.add(check, WARN, did, means)
                return None
            took = time.monotonic() - self.submitted
            if status.state is JobState.FAILED:
                did = f"{' -> '.join(states)}; end of its logs: {self.log_end(job, repository)}"
                means = "the job failed: check --job-params and the application"
                self.report.add(check, FAIL, did, means)
                return status
            output = json.dumps(self.hook.get_job_result(job, repository))
        except VBrainError as err:
            self.report.add(check, FAIL, str(err), "the sensor cannot follow a job to its result")
            return None
        did = f"{' -> '.join(states)} in {took:.0f} s; /result output {output}"
        self.report.add(check, OK, did, "the sensor and wait_for_completion follow a job to its result")
        return status

    def log_end(self, job: str, repository: str) -> str:
        """The last characters of a failed job's logs, where the reason usually is."""
        try:
            tail = " ".join(self.hook.job_log_tail(job, repository, lines=5).split())
        except (VBrainError, OSError, zipfile.BadZipFile) as err:
            return f"(its logs could not be read: {err})"
        return tail if len(tail) <= LOG_END else "..." + tail[-LOG_END:]

    def download(self, check: str, request: ApiRequest[bytes]) -> None:
        """Fetch a ZIP download as the hook asks for it, and say what came back (the hook would refuse
        anything but a ZIP before the probe could quote it)."""
        raw: ApiRequest[Response] = ApiRequest(
            request.method,
            request.path,
            _whole,
            repository_id=request.repository_id,
            download=True,
            name=request.name,
        )
        try:
            answer = self.hook._call(raw)
        except VBrainError as err:
            self.report.add(check, WARN, str(err), "cannot tell")
            return
        is_zip, did = describe(answer)
        self.report.add(check, OK if is_zip else WARN, did, download_meaning(check, is_zip, did))


def _whole(endpoint: str, response: Response) -> Response:
    """A parser that keeps the whole answer: status, headers and body."""
    return response
