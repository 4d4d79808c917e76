"""Did an earlier attempt already create this? The one owner of that question.

The create operators tag what they create with the task's identity (under the
metadata key :data:`AIRFLOW_METADATA_KEY`) and, when a try runs again or a
create's answer was lost, look for it here. A lookup answers found, proven
absent, or cannot tell (the server's answers carry no metadata); the callers
never guess the last as "absent".
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from airflow_provider_vbrain.exceptions import VBrainMaybeCreatedError, VBrainNotFoundError
from airflow_provider_vbrain.jobs import JobStatus

if TYPE_CHECKING:
    from airflow_provider_vbrain.hooks.vbrain import VBrainHook

__all__ = [
    "AIRFLOW_METADATA_KEY",
    "Lookup",
    "Seen",
    "create_once",
    "find_job",
    "find_repository",
    "task_identity",
]

T = TypeVar("T")

#: The metadata key under which the operators record the Airflow task that created a repository or job.
AIRFLOW_METADATA_KEY = "airflow"


class Seen(enum.Enum):
    """What a lookup could tell."""

    FOUND = "found"
    ABSENT = "absent"
    UNKNOWN = "cannot tell"


@dataclasses.dataclass(frozen=True)
class Lookup(Generic[T]):
    """The answer of a search for what an earlier attempt created.

    :param seen: found, proven absent, or cannot tell.
    :param value: what was found (with ``FOUND`` only).
    :param reason: why the search cannot tell (with ``UNKNOWN`` only).
    """

    seen: Seen
    value: T | None = None
    reason: str = ""


def task_identity(context: Any) -> dict[str, Any]:
    """The Airflow identity a repository or job is tagged with, the same on every try of the task."""
    ti = context["ti"]
    return {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "map_index": ti.map_index}


def find_job(hook: VBrainHook, repository_id: str, identity: Mapping[str, Any]) -> Lookup[JobStatus]:
    """The newest job of a repository whose metadata carries ``identity``.

    Reads every job's status, so its cost grows with the repository's job count.
    """
    jobs = hook.list_jobs(repository_id)
    statuses = _skipping_gone(lambda job_id: hook.get_job_status(job_id, repository_id), jobs)
    return newest_tagged(((status, status.body) for _, status in statuses), identity, "job")


def find_repository(
    hook: VBrainHook, identity: Mapping[str, Any], since: datetime | str | None
) -> Lookup[str]:
    """The newest repository created since ``since`` whose metadata carries ``identity``.

    Reads the details of each repository listed, so bound it with ``since``.
    """
    details = _skipping_gone(hook.get_repository, hook.list_repositories(from_date=since))
    return newest_tagged(details, identity, "repository")


def newest_tagged(
    candidates: Iterable[tuple[T, Mapping[str, Any]]], identity: Mapping[str, Any], what: str
) -> Lookup[T]:
    """Of ``(value, answer body)`` pairs, the newest (by ``created_on``) whose metadata names ``identity``.

    Cannot tell when there were candidates and none of their answers carried metadata.
    """
    found: T | None = None
    found_on, seen, with_metadata = "", 0, 0
    for value, body in candidates:
        seen += 1
        metadata = body.get("metadata")
        with_metadata += "metadata" in body
        if isinstance(metadata, Mapping) and metadata.get(AIRFLOW_METADATA_KEY) == dict(identity):
            created_on = str(body.get("created_on", ""))
            if found is None or created_on >= found_on:
                found, found_on = value, created_on
    if found is not None:
        return Lookup(Seen.FOUND, found)
    if seen and not with_metadata:
        return Lookup(
            Seen.UNKNOWN,
            reason=f"cannot find a {what} by this task's identity: VBrain's {what} answers carry no metadata",
        )
    return Lookup(Seen.ABSENT)


def create_once(
    create: Callable[[], str], find: Callable[[], Lookup[str]], what: str, *, reattach: bool, log: Any
) -> str:
    """Create a repository or job; after an unconfirmed create, reattach or create again.

    ``find`` looks the object up by the task's identity. When the answer to a create
    was lost, the object found is used; when the lookup proves none exists, nothing
    was created and one more create is safe. When the lookup cannot tell, or without
    ``reattach``, the unconfirmed create fails the task instead.
    """
    try:
        return create()
    except VBrainMaybeCreatedError as err:
        if not reattach:
            raise
        log.warning("%s Looking for it by this task's identity.", err)
        lookup = find()
        if lookup.seen is Seen.UNKNOWN:
            log.warning("Reattaching is not possible: %s", lookup.reason)
            raise
        if lookup.seen is Seen.FOUND and lookup.value is not None:
            log.info("The %s was created: reattaching to %s", what, lookup.value)
            return lookup.value
    log.info("No %s was created: submitting again", what)
    return create()


def _skipping_gone(read: Callable[[str], T], ids: Iterable[str]) -> Iterator[tuple[str, T]]:
    """``(id, read(id))`` for each id, leaving out those deleted since they were listed."""
    for item_id in ids:
        try:
            yield item_id, read(item_id)
        except VBrainNotFoundError:
            continue
