"""Polling: what a wait costs VBrain, and how waits share it.

``schedule``
    Status requests per job and detection latency, for jobs of 10 s to 6 h, polled every 10 s (fixed,
    ``max_poll_interval=None``) against the adaptive schedule (the default). Hours run in seconds on a
    simulated clock that the emulator's state and the real :class:`JobWait` share; the wait is driven
    as the trigger drives it (the first poll after ``first_delay()``, each next one after the sleep
    the wait returns). Each job's length is drawn within 10 % of the nominal one.
``fanout``
    1,000 real ``VBrainJobTrigger`` instances deferred in the same second, on one asyncio event loop
    in a client process, against the emulator (its own process, over HTTP); the emulator's request
    log, binned by second, gives the request rate over time.
``limited``
    The same against an emulator limited to 50 requests per second per API key, with the default
    retry settings: the share of ``429`` answers, the jobs detected, when the last was.

``fanout`` and ``limited`` run twice in the same client process: *today*, the behaviour before
adaptive polling (a fixed interval with no jitter, the first poll at once, no per-connection gate),
patched in here (:func:`today_behaviour`), never in the package; and *after*, the package as it is.

``python polling.py schedule N`` and ``python polling.py client SPEC`` are the children
:func:`run` starts; each prints its results as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
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
    percentile,
    pinned,
    python,
    run_json,
    run_results,
    temp_dir,
)

#: Nominal job lengths of the schedule benchmark, in seconds.
DURATIONS = {"10 s": 10.0, "1 min": 60.0, "10 min": 600.0, "1 h": 3600.0, "6 h": 21600.0}
SCHEDULE_JOBS, QUICK_SCHEDULE_JOBS = 200, 10
POLL_INTERVAL = 10.0
#: Each job lasts its nominal length times a factor drawn within this share of 1.
JOB_SPREAD = 0.1
FANOUT = {"n": 1000, "poll_interval": 2.0, "min_seconds": 30.0, "max_seconds": 40.0, "grace": 60.0}
LIMITED = {
    "n": 1000,
    "poll_interval": 10.0,
    "min_seconds": 54.0,
    "max_seconds": 66.0,
    "rate_limit": 50,
    "grace": 180.0,
}
QUICK = {
    "fanout": {"n": 40, "poll_interval": 0.5, "min_seconds": 2.5, "max_seconds": 3.0, "grace": 10.0},
    "limited": {
        "n": 40,
        "poll_interval": 1.0,
        "min_seconds": 2.5,
        "max_seconds": 3.0,
        "rate_limit": 20,
        "grace": 10.0,
    },
}
QUEUE_SECONDS = 1.0
VARIANTS = ("today", "after")


# ----------------------------------------------------------------------------------- parent side


def run(quick: bool, log_dir: Path, say: Any = print) -> dict[str, Any]:
    """The three measurements (tiny ones with ``quick``); the results."""
    from datetime import datetime, timezone

    jobs = QUICK_SCHEDULE_JOBS if quick else SCHEDULE_JOBS
    home = temp_dir("vbrain-bench-polling-")
    schedule = run_json(
        python("polling.py", "schedule", str(jobs)),
        airflow_env(home),
        timeout=900,
        log=log_dir / "polling-schedule.log",
    )
    for row in schedule["rows"]:
        say(
            f"  schedule {row['duration']:>6} {row['mode']:<8} {row['requests_mean']:8.1f} requests/job  "
            f"latency p50 {row['latency_p50_s']:6.1f} s p99 {row['latency_p99_s']:6.1f} s  "
            f"bound {row['bound_s']:5.0f} s met by {row['within_bound']}/{row['jobs']}"
        )
    result: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    result["schedule"] = schedule
    for scenario, settings in (("fanout", FANOUT), ("limited", LIMITED)):
        spec = QUICK[scenario] if quick else settings
        measured = _client(scenario, spec, log_dir)
        for row in measured:
            say(f"  {scenario} {row['variant']:<5} " + _line(scenario, row))
        result[scenario] = {"settings": spec, "runs": {row["variant"]: row for row in measured}}
    if quick:
        _check(result)
    return result


def _line(scenario: str, row: dict[str, Any]) -> str:
    if scenario == "fanout":
        return (
            f"peak {row['peak_per_s']} req/s, mean {row['mean_per_s']:.0f}, peak/mean "
            f"{row['peak_to_mean']:.2f}; detected {row['detected']}/{row['n']}"
        )
    return (
        f"429s {row['share_429']:.1%} of {row['requests']:,} requests; "
        f"detected {row['detected']}/{row['n']}, "
        f"errors {row['error_events']}, no event {row['no_event']}; last detected at "
        f"{_num(row['last_detected_s'])} s (last job end {row['last_end_s']:.0f} s)"
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _check(result: dict[str, Any]) -> None:
    """A check run must see every part complete, and today's package detect every job."""
    broken = [r for r in result["schedule"]["rows"] if r["within_bound"] != r["jobs"]]
    for scenario in ("fanout", "limited"):
        runs = result[scenario]["runs"]
        if set(runs) != set(VARIANTS):
            broken.append({scenario: sorted(runs)})
        after = runs.get("after", {})
        if after.get("detected") != after.get("n"):
            broken.append({scenario: after})
    if broken:
        raise RuntimeError(f"polling check run incomplete or failing: {broken}")


