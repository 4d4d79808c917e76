"""The end-to-end recipe of docs/testing.md: its DAG against the emulator, nothing mocked."""

from __future__ import annotations

from typing import Any


# [START howto_testing_end_to_end]
def test_the_dag_end_to_end(dag_bag: Any, vbrain_emulator: Any, vbrain_emulator_connection: str) -> None:
    dag_run = dag_bag.get_dag("vbrain_testing_guide").test()

    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    assert (states["plan_by_hand"], states["book_automatically"]) == ("success", "skipped")  # 10 * 20
    (job,) = vbrain_emulator.jobs()
    assert (job["status"], job["params"]) == ("finished", {"a": 10, "b": 20})


# [END howto_testing_end_to_end]
