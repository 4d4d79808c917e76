"""Running DAGs with ``dag.test()`` and reading what they left behind."""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest

#: Everything the runs printed, for the secrets check at the end of the module.
PRINTED: list[str] = []
#: Each DAG's declared param defaults: ``dag.test(run_conf=...)`` keeps a run's conf in the
#: DAG object's params, so every run states all of them.
DEFAULTS: dict[str, dict[str, Any]] = {}


@pytest.fixture
def run_dag(dag_bag: Any, vbrain_conn: Any, capfd: pytest.CaptureFixture[str]) -> Any:
    """Run a DAG by id; return (dag run, task states, everything printed)."""

    def run(dag_id: str, **conf: Any) -> tuple[Any, dict[str, str], str]:
        dag = dag_bag.get_dag(dag_id)
        assert dag is not None, f"no DAG {dag_id}"
        _stream_logs_to_the_capture()
        defaults = DEFAULTS.setdefault(dag_id, copy.deepcopy(dict(dag.params.dump())))
        dag_run = dag.test(run_conf={**copy.deepcopy(defaults), **conf})
        out, err = capfd.readouterr()
        printed = out + err
        PRINTED.append(printed)
        task_states = {ti.task_id: _name(ti.state) for ti in dag_run.get_task_instances()}
        return dag_run, task_states, printed

    return run


def _stream_logs_to_the_capture() -> None:
    """Point logging's stream handlers at this test's stderr.

    Airflow 2 configures its console handlers once, bound to whatever ``sys.stderr``
    was then (an earlier test's capture, closed since), so its task logs would be lost.
    """
    import logging

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if type(handler) is logging.StreamHandler:
                handler.stream = sys.stderr  # not setStream(): it would flush the closed stream


def xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    ids = {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "task_id": task_id, "key": key}
    try:
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2
        from airflow.models.xcom import XCom

        return XCom.get_one(**ids)
    from airflow.utils.session import create_session

    with create_session() as session:
        return XComModel.deserialize_value(session.query(XComModel).filter_by(**ids).one())


def _name(value: Any) -> str:
    return str(getattr(value, "value", value))


def state(dag_run: Any) -> str:
    return _name(dag_run.state)
