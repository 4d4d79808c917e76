"""Did an earlier attempt already create this? The one owner of that question.

The create operators tag what they create (:class:`.tag.Tag`: the task's identity and a
fingerprint of the request, under :data:`.tag.AIRFLOW_METADATA_KEY`). When a try runs again, or a
create's answer was lost, they look for it here. A lookup answers *found*, *proven absent*, or
*cannot tell*:

- *found* needs a repository or job whose own metadata carries the tag;
- *proven absent* needs every listed repository or job ruled out by its own
  metadata, and, for jobs, positive evidence that this server's status answers
  echo a job's metadata at all (some job's metadata, read as an object or a
  JSON string, that is not the repository's);
- anything else *cannot tell*, which is never taken for "absent".

A lookup costs what the task's tries could have created, not the repository's size: it lists from
``since`` (:func:`.tag.lookup_since`: the DAG run's start, less a margin), reads what is listed from
the end (the newest first where the listing is oldest first, as the emulator's is) and stops at the
first reusable match, which nothing read after it could change.

The rules for acting on the answer (:class:`Reattach`): after a create whose
answer was lost, the listing is re-read for a settle time and what is found
is used; nothing is created again in that try. On a retry, what is found is
reused (a failed job excepted), an absence that lasts the settle time (the
earlier try may have created it moments before, and listings may lag) means
creating, and "cannot tell" follows the operator's ``on_unknown_earlier`` choice.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from airflow_provider_vbrain._tasks.tag import AIRFLOW_METADATA_KEY, Tag, lookup_since
from airflow_provider_vbrain.exceptions import (
    VBrainMaybeCreatedError,
    VBrainNotFoundError,
    VBrainReattachUnknownError,
)
from airflow_provider_vbrain.jobs import JobState, JobStatus

if TYPE_CHECKING:
    from airflow_provider_vbrain.hooks.vbrain import VBrainHook

# Tag, its metadata key and the lookups' window live in .tag; importable from here as before.
__all__ = [
    "AIRFLOW_METADATA_KEY",
    "ON_UNKNOWN_CHOICES",
    "Lookup",
    "Reattach",
    "Seen",
    "Tag",
    "find_job",
    "find_repository",
    "lookup_since",
]

T = TypeVar("T")

#: What a retry does when the server's answers cannot tell whether an earlier try created the job.
ON_UNKNOWN_CHOICES = ("fail", "submit")
#: Seconds a lost create's object is looked for before the try gives up (the listing may lag).
DEFAULT_SETTLE_SECONDS = 20.0
#: At most this many candidates are named in an error.
_NAMED = 10


class Seen(enum.Enum):
    """What a lookup could tell."""

    FOUND = "found"
    ABSENT = "proven absent"
    UNKNOWN = "cannot tell"


@dataclasses.dataclass(frozen=True)
class Lookup(Generic[T]):
    """The answer of a search for what an earlier attempt created.

    :param seen: found, proven absent, or cannot tell.
    :param value: what was found (with ``FOUND`` only).
    :param reason: why the search cannot tell (with ``UNKNOWN`` only).
    :param candidates: what could not be ruled out (with ``UNKNOWN`` only).
    """

    seen: Seen
    value: T | None = None
    reason: str = ""
    candidates: tuple[T, ...] = ()


# --------------------------------------------------------------------------- lookups


def find_job(
    hook: VBrainHook, repository_id: str, tag: Tag, since: datetime | str | None = None
) -> Lookup[JobStatus]:
    """The newest job of a repository tagged with ``tag``, or why there is none, or why it cannot tell.

    Lists the jobs created since ``since`` (None: all of them) and reads their statuses from the end
    of the listing, stopping at the first tagged job that did not fail: reused, it is the answer
    whatever the others say. Otherwise every listed job is read (one request each), and the
    repository's details once, when a status answer first carries metadata.
    """
    jobs = hook.list_jobs(repository_id, from_date=since)
    if not jobs:
        return Lookup(Seen.ABSENT)
    repository: list[dict[str, Any] | None] = []

    def repository_metadata() -> dict[str, Any] | None:
        if not repository:
            repository.append(_metadata(hook.get_repository(repository_id)))
        return repository[0]

    own: list[tuple[JobStatus, dict[str, Any] | None]] = []
    read = _skipping_gone(lambda j: hook.get_job_status(j, repository_id), _newest_first(jobs))
    for _, status in read:
        meta = _metadata(status.body)
        # A status answer's metadata equal to the repository's is the repository's (the reference's
        # example of this answer shows repository details), not evidence about the job.
        if meta is not None and meta == repository_metadata():
            meta = None
        own.append((status, meta))
        if meta is not None and tag.names(meta) and not _failed(status):
            return Lookup(Seen.FOUND, status)
    return _decide(
        own,
        tag,
        "job",
        evidence=any(meta is not None for _, meta in own),
        no_evidence="the status answers of this repository's jobs carry no metadata of the job's own "
        "(none, or the repository's), so a job cannot be told by the task that submitted it",
    )


def find_repository(hook: VBrainHook, tag: Tag, since: datetime | str | None) -> Lookup[str]:
    """The newest repository created since ``since`` and tagged with ``tag``.

    Reads the details of each repository listed, from the end of the listing, until one carries
    the tag (a repository is always reusable), so bound it with ``since``.
    """
    details: list[tuple[str, dict[str, Any]]] = []
    for repository_id, body in _skipping_gone(
        hook.get_repository, _newest_first(hook.list_repositories(from_date=since))
    ):
        metadata = _metadata(body)
        if metadata is not None and tag.names(metadata):
            return Lookup(Seen.FOUND, repository_id)
        details.append((repository_id, body))
    own = [(repository_id, _metadata(body)) for repository_id, body in details]
    return _decide(
        own,
        tag,
        "repository",
        evidence=True,  # a repository's details are its own (the reference documents their metadata)
        no_evidence="",
        created_on={repository_id: str(body.get("created_on", "")) for repository_id, body in details},
    )


def _newest_first(ids: list[str]) -> list[str]:
    """A listing read from its end. The reference states no order and ids tell none (job ids are
    UUIDs); a listing oldest first, as the emulator's, then gives the newest first. Only the cost,
    and which of two tagged jobs that both ran is reused, depend on it."""
    return list(reversed(list(dict.fromkeys(ids))))


def _decide(
    candidates: list[tuple[T, dict[str, Any] | None]],
    tag: Tag,
    what: str,
    *,
    evidence: bool,
    no_evidence: str,
    created_on: Mapping[Any, str] | None = None,
) -> Lookup[T]:
    """Found, absent or cannot tell, from each candidate's own metadata (None where unreadable)."""
    matches, unresolved = [], []
    for value, metadata in candidates:
        if metadata is None:
            unresolved.append(value)
        elif tag.names(metadata):
            matches.append(value)
    if matches:
        when = created_on or {}
        newest = max(matches, key=lambda value: _created_on(value, when))
        return Lookup(Seen.FOUND, newest)
    if not evidence and candidates:
        return Lookup(Seen.UNKNOWN, reason=no_evidence, candidates=tuple(value for value, _ in candidates))
    if unresolved:
        reason = f"{len(unresolved)} {what}(s) answered without readable metadata"
        return Lookup(Seen.UNKNOWN, reason=reason, candidates=tuple(unresolved))
    return Lookup(Seen.ABSENT)


