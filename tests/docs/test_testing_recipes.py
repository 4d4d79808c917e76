"""The recipes of docs/testing.md ("Testing DAGs that use VBrain"), run as tests.

The page includes its code from this file, between the ``[START ...]`` and ``[END ...]`` markers,
so what it shows is what runs here. Written as a DAG author's test file would be: the public hook
methods patched at the class with pytest-mock's ``mocker``, no VBrain server.
"""

# [START howto_testing_imports]
from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_vbrain.exceptions import (
    VBrainAuthError,
    VBrainJobFailedError,
    VBrainNotFoundError,
    VBrainServerError,
)
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from airflow_provider_vbrain.jobs import JobState, JobStatus
from airflow_provider_vbrain.operators.vbrain import VBrainExecuteJobOperator
from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor

try:
    from airflow.sdk import BaseOperator
except ImportError:  # Airflow 2
    from airflow.models import BaseOperator  # type: ignore[no-redef,attr-defined]
# [END howto_testing_imports]


# [START howto_testing_fixtures]
@pytest.fixture(autouse=True)
def vbrain_connection(monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``vbrain_default`` connection to no server: the execute operator and the sensor read it
    (for the job's URL and link), and a hook method left unpatched fails at once, without
    retries, instead of reaching a VBrain."""
    connection = {
        "conn_type": "vbrain",
        "host": "http://127.0.0.1:9",
        "login": "ana",
        "password": "not-a-real-key",
        "extra": {
            "organization_id": "acme",
            "client_id": "ops",
            "application_id": "Tutorial",
            "retry_attempts": 1,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", json.dumps(connection))
    return "vbrain_default"


@pytest.fixture
def xcom() -> dict[str, Any]:
    """What the task pushed to XCom, by key."""
    return {}


@pytest.fixture
def context(mocker: Any, xcom: dict[str, Any]) -> dict[str, Any]:
    """The part of Airflow's context the VBrain tasks read: the task instance, its ids and XCom."""
    ti = mocker.Mock(
        dag_id="forecast", task_id="run_forecast", run_id="manual__1", map_index=-1, try_number=1
    )
    ti.xcom_push.side_effect = lambda key, value, **_: xcom.__setitem__(key, value)
    return {"ti": ti}


def status(state: str) -> JobStatus:
    """A job status as VBrain answers it: HTTP 202 while queued or started, 200 once over."""
    over = state in ("finished", "failed")
    return JobStatus.from_answer("job-1", "repo-1", 200 if over else 202, {"job_status": state})


# [END howto_testing_fixtures]


# [START howto_testing_patch_operator]
def test_the_operator_runs_the_job_and_pushes_its_output(
    mocker: Any, context: dict[str, Any], xcom: dict[str, Any]
) -> None:
    execute_job = mocker.patch.object(VBrainHook, "execute_job", autospec=True, return_value="job-1")
    mocker.patch.object(VBrainHook, "get_job_status", autospec=True, return_value=status("finished"))
    mocker.patch.object(VBrainHook, "get_job_result", autospec=True, return_value={"value": 42})

    operator = VBrainExecuteJobOperator(
        task_id="run_forecast",
        repository_id="repo-1",
        job_params={"a": 6, "b": 7},
        wait_for_completion=True,
        deferrable=False,
    )
    assert operator.execute(context) == "job-1"

    # autospec: the hook itself comes first; arguments match by name or position alike. The
    # operator adds its own "airflow" key to the metadata, hence ANY.
    execute_job.assert_called_once_with(
        mocker.ANY, "repo-1", params={"a": 6, "b": 7}, metadata=mocker.ANY, input_file=None
    )
    assert xcom["job_id"] == "job-1"
    assert xcom["result"] == {"value": 42}


# [END howto_testing_patch_operator]


# [START howto_testing_sensor]
@pytest.mark.parametrize("deferrable", [False, True])
def test_the_sensor_returns_the_output_of_a_finished_job(
    mocker: Any, context: dict[str, Any], deferrable: bool
) -> None:
    mocker.patch.object(VBrainHook, "get_job_status", autospec=True, return_value=status("finished"))
    get_job_result = mocker.patch.object(
        VBrainHook, "get_job_result", autospec=True, return_value={"value": 42}
    )

    sensor = VBrainJobSensor(
        task_id="wait_for_job", job_id="job-1", repository_id="repo-1", deferrable=deferrable
    )
    # A job that is already over needs no trigger: even a deferrable sensor ends here.
    assert sensor.execute(context) == {"value": 42}
    get_job_result.assert_called_once_with(mocker.ANY, "job-1", "repo-1")


# [END howto_testing_sensor]


# [START howto_testing_errors]
def page_the_platform_team(task_id: str, error: Exception) -> None:
    """Your paging client (stands in for a real one)."""


def alert_on_refused_credentials(context: dict[str, Any]) -> None:
    """An ``on_failure_callback``: page someone when VBrain refused the credentials, not otherwise."""
    error = context.get("exception")
    if isinstance(error, VBrainAuthError):
        page_the_platform_team(context["ti"].task_id, error)


@pytest.mark.parametrize(
    ("error", "paged"),
    [
        (VBrainAuthError("POST /api/v1/job/execute", 403, "Forbidden"), True),
        (VBrainServerError("POST /api/v1/job/execute", 503, "Service Unavailable", attempts=5), False),
    ],
)
def test_only_refused_credentials_page_the_platform_team(
    mocker: Any, context: dict[str, Any], error: Exception, paged: bool
) -> None:
    mocker.patch.object(VBrainHook, "execute_job", autospec=True, side_effect=error)
    page = mocker.patch(f"{__name__}.page_the_platform_team")

    operator = VBrainExecuteJobOperator(task_id="run_forecast", repository_id="repo-1")
    with pytest.raises(type(error)) as raised:
        operator.execute(context)
    alert_on_refused_credentials({**context, "exception": raised.value})

    assert page.call_args_list == ([mocker.call("run_forecast", error)] if paged else [])


def test_a_failed_job_fails_the_sensor(mocker: Any, context: dict[str, Any]) -> None:
    mocker.patch.object(VBrainHook, "get_job_status", autospec=True, return_value=status("failed"))
    # The error quotes the end of the job's logs; here there are none to read.
    no_logs = VBrainNotFoundError("GET /api/v1/job/job-1/logs", 404, "Invalid job_id")
    mocker.patch.object(VBrainHook, "download_job_logs", autospec=True, side_effect=no_logs)
    get_job_result = mocker.patch.object(VBrainHook, "get_job_result", autospec=True)

    sensor = VBrainJobSensor(task_id="wait_for_job", job_id="job-1", repository_id="repo-1", deferrable=False)
    with pytest.raises(VBrainJobFailedError) as failed:
        sensor.execute(context)

    assert (failed.value.job_id, failed.value.repository_id, failed.value.status) == (
        "job-1",
        "repo-1",
        "failed",
    )
    get_job_result.assert_not_called()


# [END howto_testing_errors]


# [START howto_testing_custom_operator]
class TutorialValueOperator(BaseOperator):
    """A team's own operator on the hook: run the Tutorial, return only the product."""

    def __init__(self, *, repository_id: str, a: int, b: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repository_id, self.a, self.b = repository_id, a, b

    def execute(self, context: Any) -> int:
        hook = VBrainHook("vbrain_default", application_id="Tutorial")
        job_id = hook.execute_job(self.repository_id, params={"a": self.a, "b": self.b})
        if hook.wait_for_job(job_id, self.repository_id, poll_interval=0.01).state is JobState.FAILED:
            raise hook.job_failure(job_id, self.repository_id)
        return hook.get_job_result(job_id, self.repository_id)["value"]


def test_the_custom_operator_waits_and_returns_the_value(mocker: Any, context: dict[str, Any]) -> None:
    mocker.patch.object(VBrainHook, "execute_job", autospec=True, return_value="job-1")
    # One answer per poll: queued, then started, then finished.
    get_job_status = mocker.patch.object(
        VBrainHook,
        "get_job_status",
        autospec=True,
        side_effect=[status("queued"), status("started"), status("finished")],
    )
    mocker.patch.object(VBrainHook, "get_job_result", autospec=True, return_value={"value": 42})

    task = TutorialValueOperator(task_id="product", repository_id="repo-1", a=6, b=7)
    assert task.execute(context) == 42
    assert get_job_status.call_count == 3
    hook = get_job_status.call_args.args[0]  # the hook the task built, as autospec passes it
    assert (hook.vbrain_conn_id, hook.application_id) == ("vbrain_default", "Tutorial")


# [END howto_testing_custom_operator]


# [START howto_testing_branch_unit]
def test_large_orders_go_to_the_planners(mocker: Any) -> None:
    from tests.e2e.dags.vbrain_testing_guide import choose_route

    ti = mocker.Mock()
    ti.xcom_pull.return_value = {"value": 200}  # what the execute task pushed as "result"

    assert choose_route.function(ti=ti) == "plan_by_hand"
    ti.xcom_pull.assert_called_once_with(task_ids="run_forecast", key="result")


# [END howto_testing_branch_unit]


# [START howto_testing_dag_test]
@pytest.mark.parametrize(
    ("value", "taken", "skipped"),
    [(200, "plan_by_hand", "book_automatically"), (50, "book_automatically", "plan_by_hand")],
)
def test_the_dag_branches_on_the_output(
    mocker: Any, dag_bag: Any, value: int, taken: str, skipped: str
) -> None:
    mocker.patch.object(VBrainHook, "create_repository", autospec=True, return_value="repo-1")
    execute_job = mocker.patch.object(VBrainHook, "execute_job", autospec=True, return_value="job-1")
    mocker.patch.object(VBrainHook, "get_job_status", autospec=True, return_value=status("finished"))
    mocker.patch.object(VBrainHook, "get_job_result", autospec=True, return_value={"value": value})

    dag_run = dag_bag.get_dag("vbrain_testing_guide").test()

    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    assert (states[taken], states[skipped]) == ("success", "skipped")
    # The new repository's id went from one task to the next through XCom.
    execute_job.assert_called_once_with(
        mocker.ANY, "repo-1", params={"a": 10, "b": 20}, metadata=mocker.ANY, input_file=None
    )


# [END howto_testing_dag_test]


# [START howto_testing_no_leak]
@pytest.fixture(autouse=True)
def vbrain_hook_unpatched() -> Any:
    """Fail a test that leaves VBrainHook patched for the tests after it (a ``start()`` without
    ``stop()``, an assignment to the class), and undo what it left. ``mocker`` undoes its own
    patches before this runs."""
    before = dict(vars(VBrainHook))
    yield
    after = dict(vars(VBrainHook))
    changed = sorted(name for name in before.keys() | after.keys() if after.get(name) is not before.get(name))
    for name in changed:
        if name in before:
            setattr(VBrainHook, name, before[name])
        else:
            delattr(VBrainHook, name)
    assert not changed, f"VBrainHook was still patched after the test: {changed}"


# [END howto_testing_no_leak]
