"""The I/O-free store, driven with a fake clock."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from vbrain_emulator.state import (
    EmulatorError,
    EmulatorState,
    input_files_from_upload,
    parse_date_filter,
)

TENANT = ("acme", "ops")
T0 = datetime(2026, 11, 28, 10, 0, 30, tzinfo=timezone.utc).timestamp()


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> EmulatorState:
    return EmulatorState(queue_seconds=1.0, run_seconds=2.0, clock=clock)


@pytest.mark.parametrize(
    ("elapsed", "status"),
    [
        (0.0, "queued"),
        (0.99, "queued"),
        (1.0, "started"),
        (2.99, "started"),
        (3.0, "finished"),
        (1e6, "finished"),
    ],
)
def test_status_follows_the_clock(state: EmulatorState, clock: Clock, elapsed: float, status: str) -> None:
    repository = state.create_repository(TENANT, username="ana")
    job = state.execute_job(
        TENANT, repository.repository_id, application_id="Tutorial", params={"a": 1, "b": 2}
    )
    clock.now += elapsed
    assert job.status(clock()) == status


def test_metadata_overrides_durations(state: EmulatorState, clock: Clock) -> None:
    repository = state.create_repository(TENANT, username="ana")
    job = state.execute_job(
        TENANT,
        repository.repository_id,
        application_id="Tutorial",
        params={"a": 1, "b": 2},
        metadata={"emulator_queue_seconds": 0, "emulator_run_seconds": 10},
    )
    assert job.status(clock()) == "started"
    clock.now += 10
    assert job.status(clock()) == "finished"


def test_log_timestamps_follow_the_job(state: EmulatorState, clock: Clock) -> None:
    repository = state.create_repository(TENANT, username="ana")
    job = state.execute_job(
        TENANT, repository.repository_id, application_id="Tutorial", params={"a": 2, "b": 3}
    )
    clock.now += 5
    assert job.log_text(clock()).splitlines()[1:] == [
        "2026-11-28T10:00:31Z INFO job started",
        "2026-11-28T10:00:31Z INFO computed 2 * 3",
        "2026-11-28T10:00:33Z INFO job finished",
    ]


def test_finish_early_and_fail_late(state: EmulatorState, clock: Clock) -> None:
    repository = state.create_repository(TENANT, username="ana")
    job = state.execute_job(
        TENANT, repository.repository_id, application_id="Tutorial", params={"a": 2, "b": 3}
    )
    clock.now += 0.5
    state.finish_job(job.job_id)
    assert job.status(clock()) == "finished"
    clock.now += 10
    state.fail_job(job.job_id, "late failure")
    assert job.status(clock()) == "failed"
    assert "ERROR job failed: late failure" in job.log_text(clock())


def test_repository_ids_stay_unique_within_one_second(state: EmulatorState) -> None:
    ids = [state.create_repository(TENANT, username="ana").repository_id for _ in range(10_050)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"20261128100\d{7}", rid) for rid in ids)
    # Past 10,000 in one second, ids borrow the next second.
    assert {rid[:14] for rid in ids} == {"20261128100030", "20261128100031"}


def test_date_filters_are_inclusive_at_minute_resolution(state: EmulatorState, clock: Clock) -> None:
    first = state.create_repository(TENANT, username="ana").repository_id
    clock.now += 60
    second = state.create_repository(TENANT, username="ana").repository_id

    def listed(start: str | None, end: str | None) -> list[str]:
        return state.list_repositories(
            TENANT, from_date=parse_date_filter("from_date", start), to_date=parse_date_filter("to_date", end)
        )

    assert listed("202611281000", "202611281000") == [first]
    assert listed("202611281001", None) == [second]
    assert listed(None, "202611281001") == [first, second]
    assert listed("202611281002", None) == []


def test_reset_restores_initial_durations(state: EmulatorState) -> None:
    state.configure(queue_seconds=9)
    state.create_repository(TENANT, username="ana")
    state.reset()
    assert (state.queue_seconds, state.run_seconds) == (1.0, 2.0)
    assert state.list_repositories(TENANT) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("data.CSV", {"data.CSV": b"x"}),
        ("C:\\tmp\\book.xlsx", {"book.xlsx": b"x"}),
        ("cfg.json", {"cfg.json": b"x"}),
    ],
)
def test_single_file_uploads(name: str, expected: dict[str, bytes]) -> None:
    assert input_files_from_upload(name, b"x") == expected


def test_unknown_extension_is_400() -> None:
    with pytest.raises(EmulatorError) as info:
        input_files_from_upload("a.parquet", b"x")
    assert info.value.status == 400


def test_listing_delay_follows_the_clock(clock: Clock) -> None:
    state = EmulatorState(clock=clock, profile="eventual-listing=5")
    repository = state.create_repository(TENANT, username="ana")
    job = state.execute_job(TENANT, repository.repository_id, application_id="Tutorial", listing_delay=1)
    clock.now += 0.99
    assert state.list_repositories(TENANT) == []
    assert state.list_jobs(TENANT, repository.repository_id) == []
    # Reads by id are consistent at once.
    assert state.get_job(TENANT, repository.repository_id, job.job_id) is job
    clock.now += 0.01
    assert state.list_jobs(TENANT, repository.repository_id) == [job.job_id]
    assert state.repository_view(repository)["jobs"] == [job.job_id]
    assert state.list_repositories(TENANT) == []
    clock.now += 4
    assert state.list_repositories(TENANT) == [repository.repository_id]


def test_application_scoping_applies_to_what_exists_when_switched(state: EmulatorState) -> None:
    repository = state.create_repository(TENANT, username="ana", application_id="Tutorial")
    rid = repository.repository_id
    assert state.list_repositories(TENANT, application_id="CsvSummary") == [rid]
    state.set_profile("application-scoped")
    assert state.list_repositories(TENANT, application_id="CsvSummary") == []
    assert state.list_repositories(TENANT, application_id="Tutorial") == [rid]
    # No requester application: the control view, which sees everything.
    assert state.list_repositories(TENANT) == [rid]
    with pytest.raises(EmulatorError) as info:
        state.get_repository(TENANT, rid, application_id="CsvSummary")
    assert (info.value.status, info.value.message) == (404, "Invalid repository_id")
    with pytest.raises(EmulatorError):
        state.execute_job(TENANT, rid, application_id="CsvSummary")
    state.reset()
    assert str(state.profile) == "job-metadata"


def test_job_status_body_by_profile(state: EmulatorState, clock: Clock) -> None:
    repository = state.create_repository(TENANT, username="ana", metadata={"team": "ops"})
    job = state.execute_job(
        TENANT,
        repository.repository_id,
        application_id="Tutorial",
        params={"a": 1, "b": 2},
        metadata={"k": 1},
    )
    assert state.job_status_body(job)["metadata"] == {"k": 1}
    state.set_profile("metadata-string")
    assert state.job_status_body(job)["metadata"] == '{"k": 1}'
    state.set_profile("no-metadata")
    assert "metadata" not in state.job_status_body(job)
    state.set_profile("repository-metadata")
    clock.now += 3
    assert state.job_status_body(job) == {**repository.view(), "job_status": "finished"}