def _client(scenario: str, spec: dict[str, Any], log_dir: Path) -> list[dict[str, Any]]:
    """One emulator process and one client process running both variants of ``scenario``."""
    from triggerer_load import connections

    home = temp_dir(f"vbrain-bench-polling-{scenario}-")
    log = log_dir / f"polling-{scenario}.log"
    with bench_server(log, home) as url:
        env = airflow_env(home, **connections(url, None))
        child = {**spec, "scenario": scenario, "url": url}
        budget = 120 + 2 * (spec["max_seconds"] + spec["grace"] + spec["n"] / 20)
        command = pinned(python("polling.py", "client", json.dumps(child)), CLIENT_CORE)
        return run_results(command, env, budget, log)


# ----------------------------------------------------------------------------------- schedule child


class _Quiet:
    """A log that drops what the wait says (its lines are not what is measured)."""

    def info(self, *args: Any) -> None:
        pass

    warning = info


def schedule(jobs: int) -> dict[str, Any]:
    """Drive the real :class:`JobWait` on a simulated clock shared with the emulator's state."""
    from airflow_provider_vbrain._client.polling import DEFAULT_MAX_POLL_INTERVAL, PollSchedule
    from airflow_provider_vbrain._client.waiting import JobWait
    from airflow_provider_vbrain.jobs import JobEvent, JobStatus
    from vbrain_emulator.state import FAILED, FINISHED, EmulatorState

    now = [1.8e9]
    state = EmulatorState(clock=lambda: now[0])
    tenant = ("acme", "ops")
    repository_id = state.create_repository(tenant, username="bench").repository_id
    rng = random.Random(7)
    rows = []
    begun = time.process_time()
    for label, nominal in DURATIONS.items():
        made = []
        for _ in range(jobs):
            length = nominal * rng.uniform(1 - JOB_SPREAD, 1 + JOB_SPREAD)
            job = state.execute_job(
                tenant,
                repository_id,
                application_id="Tutorial",
                params={"a": 6, "b": 7},
                metadata={"emulator_queue_seconds": 0.0, "emulator_run_seconds": length},
            )
            made.append(job)

        def read_status(job_id: str) -> JobStatus:
            # As the API answers GET /job/{id}: 202 while the job runs, 200 once it is over.
            body = state.job_status_body(state.get_job(tenant, repository_id, job_id))
            code = 200 if body["job_status"] in (FINISHED, FAILED) else 202
            return JobStatus.from_answer(job_id, repository_id, code, body)

        for mode, longest in (("fixed", None), ("adaptive", DEFAULT_MAX_POLL_INTERVAL)):
            schedule = PollSchedule(POLL_INTERVAL, longest)  # the bound on latency the docs state
            polls, latencies, met = [], [], 0
            for job in made:
                # The wait starts as the job is submitted; the job's end is its own length later.
                now[0] = job.created_at
                wait = JobWait(
                    job.job_id,
                    repository_id,
                    poll_interval=POLL_INTERVAL,
                    max_poll_interval=longest,
                    log=_Quiet(),
                    clock=lambda: now[0],
                )
                step: JobEvent | float = wait.first_delay()
                while not isinstance(step, JobEvent):
                    now[0] += step
                    step = wait.poll(lambda j=job.job_id: read_status(j))
                latency = now[0] - job.end_at
                length = job.end_at - job.created_at
                bound = schedule.interval(length)
                polls.append(wait.polls)
                latencies.append(latency)
                met += 0 <= latency <= bound + 1e-6
            rows.append(
                {
                    "duration": label,
                    "nominal_s": nominal,
                    "mode": mode,
                    "jobs": len(made),
                    "requests_mean": round(sum(polls) / len(polls), 1),
                    "requests_min": min(polls),
                    "requests_max": max(polls),
                    "latency_p50_s": round(percentile(latencies, 50), 2),
                    "latency_p99_s": round(percentile(latencies, 99), 2),
                    "latency_max_s": round(max(latencies), 2),
                    # The bound the docs state, for the nominal length.
                    "bound_s": schedule.interval(nominal),
                    "within_bound": met,
                }
            )
    return {
        "poll_interval_s": POLL_INTERVAL,
        "max_poll_interval_s": DEFAULT_MAX_POLL_INTERVAL,
        "job_spread": JOB_SPREAD,
        "jobs_per_duration": jobs,
        "cpu_s": round(time.process_time() - begun, 1),
        "rows": rows,
    }


