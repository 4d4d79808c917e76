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
from tests.stores import MemoryStore, has_task_state_store
from vbrain_emulator.profiles import PROFILES, Profile
from vbrain_emulator.pytest_plugin import under_profiles

EXECUTE = r"^/api/v1/job/execute$"
CREATE_REPOSITORY = r"^/api/v1/repository$"
STATUS = r"^/api/v1/job/[^/]+$"
STATUS_PREFIX = "/api/v1/job/"
LISTING = "/api/v1/job"
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
    try_number: int = 1,
    task_id: str = "execute",
    run_started: datetime | None = None,
    store: MemoryStore | None = None,
) -> dict[str, Any]:
    """A task's context; with ``store``, as Airflow 3.3 gives it (its task state store)."""
    ti = SimpleNamespace(
        dag_id="exactly_once",
        task_id=task_id,
        run_id="manual__1",
        map_index=-1,
        try_number=try_number,
        xcom_push=lambda **_: None,
    )
    found: dict[str, Any] = {"ti": ti}
    if run_started is not None:
        found["dag_run"] = SimpleNamespace(start_date=run_started)
    if store is not None:
        found["task_state_store"] = store
    return found


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


def stored(dag_run: Any, task_id: str, key: str) -> Any:
    """A task's record in Airflow's task state store, as the UI reads it (3.3+)."""
    import json

    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(TaskStateStoreModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        return None if row is None else json.loads(row.value)


@pytest.mark.parametrize("mode", [DEFERRED_RETRY, "blocking"])
def test_retried_dags_never_duplicate(
    run_dag: Any, conn: Any, vbrain_emulator_profile: Profile, mode: str
) -> None:
    """A whole DAG whose execute task fails after submitting (a poll refused) and is retried.

    On Airflow 3.3 the first try recorded its job in the task state store, so the retry reattaches
    by id under every reading, listing nothing; before 3.3 it finds the job by its tag where status
    answers echo the job's metadata, and fails, creating nothing, where they do not.
    Asserted on what happened (task states, XCom, the emulator's jobs and request log, the store),
    not on log lines, whose capture differs between Airflow lines."""
    conn.inject_fault(403, method="GET", path=STATUS, count=1)
    dag_run, states, _ = run_dag(f"e2e_reattach_{mode}")
    (job,) = conn.jobs()
    creates = [r for r in conn.requests() if r["method"] == "POST" and r["path"] == "/api/v1/job/execute"]
    assert len(creates) == 1, creates
    listings = [r for r in conn.requests() if r["method"] == "GET" and r["path"] == LISTING]
    if has_task_state_store():
        assert not listings, "the retry knew its job from the store, yet listed the repository"
        record = stored(dag_run, "execute", "vbrain_job")
        assert record["state"] == "created"
        assert record["job_id"] == job["job_id"]
        assert record["try_number"] == 1
    if has_task_state_store() or tells_jobs_apart(vbrain_emulator_profile):
        assert state(dag_run) == "success", states
        assert xcom(dag_run, "execute") == job["job_id"]
        assert xcom(dag_run, "execute", key="result") == {"value": 200}
    else:  # the retry could not tell whether its first try had submitted: it failed, creating nothing
        assert states["execute"] == "failed", states
        assert listings, "the retry never looked for the earlier job"


def test_a_retried_dag_reads_only_what_its_run_could_have_created(
    run_dag: Any, conn: Any, vbrain_emulator_profile: Profile
) -> None:
    """A whole DAG, its execute task retried (a poll refused) in a repository whose 40 jobs were
    created days before the run: the retry reads none of them (on Airflow 3.3 it lists nothing at
    all; before, it lists from the run's start)."""
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
    listings = [r for r in requests if r["method"] == "GET" and r["path"] == LISTING]
    if has_task_state_store():
        assert not listings, listings
    else:
        assert listings, "the retry never looked for the earlier job"
        assert all(r["query"].get("from_date") for r in listings), listings
    if has_task_state_store() or tells_jobs_apart(vbrain_emulator_profile):
        assert state(dag_run) == "success", states
        assert xcom(dag_run, "execute") == new
    else:
        assert states["execute"] == "failed", states


# ---------------------------------------------------------------- with a task state store (Airflow 3.3)
# A stand-in store in the task's context, so these run on every Airflow line; Airflow's own store
# is used by the dag.test() runs above (3.3) and by make smoke's kill pass.


def listed(conn: Any) -> list[dict[str, Any]]:
    return [
        r for r in conn.requests() if r["method"] == "GET" and r["path"] in (LISTING, "/api/v1/repository")
    ]


def deferral(operator: Any, task_context: dict[str, Any]) -> Any:
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow 2
        from airflow.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(task_context)
    return deferred.value


@pytest.mark.parametrize("wait", ["no-wait", "blocking", "deferrable"])
def test_a_retry_that_knows_its_job_reattaches_under_every_reading(conn: Any, wait: str) -> None:
    """The first try recorded its job (the answer came back), then was lost: the retry reattaches
    by id, whatever status answers carry, listing nothing: it waits on the job, or takes its result."""
    repository_id = VBrainHook().create_repository()
    store = MemoryStore()
    first = execute(repository_id).execute(context(store=store))
    conn.clear_requests()
    retry = execute(
        repository_id,
        wait_for_completion=wait != "no-wait",
        deferrable=wait == "deferrable",
        poll_interval=0.1,
    )
    if wait == "deferrable":
        trigger = deferral(retry, context(try_number=2, store=store)).trigger
        assert trigger.job_id == first
    else:
        assert retry.execute(context(try_number=2, store=store)) == first
    assert [job["job_id"] for job in jobs_of(conn, repository_id)] == [first]
    assert not listed(conn)
    assert store.values["vbrain_job"]["job_id"] == first


def test_a_finished_job_recorded_gives_its_result_without_running_again(conn: Any) -> None:
    repository_id = VBrainHook().create_repository()
    store = MemoryStore()
    first = execute(repository_id).execute(context(store=store))
    conn.finish_job(first)
    pushed: dict[str, Any] = {}
    retry_context = context(try_number=2, store=store)
    retry_context["ti"].xcom_push = lambda key, value: pushed.__setitem__(key, value)
    assert execute(repository_id, wait_for_completion=True).execute(retry_context) == first
    assert pushed["result"] == {"value": 200}
    assert len(jobs_of(conn, repository_id)) == 1


def test_a_failed_job_recorded_is_submitted_again(conn: Any) -> None:
    repository_id = VBrainHook().create_repository()
    store = MemoryStore()
    first = execute(repository_id).execute(context(store=store))
    conn.fail_job(first)
    conn.clear_requests()
    again = execute(repository_id).execute(context(try_number=2, store=store))
    assert again != first
    assert store.values["vbrain_job"]["job_id"] == again
    assert not listed(conn)


def test_a_retry_after_a_try_that_never_reached_the_create_lists_nothing(conn: Any, tmp_path: Any) -> None:
    """The first try failed before submitting (its input was not there yet): the store shows no
    create, so the retry submits at once, under every reading, without listing the repository."""
    repository_id = VBrainHook().create_repository()
    store = MemoryStore()
    data = tmp_path / "sales.csv"
    task = execute(repository_id, input_file=str(data))
    with pytest.raises(FileNotFoundError, match=r"sales\.csv"):
        task.execute(context(store=store))
    data.write_text("a,b\n1,2\n")
    conn.clear_requests()
    job_id = task.execute(context(try_number=2, store=store))
    assert [job["job_id"] for job in jobs_of(conn, repository_id)] == [job_id]
    assert not listed(conn)


@pytest.mark.parametrize("cleared", ["request-changed", "ended-run-cleared"])
def test_a_cleared_task_never_reattaches_to_a_job_of_another_request_or_run(conn: Any, cleared: str) -> None:
    """A user cleared the task: with other params it is another request; after its DAG run had
    ended, Airflow restarts the run (a new start), as the tag lookup reads it. Either way a new job,
    created without listing, under every reading."""
    repository_id = VBrainHook().create_repository()
    store = MemoryStore()
    started = datetime(2026, 12, 1, tzinfo=timezone.utc)
    old = execute(repository_id).execute(context(store=store, run_started=started))
    conn.finish_job(old)
    conn.clear_requests()
    params = {"a": 6, "b": 7} if cleared == "request-changed" else {"a": 10, "b": 20}
    restarted = started if cleared == "request-changed" else datetime.now(timezone.utc)
    new = execute(repository_id, job_params=params).execute(
        context(try_number=2, store=store, run_started=restarted)
    )
    assert new != old
    assert not listed(conn)
    assert len(jobs_of(conn, repository_id)) == 2


def test_a_lost_answer_with_the_store_is_looked_for_by_tag(
    conn: Any, vbrain_emulator_profile: Profile
) -> None:
    """The window the store cannot close (the answer lost before it was recorded): the tag rules,
    as on Airflow before 3.3."""
    repository_id = VBrainHook().create_repository()
    store = MemoryStore()
    conn.inject_fault(method="POST", path=EXECUTE, count=1, drop=True, after=True)
    if tells_jobs_apart(vbrain_emulator_profile):
        job_id = execute(repository_id).execute(context(store=store))
        assert store.values["vbrain_job"]["job_id"] == job_id
        assert execute(repository_id).execute(context(try_number=2, store=store)) == job_id
    else:
        with pytest.raises(VBrainMaybeCreatedError):
            execute(repository_id).execute(context(store=store))
        assert store.values["vbrain_job"]["state"] == "creating"
        with pytest.raises(VBrainReattachUnknownError):
            execute(repository_id).execute(context(try_number=2, store=store))
    assert len(jobs_of(conn, repository_id)) == 1


def test_a_repository_recorded_is_reused_unless_it_is_gone(conn: Any) -> None:
    store = MemoryStore()
    create = VBrainCreateRepositoryOperator(task_id="create", reattach_settle_seconds=1)
    first = create.execute(context(task_id="create", store=store))
    conn.clear_requests()
    assert create.execute(context(try_number=2, task_id="create", store=store)) == first
    assert not listed(conn)
    VBrainHook().delete_repository(first)
    again = create.execute(context(try_number=3, task_id="create", store=store))
    assert again != first
    assert [repository["repository_id"] for repository in conn.repositories()] == [again]
