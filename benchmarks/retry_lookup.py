"""Retry lookup: the requests a retried ``VBrainExecuteJobOperator`` makes before it decides.

For each repository size N, a repository gets N jobs created three days earlier (by the same task in
older DAG runs: the same tag but for the run id, the history a daily DAG leaves behind), through the
emulator's control API. A first try (``try_number`` 1, the DAG run started just before) submits a
job; then its retry (``try_number`` 2) runs ``execute``: with the lookup of this version, and, in
a repository made the same way, with the lookup of the previous release (``old_find_job`` below,
kept as it was: every job of the repository listed and its status read), swapped into the
operator's module. Both must reuse the first try's job. A second case measures a retry whose first
try died before submitting: both lookups must prove the job absent (and the retry submits one).
The emulator's request log counts each retry's requests.

Requests are the retry's GETs (the lookup's: listing, statuses, the repository's details; an
absent job's submit is not counted). ``reattach_settle_seconds=0``: one lookup per retry. The
settle time repeats a lookup that finds nothing (listings may lag), which multiplies both
versions' costs alike.

Run in a child process (its own Airflow home), the emulator on a thread of that process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _common import airflow_env, python, run_json, temp_dir

SIZES = (10, 1_000, 10_000)
QUICK_SIZES = (10,)
#: Three days: older than the DAG run's start less the lookups' margin (12 h 10 min).
AGE_SECONDS = 3 * 24 * 3600
CASES = ("found", "absent")


def run(quick: bool, log_dir: Path, say: Any = print) -> dict[str, Any]:
    home = temp_dir("vbrain-bench-retry-")
    sizes = QUICK_SIZES if quick else SIZES
    result = run_json(
        python("retry_lookup.py", "child", ",".join(map(str, sizes))),
        airflow_env(home),
        timeout=1800,
        log=log_dir / "retry-lookup.log",
    )
    for row in result["rows"]:
        say(
            f"  retry lookup N={row['jobs_before']:>6,} {row['case']:<6}: "
            f"{row['requests_now']:>3} requests now, {row['requests_before']:>6,} before "
            f"({row['seconds_now']:.2f} s against {row['seconds_before']:.2f} s)"
        )
    result["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return result


# ------------------------------------------------------------------------------------- the report


def target(results: dict[str, Any]) -> tuple[str, str, bool | None] | None:
    """The target row: a retry's requests do not grow with the jobs created before its first try."""
    rows = (results.get("retry_lookup") or {}).get("rows", [])
    if not rows:
        return None
    sizes = sorted({row["jobs_before"] for row in rows})
    now = {row["requests_now"] for row in rows if row["case"] == "found"}
    before = [row["requests_before"] for row in rows if row["case"] == "found"]
    span = f"{sizes[0]:,} to {sizes[-1]:,}" if len(sizes) > 1 else f"{sizes[0]:,}"
    measured = (
        f"{'/'.join(map(str, sorted(now)))} requests at N = {span} "
        f"(previous release: {min(before):,} to {max(before):,})"
    )
    return (
        "retry lookup: requests independent of the jobs created before the first try",
        measured,
        len(now) == 1 and len(sizes) > 1 if len(sizes) > 1 else None,
    )


def section(results: dict[str, Any], add: Any) -> None:
    """The page's section on the retry lookup."""
    lookup = results.get("retry_lookup")
    if not lookup:
        return
    add("## 4. Retry lookup\n")
    add(
        "The requests a retried `VBrainExecuteJobOperator` makes before it decides whether its first try "
        "already submitted the job, in a repository holding N jobs created "
        f"{lookup['age_seconds'] / 86400:.0f} days before the DAG run (by the same task in older runs, "
        "as a daily DAG leaves them), against the lookup of the previous release, measured in the same "
        "run (`benchmarks/retry_lookup.py`, whose `old_find_job` keeps that lookup as it was). *Found*: "
        "the first try submitted a job, which the retry reuses; *absent*: the first try died before "
        "submitting, and the retry proves there is no job before submitting one. Requests are the "
        "retry's GETs (its submit not counted), counted in the emulator's request log; one lookup per "
        "retry (`reattach_settle_seconds=0`: the settle time repeats a lookup that finds nothing, "
        f"which multiplies both alike). Measured on {lookup.get('date', '?')}.\n"
    )
    add(
        "| jobs before the first try | case | requests | previous release | wall s | "
        "previous release, wall s |"
    )
    add("|---:|---|---:|---:|---:|---:|")
    for row in lookup["rows"]:
        add(
            f"| {row['jobs_before']:,} | {row['case']} | {row['requests_now']} | "
            f"{row['requests_before']:,} | {row['seconds_now']:.2f} | {row['seconds_before']:.2f} |"
        )
    add("")
    add(
        "Now the retry lists the jobs created since the DAG run started, less 12 h 10 min (the reference "
        "states no time zone for `from_date`; see {doc}`operators`), reads their statuses from the "
        "newest, and stops at its own job: found, it costs the listing, one status and the repository's "
        "details; absent, the listing alone. Before, it listed every job of the repository and read "
        "each one's status. Jobs created within the window (other tasks' jobs of the same run, or of "
        "runs less than 12 h 10 min earlier) are still listed, and read when the retry's own job is not "
        "among the newest.\n"
    )


