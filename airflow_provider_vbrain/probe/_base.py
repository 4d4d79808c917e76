"""What every check shares: the user's options, the run's state, and how findings are worded."""

from __future__ import annotations

import dataclasses
import json
import math
import secrets
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_vbrain._tasks.reattach import DEFAULT_SETTLE_SECONDS, Tag
from airflow_provider_vbrain.exceptions import VBrainError
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from airflow_provider_vbrain.probe._report import Report, Verdict

__all__ = [
    "FAIL",
    "NOTE",
    "OK",
    "PROBE_KEY",
    "TUTORIAL_PARAMS",
    "WARN",
    "Options",
    "ProbeBase",
    "ProbeHook",
    "progress",
]

#: The job parameters of VBrain's tutorial (its ``Tutorial`` application multiplies ``a`` by ``b``).
TUTORIAL_PARAMS: dict[str, Any] = {"a": 10, "b": 20}
#: The metadata key that marks what the probe created: ``{"run": <run id>, "object": <what>}``.
PROBE_KEY = "vbrain_probe"
OK, NOTE, WARN, FAIL = Verdict.OK, Verdict.NOTE, Verdict.WARN, Verdict.FAIL


@dataclasses.dataclass(frozen=True)
class Options:
    """What the user chose.

    :param job_params: the params of the one job the probe submits.
    :param other_application: an application to check repository scoping against, or None.
    :param job_timeout: seconds to wait for the job to end.
    :param poll_interval: seconds between status polls of the job.
    :param listing_timeout: seconds to wait for a new repository or job to be listed.
    """

    job_params: Mapping[str, Any] = dataclasses.field(default_factory=lambda: dict(TUTORIAL_PARAMS))
    other_application: str | None = None
    job_timeout: float = 300.0
    poll_interval: float = 5.0
    listing_timeout: float = 60.0


#: Set by the probe's Ctrl-C and SIGTERM handler, cleared when its KeyboardInterrupt is handled.
INTERRUPTED = threading.Event()


def interruption_point() -> None:
    """Raise the KeyboardInterrupt of a signal whose own was lost.

    A handler's exception raised while Python runs a finalizer (an object's ``__del__``, a weakref
    callback) is printed as "Exception ignored" and dropped: the probe checks here, at each step
    and pause, that it was not asked to stop meanwhile.
    """
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt


def pause(seconds: float) -> None:
    """Sleep between two polls, unless the probe was asked to stop."""
    interruption_point()
    time.sleep(seconds)
    interruption_point()


def progress(message: str) -> None:
    """Say what the probe is doing, on stderr (stdout holds the table); each step says so first."""
    interruption_point()
    print(f"vbrain-probe: {message}", file=sys.stderr, flush=True)


class ProbeHook(VBrainHook):
    """:class:`VBrainHook` with the connection read as Airflow's own command line reads it.

    Outside a task, Airflow 3's task SDK reads connections from variables and secrets backends
    only; Airflow's connection model also reads the metadata database, where the UI stores them.
    """

    @classmethod
    def get_connection(cls, conn_id: str) -> Any:
        from airflow.models.connection import Connection

        return Connection.get_connection_from_secrets(conn_id)


class ProbeBase:
    """The state of one probe run: the hook, the findings, and what was created.

    :param hook: the hook of the connection to probe.
    :param options: the user's choices.
    :param say: where progress messages go.
    """

    def __init__(self, hook: VBrainHook, options: Options, *, say: Callable[[str], None] = progress) -> None:
        self.hook = hook
        self.options = options
        self.report = Report()
        self.say = say
        self.started = datetime.now(timezone.utc)
        self.run_id = f"{self.started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        #: What the probe created and has not deleted yet: repository ids, and (job, repository) pairs.
        self.repositories: list[str] = []
        self.jobs: list[tuple[str, str]] = []
        #: A create was sent but its answer never arrived (lost, or interrupted): look for it by tag.
        self.unconfirmed = False
        self.job_tag = self.tag("job")
        self.job_metadata = self.job_tag.metadata(self.marker("job"))
        self.submitted = 0.0  # when the job's submit was answered (monotonic clock)
        self.echo = ""  # how job status answers carry the job's metadata

    def marker(self, what: str) -> dict[str, Any]:
        """The metadata that marks an object as this run's."""
        return {PROBE_KEY: {"run": self.run_id, "object": what}}

    def tag(self, what: str) -> Tag:
        """A tag as the operators write it, naming the probe as the task."""
        identity = {"dag_id": "vbrain_probe", "task_id": what, "run_id": self.run_id, "map_index": -1}
        return Tag(identity, f"{what}-{self.run_id}")

    def create(self, create: Callable[[], str]) -> str:
        """Create a repository and remember it, or remember that one may exist unconfirmed."""
        self.unconfirmed = True
        repository = create()
        self.repositories.append(repository)
        self.unconfirmed = False
        return repository

    def listing(self, check: str, listed: Callable[[], bool], since: float) -> bool:
        """How long after its create (at ``since``, monotonic) a new object is listed, bounded."""
        deadline = time.monotonic() + self.options.listing_timeout
        while True:
            try:
                found = listed()
            except VBrainError as err:
                self.report.add(check, WARN, str(err), "cannot tell how soon new objects are listed")
                return False
            now = time.monotonic()
            if found or now >= deadline:
                break
            # Fine steps first, to measure a short delay closely; a long one is not worth many calls.
            pause(min(0.25 + (now - since) / 10, 2.0, deadline - now))
        default = f"reattach_settle_seconds (default {DEFAULT_SETTLE_SECONDS:g} s)"
        if not found:
            did = f"not listed within {self.options.listing_timeout:g} s"
            means = f"a lost create is not found by its tag in time: raise {default}"
            self.report.add(check, WARN, did, means)
            return False
        delay = now - since
        advice = math.ceil(max(3 * delay, delay + 5))
        if delay < 1:
            self.report.add(check, OK, f"listed at once ({delay:.1f} s)", f"{default} is ample")
        elif advice <= DEFAULT_SETTLE_SECONDS:
            self.report.add(check, NOTE, f"listed within {delay:.1f} s", f"{default} covers it")
        else:
            means = f"set reattach_settle_seconds to {advice} s or more"
            self.report.add(check, WARN, f"listed within {delay:.1f} s", means)
        return True


def decoded(value: Any) -> tuple[str, Any]:
    """How a metadata field came (``object``, ``JSON string``, ``text``, ``absent``) and its value."""
    if value is None:
        return "absent", None
    if isinstance(value, str):
        try:
            return "JSON string", json.loads(value)
        except ValueError:
            return "text", value
    return ("object" if isinstance(value, Mapping) else type(value).__name__), value


def contains(answer: Any, sent: Mapping[str, Any]) -> bool:
    """Whether every sent param came back (VBrain may merge a repository's params into a job's)."""
    _, value = decoded(answer)
    return isinstance(value, Mapping) and all(value.get(key) == item for key, item in sent.items())
