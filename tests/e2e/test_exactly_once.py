"""Exactly one job, under every reading of the VBrain reference the emulator can follow.

Each test runs under every emulator profile (``vbrain_emulator_profile``): job status with the job's
own metadata, with the repository's, with metadata as a JSON string, with none; repositories created
from form data only; scoping by application; downloads that are not ZIPs; listings that lag. Whatever
the reading, no test may end with two jobs for one request: a reading that lets the provider tell
which job a task submitted ends in reuse, the others in a clear error that names the candidates.

The create operators run as a worker runs them, one try after another with the same task identity,
over real HTTP; ``test_retried_dags_never_duplicate`` runs whole DAGs with ``dag.test()``.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_vbrain._tasks.reattach import Tag
from airflow_provider_vbrain.exceptions import VBrainMaybeCreatedError, VBrainReattachUnknownError
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from airflow_provider_vbrain.operators.vbrain import VBrainCreateRepositoryOperator, VBrainExecuteJobOperator
from tests.conftest import connection_json, state, xcom
from vbrain_emulator.profiles import PROFILES, Profile
from vbrain_emulator.pytest_plugin import under_profiles

EXECUTE = r"^/api/v1/job/execute$"
CREATE_REPOSITORY = r"^/api/v1/repository$"
STATUS = r"^/api/v1/job/[^/]+$"
STATUS_PREFIX = "/api/v1/job/"
#: Every profile; listings lag 0.5 s under eventual-listing, within the operators' 1 s settle time.
EVERY_PROFILE = under_profiles(*(f"{name}=0.5" if name == "eventual-listing" else name for name in PROFILES))
pytestmark = EVERY_PROFILE


def tells_jobs_apart(profile: Profile) -> bool:
    """Whether status answers under ``profile`` carry a job's own metadata (as an object or a string)."""
    return not {"repository-metadata", "no-metadata"} & set(profile.names)


@pytest.fixture
def conn(vbrain_emulator_profile: Profile, vbrain_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``vbrain_default`` on the emulator under the test's profile: fast retries, a 1 s request timeout."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_VBRAIN_DEFAULT",
        connection_json(
            vbrain_emulator.url, extra={"retry_base_delay": 0.01, "retry_max_delay": 0.05, "timeout": 1}
        ),
    )
    return vbrain_emulator


def context(
    try_number: int = 1, task_id: str = "execute", run_started: datetime | None = None
) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="exactly_once",
        task_id=task_id,
        run_id="manual__1",
        map_index=-1,
        try_number=try_number,
        xcom_push=lambda **_: None,
    )
    return (
        {"ti": ti} if run_started is None else {"ti": ti, "dag_run": SimpleNamespace(start_date=run_started)}
    )


def execute(repository_id: str, **kwargs: Any) -> VBrainExecuteJobOperator:
    arguments = {"job_params": {"a": 10, "b": 20}, "reattach_settle_seconds": 1, **kwargs}
    return VBrainExecuteJobOperator(task_id="execute", repository_id=repository_id, **arguments)


def jobs_of(conn: Any, repository_id: str) -> list[dict[str, Any]]:
    """Every job really created in the repository, whatever the listing shows yet."""
    return [job for job in conn.jobs() if job["repository_id"] == repository_id]


LOST_ANSWERS = [
    pytest.param(
        {"status": 502, "after": True, "listing_delay": 0.5}, id="502-after-processing-listed-later"
    ),
    pytest.param({"answer_delay": 1.5}, id="answered-after-the-client-timed-out"),
    pytest.param({"drop": True, "after": True}, id="connection-dropped-after-processing"),
]


@pytest.mark.parametrize("fault", LOST_ANSWERS)
def test_a_lost_submit_answer_never_makes_a_second_job(
    conn: Any, vbrain_emulator_profile: Profile, fault: dict
) -> None:
    repository_id = VBrainHook().create_repository()
    conn.inject_fault(method="POST", path=EXECUTE, count=1, **fault)
    if tells_jobs_apart(vbrain_emulator_profile):
        job_id = execute(repository_id).execute(context())
        (job,) = jobs_of(conn, repository_id)
        assert job["job_id"] == job_id
    else:
        with pytest.raises(VBrainMaybeCreatedError, match="still cannot tell") as caught:
            execute(repository_id).execute(context())
        (job,) = jobs_of(conn, repository_id)
        assert job["job_id"] in str(caught.value)  # named as the candidate
        # The task's retry looks again: it cannot tell either, and says so instead of submitting.
        with pytest.raises(VBrainReattachUnknownError, match=job["job_id"]):
            execute(repository_id).execute(context(try_number=2))
    assert len(jobs_of(conn, repository_id)) == 1


