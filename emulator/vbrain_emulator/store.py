"""The emulated platform as its REST API reaches it: each tenant's repositories and jobs, created,
listed, read and deleted under the scoping and listing rules of the current profile.

No I/O here: the handlers in :mod:`.api` parse requests and call these methods.
:class:`.state.EmulatorState` builds on this with what only the emulator has (settings tests change,
faults, the request log, reset, looks across tenants). The models live beside it: :mod:`.jobs` (a
job's status computed from the clock, and its answers), :mod:`.repositories`, :mod:`.tenants` (who
owns and sees what).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from vbrain_emulator.applications import Application, get_application
from vbrain_emulator.dates import in_range, utc
from vbrain_emulator.errors import EmulatorError
from vbrain_emulator.jobs import (
    QUEUE_SECONDS_KEY,
    RUN_SECONDS_KEY,
    Job,
    duration,
    run_application,
)
from vbrain_emulator.profiles import METADATA_STRING, NO_METADATA, REPOSITORY_METADATA, Profile
from vbrain_emulator.repositories import Repository, RepositoryIds
from vbrain_emulator.tenants import Tenant, Tenants, visible

__all__ = ["Store", "status_body"]


class Store:
    """Each tenant's repositories and jobs, and the operations of VBrain's REST API on them.

    :param profile: the reading of the reference to answer by.
    :param queue_seconds: default time a new job spends ``queued``.
    :param run_seconds: default time a new job spends ``started``.
    :param clock: seconds since the epoch.
    :param applications: where application names are looked up; the global registry when None.
    """

    def __init__(
        self,
        *,
        profile: Profile,
        queue_seconds: float,
        run_seconds: float,
        clock: Callable[[], float],
        applications: Mapping[str, Application] | None,
    ) -> None:
        self.profile = profile
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.clock = clock
        self.applications = applications
        self._tenants = Tenants()
        self._repository_ids = RepositoryIds()

    def forget_all(self) -> None:
        """Forget every repository and job, and the ids issued."""
        self._tenants.clear()
        self._repository_ids.clear()

    def application(self, name: str) -> Application:
        """Return the application called ``name``.

        :param name: the ``application_id`` header.
        :raises EmulatorError: 400 when no application has that name.
        """
        fn = get_application(name, self.applications)
        if fn is None:
            raise EmulatorError(400, f"Unknown application_id: {name}")
        return fn

    def _listed_at(self, now: float, listing_delay: float | None) -> float:
        delay = self.profile.listing_delay if listing_delay is None else listing_delay
        return now + delay

    # -- repositories --------------------------------------------------------------------------

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
        repository_id = self._repository_ids.issue(now)
        metadata = dict(metadata or {})
        # The platform names repositories; the reference does not say how, so default to the id.
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            name = repository_id
        repository = Repository(
            repository_id=repository_id,
            name=name,
            created=utc(now),
            created_by=username,
            params=dict(params or {}),
            metadata=metadata,
            input_files=dict(input_files or {}),
            application_id=application_id,
            listed_at=self._listed_at(now, listing_delay),
        )
        self._tenants.add_repository(tenant, repository)
        return repository

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
        scoped = self.profile.application_scoped
        return [
            repo.repository_id
            for repo in self._tenants.repositories(tenant)
            if repo.listed_at <= now
            and visible(repo, application_id, application_scoped=scoped)
            and in_range(repo.created, from_date, to_date)
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
        repository = self._tenants.repository(tenant, repository_id)
        scoped = self.profile.application_scoped
        if repository is None or not visible(repository, application_id, application_scoped=scoped):
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
        self.get_repository(tenant, repository_id, application_id=application_id)
        self._tenants.remove_repository(tenant, repository_id)

    def repository_view(self, repository: Repository) -> dict[str, Any]:
        """The body of ``GET /repository/{id}``: its ``jobs`` are those listed by now.

        :param repository: the repository, as :meth:`get_repository` found it.
        """
        return repository.view(self.clock())

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
        created_at: float | None = None,
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
        :param created_at: when it was created (seconds since the epoch); None: now. Only the control
            API back-dates jobs.
        :raises EmulatorError: 404 for an unknown repository, 400 for an unknown application or bad
            duration overrides.
        """
        repository = self.get_repository(tenant, repository_id, application_id=application_id)
        fn = self.application(application_id)
        metadata = dict(metadata or {})
        queue_seconds = duration(metadata, QUEUE_SECONDS_KEY, self.queue_seconds)
        run_seconds = duration(metadata, RUN_SECONDS_KEY, self.run_seconds)
        merged_params = {**repository.params, **(params or {})}
        files = {**repository.input_files, **(input_files or {})}
        result, error, detail = run_application(fn, merged_params, files)
        now = self.clock() if created_at is None else created_at
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
        self._tenants.add_job(repository, job)
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

        Oldest first by creation time, also for jobs the control API added back-dated.

        :param tenant: ``(organization_id, client_id)``.
        :param repository_id: the repository.
        :param from_date: earliest creation minute, or None.
        :param to_date: latest creation minute, or None.
        :param application_id: the requester's application (matters under ``application-scoped``).
        """
        repository = self.get_repository(tenant, repository_id, application_id=application_id)
        now = self.clock()
        listed = [
            job
            for job in repository.jobs.values()
            if job.listed_at <= now and in_range(utc(job.created_at), from_date, to_date)
        ]
        return [job.job_id for job in sorted(listed, key=lambda job: job.created_at)]

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
        self._tenants.remove_job(self.get_job(tenant, repository_id, job_id, application_id=application_id))

    def job_status_body(self, job: Job) -> dict[str, Any]:
        """The body of ``GET /job/{id}`` by the profile's reading of the reference.

        :param job: the job, as :meth:`get_job` found it.
        """
        repository = self._tenants.repository(job.tenant, job.repository_id)
        return status_body(job, repository, self.profile.status_body, self.clock())


def status_body(job: Job, repository: Repository | None, reading: str, now: float) -> dict[str, Any]:
    """The body of ``GET /job/{id}`` by one reading of the reference (a profile's ``status_body``).

    :param job: the job.
    :param repository: the job's repository (only the ``repository-metadata`` reading shows it).
    :param reading: ``job-metadata``, ``repository-metadata``, ``metadata-string`` or ``no-metadata``.
    :param now: the clock reading.
    """
    if reading == REPOSITORY_METADATA:
        assert repository is not None, "a job's repository outlives the job"
        # The reference's only example of this answer: the repository's details, and the status.
        return {**repository.view(now), "job_status": job.status(now)}
    view = job.view(now)
    if reading == METADATA_STRING:
        view["metadata"] = json.dumps(view["metadata"])
    elif reading == NO_METADATA:
        del view["metadata"]
    return view
