"""Triggerer load: N concurrent job waits in one process and one event loop, as a triggerer runs them.

Three pollers wait on the same kind of jobs (10-20 s each, polled every 2 s) on the emulator, which
runs in a separate process (:mod:`_server`), pinned to another core with ``taskset``:

``vbrain``
    our ``VBrainJobTrigger``, built as ``VBrainJobSensor`` builds it when deferring
    (``sensor.job_trigger(...)``), then rebuilt from ``serialize()`` as the triggerer does.
``http``
    ``HttpSensorTrigger`` from ``apache-airflow-providers-http``, built as ``HttpSensor`` builds it
    when deferring. It fires on any 2xx, so it polls ``/bench/v1/job/{id}``, which answers 404 until
    the job is over (see :mod:`_server`); VBrain's own status endpoint answers 202 while a job runs.
``bare``
    the floor for Python: one shared ``aiohttp.ClientSession()`` (aiohttp's defaults), GET, parse JSON,
    sleep.

``http_status`` is a short extra run: ``HttpSensorTrigger`` on VBrain's real status endpoint, to show
how early it fires there.

The parent (:func:`run`) starts one emulator and one client process per measurement; the client
(``python triggerer_load.py client SPEC``) prints one JSON line per poller.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    CLIENT_CORE,
    airflow_env,
    bench_server,
    control,
    create_jobs,
    make_certificate,
    percentile,
    pinned,
    python,
    run_results,
    temp_dir,
)

POLL_INTERVAL = 2.0
MIN_SECONDS, MAX_SECONDS = 10.0, 20.0
QUEUE_SECONDS = 1.0
HTTP_CONN_ID = "vbrain_http"
API_KEY = "bench-key"
SCOPE = {"organization_id": "acme", "client_id": "ops", "application_id": "Tutorial", "username": "ana"}
TERMINAL = ("finished", "failed")

#: (pollers, N, transport), one client process each: all three at N=100..5,000 over plain HTTP,
#: 10,000 for ours only, TLS at 1,000 and 5,000. The short run showing HttpSensorTrigger firing early
#: on VBrain's 202 shares the process of the N=100 HttpSensorTrigger run.
FULL_SCHEDULE: list[tuple[list[str], int, str]] = [
    *[([p], n, "plain") for n in (100, 1_000, 5_000) for p in ("vbrain", "bare", "http")],
    (["vbrain"], 10_000, "plain"),
    *[([p], n, "tls") for n in (1_000, 5_000) for p in ("vbrain", "bare", "http")],
]


# ----------------------------------------------------------------------------------- parent side


def run(
    quick: bool, log_dir: Path, say: Any = print, points: list[tuple[list[str], int, str]] | None = None
) -> dict[str, Any]:
    """Every measurement of the schedule (or a tiny one with ``quick``, or only ``points``); the results."""
    cert_dir = temp_dir("vbrain-bench-tls-")
    cert, key = make_certificate(cert_dir)
    settings = {
        "poll_interval": POLL_INTERVAL,
        "min_seconds": MIN_SECONDS,
        "max_seconds": MAX_SECONDS,
        "queue_seconds": QUEUE_SECONDS,
    }
    if quick:
        settings = {"poll_interval": 0.2, "min_seconds": 0.5, "max_seconds": 1.0, "queue_seconds": 0.1}
        groups = [
            (["vbrain", "http", "bare", "http_status"], 5, "plain"),
            (["vbrain", "http", "bare"], 5, "tls"),
        ]
    elif points:
        groups = points
    else:
        groups = [
            ([*pollers, "http_status"] if pollers == ["http"] and n == 100 else pollers, n, transport)
            for pollers, n, transport in FULL_SCHEDULE
        ]
    runs = []
    for pollers, n, transport in groups:
        started = time.monotonic()
        results = measure(pollers, n, transport, settings, (cert, key), log_dir)
        for result in results:
            say(
                f"  triggerer {result['poller']:<11} {transport:<5} N={n:<6} "
                f"{result['cpu_us_per_poll']:8.0f} us/poll  RSS +{result['rss_per_job_kb']:6.1f} KB/job  "
                f"p99 {result['latency_p99_s']:6.2f} s  errors {result['errors']}"
            )
        say(f"    ({time.monotonic() - started:.0f} s)")
        runs.extend(results)
        if quick and (len(results) != len(pollers) or any(r["errors"] for r in results)):
            # A check run must see every poller complete cleanly, or a script has broken.
            raise RuntimeError(f"triggerer check run incomplete or with errors: {results}")
    return {"settings": settings, "runs": runs}


def measure(
    pollers: list[str],
    n: int,
    transport: str,
    settings: dict[str, float],
    tls: tuple[Path, Path],
    log_dir: Path,
) -> list[dict[str, Any]]:
    """One emulator process and one client process; the client's results, one per poller."""
    home = temp_dir("vbrain-bench-triggerer-")
    server_args = ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if transport == "tls" else []
    log = log_dir / f"triggerer-{'-'.join(pollers)}-{transport}-{n}.log"
    with bench_server(log, home, *server_args, tls=transport == "tls") as url:
        cafile = str(tls[0]) if transport == "tls" else None
        spec = {"pollers": pollers, "n": n, "url": url, "cafile": cafile, **settings}
        env = airflow_env(home, **connections(url, cafile))
        if cafile:
            # HttpSensorTrigger and the bare poller use aiohttp's default SSL context, which takes
            # its trust store from here; ours gets the same file through the connection's `verify`.
            env["SSL_CERT_FILE"] = cafile
        budget = 120 + settings["max_seconds"] * 3 + n / 50
        command = pinned(python("triggerer_load.py", "client", json.dumps(spec)), CLIENT_CORE)
        return run_results(command, env, budget * len(pollers), log)


