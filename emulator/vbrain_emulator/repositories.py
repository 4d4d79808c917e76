"""A repository (input files and params its jobs share), and the ids the platform gives them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vbrain_emulator.dates import created_on, utc
from vbrain_emulator.jobs import Job, Tenant

__all__ = ["Repository", "RepositoryIds"]


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
            "created_on": created_on(self.created),
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


class RepositoryIds:
    """Issues repository ids like the platform's: the creation time to the second, then four digits.

    An id is never issued twice until :meth:`clear`.
    """

    def __init__(self) -> None:
        self._issued: set[str] = set()
        self._random = random.Random()

    def issue(self, now: float) -> str:
        """A new id for a repository created at ``now``.

        :param now: the clock reading, seconds since the epoch.
        """
        # Random digits keep ids unguessable-looking; on a collision try the next ones, and past
        # 10,000 repositories in one second borrow the next second.
        stamp = utc(now)
        for _ in range(1000):
            prefix = stamp.strftime("%Y%m%d%H%M%S")
            start = self._random.randrange(10_000)
            for offset in range(10_000):
                candidate = f"{prefix}{(start + offset) % 10_000:04d}"
                if candidate not in self._issued:
                    self._issued.add(candidate)
                    return candidate
            stamp = utc(stamp.timestamp() + 1)
        raise RuntimeError("No repository id left")  # pragma: no cover - 10 million in a second

    def clear(self) -> None:
        """Forget every id issued, as a reset platform would."""
        self._issued.clear()
