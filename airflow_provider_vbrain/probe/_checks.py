"""The probe: the checks in order, and the clean-up that runs whatever happened.

Each check adds a :class:`~airflow_provider_vbrain.probe._report.Finding`. Everything the
probe creates carries ``{"vbrain_probe": {"run": ..., "object": ...}}`` in its metadata and is
deleted by :meth:`Probe.cleanup`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from airflow_provider_vbrain._client import endpoints
from airflow_provider_vbrain.exceptions import VBrainError, VBrainNotFoundError
from airflow_provider_vbrain.jobs import JobState
from airflow_provider_vbrain.probe._base import (
    FAIL,
    OK,
    PROBE_KEY,
    TUTORIAL_PARAMS,
    Options,
    decoded,
    progress,
)
from airflow_provider_vbrain.probe._jobs import JobChecks
from airflow_provider_vbrain.probe._repositories import RepositoryChecks

__all__ = ["PROBE_KEY", "TUTORIAL_PARAMS", "Options", "Probe", "progress"]


class Probe(RepositoryChecks, JobChecks):
    """One probe run against the server behind ``hook``; :attr:`report` holds what it found.

    :param hook: the hook of the connection to probe.
    :param options: the user's choices.
    :param say: where progress messages go.
    """

    def run(self) -> None:
        """Run the checks in order; when one that later checks depend on fails, stop there."""
        if not self.authentication():
            return
        repository = self.repository_bodies()
        if repository is None:
            return
        if self.options.other_application:
            self.scoping(repository)
        self.download("download: repository input", endpoints.download_repository_input(repository))
        job = self.submit(repository)
        if job is None:
            return
        listed = self.listing(
            "listing delay: jobs", lambda: job in self.hook.list_jobs(repository), self.submitted
        )
        self.status_body(repository, job)
        if listed:  # the lookup reads the listing: before the job is listed it proves nothing
            self.listing_dates(repository, job)
            self.job_lookup(repository, job)
        over = self.wait(repository, job)
        self.download("download: job logs", endpoints.download_job_logs(job, repository))
        if over is not None and over.state is not JobState.FAILED:
            self.download("download: job output", endpoints.download_job_output(job, repository))

    def cleanup(self) -> list[str]:
        """Delete the job and every repository the probe created; return the repositories left."""
        if self.unconfirmed:
            self.say("a create was not confirmed: looking for what this run created, by its marker")
            self.repositories += [r for r in self.tagged() if r not in self.repositories]
        if not self.repositories and not self.jobs:
            self.report.add("clean-up", OK, "nothing was created", "nothing to delete")
            return []
        self.say("deleting what the probe created")
        jobs = ", ".join(job for job, _ in self.jobs) or "none"
        for job, repository in list(self.jobs):
            try:
                self.hook.delete_job(job, repository)
            except VBrainNotFoundError:
                pass
            except VBrainError as err:
                self.say(f"could not delete job {job}: {err}; deleting its repository takes it too")
            self.jobs.remove((job, repository))
        left, deleted = [], []
        for repository in list(self.repositories):
            try:
                self.hook.delete_repository(repository)
            except VBrainNotFoundError:
                pass
            except VBrainError as err:
                left.append(repository)
                self.say(f"could not delete repository {repository}: {err}")
                continue
            deleted.append(repository)
            self.repositories.remove(repository)
        did = f"deleted job {jobs} and repositories {', '.join(deleted) or 'none'}"
        if left:
            self.report.add("clean-up", FAIL, f"{did}; left {', '.join(left)}", "delete them by hand")
        else:
            self.report.add("clean-up", OK, did, "nothing the probe created is left")
        return left

    def tagged(self) -> list[str]:
        """Repositories of this run found by their marker (created while the answer was lost)."""
        found = []
        try:
            for repository in self.hook.list_repositories(from_date=self.started - timedelta(days=1)):
                _, metadata = decoded(self.hook.get_repository(repository).get("metadata"))
                marker = metadata.get(PROBE_KEY) if isinstance(metadata, Mapping) else None
                if isinstance(marker, Mapping) and marker.get("run") == self.run_id:
                    found.append(repository)
        except VBrainError as err:
            self.say(f"could not look for them: {err}")
        return found
