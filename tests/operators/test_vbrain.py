"""Operator and sensor behaviour that needs no DAG run: arguments, templating, defaults, events, and
what each task asks of its hook (the hook's methods mocked)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_vbrain.exceptions import VBrainError, VBrainInputError, VBrainNotFoundError
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from airflow_provider_vbrain.jobs import JobStatus
from airflow_provider_vbrain.operators.vbrain import (
    VBrainCreateRepositoryOperator,
    VBrainDeleteJobOperator,
    VBrainDeleteRepositoryOperator,
    VBrainDownloadJobFilesOperator,
    VBrainExecuteJobOperator,
)
from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor
from tests.conftest import connection_json


def context(try_number: int = 1) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="d", task_id="t", run_id="r", map_index=-1, try_number=try_number, xcom_push=lambda **_: None
    )
    return {"ti": ti}


@pytest.mark.parametrize(
    ("operator", "fields"),
    [
        (VBrainCreateRepositoryOperator, {"repository_params", "metadata", "input_file"}),
        (VBrainExecuteJobOperator, {"repository_id", "job_params", "metadata", "input_file"}),
        (VBrainDownloadJobFilesOperator, {"job_id", "repository_id", "destination"}),
        (VBrainDeleteJobOperator, {"job_id", "repository_id"}),
        (VBrainDeleteRepositoryOperator, {"repository_id"}),
        (VBrainJobSensor, {"job_id", "repository_id"}),
    ],
)
def test_templated_fields_are_the_contracts(operator: Any, fields: set[str]) -> None:
    # The connection id and the application are templated everywhere, as other providers do.
    assert set(operator.template_fields) == fields | {"vbrain_conn_id", "application_id"}
    assert isinstance(operator.template_fields, tuple)


@pytest.mark.parametrize(
    ("operator", "kwargs", "argument"),
    [
        pytest.param(
            VBrainExecuteJobOperator, {"job_params": {"when": object()}}, "job_params", id="job_params"
        ),
        pytest.param(VBrainExecuteJobOperator, {"job_params": [1, 2]}, "job_params", id="job_params-list"),
        pytest.param(VBrainExecuteJobOperator, {"metadata": "x"}, "metadata", id="metadata"),
        pytest.param(
            VBrainCreateRepositoryOperator, {"repository_params": {1, 2}}, "repository_params", id="repo"
        ),
        pytest.param(VBrainCreateRepositoryOperator, {"input_file": 42}, "location", id="input_file"),
    ],
)
def test_bad_payloads_fail_before_any_request(
    vbrain_conn: Any, operator: Any, kwargs: dict[str, Any], argument: str
) -> None:
    if operator is VBrainExecuteJobOperator:
        kwargs = {"repository_id": "123", **kwargs}
    task = operator(task_id="t", **kwargs)
    with pytest.raises(VBrainInputError, match=f"^{argument}: "):
        task.execute(context())
    assert vbrain_conn.requests() == []


@pytest.mark.parametrize("configured", [True, False])
def test_deferrable_defaults_to_airflows_setting(monkeypatch: pytest.MonkeyPatch, configured: bool) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", str(configured))
    assert VBrainJobSensor(task_id="s", job_id="j", repository_id="r").deferrable is configured
    assert VBrainExecuteJobOperator(task_id="e", repository_id="r").deferrable is configured
    assert VBrainJobSensor(
        task_id="s2", job_id="j", repository_id="r", deferrable=not configured
    ).deferrable is (not configured)


def test_download_kind_is_checked_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match=r"kind must be one of \('output', 'logs'\), got 'input'"):
        VBrainDownloadJobFilesOperator(
            task_id="d", job_id="j", repository_id="r", destination="/tmp", kind="input"
        )


def test_nothing_touches_the_network_or_the_connection_at_parse_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_VBRAIN_DEFAULT", raising=False)
    VBrainExecuteJobOperator(task_id="e", repository_id="r", wait_for_completion=True)
    VBrainJobSensor(task_id="s", job_id="j", repository_id="r")


@pytest.mark.parametrize(
    "event",
    [None, {"status": "mystery", "job_id": "j", "repository_id": "r"}, {"status": "succeeded"}],
    ids=["no-event", "unknown-status", "incomplete"],
)
@pytest.mark.parametrize("task", ["sensor", "execute"])
def test_resuming_with_an_unusable_event_fails_with_a_message(task: str, event: Any) -> None:
    operator: Any = (
        VBrainJobSensor(task_id="s", job_id="j", repository_id="r")
        if task == "sensor"
        else VBrainExecuteJobOperator(task_id="e", repository_id="r")
    )
    with pytest.raises(VBrainError, match="VBrain trigger"):
        operator.execute_complete(context(), event)


@pytest.mark.parametrize("task", ["sensor", "execute"])
def test_resuming_with_an_error_event_raises_its_message(task: str) -> None:
    operator: Any = (
        VBrainJobSensor(task_id="s", job_id="j", repository_id="r")
        if task == "sensor"
        else VBrainExecuteJobOperator(task_id="e", repository_id="r")
    )
    event = {"status": "error", "job_id": "j", "repository_id": "r", "message": "GET ... answered HTTP 403"}
    with pytest.raises(VBrainError, match="answered HTTP 403"):
        operator.execute_complete(context(), event)


def test_soft_fail_does_not_skip_a_trigger_that_crashed() -> None:
    from airflow_provider_vbrain._airflow.compat import AirflowSkipException

    sensor = VBrainJobSensor(task_id="s", job_id="j", repository_id="r", soft_fail=True)
    with pytest.raises(Exception, match="Trigger failure") as caught:
        sensor.resume_execution("__fail__", {"error": "Trigger failure"}, context())
    assert not isinstance(caught.value, AirflowSkipException)


@pytest.mark.parametrize("interval", [0, -1, 0.0])
def test_polling_intervals_must_be_positive(interval: float) -> None:
    with pytest.raises(ValueError, match="poll_interval must be more than 0 seconds"):
        VBrainExecuteJobOperator(task_id="e", repository_id="r", poll_interval=interval)
    with pytest.raises(ValueError, match="poke_interval must be more than 0 seconds"):
        VBrainJobSensor(task_id="s", job_id="j", repository_id="r", poke_interval=interval)


def _renders_templates() -> bool:
    from airflow_provider_vbrain._airflow.compat import triggerer_renders_templates

    return triggerer_renders_templates()


def _scheduler_starts_from_trigger() -> bool:
    from airflow_provider_vbrain._airflow.compat import scheduler_starts_from_trigger

    return scheduler_starts_from_trigger()


#: Airflow 3.1 and 3.2: the sensor warns and defers from a worker (tests/e2e/test_start_from_trigger.py).
starts_from_trigger = pytest.mark.skipif(
    not _scheduler_starts_from_trigger(), reason="this Airflow's scheduler starts no task on the triggerer"
)


@starts_from_trigger
def test_start_from_trigger_with_plain_ids_starts_the_trigger_on_every_line() -> None:
    sensor = VBrainJobSensor(
        task_id="s", job_id="j1", repository_id="r1", start_from_trigger=True, poke_interval=5, timeout=600
    )
    assert sensor.deferrable is True
    assert sensor.start_from_trigger is True
    args = sensor.start_trigger_args
    assert args.trigger_cls == "airflow_provider_vbrain.triggers.vbrain.VBrainJobTrigger"
    assert args.next_method == "execute_complete"
    assert args.timeout.total_seconds() == 600  # Airflow makes it absolute when the task defers
    assert args.trigger_kwargs == {
        "job_id": "j1",
        "repository_id": "r1",
        "vbrain_conn_id": "vbrain_default",
        "application_id": None,
        "poll_interval": 5.0,
        "end_time": None,
        "last_state": None,
        # The trigger ends the task, with the sensor's output limit.
        "end_task": True,
        "end_failed_task": True,
        "fetch_result": True,
        "max_result_bytes": 1024 * 1024,
        "max_poll_interval": 300.0,
        "started_at": None,  # when the task starts on the triggerer
    }
    # The trigger Airflow builds from these arguments accepts them all.
    from airflow_provider_vbrain.triggers.vbrain import VBrainJobTrigger

    assert VBrainJobTrigger(**args.trigger_kwargs).serialize()[1] == args.trigger_kwargs


@pytest.mark.parametrize(
    ("options", "end_failed_task", "fetch_result"),
    [
        # Where Airflow retries a task its trigger failed (3.3), the trigger fails it; else a worker.
        pytest.param({"retries": 2}, None, True, id="retries-left"),
        pytest.param({"fetch_result": False}, True, False, id="no-result"),
        pytest.param({"do_xcom_push": False}, True, False, id="no-xcom-push"),
    ],
)
@starts_from_trigger
def test_start_from_trigger_tells_the_trigger_how_to_end_the_task(
    options: dict[str, Any], end_failed_task: bool | None, fetch_result: bool
) -> None:
    from airflow_provider_vbrain._airflow.compat import trigger_failures_retry

    if end_failed_task is None:
        end_failed_task = trigger_failures_retry()
    sensor = VBrainJobSensor(
        task_id="s",
        job_id="j1",
        repository_id="r1",
        start_from_trigger=True,
        max_result_bytes=None,
        **options,
    )
    kwargs = sensor.start_trigger_args.trigger_kwargs
    assert kwargs["end_task"] is True
    assert kwargs["end_failed_task"] is end_failed_task
    assert kwargs["fetch_result"] is fetch_result
    assert kwargs["max_result_bytes"] is None


@starts_from_trigger
def test_start_from_trigger_with_xcom_ids_renders_them_on_the_triggerer_or_falls_back() -> None:
    try:
        from airflow.sdk import DAG
    except ImportError:  # Airflow 2
        from airflow import DAG  # type: ignore[no-redef]

    with DAG("d", schedule=None):
        execute = VBrainExecuteJobOperator(task_id="execute", repository_id="r1")
        if _renders_templates():
            sensor = VBrainJobSensor(
                task_id="s", job_id=execute.output, repository_id="{{ params.r }}", start_from_trigger=True
            )
        else:
            with pytest.warns(
                UserWarning, match=r"s: start_from_trigger=True, but job_id, repository_id take"
            ):
                sensor = VBrainJobSensor(
                    task_id="s",
                    job_id=execute.output,
                    repository_id="{{ params.r }}",
                    start_from_trigger=True,
                )
    assert sensor.deferrable is True
    assert sensor.upstream_task_ids == {"execute"}
    if _renders_templates():
        assert sensor.start_from_trigger is True
        kwargs = sensor.start_trigger_args.trigger_kwargs
        assert kwargs["job_id"] == (
            '{{ task_instance.xcom_pull(task_ids="execute", key="return_value", map_indexes=-1) }}'
        )
        assert kwargs["repository_id"] == "{{ params.r }}"
    else:
        assert sensor.start_from_trigger is False


def test_start_from_trigger_cannot_be_asked_without_deferring() -> None:
    with pytest.raises(
        ValueError, match=r"start_from_trigger=True waits on the triggerer: it needs deferrable=True"
    ):
        VBrainJobSensor(task_id="s", job_id="j", repository_id="r", deferrable=False, start_from_trigger=True)


def test_without_start_from_trigger_nothing_changes() -> None:
    sensor = VBrainJobSensor(task_id="s", job_id="j", repository_id="r", deferrable=True)
    assert sensor.start_from_trigger is False
    assert sensor.start_trigger_args is None


# --------------------------------------------------------------------------- what a task asks of its hook


@pytest.fixture
def nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """``vbrain_default`` (and ``vbrain_other``) pointing at a closed port without retries: a task
    reads its connection, and a hook method a test forgot to mock fails at once."""
    for name in ("VBRAIN_DEFAULT", "VBRAIN_OTHER"):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{name}", connection_json("http://127.0.0.1:9", extra={"retry_attempts": 1})
        )


def finished() -> JobStatus:
    return JobStatus.from_answer("j", "r", 200, {"job_status": "finished"})


def test_a_task_builds_its_hook_from_its_rendered_connection_arguments(nowhere: None, mocker: Any) -> None:
    execute_job = mocker.patch.object(VBrainHook, "execute_job", autospec=True, return_value="j")
    task = VBrainExecuteJobOperator(
        task_id="e", repository_id="r", vbrain_conn_id="vbrain_other", application_id="Forecast"
    )
    assert task.execute(context()) == "j"
    hook = execute_job.call_args.args[0]
    assert (hook.vbrain_conn_id, hook.application_id) == ("vbrain_other", "Forecast")


def test_without_waiting_the_execute_operator_submits_and_never_polls(nowhere: None, mocker: Any) -> None:
    execute_job = mocker.patch.object(VBrainHook, "execute_job", autospec=True, return_value="j")
    get_job_status = mocker.patch.object(VBrainHook, "get_job_status", autospec=True)
    get_job_result = mocker.patch.object(VBrainHook, "get_job_result", autospec=True)
    assert VBrainExecuteJobOperator(task_id="e", repository_id="r").execute(context()) == "j"
    assert execute_job.call_count == 1
    get_job_status.assert_not_called()
    get_job_result.assert_not_called()


@pytest.mark.parametrize("deferrable", [False, True])
def test_a_sensor_without_fetch_result_never_asks_for_the_result(
    nowhere: None, mocker: Any, deferrable: bool
) -> None:
    mocker.patch.object(VBrainHook, "get_job_status", autospec=True, return_value=finished())
    get_job_result = mocker.patch.object(VBrainHook, "get_job_result", autospec=True)
    sensor = VBrainJobSensor(
        task_id="s", job_id="j", repository_id="r", fetch_result=False, deferrable=deferrable
    )
    assert sensor.execute(context()) is None
    get_job_result.assert_not_called()


def test_the_delete_operators_delete_once_and_take_already_gone_as_done(mocker: Any) -> None:
    gone = VBrainNotFoundError("DELETE /api/v1/job/j", 404, "Invalid job_id")
    delete_job = mocker.patch.object(VBrainHook, "delete_job", autospec=True, side_effect=gone)
    delete_repository = mocker.patch.object(VBrainHook, "delete_repository", autospec=True)
    VBrainDeleteJobOperator(task_id="dj", job_id="j", repository_id="r").execute(context())
    VBrainDeleteRepositoryOperator(task_id="dr", repository_id="r").execute(context())
    delete_job.assert_called_once_with(mocker.ANY, "j", "r")
    delete_repository.assert_called_once_with(mocker.ANY, "r")


@pytest.mark.parametrize("kind", ["output", "logs"])
def test_the_download_operator_asks_for_its_kind_only(mocker: Any, tmp_path: Any, kind: str) -> None:
    where = str(tmp_path / f"j-{kind}.zip")
    downloads = {
        name: mocker.patch.object(VBrainHook, f"download_job_{name}", autospec=True, return_value=where)
        for name in ("output", "logs")
    }
    task = VBrainDownloadJobFilesOperator(
        task_id="d", job_id="j", repository_id="r", destination=str(tmp_path), kind=kind
    )
    assert task.execute(context()) == where
    assert {name: mock.call_count for name, mock in downloads.items()} == {
        name: int(name == kind) for name in downloads
    }
