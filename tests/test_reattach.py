"""The exactly-once rules: tags, what a lookup may conclude, and what a try does with it.

Lookups against servers that answer in each way the reference allows are tested
over HTTP under every emulator profile (tests/e2e/test_exactly_once.py); here the
rules themselves, driven with canned lookups and a fake clock.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_vbrain._tasks.reattach import Lookup, Reattach, Seen, Tag, _decide, _metadata, find_job
from airflow_provider_vbrain._tasks.tag import LOOKUP_MARGIN, file_fingerprint, lookup_since
from airflow_provider_vbrain.exceptions import VBrainMaybeCreatedError, VBrainReattachUnknownError
from airflow_provider_vbrain.jobs import JobStatus

LOG = logging.getLogger("tests.reattach")
CONTEXT = {"ti": SimpleNamespace(dag_id="d", task_id="execute", run_id="r1", map_index=-1)}


def tag(**request: Any) -> Tag:
    return Tag.of(
        CONTEXT, request.get("params", {"a": 1}), request.get("metadata"), request.get("input_file")
    )


def job(job_id: str, state: str = "started", **body: Any) -> JobStatus:
    code = 200 if state in ("finished", "failed") else 202
    return JobStatus.from_answer(job_id, "repo", code, {"job_status": state, **body})


# ---------------------------------------------------------------- tags


def test_a_tag_names_the_task_and_the_request() -> None:
    mine = tag()
    sent = mine.metadata({"team": "ops", "airflow": "overwritten"})
    assert sent["team"] == "ops"
    assert sent["airflow"] == {
        "dag_id": "d",
        "task_id": "execute",
        "run_id": "r1",
        "map_index": -1,
        "request": mine.fingerprint,
    }
    assert mine.names(sent) is True
    assert tag().fingerprint == mine.fingerprint  # the same request on the next try


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param({"params": {"a": 2}}, id="params"),
        pytest.param({"metadata": {"team": "x"}}, id="metadata"),
    ],
)
def test_a_changed_request_is_not_the_old_one(changed: dict[str, Any]) -> None:
    old = tag().metadata(None)
    assert tag(**changed).names(old) is None  # this task, another request: never reattached


def test_the_input_files_content_is_part_of_the_request(tmp_path: Path) -> None:
    data = tmp_path / "sales.csv"
    data.write_text("a,b\n1,2\n")
    first = tag(input_file=str(data))
    data.write_text("a,b\n1,3\n")
    assert tag(input_file=str(data)).fingerprint != first.fingerprint
    data.write_text("a,b\n1,2\n")
    assert tag(input_file=str(data)).fingerprint == first.fingerprint


def test_another_tasks_tag_is_not_this_one() -> None:
    other = Tag({**tag().identity, "task_id": "create_repository"}, tag().fingerprint)
    assert tag().names(other.metadata(None)) is False
    assert tag().names({}) is False
    assert tag().names({"airflow": "text"}) is False


@pytest.mark.parametrize(
    ("body", "read"),
    [
        pytest.param({"metadata": {"k": 1}}, {"k": 1}, id="object"),
        pytest.param({"metadata": '{"k": 1}'}, {"k": 1}, id="json-string"),
        pytest.param({"metadata": "not json"}, None, id="unreadable-string"),
        pytest.param({"metadata": "[1]"}, None, id="json-string-not-an-object"),
        pytest.param({"metadata": None}, None, id="null"),
        pytest.param({}, None, id="absent"),
    ],
)
def test_metadata_is_read_as_an_object_or_a_json_string(body: dict[str, Any], read: Any) -> None:
    assert _metadata(body) == read


# ---------------------------------------------------------------- what a lookup may conclude


def test_lookup_conclusions() -> None:
    mine = tag().metadata(None)
    other = Tag({**tag().identity, "run_id": "r0"}, "f").metadata(None)
    # Found: the newest of this tag's jobs.
    old, new = job("old", created_on="2026-01-01_10:00:00"), job("new", created_on="2026-01-01_11:00:00")
    found = _decide(
        [(old, mine), (new, mine), (job("x"), other)], tag(), "job", evidence=True, no_evidence=""
    )
    assert (found.seen, found.value) == (Seen.FOUND, new)
    # Nothing listed: absent, whatever the server echoes.
    assert _decide([], tag(), "job", evidence=False, no_evidence="no echo").seen is Seen.ABSENT
    # Every job ruled out by its own metadata: absent.
    ruled_out = _decide([(job("x"), other), (job("y"), {})], tag(), "job", evidence=True, no_evidence="")
    assert ruled_out.seen is Seen.ABSENT
    # No evidence that status answers carry the job's metadata: cannot tell, never "absent".
    unknown = _decide([(job("x"), None)], tag(), "job", evidence=False, no_evidence="no echo")
    assert (unknown.seen, unknown.reason, unknown.candidates) == (Seen.UNKNOWN, "no echo", (job("x"),))
    # Evidence, but one job answered without readable metadata: it cannot be ruled out.
    partial = _decide([(job("x"), other), (job("y"), None)], tag(), "job", evidence=True, no_evidence="")
    assert (partial.seen, partial.candidates) == (Seen.UNKNOWN, (job("y"),))


# ---------------------------------------------------------------- what a try does with it


class Fake:
    """Canned lookups, a fake clock and sleep, and a counting create."""

    def __init__(self, *lookups: Lookup[Any], create: Any = "new-job") -> None:
        self.lookups = list(lookups)
        self.now = 0.0
        self.sleeps: list[float] = []
        self.creates = 0
        self._create = create

    def find(self) -> Lookup[Any]:
        return self.lookups.pop(0) if len(self.lookups) > 1 else self.lookups[0]

    def create(self) -> str:
        self.creates += 1
        if isinstance(self._create, Exception):
            raise self._create
        return self._create

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def reattach(self, *, enabled: bool = True, on_unknown: str = "fail") -> Reattach[Any]:
        return Reattach(
            "job",
            self.find,
            lambda value: value.job_id if isinstance(value, JobStatus) else str(value),
            enabled=enabled,
            on_unknown=on_unknown,
            settle_seconds=20,
            log=LOG,
            sleep=self.sleep,
            clock=lambda: self.now,
        )


LOST = VBrainMaybeCreatedError("POST /api/v1/job/execute", "job", "timed out", "Check the jobs.")


@pytest.mark.parametrize(
    ("lookup", "reused"),
    [
        pytest.param(Lookup(Seen.FOUND, job("j1", "started")), "j1", id="found-running-is-reused"),
        pytest.param(Lookup(Seen.FOUND, job("j1", "finished")), "j1", id="found-finished-is-reused"),
        pytest.param(Lookup(Seen.FOUND, job("j1", "failed")), None, id="found-failed-is-not"),
        pytest.param(Lookup(Seen.ABSENT), None, id="absent-creates"),
        pytest.param(
            Lookup(Seen.UNKNOWN, reason="no echo", candidates=(job("a", "failed"), job("b", "failed"))),
            None,
            id="unknown-but-every-candidate-failed-creates",
        ),
    ],
)
def test_a_retry_reuses_what_is_worth_reusing(lookup: Lookup[Any], reused: str | None) -> None:
    earlier = Fake(lookup).reattach().earlier()
    assert (earlier.job_id if earlier else None) == reused


def test_a_retry_waits_out_a_lagging_listing_before_concluding_absent() -> None:
    lagging = Fake(Lookup(Seen.ABSENT), Lookup(Seen.FOUND, job("j1")))
    earlier = lagging.reattach().earlier()
    assert earlier is not None
    assert earlier.job_id == "j1"
    assert lagging.sleeps == [1.0]
    absent = Fake(Lookup(Seen.ABSENT))
    assert absent.reattach().earlier() is None
    assert sum(absent.sleeps) == 20  # absent for the whole settle time


def test_a_retry_that_cannot_tell_fails_by_default_naming_the_candidates() -> None:
    fake = Fake(Lookup(Seen.UNKNOWN, reason="no echo", candidates=(job("a", "started"), job("b", "failed"))))
    with pytest.raises(VBrainReattachUnknownError) as caught:
        fake.reattach().earlier()
    assert "no echo" in str(caught.value)
    assert "a (started), b (failed)" in str(caught.value)
    assert "on_unknown_earlier='submit'" in str(caught.value)


def test_a_retry_that_cannot_tell_submits_with_a_warning_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    fake = Fake(Lookup(Seen.UNKNOWN, reason="no echo", candidates=(job("a", "started"),)))
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        assert fake.reattach(on_unknown="submit").earlier() is None
    assert "may duplicate one of them" in caplog.text
    assert "a (started)" in caplog.text


def test_without_reattach_a_retry_does_not_look() -> None:
    fake = Fake(Lookup(Seen.FOUND, job("j1")))
    fake.lookups = []  # a lookup would fail
    assert fake.reattach(enabled=False).earlier() is None


def test_a_lost_answer_reuses_the_job_once_the_listing_shows_it() -> None:
    fake = Fake(Lookup(Seen.ABSENT), Lookup(Seen.ABSENT), Lookup(Seen.FOUND, job("j1")), create=LOST)
    assert fake.reattach().create(fake.create) == "j1"
    assert fake.creates == 1
    assert fake.sleeps == [1.0, 2.0]


@pytest.mark.parametrize(
    ("lookup", "said"),
    [
        pytest.param(Lookup(Seen.ABSENT), "no job tagged with this task appeared within 20 s", id="absent"),
        pytest.param(
            Lookup(Seen.UNKNOWN, reason="no echo", candidates=(job("a"),)),
            "still cannot tell (no echo; candidates: a (started))",
            id="unknown",
        ),
    ],
)
def test_a_lost_answer_never_creates_again_in_the_same_try(lookup: Lookup[Any], said: str) -> None:
    fake = Fake(lookup, create=LOST)
    with pytest.raises(VBrainMaybeCreatedError) as caught:
        fake.reattach().create(fake.create)
    assert fake.creates == 1
    assert said in str(caught.value)
    assert "a retry of the task looks again" in str(caught.value)
    assert sum(fake.sleeps) == 20  # looked for the whole settle time, no longer


def test_a_lost_answer_without_reattach_fails_at_once() -> None:
    fake = Fake(Lookup(Seen.FOUND, job("j1")), create=LOST)
    with pytest.raises(VBrainMaybeCreatedError) as caught:
        fake.reattach(enabled=False).create(fake.create)
    assert caught.value is LOST
    assert (fake.creates, fake.sleeps) == (1, [])


# ---------------------------------------------------------------- what a lookup reads


class FakeHook:
    """Jobs listed in creation order (as the emulator lists them), each read counted."""

    def __init__(self, *statuses: JobStatus, repository_metadata: Any = None) -> None:
        self.statuses = {status.job_id: status for status in statuses}
        self.repository_metadata = repository_metadata
        self.listed_from: list[Any] = []
        self.read: list[str] = []

    def list_jobs(self, repository_id: str, from_date: Any = None, to_date: Any = None) -> list[str]:
        self.listed_from.append(from_date)
        return list(self.statuses)

    def get_job_status(self, job_id: str, repository_id: str) -> JobStatus:
        self.read.append(job_id)
        return self.statuses[job_id]

    def get_repository(self, repository_id: str) -> dict[str, Any]:
        self.read.append("repository")
        return {"metadata": self.repository_metadata}


def test_a_lookup_stops_at_the_first_reusable_job_reading_the_newest_first() -> None:
    mine = tag().metadata(None)
    hook = FakeHook(
        *(job(f"other{n}", "finished", metadata={"team": "x"}) for n in range(50)),
        job("mine", "started", metadata=mine),
    )
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    found = find_job(hook, "repo", tag(), since)  # type: ignore[arg-type]
    assert (found.seen, found.value.job_id if found.value else None) == (Seen.FOUND, "mine")
    assert hook.listed_from == [since]
    assert hook.read == ["mine", "repository"]  # one status, the repository's details once


def test_a_failed_job_does_not_stop_the_lookup_a_reusable_one_may_follow() -> None:
    mine = tag().metadata(None)
    # Listed in an order the lookup cannot trust: the newer, running job comes first.
    hook = FakeHook(job("new", "started", metadata=mine), job("old", "failed", metadata=mine))
    found = find_job(hook, "repo", tag())  # type: ignore[arg-type]
    assert found.value is not None
    assert (found.seen, found.value.job_id) == (Seen.FOUND, "new")
    only_failed = FakeHook(job("a", "failed", metadata=mine), job("b", "started", metadata={"team": "x"}))
    found = find_job(only_failed, "repo", tag())  # type: ignore[arg-type]
    assert found.value is not None
    assert (found.seen, found.value.job_id, found.value.state.value) == (Seen.FOUND, "a", "failed")
    assert sorted(only_failed.read) == ["a", "b", "repository"]


def test_a_lookup_still_never_guesses_absent() -> None:
    # Status answers that carry the repository's metadata: each job read, then "cannot tell".
    repository = {"team": "ops"}
    hook = FakeHook(
        job("a", metadata=repository), job("b", metadata=repository), repository_metadata=repository
    )
    lookup = find_job(hook, "repo", tag())  # type: ignore[arg-type]
    assert lookup.seen is Seen.UNKNOWN
    assert {status.job_id for status in lookup.candidates} == {"a", "b"}
    assert hook.read.count("repository") == 1


# ---------------------------------------------------------------- the lookups' window


@pytest.mark.parametrize(
    ("started", "since"),
    [
        pytest.param(
            datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc),
            datetime(2026, 2, 28, 23, 50, tzinfo=timezone.utc),
            id="aware",
        ),
        pytest.param(
            datetime(2026, 3, 1, 12, 0), datetime(2026, 2, 28, 23, 50, tzinfo=timezone.utc), id="naive-is-utc"
        ),
        pytest.param(None, None, id="unknown"),
    ],
)
def test_lookups_list_from_the_dag_runs_start_less_the_margin(started: Any, since: Any) -> None:
    assert timedelta(hours=12, minutes=10) == LOOKUP_MARGIN
    run = {"dag_run": SimpleNamespace(start_date=started)}
    assert lookup_since({**CONTEXT, **run}) == since
    assert lookup_since(CONTEXT) is None  # no DAG run: list everything, as before


# ---------------------------------------------------------------- input files in object storage


class StoredFile:
    """An object-storage path whose store answers ``info()``; reading its content is counted."""

    protocol = "s3"

    def __init__(self, content: bytes, **info: Any) -> None:
        self.name = "sales.csv"
        self.path = "bucket/sales.csv"
        self.content = content
        self.opened = 0
        self.fs = SimpleNamespace(
            info=lambda path: {"name": path, "size": len(content), "type": "file", **info}
        )

    def open(self, mode: str = "rb") -> Any:
        self.opened += 1
        return io.BytesIO(self.content)


def test_a_stored_input_is_fingerprinted_by_what_its_store_knows_not_read() -> None:
    first = StoredFile(b"a,b\n1,2\n", ETag='"9b2cf535f27731c974343645a3985328"')
    assert file_fingerprint(first) == {
        "name": "sales.csv",
        "size": 8,
        "ETag": '"9b2cf535f27731c974343645a3985328"',
    }
    assert first.opened == 0  # read once, by the upload alone
    changed = StoredFile(b"a,b\n1,3\n", ETag='"0f5ce0e1e0ad4bd1f1e46a87ba8c9c2e"')
    assert tag(input_file=changed).fingerprint != tag(input_file=first).fingerprint
    assert (
        tag(input_file=StoredFile(b"a,b\n1,2\n", ETag=first.fs.info("")["ETag"])).fingerprint
        == tag(input_file=first).fingerprint
    )


@pytest.mark.parametrize(
    ("info", "key"),
    [
        pytest.param({"md5Hash": "m", "etag": "e", "generation": "1"}, "md5Hash", id="gcs-checksum-first"),
        pytest.param(
            {"content_settings": {"content_md5": bytearray(b"\x01\x02")}, "etag": "e"},
            "content_md5",
            id="azure-md5",
        ),
        pytest.param({"mtime": 1700000000.0}, "mtime", id="sftp-mtime"),
    ],
)
def test_the_best_content_key_of_a_store_is_used(info: dict[str, Any], key: str) -> None:
    stored = StoredFile(b"x", **info)
    assert key in (file_fingerprint(stored) or {})
    assert stored.opened == 0


def test_a_store_that_knows_only_the_size_is_hashed() -> None:
    stored = StoredFile(b"a,b\n1,2\n")
    fingerprint = file_fingerprint(stored) or {}
    assert (fingerprint["size"], stored.opened) == (8, 1)
    assert "sha256" in fingerprint