def connections(url: str, cafile: str | None) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` for our connection and the HTTP provider's, to the same server and tenant."""
    extra: dict[str, Any] = {key: SCOPE[key] for key in ("organization_id", "client_id", "application_id")}
    if cafile:
        extra["verify"] = cafile
    ours = {"conn_type": "vbrain", "host": url, "login": SCOPE["username"], "password": API_KEY}
    # The HTTP provider sends a connection's unknown extras as headers: the scoping headers go there.
    http = {"conn_type": "http", "host": url, "extra": {"x-api-key": API_KEY, **SCOPE}}
    return {
        "AIRFLOW_CONN_VBRAIN_DEFAULT": json.dumps({**ours, "extra": extra}),
        f"AIRFLOW_CONN_{HTTP_CONN_ID.upper()}": json.dumps(http),
    }


# ----------------------------------------------------------------------------------- client side


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Waits:
    """The N waits of one poller, each an async generator factory as a triggerer would run it."""

    def __init__(self, poller: str, spec: dict[str, Any], repository_id: str, jobs: list[list[Any]]):
        self.poller = poller
        self.spec = spec
        self.repository_id = repository_id
        self.jobs = jobs
        self.interval = float(spec["poll_interval"])
        self.triggers: list[Any] = []

    def build(self) -> None:
        """Build every trigger up front (they are alive while waiting, so they count in RSS)."""
        if self.poller == "vbrain":
            from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor

            sensor = VBrainJobSensor(
                task_id="wait",
                job_id="-",
                repository_id=self.repository_id,
                deferrable=True,
                poke_interval=self.interval,
                timeout=3600,
            )
            made = [
                sensor.job_trigger(job_id, self.repository_id, sensor.poke_interval, sensor.timeout)
                for job_id, _ in self.jobs
            ]
        elif self.poller in ("http", "http_status"):
            from airflow.providers.http.triggers.http import HttpSensorTrigger

            prefix = "bench/v1/job" if self.poller == "http" else "api/v1/job"
            # As HttpSensor.execute builds it when deferring.
            made = [
                HttpSensorTrigger(
                    endpoint=f"{prefix}/{job_id}",
                    http_conn_id=HTTP_CONN_ID,
                    data=None,
                    headers={"repository_id": self.repository_id},
                    method="GET",
                    extra_options={},
                    poke_interval=self.interval,
                )
                for job_id, _ in self.jobs
            ]
        else:
            self.triggers = [job_id for job_id, _ in self.jobs]
            return
        self.triggers = [_rebuilt(trigger) for trigger in made]

    async def run_all(self) -> tuple[list[float | None], list[str]]:
        """Run every wait; return each one's event time (None on error) and the error messages."""
        rng = random.Random(1)
        session = None
        if self.poller == "bare":
            import aiohttp

            # aiohttp's defaults, nothing tuned: at most 100 connections, kept alive.
            session = aiohttp.ClientSession()
        times: list[float | None] = [None] * len(self.triggers)
        errors: list[str] = []

        async def one(index: int, trigger: Any) -> None:
            # Waits arrive over one poll interval, as deferrals do, not all in the same millisecond.
            await asyncio.sleep(rng.random() * self.interval)
            try:
                ok = await (self._bare(session, trigger) if session is not None else self._trigger(trigger))
            except Exception as err:
                errors.append(f"{type(err).__name__}: {err}"[:300])
                return
            if ok:
                times[index] = time.time()
            else:
                errors.append("unsuccessful event")

        tasks = [asyncio.create_task(one(i, t)) for i, t in enumerate(self.triggers)]
        last_end = max(end for _, end in self.jobs)
        limit = max(0.0, last_end - time.time()) + 10 * self.interval + 60
        _, pending = await asyncio.wait(tasks, timeout=limit)
        for task in pending:
            task.cancel()
            errors.append("no event before the deadline")
        await asyncio.gather(*pending, return_exceptions=True)
        if session is not None:
            await session.close()
        if self.poller == "vbrain":
            from airflow_provider_vbrain._transport.aio import close_shared_session

            await close_shared_session()
        return times, errors

    async def _trigger(self, trigger: Any) -> bool:
        async for event in trigger.run():
            payload = event.payload
            return payload is True or (isinstance(payload, dict) and payload.get("status") == "succeeded")
        return False

    async def _bare(self, session: Any, job_id: str) -> bool:
        url = f"{self.spec['url']}/api/v1/job/{job_id}"
        headers = {"x-api-key": API_KEY, "repository_id": self.repository_id, **SCOPE}
        while True:
            async with session.get(url, headers=headers) as answer:
                body = await answer.json()
            if body.get("job_status") in TERMINAL:
                return body["job_status"] == "finished"
            await asyncio.sleep(self.interval)


def _rebuilt(trigger: Any) -> Any:
    """What the triggerer does with a deferred task's trigger row: import the class, call it."""
    import importlib

    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


async def _sample(peak: list[int], lags: list[float], stop: asyncio.Event) -> None:
    """Resident memory every 0.25 s, and how late the loop wakes us (its lag under load)."""
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(0.25)
        lags.append(time.monotonic() - before - 0.25)
        peak[0] = max(peak[0], _rss_bytes())


async def _measure(waits: Waits) -> dict[str, Any]:
    stop = asyncio.Event()
    peak = [_rss_bytes()]
    lags: list[float] = []
    sampler = asyncio.create_task(_sample(peak, lags, stop))
    wall0, cpu0 = time.monotonic(), time.process_time()
    times, errors = await waits.run_all()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    peak[0] = max(peak[0], _rss_bytes())
    stop.set()
    await sampler
    return {"times": times, "errors": errors, "cpu": cpu, "wall": wall, "peak": peak[0], "lags": lags}


def client(spec: dict[str, Any]) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Everything any poller needs is imported first, so the baselines of all three are alike.
    import aiohttp  # noqa: F401
    import airflow  # noqa: F401
    from airflow.providers.http.triggers.http import HttpSensorTrigger  # noqa: F401

    from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor  # noqa: F401
    from airflow_provider_vbrain.triggers.vbrain import VBrainJobTrigger  # noqa: F401

    url, cafile = spec["url"], spec.get("cafile")
    for index, poller in enumerate(spec["pollers"]):
        created = create_jobs(url, spec, spec["queue_seconds"], index, cafile)
        waits = Waits(poller, spec, created["repository_id"], created["jobs"])
        gc.collect()
        baseline = _rss_bytes()
        waits.build()
        control(url, "/_bench/reset", {}, cafile=cafile)
        profiling = os.environ.get("VBRAIN_BENCH_PROFILE")
        measured = _profiled(waits) if profiling else asyncio.run(_measure(waits))
        stats = control(url, "/_bench/stats", cafile=cafile)
        print("RESULT " + json.dumps(_summary(poller, spec, waits, stats, baseline, measured)), flush=True)


def _profiled(waits: Waits) -> dict[str, Any]:
    """:func:`_measure` under cProfile, the profile written to ``$VBRAIN_BENCH_PROFILE`` (see run.py)."""
    import cProfile

    transport = "tls" if waits.spec.get("cafile") else "plain"
    target = Path(os.environ["VBRAIN_BENCH_PROFILE"]) / f"{waits.poller}-{transport}-{waits.spec['n']}.prof"
    with cProfile.Profile() as profile:
        measured = asyncio.run(_measure(waits))
    target.parent.mkdir(parents=True, exist_ok=True)
    profile.dump_stats(target)
    return measured


def _summary(
    poller: str,
    spec: dict[str, Any],
    waits: Waits,
    stats: dict[str, Any],
    baseline: int,
    measured: dict[str, Any],
) -> dict[str, Any]:
    n = spec["n"]
    ends = [end for _, end in waits.jobs]
    latencies = [t - end for t, end in zip(measured["times"], ends, strict=True) if t is not None]
    requests = stats["requests"]
    rss_added = max(0, measured["peak"] - baseline)
    lags = measured["lags"]
    early = [-x for x in latencies if x < 0]
    return {
        "poller": poller,
        "transport": "tls" if spec.get("cafile") else "plain",
        "n": n,
        "poll_interval_s": spec["poll_interval"],
        "requests": requests,
        "requests_per_wait": round(requests / n, 2),
        "statuses": stats["statuses"],
        # Minus the one the stats request itself opened.
        "tcp_connections": stats["connections"] - 1,
        "cpu_s": round(measured["cpu"], 3),
        "cpu_us_per_poll": round(measured["cpu"] / requests * 1e6, 1) if requests else None,
        "wall_s": round(measured["wall"], 2),
        "server_cpu_us_per_request": round(stats["cpu_s"] / requests * 1e6, 1) if requests else None,
        "rss_baseline_mb": round(baseline / 2**20, 1),
        "rss_peak_mb": round(measured["peak"] / 2**20, 1),
        "rss_added_mb": round(rss_added / 2**20, 2),
        "rss_per_job_kb": round(rss_added / n / 1024, 2),
        "latency_p50_s": _rounded(percentile(latencies, 50)),
        "latency_p99_s": _rounded(percentile(latencies, 99)),
        "latency_max_s": _rounded(max(latencies) if latencies else None),
        "fired_before_job_end": len(early),
        "fired_before_job_end_median_s": _rounded(statistics.median(early) if early else None),
        "loop_lag_p99_s": _rounded(percentile(lags, 99)),
        "errors": len(measured["errors"]),
        "error_samples": sorted(set(measured["errors"]))[:5],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "client":
        client(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: triggerer_load.py client SPEC (the benchmarks run it; see run.py)")
