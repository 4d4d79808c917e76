"""The emulator in its own process, with the counters the triggerer benchmark needs.

Run by :mod:`triggerer_load` (pinned to its own core), never imported by the client. It serves the
unmodified emulator app from :func:`vbrain_emulator.create_app` and adds, around it:

* a request and TCP-connection counter (``GET /_bench/stats``, ``POST /_bench/reset``);
* ``POST /_bench/jobs``: create one repository and N jobs directly in the emulator's state, each with
  its own duration, and answer their ids and end times (HTTP submission of 10,000 jobs would eat the
  jobs' own lifetime);
* ``GET /bench/v1/job/{job_id}``: the job's status body, but ``404`` until the job is over and ``200``
  after. ``HttpSensorTrigger`` fires on any 2xx and keeps polling only on 404, so this is the only
  way to make it wait for a VBrain job at all (VBrain answers 202 while a job runs). It goes through
  the emulator's gateway like any API call (API key check, scoping headers, request log).

Prints ``PORT <n>`` on stdout once listening; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import ssl
import sys
import time
from collections import Counter
from typing import Any

from aiohttp import web

from vbrain_emulator.app import create_app
from vbrain_emulator.server import start_site
from vbrain_emulator.state import FAILED, FINISHED, EmulatorError, EmulatorState

TENANT = ("acme", "ops")
BENCH_PREFIX = "/_bench/"


class Counters:
    def __init__(self) -> None:
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.connections = 0
        self.cpu_at_reset = time.process_time()

    def reset(self) -> None:
        self.requests = 0
        self.statuses.clear()
        self.connections = 0
        self.cpu_at_reset = time.process_time()

    def view(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "connections": self.connections,
            "cpu_s": time.process_time() - self.cpu_at_reset,
        }


def build_app(counters: Counters) -> web.Application:
    state = EmulatorState()
    app = create_app(state, control=True)

    @web.middleware
    async def bench(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(BENCH_PREFIX):
            return await control(request)
        counters.requests += 1
        response = await handler(request)
        counters.statuses[response.status] += 1
        return response

    async def control(request: web.Request) -> web.StreamResponse:
        if request.path == "/_bench/stats":
            return web.json_response(counters.view())
        if request.path == "/_bench/reset" and request.method == "POST":
            counters.reset()
            return web.json_response(counters.view())
        if request.path == "/_bench/jobs" and request.method == "POST":
            spec = await request.json()
            return web.json_response(create_jobs(state, spec))
        return web.json_response({"message": "Not Found"}, status=404)

    async def done_or_404(request: web.Request) -> web.Response:
        repository_id = request.headers.get("repository_id", "")
        try:
            job = state.get_job(TENANT, repository_id, request.match_info["job_id"])
        except EmulatorError as err:
            return web.json_response({"error": err.message}, status=err.status)
        view = job.view(state.clock())
        if view["job_status"] not in (FINISHED, FAILED):
            return web.json_response({"message": "Job not yet finished"}, status=404)
        return web.json_response(view)

    # Outermost, so it counts every request the emulator's own gateway sees.
    app.middlewares.insert(0, bench)
    app.router.add_get("/bench/v1/job/{job_id}", done_or_404)
    app.router.add_route("*", "/_bench/{name}", control)
    return app


def create_jobs(state: EmulatorState, spec: dict[str, Any]) -> dict[str, Any]:
    """One repository and ``n`` Tutorial jobs lasting ``min_seconds``..``max_seconds`` (seeded)."""
    rng = random.Random(spec.get("seed", 0))
    repository = state.create_repository(TENANT, username="bench")
    queue = float(spec.get("queue_seconds", 1.0))
    jobs = []
    for _ in range(int(spec["n"])):
        duration = rng.uniform(float(spec["min_seconds"]), float(spec["max_seconds"]))
        job = state.execute_job(
            TENANT,
            repository.repository_id,
            application_id="Tutorial",
            params={"a": 6, "b": 7},
            metadata={"emulator_queue_seconds": queue, "emulator_run_seconds": max(duration - queue, 0.0)},
        )
        jobs.append([job.job_id, job.end_at])
    return {"repository_id": repository.repository_id, "jobs": jobs}


async def serve(port: int, ssl_context: ssl.SSLContext | None) -> None:
    counters = Counters()
    app = build_app(counters)
    runner, bound = await _start(app, port, ssl_context, counters)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"PORT {bound}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def _start(
    app: web.Application, port: int, ssl_context: ssl.SSLContext | None, counters: Counters
) -> tuple[web.AppRunner, int]:
    runner, bound = await start_site(app, "127.0.0.1", port, ssl_context=ssl_context)
    server = runner.server
    assert server is not None
    made = server.connection_made

    def counting(handler: Any, transport: Any) -> None:
        counters.connections += 1
        made(handler, transport)

    # Each accepted TCP connection gets a RequestHandler that reports here first.
    server.connection_made = counting  # type: ignore[method-assign]
    return runner, bound


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    asyncio.run(serve(args.port, context))
    return 0


if __name__ == "__main__":
    sys.exit(main())
