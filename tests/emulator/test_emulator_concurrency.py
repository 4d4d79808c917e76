"""Many clients polling at once: the emulator must answer every one."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from vbrain_emulator import EmulatorServer

CLIENTS = 300
POLLS = 4


async def test_300_concurrent_pollers_see_no_errors(vbrain_emulator: EmulatorServer) -> None:
    base = f"{vbrain_emulator.url}/api/v1"
    headers = {
        "organization_id": "acme",
        "application_id": "Tutorial",
        "client_id": "ops",
        "username": "ana",
        "x-api-key": "k",
    }
    async with aiohttp.ClientSession() as setup:
        async with setup.post(f"{base}/repository", headers=headers) as response:
            headers["repository_id"] = (await response.json())["repository_id"]
        job_ids = []
        for index in range(CLIENTS):
            body = {"params": {"a": index, "b": 2}}
            async with setup.post(f"{base}/job/execute", headers=headers, json=body) as response:
                job_ids.append((await response.json())["job_id"])

    async def client(job_id: str) -> list[int]:
        # Each client has its own session and connection, like separate pollers (triggerers, workers).
        statuses = []
        async with aiohttp.ClientSession() as session:
            for _ in range(POLLS):
                async with session.get(f"{base}/job/{job_id}", headers=headers) as response:
                    body = await response.json()
                    assert body["job_id"] == job_id
                    statuses.append(response.status)
                await asyncio.sleep(0.05)
        return statuses

    started = time.monotonic()
    results = await asyncio.gather(*(client(job_id) for job_id in job_ids), return_exceptions=True)
    errors = [result for result in results if isinstance(result, BaseException)]
    assert errors == []
    assert {status for statuses in results for status in statuses} <= {200, 202}  # type: ignore[union-attr]
    assert time.monotonic() - started < 10
