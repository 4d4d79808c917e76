"""What a create records in Airflow's task state store, and what a retry reads there (Airflow 3.3+).

Airflow 3.3 keeps a key/value store per task instance that outlives its tries (AIP-103,
``context["task_state_store"]``). A create operator writes one record under its key (:data:`KEYS`),
readable in the UI as Airflow lists the task instance's state:

1. ``{"state": "started", ...}`` first thing in a try, when the store holds nothing yet: a try with
   the store ran (so a later try that finds no create recorded knows none happened);
2. ``{"state": "creating", "request": ..., ...}`` just before the create is sent;
3. ``{"state": "created", "job_id": ..., ...}`` (or ``repository_id``) right after its answer.

Each record names the request (the tag's fingerprint; for jobs, the repository too) and the DAG
run's start. A retry reads the record first (:meth:`CreateStore.earlier`): an id for this request
means reattach by id, without any lookup; a create under way with no id is the answer lost between
the create and the record (the window Airflow's ``ResumableJobMixin`` leaves open), handed to the
tag lookup of :mod:`.reattach`; a record of no create, of another request, or written before the
DAG run was restarted by a clear (as the tag lookup, which lists from the run's start) means no
try of this request reached the create: create, listing nothing. An empty store on a retry says
nothing of tries that ran without it (before an upgrade to Airflow 3.3 or to this release, or a
first try lost before it started): the tag rules decide, as on Airflow 2.10 to 3.2.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_vbrain._airflow.compat import find, task_state_store
from airflow_provider_vbrain._tasks.reattach import Reattach
from airflow_provider_vbrain._tasks.tag import Tag
from airflow_provider_vbrain.exceptions import VBrainNotFoundError
from airflow_provider_vbrain.jobs import JobState, JobStatus

if TYPE_CHECKING:
    from airflow_provider_vbrain.hooks.vbrain import VBrainHook

__all__ = [
    "KEYS",
    "CreateStore",
    "Earlier",
    "Prior",
    "count",
    "create_once",
    "resume",
    "reusable_job",
    "reusable_repository",
]

T = TypeVar("T")

#: The store's key of each create operator's record (renaming one would lose in-flight records).
KEYS = {"job": "vbrain_job", "repository": "vbrain_repository"}


class Prior(enum.Enum):
    """What the store says earlier tries did."""

    UNKNOWN = "nothing recorded"  # no try ran with the store: it cannot tell
    NO_CREATE = "no create of this request"
    CREATING = "a create under way, its answer never recorded"
    CREATED = "created"


@dataclasses.dataclass(frozen=True)
class Earlier:
    """A record read back: what it says, and the id created (with ``CREATED`` only)."""

    prior: Prior
    created_id: str | None = None


class CreateStore:
    """One create operator's record in a task instance's state store.

    :param store: the task's ``task_state_store``.
    :param what: ``"job"`` or ``"repository"``.
    :param scope: what else a record must match to be this request's (for jobs, the repository).
    :param run_started: the DAG run's start, as recorded (a clear of an ended run sets it again).
    :param try_number: this try's number.
    """

    def __init__(
        self, store: Any, what: str, scope: Mapping[str, Any], run_started: str | None, try_number: int
    ) -> None:
        self.what = what
        self.key = KEYS[what]
        self._store = store
        self._scope = dict(scope)
        self._run_started = run_started
        self.try_number = try_number
        self._read: Any = None

    @classmethod
    def open(cls, context: Any, what: str, scope: Mapping[str, Any] | None = None) -> CreateStore | None:
        """The record of this task instance, read (on a retry) and marked as seen by a try with the
        store; None where this Airflow has no task state store."""
        store = task_state_store(context)
        if store is None:
            return None
        started = getattr(context.get("dag_run"), "start_date", None)
        run_started = started.isoformat() if isinstance(started, datetime) else None
        opened = cls(store, what, scope or {}, run_started, int(context["ti"].try_number))
        # A first try cannot find anything: the store belongs to this task instance in this DAG run.
        opened._read = store.get(opened.key) if opened.try_number > 1 else None
        if opened._read is None:
            opened._write("started")
        return opened

    def earlier(self, tag: Tag) -> Earlier:
        """What earlier tries of this request did, as far as the store tells."""
        record = self._read
        if not isinstance(record, Mapping) or "state" not in record:
            return Earlier(Prior.UNKNOWN)
        if record.get("dag_run_started") != self._run_started or record["state"] == "started":
            return Earlier(Prior.NO_CREATE)
        if record.get("request") != tag.fingerprint or any(
            record.get(name) != value for name, value in self._scope.items()
        ):
            return Earlier(Prior.NO_CREATE)
        created = record.get(f"{self.what}_id")
        if record["state"] == "created" and isinstance(created, str) and created:
            return Earlier(Prior.CREATED, created)
        return Earlier(Prior.CREATING)

    def creating(self, tag: Tag) -> None:
        """Record that a create of this request is under way (before it is sent)."""
        self._write("creating", request=tag.fingerprint, **self._scope)

    def created(self, tag: Tag, created_id: str, log: Any) -> None:
        """Record what the create made. A store that fails now leaves "creating": a retry looks by tag."""
        try:
            self._write("created", request=tag.fingerprint, **self._scope, **{f"{self.what}_id": created_id})
        except Exception as err:  # the object exists: the try goes on, whatever the store did
            log.warning(
                "Could not record %s %s in the task state store (%s): a retry will look for it by its tag",
                self.what,
                created_id,
                err,
            )

    def _write(self, state: str, **fields: Any) -> None:
        value = {
            "state": state,
            **fields,
            "try_number": self.try_number,
            "dag_run_started": self._run_started,
        }
        self._store.set(self.key, {name: item for name, item in value.items() if item is not None})


def resume(
    store: CreateStore | None,
    tag: Tag,
    reattach: Reattach[T],
    reusable: Callable[[str], T | None],
    try_number: int,
    log: Any,
    operator: str = "",
) -> T | None:
    """What this try reuses of an earlier try's create, or None to create.

    :param reusable: an id recorded in the store into what to reuse, or None (gone, or failed).
    :param operator: the operator's class name, for the metrics' ``operator`` tag.
    """
    if store is None:  # Airflow before 3.3, a context without the store, or reattach_on_retry off
        return reattach.earlier() if try_number > 1 else None
    earlier = store.earlier(tag)
    if earlier.prior is Prior.CREATED and earlier.created_id is not None:
        log.info(
            "The task state store records %s %s, created by an earlier try for this request",
            reattach.what,
            earlier.created_id,
        )
        count("reconnect_attempt", operator)
        value = reusable(earlier.created_id)
        if value is None:
            count("terminal_resubmit", operator)
        elif isinstance(value, JobStatus) and not value.terminal:
            count("reconnect_success", operator)
        else:
            count("already_succeeded", operator)
        return value
    if earlier.prior is Prior.CREATING:
        log.info(
            "The task state store records a create of this %s whose answer an earlier try never "
            "recorded: looking for it by this task's tag",
            reattach.what,
        )
        return reattach.earlier()
    if earlier.prior is Prior.UNKNOWN and try_number > 1:
        log.info(
            "The task state store holds nothing of earlier tries (they ran without it, or never "
            "started): looking for their %s by this task's tag",
            reattach.what,
        )
        return reattach.earlier()
    if try_number > 1:
        log.info(
            "The task state store shows no earlier try created a %s for this request: creating one",
            reattach.what,
        )
    count("fresh_submit", operator)
    return None


def count(decision: str, operator: str) -> None:
    """Count a decision under the metric Airflow's ``ResumableJobMixin`` counts it under
    (``resumable_job.<decision>``, tagged with the operator), where this Airflow has its Stats."""
    stats = find("Stats", "airflow.sdk.observability.stats")
    if stats is not None:
        stats.incr(f"resumable_job.{decision}", tags={"operator": operator})


def create_once(
    store: CreateStore | None, tag: Tag, reattach: Reattach[Any], create: Callable[[], str], log: Any
) -> str:
    """Create through ``reattach`` (a lost answer looked for by tag), recorded in the store around it."""
    if store is None:
        return reattach.create(create)
    store.creating(tag)
    created = reattach.create(create)
    store.created(tag, created, log)
    return created


def reusable_job(hook: VBrainHook, repository_id: str, log: Any) -> Callable[[str], JobStatus | None]:
    """A recorded job id into its status, unless the job is gone or failed (then: submit again)."""

    def reusable(job_id: str) -> JobStatus | None:
        try:
            status = hook.get_job_status(job_id, repository_id)
        except VBrainNotFoundError:
            log.info("Job %s of an earlier try is gone: submitting a new one", job_id)
            return None
        if status.state is JobState.FAILED:
            log.info("Job %s of an earlier try failed: submitting a new one", job_id)
            return None
        log.info("Reattaching to job %s (%s), submitted by an earlier try", job_id, status.raw_state)
        return status

    return reusable


def reusable_repository(hook: VBrainHook, log: Any) -> Callable[[str], str | None]:
    """A recorded repository id, if the repository still exists (else: create again)."""

    def reusable(repository_id: str) -> str | None:
        try:
            hook.get_repository(repository_id)
        except VBrainNotFoundError:
            log.info("Repository %s of an earlier try is gone: creating a new one", repository_id)
            return None
        log.info("Reattaching to repository %s, created by an earlier try", repository_id)
        return repository_id

    return reusable
