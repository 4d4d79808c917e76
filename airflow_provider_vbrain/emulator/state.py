"""The emulator's store: tenants, repositories, jobs, ids, and job status computed from the clock.

No I/O here: the aiohttp handlers in :mod:`.app` parse requests and call these methods, and tests can
drive the store directly with a fake clock. The state is owned by one event loop; nothing here locks,
so other threads must reach it through that loop (see :class:`.server.EmulatorServer`).

A job's status is a function of time: ``queued`` until ``created + queue_seconds``, ``started`` until
``+ run_seconds``, then ``finished`` or ``failed``. No task runs per job, so 10,000 jobs cost nothing
while they wait. The application itself runs once, when the job is created (it is a cheap function);
its outcome is only revealed when the job's time is up, as the platform would.

The state follows a :class:`.profiles.Profile`: the reading of the reference it answers by (what a job's
status body carries, how far scoping goes, how soon new objects are listed).
"""

from __future__ import annotations

import io
import json
import math
import posixpath
import random
import time
import traceback
import uuid
import zipfile
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_provider_vbrain.emulator._values import is_non_negative_number
from airflow_provider_vbrain.emulator.applications import (
    Application,
    ApplicationError,
    ApplicationResult,
    get_application,
)
from airflow_provider_vbrain.emulator.faults import FaultBook
from airflow_provider_vbrain.emulator.profiles import (
    METADATA_STRING,
    NO_METADATA,
    REPOSITORY_METADATA,
    Profile,
    ProfileLike,
)

__all__ = [
    "DEFAULT_QUEUE_SECONDS",
    "DEFAULT_RUN_SECONDS",
    "EmulatorError",
    "EmulatorState",
    "Job",
    "Repository",
    "Tenant",
    "input_files_from_upload",
    "parse_date_filter",
    "zip_files",
]

DEFAULT_QUEUE_SECONDS = 1.0
DEFAULT_RUN_SECONDS = 2.0
# Metadata keys a job can carry to override the emulator's durations for itself alone.
QUEUE_SECONDS_KEY = "emulator_queue_seconds"
RUN_SECONDS_KEY = "emulator_run_seconds"
# Enough history for any test, bounded so a long benchmark cannot grow the log without limit.
REQUEST_LOG_SIZE = 100_000
INPUT_EXTENSIONS = (".csv", ".xlsx", ".json")
CREATED_ON_FORMAT = "%Y-%m-%d_%H:%M:%S"
DATE_FILTER_FORMAT = "%Y%m%d%H%M"

QUEUED, STARTED, FINISHED, FAILED = "queued", "started", "finished", "failed"

Tenant = tuple[str, str]
"""``(organization_id, client_id)``: everything a client owns lives under this key."""