def test_a_retry_reattaches_or_refuses_never_duplicates(conn: Any, vbrain_emulator_profile: Profile) -> None:
    repository_id = VBrainHook().create_repository()
    first = execute(repository_id).execute(context())
    if tells_jobs_apart(vbrain_emulator_profile):
        assert execute(repository_id).execute(context(try_number=2)) == first
    else:
        with pytest.raises(VBrainReattachUnknownError, match=first):
            execute(repository_id).execute(context(try_number=2))
    assert [job["job_id"] for job in jobs_of(conn, repository_id)] == [first]


def test_a_retry_may_submit_when_asked_and_says_why(
    conn: Any,
    vbrain_emulator_profile: Profile,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    repository_id = VBrainHook().create_repository()
    first = execute(repository_id, on_unknown_earlier="submit").execute(context())
    again = execute(repository_id, on_unknown_earlier="submit").execute(context(try_number=2))
    if tells_jobs_apart(vbrain_emulator_profile):
        assert again == first
    else:  # the user chose a possible duplicate over a failed retry: never silently
        assert again != first
        logged = caplog.text + "".join(capfd.readouterr())  # Airflow 3 logs tasks to stdout
        assert "may duplicate one of them" in logged
        assert first in logged


def test_a_changed_request_is_never_reattached_to_the_old_job(
    conn: Any, vbrain_emulator_profile: Profile
) -> None:
    hook = VBrainHook()
    repository_id = hook.create_repository()
    old = execute(repository_id).execute(context())
    conn.finish_job(old)
    changed = execute(repository_id, job_params={"a": 6, "b": 7})
    if tells_jobs_apart(vbrain_emulator_profile):
        new = changed.execute(context(try_number=2))
        assert new != old
        conn.finish_job(new)
        assert hook.get_job_result(new, repository_id) == {"value": 42}
    else:
        with pytest.raises(VBrainReattachUnknownError):
            changed.execute(context(try_number=2))
        assert len(jobs_of(conn, repository_id)) == 1


#: Three days: older than any DAG run's start less the lookups' margin (12 h 10 min).
OLD = 3 * 24 * 3600


def old_jobs(conn: Any, repository_id: str, count: int) -> set[str]:
    """``count`` jobs created three days ago by this same task in an older DAG run (same request)."""
    mine = Tag.of(context(), {"a": 10, "b": 20}, None, None)
    older_run = Tag({**mine.identity, "run_id": "scheduled__old"}, mine.fingerprint)
    return set(conn.add_jobs(repository_id, count, age_seconds=OLD, metadata=older_run.metadata(None)))


def test_a_retry_reads_what_its_run_could_have_created_not_the_whole_repository(
    conn: Any, vbrain_emulator_profile: Profile
) -> None:
    """A repository with a long history: the retry lists from the DAG run's start (less the
    margin) and never reads the status of a job created before; the outcome is the same."""
    repository_id = VBrainHook().create_repository()
    old = old_jobs(conn, repository_id, 40)
    run_started = datetime.now(timezone.utc)
    first = execute(repository_id).execute(context(run_started=run_started))
    conn.clear_requests()
    if tells_jobs_apart(vbrain_emulator_profile):
        assert execute(repository_id).execute(context(try_number=2, run_started=run_started)) == first
    else:
        with pytest.raises(VBrainReattachUnknownError, match=first):
            execute(repository_id).execute(context(try_number=2, run_started=run_started))
    requests = conn.requests()
    read = {
        r["path"].rsplit("/", 1)[-1]
        for r in requests
        if r["method"] == "GET" and r["path"].startswith(STATUS_PREFIX)
    }
    assert first in read
    assert not read & old, "the retry read jobs created before its DAG run started"
    listings = [r for r in requests if r["method"] == "GET" and r["path"] == "/api/v1/job"]
    assert listings
    assert all(r["query"].get("from_date") for r in listings)
    assert [job["job_id"] for job in jobs_of(conn, repository_id) if job["job_id"] not in old] == [first]


def test_a_lookup_that_finds_a_running_job_stops_reading(conn: Any, vbrain_emulator_profile: Profile) -> None:
    """Jobs of other tasks created in the same run after this task's job: once its own job is read
    (the newest first), none other is."""
    if not tells_jobs_apart(vbrain_emulator_profile):
        pytest.skip("status answers without the job's metadata: every listed job must be read")
    repository_id = VBrainHook().create_repository()
    run_started = datetime.now(timezone.utc)
    others = set(conn.add_jobs(repository_id, 20, metadata={"team": "other"}))
    first = execute(repository_id).execute(context(run_started=run_started))
    time.sleep(vbrain_emulator_profile.listing_delay)  # listed by the time the retry runs
    conn.clear_requests()
    assert execute(repository_id).execute(context(try_number=2, run_started=run_started)) == first
    read = [
        r["path"] for r in conn.requests() if r["method"] == "GET" and r["path"].startswith(STATUS_PREFIX)
    ]
    assert read == [STATUS_PREFIX + first], read
    assert others


@pytest.mark.parametrize("fault", LOST_ANSWERS)
def test_a_lost_repository_create_answer_never_makes_a_second_repository(conn: Any, fault: dict) -> None:
    conn.inject_fault(method="POST", path=CREATE_REPOSITORY, count=1, **fault)
    create = VBrainCreateRepositoryOperator(task_id="create", reattach_settle_seconds=1)
    repository_id = create.execute(context(task_id="create"))
    assert [repository["repository_id"] for repository in conn.repositories()] == [repository_id]
    # The tag reached the server whichever body it reads: the retry finds the same repository.
    assert create.execute(context(try_number=2, task_id="create")) == repository_id
    assert len(conn.repositories()) == 1


#: Airflow 3.0's dag.test() starts a deferred task's retry with the failed try's trigger event
#: (the new try resumes in execute_complete, so it fails again without running execute).
DEFERRED_RETRY = pytest.param(
    "deferrable",
    marks=pytest.mark.skipif(
        version("apache-airflow").startswith("3.0."),
        reason="Airflow 3.0's dag.test() resumes a deferred task's retry with the old try's event",
    ),
)


@pytest.mark.parametrize("mode", [DEFERRED_RETRY, "blocking"])
def test_retried_dags_never_duplicate(
    run_dag: Any, conn: Any, vbrain_emulator_profile: Profile, mode: str
) -> None:
    """A whole DAG whose execute task fails after submitting (a poll refused) and is retried.

    Asserted on what happened (task states, XCom, the emulator's jobs and request log), not on
    log lines, whose capture differs between Airflow lines."""
    conn.inject_fault(403, method="GET", path=STATUS, count=1)
    dag_run, states, _ = run_dag(f"e2e_reattach_{mode}")
    (job,) = conn.jobs()
    creates = [r for r in conn.requests() if r["method"] == "POST" and r["path"] == "/api/v1/job/execute"]
    assert len(creates) == 1, creates
    if tells_jobs_apart(vbrain_emulator_profile):
        assert state(dag_run) == "success", states
        assert xcom(dag_run, "execute") == job["job_id"]
        assert xcom(dag_run, "execute", key="result") == {"value": 200}
    else:  # the retry could not tell whether its first try had submitted: it failed, creating nothing
        assert states["execute"] == "failed", states
        listings = [r for r in conn.requests() if r["method"] == "GET" and r["path"] == "/api/v1/job"]
        assert listings, "the retry never looked for the earlier job"


def test_a_retried_dag_reads_only_what_its_run_could_have_created(
    run_dag: Any, conn: Any, vbrain_emulator_profile: Profile
) -> None:
    """A whole DAG, its execute task retried (a poll refused) in a repository whose 40 jobs were
    created days before the run: the retry lists from the run's start and reads none of them."""
    repository_id = VBrainHook().create_repository()
    old = old_jobs(conn, repository_id, 40)
    conn.clear_requests()
    conn.inject_fault(403, method="GET", path=STATUS, count=1)
    dag_run, states, _ = run_dag("e2e_reattach_history", repository_id=repository_id)
    requests = conn.requests()
    creates = [r for r in requests if r["method"] == "POST" and r["path"] == "/api/v1/job/execute"]
    assert len(creates) == 1, creates
    (new,) = [job["job_id"] for job in jobs_of(conn, repository_id) if job["job_id"] not in old]
    read = {r["path"].rsplit("/", 1)[-1] for r in requests if r["path"].startswith(STATUS_PREFIX)}
    assert not read & old, "the retry read jobs created before its DAG run started"
    listings = [r for r in requests if r["method"] == "GET" and r["path"] == "/api/v1/job"]
    assert listings, "the retry never looked for the earlier job"
    assert all(r["query"].get("from_date") for r in listings), listings
    if tells_jobs_apart(vbrain_emulator_profile):
        assert state(dag_run) == "success", states
        assert xcom(dag_run, "execute") == new
    else:
        assert states["execute"] == "failed", states
