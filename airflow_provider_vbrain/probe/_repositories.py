"""The checks of authentication and repositories: keys, bodies, listing, lookup by tag, scoping."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_vbrain._client import answers, endpoints
from airflow_provider_vbrain._client.endpoints import ApiRequest
from airflow_provider_vbrain._client.retry import RetryPolicy
from airflow_provider_vbrain._tasks.reattach import Seen, find_repository
from airflow_provider_vbrain._transport.sync import SyncTransport
from airflow_provider_vbrain.exceptions import VBrainAuthError, VBrainError, VBrainNotFoundError
from airflow_provider_vbrain.probe._base import FAIL, NOTE, OK, WARN, ProbeBase, contains, decoded

__all__ = ["RepositoryChecks"]


class RepositoryChecks(ProbeBase):
    """Checks that need no job."""

    def authentication(self) -> bool:
        """Whether the connection's credentials list repositories, and whether a wrong key is refused."""
        self.say("listing repositories")
        try:
            count = len(self.hook.list_repositories())
        except VBrainError as err:
            if isinstance(err, VBrainAuthError):
                means = "the provider cannot work: check the connection's API key, login and scoping extras"
            else:
                means = "the provider cannot work with this connection: fix what the error names"
            self.report.add("authentication", FAIL, str(err), means)
            return False
        did = f"GET /repository answered 200 ({count} repositories listed)"
        self.report.add("authentication", OK, did, "the connection's credentials work")
        # One attempt: the point is the first answer, and a refused key is never worth retrying.
        wrong = dataclasses.replace(
            self.hook.settings, api_key=f"vbrain-probe-{secrets.token_hex(16)}", retry=RetryPolicy(1)
        )
        check = "a wrong API key"
        try:
            SyncTransport().call(wrong, self.hook.application_id, endpoints.list_repositories())
        except VBrainAuthError as err:
            did = f"refused: HTTP {err.status} ({err.server_message})"
            means = (
                "the server checks keys: a VBrainAuthError from a task means the connection's key is wrong"
            )
            self.report.add(check, OK, did, means)
        except VBrainError as err:
            means = "not the 401 or 403 expected: a wrong key fails tasks with this error"
            self.report.add(check, WARN, str(err), means)
        else:
            did = "accepted: GET /repository answered 200 to a made-up key"
            means = (
                "this server checks no API keys (an emulator, or an open gateway): make sure the "
                "connection points at the VBrain you mean"
            )
            self.report.add(check, WARN, did, means)
        return True

    def repository_bodies(self) -> str | None:
        """Create a repository as the provider does (form-data) and one with a JSON body; read both back.

        :return: the id of the form-data repository, in which the job runs; None if it failed.
        """
        params = dict(self.options.job_params)
        metadata = self.tag("repository").metadata(self.marker("repository"))
        self.say("creating a repository with form-data, as the provider does")
        check = "repository: form-data body"
        try:
            repository = self.create(lambda: self.hook.create_repository(params, metadata))
            created = time.monotonic()
            kept = self.read_back(repository, params, metadata)
        except VBrainError as err:
            means = "VBrainCreateRepositoryOperator cannot create repositories"
            self.report.add(check, FAIL, str(err), means)
            return None
        if kept["params"] and kept["metadata"]:
            verdict, means = OK, "repository_params and metadata arrive: a repository's tag can be read back"
        elif kept["params"]:
            verdict, means = WARN, "metadata is lost: a retried create cannot find its repository"
        else:
            verdict, means = FAIL, "repository_params are lost: jobs will not see them"
        self.report.add(check, verdict, f"201, repository {repository}; {kept['text']}", means)
        self.listing(
            "listing delay: repositories", lambda: repository in self.hook.list_repositories(), created
        )
        self.repository_lookup(repository)
        self.json_repository(params)
        return repository

    def json_repository(self, params: Mapping[str, Any]) -> None:
        """A body the hook never sends, JSON to ``POST /repository``, as an ``ApiRequest`` of our own."""
        self.say("creating a repository with a JSON body")
        check = "repository: JSON body"
        metadata = self.marker("repository (JSON body)")
        request = ApiRequest(
            "POST",
            "/repository",
            answers.text_field("repository_id"),
            json_body={"params": dict(params), "metadata": metadata},
            creates="repository",
            name="create_repository",
        )
        try:
            repository = self.create(lambda: self.hook._call(request))
            kept = self.read_back(repository, params, metadata)
        except VBrainError as err:
            means = "the provider never sends JSON to /repository: nothing to do"
            self.report.add(check, NOTE, str(err), means)
            return
        if kept["params"] and kept["metadata"]:
            means = "JSON bodies work here too; the provider sends form-data all the same"
        else:
            means = (
                "JSON bodies lose params and metadata here: the provider sends form-data, which keeps them"
            )
        self.report.add(check, NOTE, f"201, repository {repository}; {kept['text']}", means)

    def read_back(
        self, repository: str, params: Mapping[str, Any], metadata: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Whether a repository kept its params and metadata, and how the server gives them back."""
        shape, value = decoded(self.hook.get_repository(repository).get("metadata"))
        has_metadata = value == metadata
        has_params = contains(self.hook.get_repository_params(repository), params)
        said_metadata = f"kept ({shape})" if has_metadata else "lost"
        said = f"metadata {said_metadata}, params {'kept' if has_params else 'lost'}"
        return {"params": has_params, "metadata": has_metadata, "text": said}

    def repository_lookup(self, repository: str) -> None:
        """What a retried ``VBrainCreateRepositoryOperator`` would find, by the same lookup."""
        check = "reattach for repositories"
        since = datetime.now(timezone.utc) - timedelta(days=1)  # as the operator looks
        try:
            lookup = find_repository(self.hook, self.tag("repository"), since)
        except VBrainError as err:
            self.report.add(check, WARN, str(err), "cannot tell")
            return
        if lookup.seen is Seen.FOUND and lookup.value == repository:
            did = f"available: the lookup by tag (from_date a day back) found repository {repository}"
            self.report.add(check, OK, did, "a retried VBrainCreateRepositoryOperator reuses its repository")
        else:
            did = f"the lookup by tag answered {lookup.seen.value} {lookup.reason}".strip()
            self.report.add(check, WARN, did, "a retried create makes a second repository (no compute)")

    def scoping(self, repository: str) -> None:
        """Whether a repository is visible under another application of the same organization and client."""
        other = self.options.other_application
        check = "scoping by application"
        self.say(f"reading the repository under application {other}")
        try:
            type(self.hook)(self.hook.vbrain_conn_id, application_id=other).get_repository(repository)
        except VBrainNotFoundError as err:
            did = f"under application {other}: HTTP 404 ({err.server_message})"
            means = "scoped: create a repository and run its jobs under the same application_id"
            self.report.add(check, NOTE, did, means)
        except VBrainError as err:
            self.report.add(check, WARN, f"under application {other}: {err}", "cannot tell")
        else:
            did = f"under application {other}: HTTP 200"
            means = "not scoped: a repository created under one application is visible to others"
            self.report.add(check, NOTE, did, means)