def _created_on(value: Any, when: Mapping[Any, str]) -> str:
    if isinstance(value, JobStatus):
        return str(value.body.get("created_on", ""))
    return when.get(value, "")


def _metadata(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """An answer's ``metadata`` as an object (or a JSON string of one); None if absent or unreadable."""
    value = body.get("metadata")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return dict(value) if isinstance(value, Mapping) else None


def _skipping_gone(read: Callable[[str], T], ids: Iterable[str]) -> Iterator[tuple[str, T]]:
    """``(id, read(id))`` for each id, leaving out those deleted since they were listed."""
    for item_id in ids:
        try:
            yield item_id, read(item_id)
        except VBrainNotFoundError:
            continue


# --------------------------------------------------------------------------- acting on the answer


class Reattach(Generic[T]):
    """The exactly-once rules for one create operator's try.

    :param what: ``"job"`` or ``"repository"``, for messages.
    :param find: the lookup for this try's tag.
    :param ident: what a found value is called in messages (its id).
    :param enabled: the operator's ``reattach_on_retry``; off, every try creates and a lost
        answer fails the try.
    :param on_unknown: ``"fail"`` or ``"submit"``: a retry's choice when the lookup cannot tell.
    :param settle_seconds: how long a lost create's object is looked for.
    :param log: the task's logger.
    """

    def __init__(
        self,
        what: str,
        find: Callable[[], Lookup[T]],
        ident: Callable[[T], str],
        *,
        enabled: bool,
        on_unknown: str,
        settle_seconds: float,
        log: Any,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self._find = find
        self._ident = ident
        self.enabled = enabled
        self.on_unknown = on_unknown
        self.settle_seconds = settle_seconds
        self._log = log
        self._sleep = sleep
        self._clock = clock

    def earlier(self) -> T | None:
        """On a retry: what an earlier try created and is worth reusing, else None (create one).

        :raises VBrainReattachUnknownError: the server cannot tell and ``on_unknown`` is ``"fail"``.
        """
        if not self.enabled:
            return None
        # The earlier try may have created it moments ago, and a listing may lag: "absent" holds
        # only if it still holds after the settle time.
        lookup = self._settle(until=(Seen.FOUND, Seen.UNKNOWN))
        if lookup.seen is Seen.FOUND and lookup.value is not None:
            if _failed(lookup.value):
                self._log.info(
                    "The %s of an earlier try, %s, failed: creating a new one",
                    self.what,
                    self._name(lookup.value),
                )
                return None
            self._log.info(
                "Reattaching to %s %s, created by an earlier try", self.what, self._name(lookup.value)
            )
            return lookup.value
        if lookup.seen is Seen.ABSENT:
            self._log.info("No %s of this task exists: creating one", self.what)
            return None
        if lookup.candidates and all(_failed(value) for value in lookup.candidates):
            self._log.info(
                "Cannot tell which %s an earlier try created (%s), but every candidate failed: creating one",
                self.what,
                lookup.reason,
            )
            return None
        named = self._named(lookup.candidates)
        if self.on_unknown == "submit":
            self._log.warning(
                "Cannot tell whether an earlier try created a %s (%s; candidates: %s). Creating one as "
                "on_unknown_earlier='submit' asks: this may duplicate one of them.",
                self.what,
                lookup.reason,
                named,
            )
            return None
        raise VBrainReattachUnknownError(self.what, lookup.reason, named)

    def create(self, create: Callable[[], str]) -> str:
        """Create once. After a create whose answer was lost, look for what it made; never create again."""
        try:
            return create()
        except VBrainMaybeCreatedError as err:
            if not self.enabled:
                raise
            self._log.warning(
                "%s Looking for it by this task's tag for up to %.0f s.", err, self.settle_seconds
            )
            lookup = self._settle(until=(Seen.FOUND,))
            if lookup.seen is Seen.FOUND and lookup.value is not None:
                self._log.info("The %s was created: reattaching to %s", self.what, self._name(lookup.value))
                return self._ident(lookup.value)
            raise VBrainMaybeCreatedError(
                err.endpoint, err.what, err.reason, self._after_settling(lookup)
            ) from err

    def _settle(self, until: tuple[Seen, ...]) -> Lookup[T]:
        """Look up until the answer is one of ``until`` or the settle time is over."""
        deadline = self._clock() + self.settle_seconds
        pause = 1.0
        while True:
            lookup = self._find()
            left = deadline - self._clock()
            if lookup.seen in until or left <= 0:
                return lookup
            self._sleep(min(pause, left))
            pause *= 2

    def _after_settling(self, lookup: Lookup[T]) -> str:
        waited = f"{self.settle_seconds:.0f} s"
        if lookup.seen is Seen.ABSENT:
            found = f"no {self.what} tagged with this task appeared within {waited}"
        else:
            candidates = self._named(lookup.candidates)
            found = f"after {waited} it still cannot tell ({lookup.reason}; candidates: {candidates})"
        return (
            f"Looked for it by this task's tag: {found}. It was not created again in this try, to avoid a "
            "duplicate; a retry of the task looks again."
        )

    def _name(self, value: T) -> str:
        name = self._ident(value)
        return f"{name} ({value.raw_state})" if isinstance(value, JobStatus) else name

    def _named(self, candidates: tuple[T, ...]) -> str:
        if not candidates:
            return "none listed"
        names = [self._name(value) for value in candidates[:_NAMED]]
        more = len(candidates) - len(names)
        return ", ".join(names) + (f" and {more} more" if more else "")


def _failed(value: Any) -> bool:
    return isinstance(value, JobStatus) and value.state is JobState.FAILED