# ----------------------------------------------------------------------------------- client child


class _NoGate:
    """What requests passed before the per-connection gate existed: nothing."""

    async def enter(self) -> float:
        return 0.0

    def now(self) -> float:
        return 0.0

    def leave(self, outcome: Any, sent_at: float) -> None:
        pass


@contextlib.contextmanager
def today_behaviour() -> Any:
    """The waits as they were before adaptive polling: sleeps of exactly the interval (the interval
    itself fixed by the caller, ``max_poll_interval=None``), the first poll at once, no gate."""
    from airflow_provider_vbrain._client import polling
    from airflow_provider_vbrain._transport import aio

    saved = polling.JITTER, polling.PollSchedule.first_delay, aio.gate_for
    polling.JITTER = 0.0
    polling.PollSchedule.first_delay = lambda self, waited: 0.0  # type: ignore[method-assign]
    aio.gate_for = lambda settings: _NoGate()  # type: ignore[assignment]
    try:
        yield
    finally:
        polling.JITTER, polling.PollSchedule.first_delay, aio.gate_for = saved  # type: ignore[method-assign]


async def _run_waits(
    triggers: list[Any], last_end: float, grace: float, trace: list[list[float | None]]
) -> list[tuple[float, Any] | None]:
    """Run every trigger at once; each one's (event time, payload), or None without an event; the
    connection's gate sampled into ``trace`` (see :func:`_watch_gate`)."""
    events: list[tuple[float, Any] | None] = [None] * len(triggers)

    async def one(index: int, trigger: Any) -> None:
        async for event in trigger.run():
            events[index] = (time.time(), event.payload)
            return

    tasks = [asyncio.create_task(one(i, t)) for i, t in enumerate(triggers)]
    watcher = asyncio.create_task(_watch_gate(trace))
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, last_end - time.time()) + grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher  # a watcher that failed (the gate changed shape) fails the run
    from airflow_provider_vbrain._transport.aio import close_shared_session

    await close_shared_session()
    return events


async def _watch_gate(trace: list[list[float | None]]) -> None:
    """Every half second: the gate's pace (requests/s, None when not pacing), how far ahead its
    queue has handed out start times, and how long it still holds every request (read only)."""
    from airflow_provider_vbrain._transport import gate

    loop = asyncio.get_running_loop()
    t0 = time.time()
    while True:
        await asyncio.sleep(0.5)
        for one in gate._GATES.get(loop, {}).values():
            now = loop.time()
            rate = None if one.rate is None else round(one.rate, 2)
            ahead = round(max(0.0, one._next_slot - now), 2)
            held = round(max(0.0, one.hold_until - now), 2)
            if rate is not None or held:  # a gate letting everything through has nothing to show
                trace.append([round(time.time() - t0, 2), rate, ahead, held])