class EmulatorError(Exception):
    """An API error the handlers answer as ``status`` with ``{"error": message}``.

    :param status: the HTTP status.
    :param message: the ``error`` text, worded like the platform's.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def _log_time(timestamp: float) -> str:
    return _utc(timestamp).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_date_filter(name: str, value: str | None) -> datetime | None:
    """Parse a ``from_date``/``to_date`` query value (``YYYYMMDDHHMM``, UTC).

    :param name: the query parameter's name, for the error message.
    :param value: its value, or None when absent.
    :raises EmulatorError: 400 naming the parameter when the value is malformed.
    """
    if value is None:
        return None
    try:
        if len(value) != 12 or not value.isdigit():
            raise ValueError(value)
        return datetime.strptime(value, DATE_FILTER_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise EmulatorError(400, f"Invalid {name}: {value!r} (expected YYYYMMDDHHMM)") from None


def _in_range(created: datetime, start: datetime | None, end: datetime | None) -> bool:
    # Filters have minute resolution and both ends are inclusive, so compare whole minutes.
    minute = created.replace(second=0, microsecond=0)
    return (start is None or minute >= start) and (end is None or minute <= end)


def input_files_from_upload(filename: str, data: bytes) -> dict[str, bytes]:
    """Turn an uploaded ``file`` into input files: a ZIP is unpacked, a ``.csv``/``.xlsx``/``.json``
    is kept as is under its base name.

    :param filename: the name the client gave the upload.
    :param data: its bytes.
    :raises EmulatorError: 400 for other extensions, a corrupt ZIP or unsafe paths inside it.
    """
    base = posixpath.basename(filename.replace("\\", "/"))
    lower = base.lower()
    if lower.endswith(".zip"):
        return _unzip(base, data)
    if lower.endswith(INPUT_EXTENSIONS):
        return {base: data}
    raise EmulatorError(
        400, f"Unsupported file type: {base or filename!r} (expected a .zip, .csv, .xlsx or .json file)"
    )


def _unzip(name: str, data: bytes) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise EmulatorError(400, f"Invalid ZIP file: {name}") from None
    files: dict[str, bytes] = {}
    with archive:
        for info in archive.infolist():
            if info.is_dir() or info.filename.startswith("__MACOSX/"):
                # Folders are implied by file paths; __MACOSX holds Finder's resource forks, not inputs.
                continue
            path = posixpath.normpath(info.filename.replace("\\", "/"))
            if path.startswith(("/", "../")) or path == "..":
                raise EmulatorError(400, f"Unsafe path in ZIP file {name}: {info.filename}")
            try:
                files[path] = archive.read(info)
            except (zipfile.BadZipFile, OSError, RuntimeError) as err:
                raise EmulatorError(400, f"Invalid ZIP file: {name} ({err})") from None
    return files


def zip_files(files: Mapping[str, bytes]) -> bytes:
    """Pack files into ZIP bytes, in name order so the archive is reproducible.

    :param files: name (may contain ``/``) to bytes.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            archive.writestr(name, files[name])
    return buffer.getvalue()


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

    def view(self, now: float) -> dict[str, Any]:
        """The body of ``GET /job/{id}`` when it carries the job's own metadata as an object (the
        default profile; :meth:`EmulatorState.job_status_body` applies the others).

        :param now: the clock reading to compute the status at.
        """
        return {
            "job_id": self.job_id,
            "repository_id": self.repository_id,
            "job_status": self.status(now),
            "created_on": _utc(self.created_at).strftime(CREATED_ON_FORMAT),
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
            f"{_log_time(self.created_at)} INFO job {self.job_id} queued "
            f"(application {self.application_id}, repository {self.repository_id})"
        ]
        if status != QUEUED:
            lines.append(f"{_log_time(self.start_at)} INFO job started")
        if status in (FINISHED, FAILED):
            started = _log_time(self.start_at)
            if self.result is not None:
                lines.extend(f"{started} INFO {line}" for line in self.result.logs)
            ended = _log_time(self.end_at)
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


@dataclass
class Repository:
    """A repository: input files and params shared by its jobs."""

    repository_id: str
    name: str
    created: datetime
    created_by: str
    params: dict[str, Any]
    metadata: dict[str, Any]
    input_files: dict[str, bytes]
    jobs: dict[str, Job] = field(default_factory=dict)
    #: The ``application_id`` it was created under; None: visible to every application.
    application_id: str | None = None
    #: When the repository starts to show up in listings.
    listed_at: float = 0.0

    def view(self, now: float | None = None) -> dict[str, Any]:
        """The body of ``GET /repository/{id}``.

        :param now: the clock reading; its ``jobs`` leave out jobs not listed yet at ``now``
            (None: every job).
        """
        return {
            "repository_id": self.repository_id,
            "name": self.name,
            "input": sorted(self.input_files),
            "created_on": self.created.strftime(CREATED_ON_FORMAT),
            "created_by": self.created_by,
            "params": bool(self.params),
            "jobs": [job_id for job_id, job in self.jobs.items() if now is None or job.listed_at <= now],
            "metadata": self.metadata,
        }

    def summary(self, tenant: Tenant) -> dict[str, Any]:
        """The control API's description of the repository (``GET /_emulator/repositories``): every
        job, listed yet or not.

        :param tenant: the ``(organization_id, client_id)`` it belongs to.
        """
        return {
            **self.view(),
            "organization_id": tenant[0],
            "client_id": tenant[1],
            "application_id": self.application_id,
            "params": self.params,
        }


