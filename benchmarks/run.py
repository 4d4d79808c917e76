"""Run the benchmarks: ``make bench`` (full, minutes) or ``make bench-check`` (``--quick --no-write``).

Full runs write ``benchmarks/results/latest.json``, ``docs/benchmarks.md``,
``docs/_static/benchmarks.png`` and ``docs/_static/polling.png``. Quick runs do every benchmark once
at a tiny size, only to keep the scripts working, and exit non-zero when one breaks. ``--only NAME``
(repeatable) runs those alone; written, their results replace theirs in ``results/latest.json``, the
others' are kept.

``--point N:TRANSPORT`` (repeatable) measures only the triggerer load at those points, each poller of
``--pollers`` (default ``vbrain,bare``) in its own client process, and writes nothing: for checking a
change to the trigger's cost per poll against the bare poller of the same run, in a minute or two.
For example ``uv run --locked python benchmarks/run.py --point 1000:plain --point 1000:tls``. With
``VBRAIN_BENCH_PROFILE=DIR`` set, each client also writes a cProfile of its waits to ``DIR`` (the
profiler slows the client, so CPU figures of such a run are not comparable).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
import parse_cost
import polling
import report
import retry_lookup
import triggerer_load
import worker_slot
from _common import RESULTS, machine_facts, temp_dir

BENCHMARKS = ("triggerer", "worker_slot", "parse", "retry_lookup", "polling")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="each benchmark once at a tiny size")
    parser.add_argument("--no-write", action="store_true", help="write no results or docs")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="run only this one (repeatable)")
    parser.add_argument(
        "--point",
        action="append",
        metavar="N:TRANSPORT",
        help="triggerer load only, at N waits over plain or tls (repeatable; writes nothing)",
    )
    parser.add_argument("--pollers", default="vbrain,bare", help="with --point: the pollers, comma-separated")
    args = parser.parse_args(argv)
    chosen = args.only or list(BENCHMARKS)
    points = None
    if args.point:
        chosen, args.no_write = ["triggerer"], True
        points = [([poller], *_point(text)) for text in args.point for poller in args.pollers.split(",")]
    # Airflow homes, certificates and child logs all go under one folder, removed after a clean run.
    _common.TEMP_ROOT = temp_dir("vbrain-bench-")
    log_dir = temp_dir("logs-")
    say = _printer()
    say(f"benchmarks ({'quick' if args.quick else 'full'}); child logs in {log_dir}")
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine_facts(), "quick": args.quick}
    failed = []

    def attempt(name: str, fn: Any) -> None:
        begun = time.monotonic()
        try:
            results[name] = fn()
        except Exception:
            failed.append(name)
            say(f"{name} FAILED:\n{traceback.format_exc()}")
        results.setdefault("durations_s", {})[name] = round(time.monotonic() - begun, 1)

    if "triggerer" in chosen:
        say("triggerer load")
        attempt("triggerer", lambda: triggerer_load.run(args.quick, log_dir, say, points))
    parse_done: dict[str, Any] = {}
    if "worker_slot" in chosen:
        say("worker-slot time" + (" (parse cost measured while the jobs run)" if not args.quick else ""))

        def parse_while_waiting() -> None:
            say("DAG-parse cost")
            parse_done["result"] = parse_cost.run(args.quick, log_dir, say)

        overlap = parse_while_waiting if "parse" in chosen and not args.quick else None
        attempt("worker_slot", lambda: worker_slot.run(args.quick, log_dir, say, overlap))
        if "result" in parse_done:
            results["parse"] = parse_done["result"]
    if "parse" in chosen and "parse" not in results:
        say("DAG-parse cost")
        attempt("parse", lambda: parse_cost.run(args.quick, log_dir, say))
    if "retry_lookup" in chosen:
        say("retry lookup: requests before a retry decides, against the repository's size")
        attempt("retry_lookup", lambda: retry_lookup.run(args.quick, log_dir, say))
    if "polling" in chosen:
        say(
            "polling: requests and latency against job length; waits deferred together; a rate-limited server"
        )
        attempt("polling", lambda: polling.run(args.quick, log_dir, say))
    results["total_s"] = round(time.monotonic() - started, 1)
    say(f"done in {results['total_s']:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    if failed:
        if not args.quick:
            partial = log_dir / "partial-results.json"
            partial.write_text(json.dumps(results, indent=2) + "\n")
            say(f"nothing written to the repository; what was measured is in {partial}")
        return 1
    shutil.rmtree(_common.TEMP_ROOT, ignore_errors=True)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        if args.only:
            results = _merged(results, chosen)
        (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
        report.write(results)
        say("wrote benchmarks/results/latest.json, docs/benchmarks.md and its charts in docs/_static/")
    return 0


def _merged(results: dict[str, Any], chosen: list[str]) -> dict[str, Any]:
    """``--only``: the chosen benchmarks' results written over theirs in the saved run; the others
    (and the saved run's machine facts, date and total) kept as they were measured."""
    saved_file = RESULTS / "latest.json"
    if not saved_file.exists():
        return results
    saved = json.loads(saved_file.read_text())
    for name in chosen:
        saved[name] = results[name]
        saved.setdefault("durations_s", {})[name] = results["durations_s"][name]
    return saved


def _point(text: str) -> tuple[int, str]:
    n, _, transport = text.partition(":")
    if not n.isdigit() or transport not in ("plain", "tls"):
        raise SystemExit(f"--point {text!r}: expected N:plain or N:tls, e.g. 1000:tls")
    return int(n), transport


def _printer() -> Any:
    began = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {text}", flush=True)

    return say


if __name__ == "__main__":
    sys.exit(main())
