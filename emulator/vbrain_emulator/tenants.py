"""Who owns what: each tenant's repositories, every job by id, and who may see a repository.

A tenant is an ``(organization_id, client_id)`` pair: everything a client creates lives under it, and
no other tenant sees it. Under the ``application-scoped`` profile a repository is also seen only under
the ``application_id`` it was created with (:func:`visible`). Bookkeeping only: the store in
:mod:`.state` decides what to create and when it is listed.
"""

from __future__ import annotations

from collections.abc import Iterator

from vbrain_emulator.jobs import Job, Tenant
from vbrain_emulator.repositories import Repository

__all__ = ["Tenant", "Tenants", "visible"]


def visible(repository: Repository, application_id: str | None, *, application_scoped: bool) -> bool:
    """Whether a requester under ``application_id`` (None: any) may see the repository.

    :param repository: one of the requester's tenant's repositories.
    :param application_id: the requester's ``application_id``, or None for any.
    :param application_scoped: whether repositories are scoped by application (the profile says).
    """
    return (
        not application_scoped
        or application_id is None
        or repository.application_id is None
        or repository.application_id == application_id
    )


class Tenants:
    """Every tenant's repositories by id, and every job by id, both in creation order."""

    def __init__(self) -> None:
        self._repositories: dict[Tenant, dict[str, Repository]] = {}
        self._jobs: dict[str, Job] = {}

    def clear(self) -> None:
        """Forget every repository and job."""
        self._repositories.clear()
        self._jobs.clear()

    def add_repository(self, tenant: Tenant, repository: Repository) -> None:
        """Give ``tenant`` a new repository.

        :param tenant: its owner.
        :param repository: the repository, with no jobs yet.
        """
        self._repositories.setdefault(tenant, {})[repository.repository_id] = repository

    def repositories(self, tenant: Tenant) -> list[Repository]:
        """The tenant's repositories, oldest first.

        :param tenant: the owner.
        """
        return list(self._repositories.get(tenant, {}).values())

    def repository(self, tenant: Tenant, repository_id: str) -> Repository | None:
        """One of the tenant's repositories, or None.

        :param tenant: the owner.
        :param repository_id: its id.
        """
        return self._repositories.get(tenant, {}).get(repository_id)

    def remove_repository(self, tenant: Tenant, repository_id: str) -> None:
        """Remove one of the tenant's repositories and all its jobs.

        :param tenant: the owner.
        :param repository_id: its id; it must exist.
        """
        repository = self._repositories[tenant].pop(repository_id)
        for job_id in repository.jobs:
            self._jobs.pop(job_id, None)

    def add_job(self, repository: Repository, job: Job) -> None:
        """Add a new job to its repository.

        :param repository: the repository it runs in.
        :param job: the job.
        """
        repository.jobs[job.job_id] = job
        self._jobs[job.job_id] = job

    def remove_job(self, job: Job) -> None:
        """Remove a job from its repository.

        :param job: a job of an existing repository.
        """
        del self._repositories[job.tenant][job.repository_id].jobs[job.job_id]
        self._jobs.pop(job.job_id, None)

    def find_job(self, job_id: str) -> Job | None:
        """Any tenant's job by id, or None.

        :param job_id: the job's id.
        """
        return self._jobs.get(job_id)

    def find_repository(self, repository_id: str) -> Repository | None:
        """Any tenant's repository by id, or None.

        :param repository_id: the repository's id.
        """
        for repositories in self._repositories.values():
            repository = repositories.get(repository_id)
            if repository is not None:
                return repository
        return None

    def jobs(self) -> list[Job]:
        """Every tenant's jobs, oldest first."""
        return list(self._jobs.values())

    def owned_repositories(self) -> Iterator[tuple[Tenant, Repository]]:
        """Every repository with its owner, tenant by tenant, oldest first."""
        for tenant, repositories in self._repositories.items():
            for repository in repositories.values():
                yield tenant, repository