def client(spec: dict[str, Any]) -> None:
    from triggerer_load import _rebuilt

    from airflow_provider_vbrain._client.polling import DEFAULT_MAX_POLL_INTERVAL
    from airflow_provider_vbrain.sensors.vbrain import VBrainJobSensor

    url = spec["url"]
    for seed, variant in enumerate(VARIANTS):
        control(url, "/_emulator/requests", method="DELETE")
        control(url, "/_emulator/config", {"rate_limit": spec.get("rate_limit", 0)})
        created = create_jobs(url, spec, QUEUE_SECONDS, seed)
        repository_id = created["repository_id"]
        with today_behaviour() if variant == "today" else contextlib.nullcontext():
            sensor = VBrainJobSensor(
                task_id="wait",
                job_id="-",
                repository_id=repository_id,
                deferrable=True,
                poke_interval=spec["poll_interval"],
                max_poll_interval=None if variant == "today" else DEFAULT_MAX_POLL_INTERVAL,
                timeout=3600,
            )
            # As the sensor defers, then as the triggerer rebuilds them: all in the same second.
            triggers = [
                _rebuilt(sensor.job_trigger(job_id, repository_id, sensor.poke_interval, sensor.timeout))
                for job_id, _ in created["jobs"]
            ]
            t0 = time.time()
            ends = [end for _, end in created["jobs"]]
            trace: list[list[float | None]] = []
            events = asyncio.run(_run_waits(triggers, max(ends), spec["grace"], trace))
        control(url, "/_emulator/config", {"rate_limit": 0})
        log = control(url, "/_emulator/requests")
        summary = {**_summary(spec, variant, t0, ends, events, log), "gate_trace": trace}
        print("RESULT " + json.dumps(summary), flush=True)


def _summary(
    spec: dict[str, Any],
    variant: str,
    t0: float,
    ends: list[float],
    events: list[tuple[float, Any] | None],
    log: list[dict[str, Any]],
) -> dict[str, Any]:
    n = len(ends)
    statuses: dict[str, int] = {}
    span = max([e[0] for e in events if e is not None] + [entry["time"] for entry in log] + [t0]) - t0
    bins = [0] * (int(span) + 1)
    refused = [0] * (int(span) + 1)
    for entry in log:
        statuses[str(entry["status"])] = statuses.get(str(entry["status"]), 0) + 1
        second = int(entry["time"] - t0)
        if 0 <= second < len(bins):
            bins[second] += 1
            refused[second] += entry["status"] == 429
    detected = [(e[0], end) for e, end in zip(events, ends, strict=True) if e and _succeeded(e[1])]
    errors = [e[1] for e in events if e and not _succeeded(e[1])]
    latencies = [when - end for when, end in detected]
    # The steady window: whole seconds from the deferral to the first job's end.
    steady = bins[: max(1, int(min(ends) - t0))]
    peak, mean = max(steady), sum(steady) / len(steady)
    return {
        "variant": variant,
        "n": n,
        "requests": len(log),
        "log_complete": len(log) < 100_000,
        "requests_per_wait": round(len(log) / n, 2),
        "statuses": dict(sorted(statuses.items())),
        "share_429": statuses.get("429", 0) / len(log) if log else 0.0,
        "per_second": bins,
        "refused_per_second": refused,
        "steady_seconds": len(steady),
        "peak_per_s": peak,
        "mean_per_s": round(mean, 1),
        "peak_to_mean": round(peak / mean, 3) if mean else None,
        "detected": len(detected),
        "error_events": len(errors),
        "error_samples": sorted({str(e.get("message", e))[:200] for e in errors if isinstance(e, dict)})[:3],
        "no_event": sum(e is None for e in events),
        "first_end_s": round(min(ends) - t0, 1),
        "last_end_s": round(max(ends) - t0, 1),
        "last_detected_s": round(max(w for w, _ in detected) - t0, 1) if detected else None,
        "latency_p50_s": round(percentile(latencies, 50), 2) if latencies else None,
        "latency_p99_s": round(percentile(latencies, 99), 2) if latencies else None,
        "latency_max_s": round(max(latencies), 2) if latencies else None,
    }


def _succeeded(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("status") == "succeeded"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "schedule":
        print(json.dumps(schedule(int(sys.argv[2]))))
    elif len(sys.argv) == 3 and sys.argv[1] == "client":
        client(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: polling.py schedule JOBS | client SPEC (run by benchmarks/run.py)")
