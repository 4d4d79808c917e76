"""What a create records about itself, and from when its task's earlier tries could have created it.

The create operators tag what they create: its metadata holds, under :data:`AIRFLOW_METADATA_KEY`,
the task's identity (dag, task, run, map index: the same on every try) and a fingerprint of the
request (params, metadata, input file). :func:`lookup_since` bounds the lookups of
:mod:`.reattach` to what the task's tries could have created: listings from the DAG run's start,
less :data:`LOOKUP_MARGIN`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_vbrain._airflow.files import InputFile
from airflow_provider_vbrain._transport.sink import is_local

__all__ = [
    "AIRFLOW_METADATA_KEY",
    "CLOCK_SKEW",
    "LOOKUP_MARGIN",
    "ZONE_ALLOWANCE",
    "Tag",
    "file_fingerprint",
    "lookup_since",
]

#: The metadata key under which the operators record the Airflow task that created a repository or job.
AIRFLOW_METADATA_KEY = "airflow"
#: How far VBrain's clock may be behind the worker's and the scheduler's.
CLOCK_SKEW = timedelta(minutes=10)
#: The reference does not say in which time zone VBrain reads ``from_date`` (we send UTC). A server
#: reading it as local time at UTC-12 (the westernmost zone) would start the listing 12 hours later
#: than meant; one east of UTC, earlier (only wider). Listing from 12 hours earlier covers every zone.
ZONE_ALLOWANCE = timedelta(hours=12)
#: How much earlier than the DAG run's start the lookups list from.
LOOKUP_MARGIN = CLOCK_SKEW + ZONE_ALLOWANCE
#: What an object store's ``info()`` may tell of a file's content, best first: checksums of the
#: content (the same bytes give the same value, wherever and whenever written), then the entity tag,
#: then the time it was last written. Keys as s3fs, gcsfs, adlfs, fsspec's HTTP, SFTP, local and
#: memory filesystems name them.
_CONTENT_KEYS = (
    "ChecksumSHA256",
    "ChecksumSHA1",
    "ChecksumCRC32C",
    "ChecksumCRC32",
    "Content-MD5",
    "content_md5",
    "md5Hash",
    "crc32c",
    "Digest",
    "ETag",
    "etag",
    "Etag",
    "mtime",
    "LastModified",
    "Last-Modified",
    "last_modified",
    "updated",
    "modified",
    "created",
)
_CHUNK = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Tag:
    """What a create records about itself: the task that asked, and a fingerprint of what it asked.

    :param identity: dag id, task id, run id and map index.
    :param fingerprint: a digest of the request; a changed request is never mistaken for an old one.
    """

    identity: Mapping[str, Any]
    fingerprint: str

    @classmethod
    def of(
        cls,
        context: Any,
        params: Mapping[str, Any] | None,
        metadata: Mapping[str, Any] | None,
        input_file: InputFile | None,
    ) -> Tag:
        """The tag of a task instance's create request."""
        ti = context["ti"]
        identity = {
            "dag_id": ti.dag_id,
            "task_id": ti.task_id,
            "run_id": ti.run_id,
            "map_index": ti.map_index,
        }
        request = {"params": params, "metadata": metadata, "input_file": file_fingerprint(input_file)}
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
        return cls(identity, hashlib.sha256(canonical.encode()).hexdigest())

    def metadata(self, user_metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        """The metadata to send: the user's, with the tag under :data:`AIRFLOW_METADATA_KEY`."""
        return {**(user_metadata or {}), AIRFLOW_METADATA_KEY: {**self.identity, "request": self.fingerprint}}

    def names(self, metadata: Mapping[str, Any]) -> bool | None:
        """Whether ``metadata`` carries this tag: True, False, or None when it names this task
        but for a different request (the task ran again with other params, metadata or input)."""
        recorded = metadata.get(AIRFLOW_METADATA_KEY)
        if not isinstance(recorded, Mapping):
            return False
        if {key: recorded.get(key) for key in self.identity} != dict(self.identity):
            return False
        return True if recorded.get("request") == self.fingerprint else None


def lookup_since(context: Any) -> datetime | None:
    """From when the lookups list: the DAG run's start less :data:`LOOKUP_MARGIN` (None: unknown).

    Every try of a task instance runs in one DAG run, after that run started, and XComs do not
    outlive a try, so the run's start (``dag_run.start_date``, on every Airflow line) is the
    earliest moment a retry can know its first try could have created anything. Clearing a task
    of a run that ended restarts the run (Airflow sets its start again): that task does not find
    what was created before the clear, and runs again.
    """
    getter = getattr(context, "get", None)
    dag_run = getter("dag_run") if callable(getter) else None
    start = getattr(dag_run, "start_date", None)
    if not isinstance(start, datetime):
        return None
    if start.tzinfo is None:  # Airflow's dates are UTC
        start = start.replace(tzinfo=timezone.utc)
    return start - LOOKUP_MARGIN


def file_fingerprint(input_file: InputFile | None) -> dict[str, Any] | None:
    """What identifies an input file's content, read once at most.

    A local file (a path, or a ``file://`` URL) is hashed: reading it again is cheap, and its
    content is the only identity that holds on any worker. A file in an object store is known by
    what its store already says (:data:`_CONTENT_KEYS`: a checksum, the entity tag or the time it was
    written), so it is read once, by the upload. A store that tells nothing of the content (its size
    alone) leaves hashing as the only way not to take a changed file for the old one.
    """
    if input_file is None:
        return None
    name = str(getattr(input_file, "name", "") or input_file).rsplit("/", 1)[-1]
    if not is_local(input_file) and getattr(input_file, "protocol", None) not in ("file", "local"):
        stored = _stored(input_file)
        if stored is not None:
            return {"name": name, **stored}
    return {"name": name, **_content_digest(input_file)}


def _stored(place: Any) -> dict[str, Any] | None:
    """Size and the best content key of an object store's ``info()``, or None when it has none."""
    fs, path = getattr(place, "fs", None), getattr(place, "path", None)
    info = getattr(fs, "info", None)
    if not callable(info) or not isinstance(path, str):
        return None
    found = info(path)
    if not isinstance(found, Mapping):
        return None
    nested = found.get("content_settings")  # adlfs keeps the content's MD5 here
    if isinstance(nested, Mapping) and nested.get("content_md5"):
        found = {**found, "content_md5": nested["content_md5"]}
    for key in _CONTENT_KEYS:
        value = found.get(key)
        if value not in (None, "", b""):
            shown = bytes(value).hex() if isinstance(value, bytes | bytearray) else str(value)
            return {"size": found.get("size"), key: shown}
    return None


def _content_digest(input_file: InputFile) -> dict[str, Any]:
    """Size and SHA-256 of a file's content, read in chunks (memory stays flat)."""
    digest, size = hashlib.sha256(), 0
    local = is_local(input_file)
    with open(input_file, "rb") if local else input_file.open("rb") as file:  # type: ignore[union-attr]
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}
