"""Everything the emulator remembers: the emulated platform (:class:`.store.Store`) and what only the
emulator has: the durations, profile and rate limit tests change, injected faults, the request log,
reset, and looks across tenants for the control API and the web pages.

No I/O here: the aiohttp handlers (:mod:`.api`, :mod:`.control`, :mod:`.ui`) parse requests and call
these methods, and tests can drive the state directly with a fake clock. The state is owned by one
event loop; nothing here locks, so other threads must reach it through that loop (see
:class:`.server.EmulatorServer`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from vbrain_emulator._values import is_number
from vbrain_emulator.applications import Application
from vbrain_emulator.archives import input_files_from_upload, zip_files
from vbrain_emulator.dates import parse_date_filter
from vbrain_emulator.errors import EmulatorError
from vbrain_emulator.faults import FaultBook
from vbrain_emulator.jobs import FAILED, FINISHED, QUEUED, STARTED, Job
from vbrain_emulator.profiles import Profile, ProfileLike
from vbrain_emulator.ratelimit import RateLimiter, parse_rate_limit
from vbrain_emulator.repositories import Repository
from vbrain_emulator.store import Store
from vbrain_emulator.tenants import Tenant

# The names this module has always offered stay importable from it, wherever they are defined now.
__all__ = [
    "DEFAULT_QUEUE_SECONDS",
    "DEFAULT_RUN_SECONDS",
    "FAILED",
    "FINISHED",
    "QUEUED",
    "STARTED",
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
# Enough history for any test, bounded so a long benchmark cannot grow the log without limit.
REQUEST_LOG_SIZE = 100_000


class EmulatorState(Store):
    """Everything the emulator remembers.

    :param queue_seconds: default time a new job spends ``queued``.
    :param run_seconds: default time a new job spends ``started``.
    :param clock: seconds since the epoch; injectable so tests can move time by hand.
    :param applications: where application names are looked up; the global registry when None.
    :param profile: the reading of the reference to follow (see :mod:`.profiles`); the default when None.
    :param rate_limit: API requests per second per API key (see :mod:`.ratelimit`); 0 or None: no limit.
    :raises ProfileError: for an unknown or conflicting profile.
    :raises ValueError: for an invalid rate limit.
    """

    def __init__(
        self,
        *,
        queue_seconds: float = DEFAULT_QUEUE_SECONDS,
        run_seconds: float = DEFAULT_RUN_SECONDS,
        clock: Callable[[], float] = time.time,
        applications: Mapping[str, Application] | None = None,
        profile: ProfileLike = None,
        rate_limit: int | None = None,
    ) -> None:
        self._initial_profile = Profile.parse(profile)
        self._initial_rate_limit = parse_rate_limit(rate_limit)
        self._initial_durations = (queue_seconds, run_seconds)
        super().__init__(
            profile=self._initial_profile,
            queue_seconds=queue_seconds,
            run_seconds=run_seconds,
            clock=clock,
            applications=applications,
        )
        self.configure(queue_seconds=queue_seconds, run_seconds=run_seconds)
        self.faults = FaultBook()
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        #: Admits or refuses each API request (the gateway asks it, after the API key check).
        self.rate_limiter = RateLimiter(self._initial_rate_limit)
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
            if not is_number(value):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value!r}")
            setattr(self, name, float(value))

    @property
    def rate_limit(self) -> int | None:
        """API requests per second per API key, or None for no limit."""
        return self.rate_limiter.per_second

    def set_rate_limit(self, per_second: int | None) -> None:
        """Limit API requests per API key from now on, every key starting a fresh window.

        :param per_second: requests per second per API key; 0 or None: no limit.
        :raises ValueError: for anything but a non-negative whole number or None.
        """
        self.rate_limiter.set(per_second)

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
        """Forget every repository, job, fault, logged request and rate-limit window, and restore the
        initial durations, profile and rate limit."""
        self.forget_all()
        self.faults.clear()
        self.request_log.clear()
        self.queue_seconds, self.run_seconds = self._initial_durations
        self.profile = self._initial_profile
        self.rate_limiter.set(self._initial_rate_limit)
        self.generation += 1

    # -- across tenants: the control API and the web pages --------------------------------------

    def find_job(self, job_id: str) -> Job | None:
        """Any tenant's job by id, listed or not (for the control API and the web pages), or None.

        :param job_id: the job's id.
        """
        return self._tenants.find_job(job_id)

    def find_repository(self, repository_id: str) -> Repository | None:
        """Any tenant's repository by id, listed or not, or None.

        :param repository_id: the repository's id.
        """
        return self._tenants.find_repository(repository_id)

    def recent_jobs(self, limit: int) -> list[Job]:
        """The ``limit`` newest jobs of every tenant, newest first.

        :param limit: how many at most.
        """
        return list(reversed(self._tenants.jobs()))[:limit]

    def _job_anywhere(self, job_id: str) -> Job:
        job = self._tenants.find_job(job_id)
        if job is None:
            raise EmulatorError(404, "Invalid job_id")
        return job

    def finish_job(self, job_id: str) -> Job:
        """End a job now with its application's outcome (``finished``, or ``failed`` if it failed).

        A job already over is left as it is.

        :param job_id: any tenant's job.
        :raises EmulatorError: 404 when no job has that id.
        """
        job = self._job_anywhere(job_id)
        job.end(self.clock())
        return job

    def fail_job(self, job_id: str, error: str = "Job failed by the emulator control API") -> Job:
        """Make a job fail now with ``error``, even one that already finished.

        :param job_id: any tenant's job.
        :param error: the failure message for its logs.
        :raises EmulatorError: 404 when no job has that id.
        """
        job = self._job_anywhere(job_id)
        job.fail(self.clock(), error)
        return job

    def add_jobs(
        self,
        repository_id: str,
        *,
        count: int = 1,
        age_seconds: float = 0.0,
        application_id: str | None = None,
        params: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[Job]:
        """Add ``count`` jobs to a repository, created ``age_seconds`` ago (a repository with history).

        The jobs are as :meth:`execute_job` makes them, back-dated: their ``created_on``, the
        listings' ``from_date``/``to_date`` and their status (over once their durations passed)
        all follow the date. The request log does not show them.

        :param repository_id: any tenant's repository.
        :param count: how many, at least 1.
        :param age_seconds: how long ago they were created, not negative.
        :param application_id: the application they ran; None: the repository's, else ``Tutorial``.
        :param params: their own params.
        :param metadata: their metadata.
        :raises EmulatorError: 404 for an unknown repository, 400 for a bad count or age.
        """
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise EmulatorError(400, f"count must be a positive integer, got {count!r}")
        if not is_number(age_seconds) or age_seconds < 0:
            raise EmulatorError(400, f"age_seconds must be a number, not negative, got {age_seconds!r}")
        owned = ((t, r) for t, r in self._tenants.owned_repositories() if r.repository_id == repository_id)
        owner, repository = next(owned, (None, None))
        if owner is None or repository is None:
            raise EmulatorError(404, "Invalid repository_id")
        application_id = application_id or repository.application_id or "Tutorial"
        created_at = self.clock() - float(age_seconds)
        return [
            self.execute_job(
                owner,
                repository_id,
                application_id=application_id,
                params=params,
                metadata=metadata,
                listing_delay=0.0,
                created_at=created_at,
            )
            for _ in range(count)
        ]

    def all_repositories(self) -> list[dict[str, Any]]:
        """Every repository of every tenant, as the control API describes them."""
        return [repository.summary(tenant) for tenant, repository in self._tenants.owned_repositories()]

    def all_jobs(self) -> list[dict[str, Any]]:
        """Every job of every tenant, as the control API describes them."""
        now = self.clock()
        return [job.summary(now) for job in self._tenants.jobs()]

    def record_request(self, entry: dict[str, Any]) -> None:
        """Append one API request to the log (oldest entries fall off past the size limit).

        :param entry: the logged fields.
        """
        self.request_log.append(entry)
