"""The task state store's records (Airflow 3.3+): what a try writes, and what a retry concludes.

Driven here with a stand-in store, canned lookups and a fake clock; over HTTP, under every emulator
profile, in tests/e2e/test_exactly_once.py; with Airflow's own store in ``dag.test()`` there too, and
with a worker killed on a real deployment in ``make smoke``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_vbrain._airflow.compat import task_state_store
from airflow_provider_vbrain._tasks.reattach import Lookup, Seen, Tag
from airflow_provider_vbrain._tasks.store import KEYS, CreateStore, Prior, create_once, resume
from airflow_provider_vbrain.exceptions import VBrainMaybeCreatedError
from tests.stores import MemoryStore
from tests.test_reattach import LOST, Fake, job

LOG = logging.getLogger("tests.store")
RUN_STARTED = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
KEY = KEYS["job"]
SCOPE = {"repository_id": "repo"}


def context(store: Any, try_number: int = 1, run_started: datetime = RUN_STARTED) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="d", task_id="execute", run_id="r1", map_index=-1, try_number=try_number)
    return {"ti": ti, "dag_run": SimpleNamespace(start_date=run_started), "task_state_store": store}


def tag(**params: Any) -> Tag:
    return Tag.of(context(None), params or {"a": 1}, None, None)


def record(state: str, **fields: Any) -> dict[str, Any]:
    base = {"request": tag().fingerprint, **SCOPE} if state != "started" else {}
    return {"state": state, **base, "try_number": 1, "dag_run_started": RUN_STARTED.isoformat(), **fields}


def opened(store: MemoryStore, try_number: int = 2, **kwargs: Any) -> CreateStore:
    found = CreateStore.open(context(store, try_number, **kwargs), "job", SCOPE)
    assert found is not None
    return found


# ---------------------------------------------------------------- finding the store


def test_the_store_is_found_in_the_context_or_not_at_all() -> None:
    store = MemoryStore()
    assert task_state_store(context(store)) is store
    assert task_state_store({"ti": None}) is None  # Airflow before 3.3
    assert task_state_store({"task_state_store": object()}) is None  # nothing with get and set
    assert CreateStore.open({"ti": None}, "job") is None


# ---------------------------------------------------------------- what a try writes


def test_a_first_try_records_itself_without_reading() -> None:
    store = MemoryStore()
    opened(store, try_number=1)
    assert store.ops == [("set", KEY)]
    assert store.values[KEY] == record("started")


def test_a_retry_reads_first_and_keeps_what_it_finds() -> None:
    store = MemoryStore(**{KEY: record("created", job_id="j1")})
    opened(store)
    assert store.ops == [("get", KEY)]


def test_a_retry_that_finds_nothing_records_itself() -> None:
    store = MemoryStore()
    found = opened(store)
    assert store.ops == [("get", KEY), ("set", KEY)]
    assert found.earlier(tag()).prior is Prior.UNKNOWN  # what it found, not what it wrote
    assert store.values[KEY]["try_number"] == 2


def test_a_create_is_recorded_before_it_is_sent_and_after_its_answer() -> None:
    store = MemoryStore()
    seen: list[Any] = []
    fake = Fake(Lookup(Seen.ABSENT))

    def create() -> str:
        seen.append(dict(store.values[KEY]))
        return "j1"

    assert create_once(opened(store, 1), tag(), fake.reattach(), create, LOG) == "j1"
    assert seen == [record("creating")]
    assert store.values[KEY] == record("created", job_id="j1")


def test_a_lost_answer_found_by_tag_is_recorded_as_created() -> None:
    store = MemoryStore()
    fake = Fake(Lookup(Seen.FOUND, job("j1")), create=LOST)
    assert create_once(opened(store, 1), tag(), fake.reattach(), fake.create, LOG) == "j1"
    assert store.values[KEY]["job_id"] == "j1"


def test_a_lost_answer_not_found_leaves_the_create_under_way() -> None:
    store = MemoryStore()
    fake = Fake(Lookup(Seen.ABSENT), create=LOST)
    with pytest.raises(VBrainMaybeCreatedError):
        create_once(opened(store, 1), tag(), fake.reattach(), fake.create, LOG)
    assert store.values[KEY] == record("creating")


def test_a_store_that_fails_after_the_create_does_not_fail_the_try(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(MemoryStore):
        def set(self, key: str, value: Any) -> None:
            if value["state"] == "created":
                raise RuntimeError("the API server is away")
            super().set(key, value)

    store = Failing()
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        created = create_once(
            opened(store, 1), tag(), Fake(Lookup(Seen.ABSENT)).reattach(), lambda: "j1", LOG
        )
    assert created == "j1"
    assert store.values[KEY]["state"] == "creating"  # a retry looks for it by tag
    assert "look for it by its tag" in caplog.text


# ---------------------------------------------------------------- what a retry concludes


@pytest.mark.parametrize(
    ("found", "prior"),
    [
        pytest.param(record("created", job_id="j1"), Prior.CREATED, id="created"),
        pytest.param(record("creating"), Prior.CREATING, id="create-under-way"),
        pytest.param(record("started"), Prior.NO_CREATE, id="a-try-that-never-reached-the-create"),
        pytest.param(
            record("created", job_id="j1", request="another"),
            Prior.NO_CREATE,
            id="created-for-another-request",
        ),
        pytest.param(
            record("creating", request="another"), Prior.NO_CREATE, id="under-way-for-another-request"
        ),
        pytest.param(
            record("created", job_id="j1", repository_id="other"),
            Prior.NO_CREATE,
            id="created-in-another-repository",
        ),
        pytest.param(
            record("created", job_id="j1", dag_run_started="2026-11-30T08:00:00+00:00"),
            Prior.NO_CREATE,
            id="created-before-the-run-was-cleared",
        ),
        pytest.param(record("created"), Prior.CREATING, id="created-without-an-id"),
        pytest.param("j1", Prior.UNKNOWN, id="not-a-record"),
        pytest.param({"job_id": "j1"}, Prior.UNKNOWN, id="a-record-without-a-state"),
    ],
)
def test_what_a_record_tells_a_retry(found: Any, prior: Prior) -> None:
    earlier = opened(MemoryStore(**{KEY: found})).earlier(tag())
    assert earlier.prior is prior
    assert earlier.created_id == ("j1" if prior is Prior.CREATED else None)


def test_a_changed_request_is_not_the_recorded_one() -> None:
    store = MemoryStore(**{KEY: record("created", job_id="j1")})
    assert opened(store).earlier(tag(a=2)).prior is Prior.NO_CREATE


class Counting(Fake):
    """Canned lookups that count how often they were asked."""

    looked = 0

    def find(self) -> Lookup[Any]:
        self.looked += 1
        return super().find()


class Reusable:
    def __init__(self, value: Any) -> None:
        self.value = value
        self.asked: list[str] = []

    def __call__(self, created_id: str) -> Any:
        self.asked.append(created_id)
        return self.value


@pytest.mark.parametrize(
    ("found", "try_number", "looks", "reads"),
    [
        pytest.param(record("created", job_id="j1"), 2, False, True, id="created-is-read-by-id"),
        pytest.param(record("creating"), 2, True, False, id="a-lost-answer-is-looked-for-by-tag"),
        pytest.param(None, 2, True, False, id="nothing-on-a-retry-is-looked-for-by-tag"),
        pytest.param(record("started"), 2, False, False, id="no-create-recorded-creates"),
        pytest.param(None, 1, False, False, id="a-first-try-creates"),
    ],
)
def test_a_retry_looks_by_tag_only_where_the_store_cannot_tell(
    found: Any, try_number: int, looks: bool, reads: bool
) -> None:
    store = MemoryStore(**({} if found is None else {KEY: found}))
    fake = Counting(Lookup(Seen.FOUND, job("j9")))
    reusable = Reusable(job("j1"))
    got = resume(opened(store, try_number), tag(), fake.reattach(), reusable, try_number, LOG)
    assert bool(fake.looked) is looks
    assert reusable.asked == (["j1"] if reads else [])
    expected = job("j1") if reads else job("j9") if looks else None
    assert got == expected


def test_a_recorded_job_that_cannot_be_reused_is_created_again() -> None:
    store = MemoryStore(**{KEY: record("created", job_id="j1")})
    reattach = Fake(Lookup(Seen.FOUND, job("j9"))).reattach()
    assert resume(opened(store), tag(), reattach, Reusable(None), 2, LOG) is None


def test_without_a_store_the_tag_rules_decide_on_a_retry_only() -> None:
    fake = Fake(Lookup(Seen.FOUND, job("j9")))
    assert resume(None, tag(), fake.reattach(), Reusable(job("j1")), 1, LOG) is None
    assert resume(None, tag(), fake.reattach(), Reusable(job("j1")), 2, LOG) == job("j9")


# ---------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    ("found", "reused", "counted"),
    [
        pytest.param(
            record("created", job_id="j1"),
            job("j1"),
            ["reconnect_attempt", "reconnect_success"],
            id="running-job",
        ),
        pytest.param(
            record("created", job_id="j1"),
            job("j1", "finished"),
            ["reconnect_attempt", "already_succeeded"],
            id="finished-job",
        ),
        pytest.param(
            record("created", job_id="j1"), None, ["reconnect_attempt", "terminal_resubmit"], id="failed-job"
        ),
        pytest.param(record("started"), None, ["fresh_submit"], id="no-create"),
        pytest.param(record("creating"), None, [], id="lost-answer-looked-for-by-tag"),
    ],
)
def test_decisions_are_counted_as_airflows_resumable_jobs_count_them(
    monkeypatch: pytest.MonkeyPatch, found: Any, reused: Any, counted: list[str]
) -> None:
    stats = pytest.importorskip(
        "airflow.sdk.observability.stats", reason="Airflow before 3.2 has no SDK Stats"
    )
    seen: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        stats.Stats, "incr", lambda name, *args, **kwargs: seen.append((name, kwargs.get("tags")))
    )
    reattach = Fake(Lookup(Seen.ABSENT)).reattach()
    resume(opened(MemoryStore(**{KEY: found})), tag(), reattach, Reusable(reused), 2, LOG, "MyOperator")
    assert seen == [(f"resumable_job.{name}", {"operator": "MyOperator"}) for name in counted]