# ------------------------------------------------------------------------------------- the child


def old_find_job(hook: Any, repository_id: str, tag: Any, since: Any = None) -> Any:
    """The lookup as the previous release made it (``since`` did not exist: every job is read)."""
    from airflow_provider_vbrain._tasks.reattach import _decide, _metadata, _skipping_gone

    jobs = hook.list_jobs(repository_id)
    if not jobs:
        from airflow_provider_vbrain._tasks.reattach import Lookup, Seen

        return Lookup(Seen.ABSENT)
    repository_metadata = _metadata(hook.get_repository(repository_id))
    statuses = [status for _, status in _skipping_gone(lambda j: hook.get_job_status(j, repository_id), jobs)]
    own = [(status, _metadata(status.body)) for status in statuses]
    own = [(status, None if meta == repository_metadata else meta) for status, meta in own]
    return _decide(own, tag, "job", evidence=any(meta is not None for _, meta in own), no_evidence="no echo")


def _context(try_number: int, run_started: datetime, run_id: str = "scheduled__today") -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="bench_retry",
        task_id="execute",
        run_id=run_id,
        map_index=-1,
        try_number=try_number,
        xcom_push=lambda **_: None,
    )
    return {"ti": ti, "dag_run": SimpleNamespace(start_date=run_started)}


def child(sizes: list[int]) -> dict[str, Any]:
    from vbrain_emulator.server import EmulatorServer

    with EmulatorServer(queue_seconds=600, run_seconds=600) as server:
        os.environ["AIRFLOW_CONN_VBRAIN_DEFAULT"] = server.airflow_connection()
        from airflow_provider_vbrain._tasks.tag import Tag
        from airflow_provider_vbrain.hooks.vbrain import VBrainHook
        from airflow_provider_vbrain.operators import vbrain as operators

        new_find_job = operators.find_job
        params = {"a": 10, "b": 20}
        rows = []

        def execute(repository_id: str, try_number: int, started: datetime) -> tuple[str, int, float]:
            """Run one try; return its job, the lookup's requests (the GETs), its wall time."""
            operator = operators.VBrainExecuteJobOperator(
                task_id="execute", repository_id=repository_id, job_params=params, reattach_settle_seconds=0
            )
            server.clear_requests()
            begun = time.perf_counter()
            job_id = operator.execute(_context(try_number, started))  # type: ignore[arg-type]
            seconds = time.perf_counter() - begun
            return job_id, sum(r["method"] == "GET" for r in server.requests()), seconds

        def retry(size: int, case: str, lookup: Any) -> tuple[int, float]:
            """A retry in a fresh repository of ``size`` old jobs, with ``lookup`` in the operator."""
            hook = VBrainHook()
            repository_id = hook.create_repository()
            mine = Tag.of(_context(1, datetime.now(timezone.utc)), params, None, None)
            older = Tag({**mine.identity, "run_id": "scheduled__earlier"}, mine.fingerprint)
            old = set(
                server.add_jobs(repository_id, size, age_seconds=AGE_SECONDS, metadata=older.metadata(None))
            )
            started = datetime.now(timezone.utc)
            first = execute(repository_id, 1, started)[0] if case == "found" else None
            operators.find_job = lookup  # type: ignore[assignment]
            try:
                job_id, requests, seconds = execute(repository_id, 2, started)
            finally:
                operators.find_job = new_find_job
            # Found: the first try's job is reused. Absent: a new job, none of the old ones.
            assert job_id == first if case == "found" else job_id not in old, (case, job_id)
            hook.delete_repository(repository_id)
            return requests, seconds

        for size in sizes:
            for case in CASES:
                now, before = retry(size, case, new_find_job), retry(size, case, old_find_job)
                rows.append(
                    {
                        "jobs_before": size,
                        "case": case,
                        "requests_now": now[0],
                        "requests_before": before[0],
                        "seconds_now": round(now[1], 3),
                        "seconds_before": round(before[1], 3),
                    }
                )
    return {"sizes": sizes, "age_seconds": AGE_SECONDS, "rows": rows}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        print(json.dumps(child([int(n) for n in sys.argv[2].split(",")])))
    else:
        raise SystemExit("usage: retry_lookup.py child N[,N...]  (run by benchmarks/run.py)")
