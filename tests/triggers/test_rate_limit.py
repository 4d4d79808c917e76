"""Many triggers on one event loop against an emulator that really limits its rate: the connection's
back-off learns the limit, so once it has, few requests are refused, and every wait sees its job end."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from airflow_provider_vbrain._transport.aio import close_shared_session
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from airflow_provider_vbrain.triggers.vbrain import VBrainJobTrigger
from tests.conftest import connection_json
from tests.core import first_event

WAITS = 100
#: Requests per second the emulator lets through: a quarter of what the waits would ask.
LIMIT = 30
STATUS = re.compile(r"^/api/v1/job/[^/]+$")


def test_waits_on_a_rate_limited_server_are_paced_and_all_see_their_job_end(
    vbrain_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The connection's default retry settings: the back-off honours the server's Retry-After.
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(vbrain_emulator.url))
    hook = VBrainHook()
    repository_id = hook.create_repository()
    # Made in one call, so that they all still run when the waits start, however busy the machine.
    jobs = vbrain_emulator.add_jobs(
        repository_id, WAITS, params={"a": 3, "b": 2}, metadata={"emulator_run_seconds": 4}
    )
    vbrain_emulator.clear_requests()
    vbrain_emulator.set_rate_limit(LIMIT)

    async def waits() -> list[dict[str, Any]]:
        try:
            triggers = [VBrainJobTrigger(job_id, repository_id, poll_interval=0.5) for job_id in jobs]
            return await asyncio.wait_for(asyncio.gather(*(first_event(t, 120) for t in triggers)), 120)
        finally:
            await close_shared_session()

    try:
        events = asyncio.run(waits())
    finally:
        vbrain_emulator.set_rate_limit(None)
    assert [event["status"] for event in events] == ["succeeded"] * WAITS
    polls = [entry for entry in vbrain_emulator.requests() if STATUS.match(entry["path"])]
    # Until the first 429 comes back, nothing says where the limit is: the waits' first polls, and
    # those still in flight, meet it (more of them on a busy machine, whose answers come back later).
    # Once the server's Retry-After has passed, the requests leave at the pace the gate learned.
    refused = [entry["time"] for entry in polls if entry["status"] == 429]
    assert refused, "the emulator refused no poll: the waits never met its limit"
    paced = [entry["status"] for entry in polls if entry["time"] > min(refused) + 1.5]
    assert len(paced) >= 2 * LIMIT, f"only {len(paced)} polls after the limit was learned"
    assert paced.count(429) / len(paced) < 0.05, f"{paced.count(429)} of {len(paced)} paced polls refused"