def _duration(metadata: Mapping[str, Any], key: str, default: float) -> float:
    value = metadata.get(key)
    if value is None:
        return default
    if not is_non_negative_number(value):
        raise EmulatorError(400, f"metadata {key} must be a non-negative number of seconds, got {value!r}")
    return float(value)


def _run_application(
    fn: Application, params: dict[str, Any], files: dict[str, bytes]
) -> tuple[ApplicationResult | None, str | None, list[str]]:
    """Run an application and sort its outcome into (result, error, traceback lines)."""
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


class EmulatorState:
    """Everything the emulator remembers.

    :param queue_seconds: default time a new job spends ``queued``.
    :param run_seconds: default time a new job spends ``started``.
    :param clock: seconds since the epoch; injectable so tests can move time by hand.
    :param applications: where application names are looked up; the global registry when None.
    :param profile: the reading of the reference to follow (see :mod:`.profiles`); the default when None.
    :raises ProfileError: for an unknown or conflicting profile.
    """

    def __init__(
        self,
        *,
        queue_seconds: float = DEFAULT_QUEUE_SECONDS,
        run_seconds: float = DEFAULT_RUN_SECONDS,
        clock: Callable[[], float] = time.time,
        applications: Mapping[str, Application] | None = None,
        profile: ProfileLike = None,
    ) -> None:
        self._initial_profile = Profile.parse(profile)
        self.profile = self._initial_profile
        self._initial_durations = (queue_seconds, run_seconds)
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.configure(queue_seconds=queue_seconds, run_seconds=run_seconds)
        self.clock = clock
        self.applications = applications
        self.faults = FaultBook()
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self._tenants: dict[Tenant, dict[str, Repository]] = {}
        self._jobs: dict[str, Job] = {}
        self._issued_repository_ids: set[str] = set()
        self._random = random.Random()
        #: How many times the state was reset. A request that waited (an injected delay) across a reset
        #: belongs to the state before it: it is neither processed nor logged, so it cannot leak into
        #: the next test.
        self.generation = 0

    # -- configuration -------------------------------------------------------------------------

    def configure(self, *, queue_seconds: float | None = None, run_seconds: float | None = None) -> None:
        """Change the default durations of jobs created from now on.

        :param queue_seconds: time ``queued``; None keeps the current value.
        :param run_seconds: time ``started``; None keeps the current value.
        """
        for name, value in (("queue_seconds", queue_seconds), ("run_seconds", run_seconds)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value!r}")
            setattr(self, name, float(value))

    def set_profile(self, profile: ProfileLike) -> Profile:
        """Follow another reading of the reference from now on; return it.

        Switching applies to what exists already: e.g. repositories created under one profile answer by
        the new one's scoping rule.

        :param profile: see :meth:`.profiles.Profile.parse`; None is the default profile.
        :raises ProfileError: for an unknown or conflicting profile.
        """
        self.profile = Profile.parse(profile)
        return self.profile

    def reset(self) -> None:
        """Forget every repository, job, fault and logged request, and restore the initial durations
        and profile."""
        self._tenants.clear()
        self._jobs.clear()
        self._issued_repository_ids.clear()
        self.faults.clear()
        self.request_log.clear()
        self.queue_seconds, self.run_seconds = self._initial_durations
        self.profile = self._initial_profile
        self.generation += 1

    def application(self, name: str) -> Application:
        """Return the application called ``name``.

        :param name: the ``application_id`` header.
        :raises EmulatorError: 400 when no application has that name.
        """
        fn = get_application(name, self.applications)
        if fn is None:
            raise EmulatorError(400, f"Unknown application_id: {name}")
        return fn

    # -- repositories --------------------------------------------------------------------------

    def _new_repository_id(self, now: float) -> str:
        # Like the platform's: the creation time to the second, then four digits. Random digits keep
        # ids unguessable-looking; on a collision try the next ones, and past 10,000 repositories in
        # one second borrow the next second.
        stamp = _utc(now)
        for _ in range(1000):
            prefix = stamp.strftime("%Y%m%d%H%M%S")
            start = self._random.randrange(10_000)
            for offset in range(10_000):
                candidate = f"{prefix}{(start + offset) % 10_000:04d}"
                if candidate not in self._issued_repository_ids:
                    self._issued_repository_ids.add(candidate)
                    return candidate
            stamp = _utc(stamp.timestamp() + 1)
        raise RuntimeError("No repository id left")  # pragma: no cover - 10 million in a second

    def _listed_at(self, now: float, listing_delay: float | None) -> float:
        delay = self.profile.listing_delay if listing_delay is None else listing_delay
        return now + delay

    def create_repository(
        self,
        tenant: Tenant,
        *,
        username: str,
        params: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        input_files: dict[str, bytes] | None = None,
        application_id: str | None = None,
        listing_delay: float | None = None,
    ) -> Repository:
        """Create a repository for ``tenant``.

        :param tenant: ``(organization_id, client_id)``.
        :param username: who creates it (``created_by``).
        :param params: parameters shared by its jobs.
        :param metadata: free-form metadata, kept as sent.
        :param input_files: input file name to bytes.
        :param application_id: the application it is created under, which scopes it under the
            ``application-scoped`` profile; None: visible to every application.
        :param listing_delay: seconds before it is listed; None: the profile's.
        """
        now = self.clock()
        repository_id = self._new_repository_id(now)
        metadata = dict(metadata or {})
        # The platform names repositories; the reference does not say how, so default to the id.
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            name = repository_id
        repository = Repository(
            repository_id=repository_id,
            name=name,
            created=_utc(now),
            created_by=username,
            params=dict(params or {}),
            metadata=metadata,
            input_files=dict(input_files or {}),
            application_id=application_id,
            listed_at=self._listed_at(now, listing_delay),
        )
        self._tenants.setdefault(tenant, {})[repository_id] = repository
        return repository

    def _visible(self, repository: Repository, application_id: str | None) -> bool:
        """Whether a requester under ``application_id`` (None: any) may see the repository."""
        return (
            not self.profile.application_scoped
            or application_id is None
            or repository.application_id is None
            or repository.application_id == application_id
        )

    def list_repositories(
        self,
        tenant: Tenant,
        *,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        application_id: str | None = None,
    ) -> list[str]:
        """Return the tenant's listed repository ids, oldest first, created within the (inclusive) range.

        :param tenant: ``(organization_id, client_id)``.
        :param from_date: earliest creation minute, or None.
        :param to_date: latest creation minute, or None.
        :param application_id: the requester's application (matters under ``application-scoped``).
        """
        now = self.clock()
        return [
            rid
            for rid, repo in self._tenants.get(tenant, {}).items()
            if repo.listed_at <= now
            and self._visible(repo, application_id)
            and _in_range(repo.created, from_date, to_date)
        ]

    def get_repository(
        self, tenant: Tenant, repository_id: str, *, application_id: str | None = None
    ) -> Repository:
        """Return one of the tenant's repositories (listed or not yet: a read by id is consistent).

        :param tenant: ``(organization_id, client_id)``.
        :param repository_id: its id.
        :param application_id: the requester's application (matters under ``application-scoped``).
        :raises EmulatorError: 404 ``Invalid repository_id`` when the tenant has no such repository,
            or the requester may not see it.
        """
        repository = self._tenants.get(tenant, {}).get(repository_id)
        if repository is None or not self._visible(repository, application_id):
            raise EmulatorError(404, "Invalid repository_id")
        return repository

    def delete_repository(
        self, tenant: Tenant, repository_id: str, *, application_id: str | None = None
    ) -> None:
        """Delete a repository and all its jobs.

        :param tenant: ``(organization_id, client_id)``.
        :param repository_id: its id.
        :param application_id: the requester's application (matters under ``application-scoped``).
        :raises EmulatorError: 404 when the tenant has no such repository.
        """
        repository = self.get_repository(tenant, repository_id, application_id=application_id)
        for job_id in repository.jobs:
            self._jobs.pop(job_id, None)
        del self._tenants[tenant][repository_id]

    # -- jobs ----------------------------------------------------------------------------------

    def execute_job(
        self,
        tenant: Tenant,
        repository_id: str,
        *,
        application_id: str,
        params: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        input_files: dict[str, bytes] | None = None,
        listing_delay: float | None = None,
    ) -> Job:
        """Create a job in a repository and run its application (revealed as time passes).

        :param tenant: ``(organization_id, client_id)``.
        :param repository_id: the repository it runs in.
        :param application_id: the application to run (also the requester's, for scoping).
        :param params: the job's own params, merged over the repository's.
        :param metadata: kept as sent; ``emulator_queue_seconds``/``emulator_run_seconds`` override the
            durations for this job.
        :param input_files: files added to the repository's inputs for this job only.
        :param listing_delay: seconds before it is listed; None: the profile's.
        :raises EmulatorError: 404 for an unknown repository, 400 for an unknown application or bad
            duration overrides.
        """
        repository = self.get_repository(tenant, repository_id, application_id=application_id)
        fn = self.application(application_id)
        metadata = dict(metadata or {})
        queue_seconds = _duration(metadata, QUEUE_SECONDS_KEY, self.queue_seconds)
        run_seconds = _duration(metadata, RUN_SECONDS_KEY, self.run_seconds)
        merged_params = {**repository.params, **(params or {})}
        files = {**repository.input_files, **(input_files or {})}
        result, error, detail = _run_application(fn, merged_params, files)
        now = self.clock()
        job = Job(
            job_id=str(uuid.uuid4()),
            repository_id=repository_id,
            tenant=tenant,
            application_id=application_id,
            created_at=now,
            queue_seconds=queue_seconds,
            run_seconds=run_seconds,
            params=merged_params,
            metadata=metadata,
            input_files=files,
            result=result,
            error=error,
            error_detail=detail,
            listed_at=self._listed_at(now, listing_delay),
        )
        repository.jobs[job.job_id] = job
        self._jobs[job.job_id] = job
        return job

    def list_jobs(
        self,
        tenant: Tenant,
        repository_id: str,
        *,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        application_id: str | None = None,
    ) -> list[str]:
        """Return the repository's listed job ids, oldest first, created within the (inclusive) range.

        :param tenant: ``(organization_id, client_id)``.
        :param repository_id: the repository.
        :param from_date: earliest creation minute, or None.
        :param to_date: latest creation minute, or None.
        :param application_id: the requester's application (matters under ``application-scoped``).
        """
        repository = self.get_repository(tenant, repository_id, application_id=application_id)
        now = self.clock()
        return [
            job_id
            for job_id, job in repository.jobs.items()
            if job.listed_at <= now and _in_range(_utc(job.created_at), from_date, to_date)
        ]

    def get_job(
        self, tenant: Tenant, repository_id: str, job_id: str, *, application_id: str | None = None
    ) -> Job:
        """Return a job, visible only through its own repository.

        :param tenant: ``(organization_id, client_id)``.
        :param repository_id: the ``repository_id`` header.
        :param job_id: the job's id.
        :param application_id: the requester's application (matters under ``application-scoped``).
        :raises EmulatorError: 404 ``Invalid repository_id`` or ``Invalid job_id``.
        """
        job = self.get_repository(tenant, repository_id, application_id=application_id).jobs.get(job_id)
        if job is None:
            raise EmulatorError(404, "Invalid job_id")
        return job

    def delete_job(
        self, tenant: Tenant, repository_id: str, job_id: str, *, application_id: str | None = None
    ) -> None:
        """Delete a job (it is not stopped first: the API has no cancel, and a deleted job is gone).

        :param tenant: ``(organization_id, client_id)``.
        :param repository_id: the ``repository_id`` header.
        :param job_id: the job's id.
        :param application_id: the requester's application (matters under ``application-scoped``).
        :raises EmulatorError: 404 when not found.
        """
        job = self.get_job(tenant, repository_id, job_id, application_id=application_id)
        del self._tenants[tenant][repository_id].jobs[job.job_id]
        self._jobs.pop(job.job_id, None)

    def job_status_body(self, job: Job) -> dict[str, Any]:
        """The body of ``GET /job/{id}`` by the profile's reading of the reference.

        :param job: the job, as :meth:`get_job` found it.
        """
        now = self.clock()
        reading = self.profile.status_body
        if reading == REPOSITORY_METADATA:
            # The reference's only example of this answer: the repository's details, and the status.
            repository = self._tenants[job.tenant][job.repository_id]
            return {**repository.view(now), "job_status": job.status(now)}
        view = job.view(now)
        if reading == METADATA_STRING:
            view["metadata"] = json.dumps(view["metadata"])
        elif reading == NO_METADATA:
            del view["metadata"]
        return view

    def repository_view(self, repository: Repository) -> dict[str, Any]:
        """The body of ``GET /repository/{id}``: its ``jobs`` are those listed by now.

        :param repository: the repository, as :meth:`get_repository` found it.
        """
        return repository.view(self.clock())

    # -- control -------------------------------------------------------------------------------

    def _job_anywhere(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise EmulatorError(404, "Invalid job_id")
        return job

    def find_job(self, job_id: str) -> Job | None:
        """Any tenant's job by id, listed or not (for the control API and the web pages), or None.

        :param job_id: the job's id.
        """
        return self._jobs.get(job_id)

    def find_repository(self, repository_id: str) -> Repository | None:
        """Any tenant's repository by id, listed or not, or None.

        :param repository_id: the repository's id.
        """
        for repositories in self._tenants.values():
            repository = repositories.get(repository_id)
            if repository is not None:
                return repository
        return None

    def recent_jobs(self, limit: int) -> list[Job]:
        """The ``limit`` newest jobs of every tenant, newest first.

        :param limit: how many at most.
        """
        # Jobs are kept in creation order.
        return list(reversed(self._jobs.values()))[:limit]

    def finish_job(self, job_id: str) -> Job:
        """End a job now with its application's outcome (``finished``, or ``failed`` if it failed).

        A job already over is left as it is.

        :param job_id: any tenant's job.
        :raises EmulatorError: 404 when no job has that id.
        """
        job = self._job_anywhere(job_id)
        now = self.clock()
        if now < job.end_at:
            job.forced_end_at = now
        return job

    def fail_job(self, job_id: str, error: str = "Job failed by the emulator control API") -> Job:
        """Make a job fail now with ``error``, even one that already finished.

        :param job_id: any tenant's job.
        :param error: the failure message for its logs.
        :raises EmulatorError: 404 when no job has that id.
        """
        job = self._job_anywhere(job_id)
        now = self.clock()
        if now < job.end_at:
            job.forced_end_at = now
        job.error, job.error_detail = error, []
        return job

    def all_repositories(self) -> list[dict[str, Any]]:
        """Every repository of every tenant, as the control API describes them."""
        return [
            repository.summary(tenant)
            for tenant, repositories in self._tenants.items()
            for repository in repositories.values()
        ]

    def all_jobs(self) -> list[dict[str, Any]]:
        """Every job of every tenant, as the control API describes them."""
        now = self.clock()
        return [job.summary(now) for job in self._jobs.values()]

    def record_request(self, entry: dict[str, Any]) -> None:
        """Append one API request to the log (oldest entries fall off past the size limit).

        :param entry: the logged fields.
        """
        self.request_log.append(entry)
