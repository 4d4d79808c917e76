"""Turn the results of a run (``results/latest.json``) into ``docs/benchmarks.md`` and its chart.

``python benchmarks/report.py`` regenerates both from the saved JSON without measuring again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polling_report
import retry_lookup
from _common import DOCS, RESULTS

PNG = DOCS / "_static" / "benchmarks.png"
POLLING_PNG = DOCS / "_static" / "polling.png"
MARKDOWN = DOCS / "benchmarks.md"
NAMES = {
    "vbrain": "VBrainJobTrigger (ours)",
    "http": "HttpSensorTrigger",
    "bare": "bare shared-session poller",
    "http_status": "HttpSensorTrigger on /job/{id}",
}
X = "\u00d7"  # the multiplication sign
COLORS = {"vbrain": "#1f77b4", "http": "#d62728", "bare": "#7f7f7f"}


def write(results: dict[str, Any]) -> None:
    """Write the Markdown page and the PNG chart for ``results``."""
    PNG.parent.mkdir(parents=True, exist_ok=True)
    chart(results, PNG)
    if results.get("polling"):
        polling_report.chart(results, POLLING_PNG)
    MARKDOWN.write_text(markdown(results))


# ------------------------------------------------------------------------------------------ lookups


def _run(results: dict[str, Any], poller: str, n: int, transport: str) -> dict[str, Any] | None:
    for run in results.get("triggerer", {}).get("runs", []):
        if (run["poller"], run["n"], run["transport"]) == (poller, n, transport):
            return run
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _transport(transport: str) -> str:
    return "TLS" if transport == "tls" else "HTTP"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


# ------------------------------------------------------------------------------------------ targets


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met?) rows, all ratios from this run."""
    rows: list[tuple[str, str, bool | None]] = []
    interval = results.get("triggerer", {}).get("settings", {}).get("poll_interval", 2.0)
    for transport in ("plain", "tls"):
        for n in (1_000, 5_000):
            ours, bare, http = (_run(results, p, n, transport) for p in ("vbrain", "bare", "http"))
            if not (ours and bare and http):
                continue
            vs_bare = _ratio(ours["cpu_us_per_poll"], bare["cpu_us_per_poll"])
            vs_http = _ratio(http["cpu_us_per_poll"], ours["cpu_us_per_poll"])
            need = 4.0 if transport == "tls" else 2.5
            label = f"{'TLS' if transport == 'tls' else 'HTTP'}, N={n:,}"
            rows.append(
                (
                    f"CPU per poll ≤ 1.2\u00d7 bare ({label})",
                    f"{ours['cpu_us_per_poll']:.0f} vs {bare['cpu_us_per_poll']:.0f} µs = {vs_bare:.2f}{X}",
                    None if vs_bare is None else vs_bare <= 1.2,
                )
            )
            rows.append(
                (
                    f"CPU per poll ≥ {need}\u00d7 below HttpSensorTrigger ({label})",
                    f"{http['cpu_us_per_poll']:.0f} vs {ours['cpu_us_per_poll']:.0f} µs = {vs_http:.2f}{X}",
                    None if vs_http is None else vs_http >= need,
                )
            )
            rss = _ratio(ours["rss_per_job_kb"], bare["rss_per_job_kb"])
            rows.append(
                (
                    f"RSS per waiting job ≤ 1.5\u00d7 bare ({label})",
                    f"{ours['rss_per_job_kb']:.1f} vs {bare['rss_per_job_kb']:.1f} KB"
                    + (f" = {rss:.2f}\u00d7" if rss is not None else ""),
                    None if rss is None else rss <= 1.5,
                )
            )
    for transport in ("plain", "tls"):
        ours = _run(results, "vbrain", 5_000, transport)
        if ours:
            p99 = ours["latency_p99_s"]
            rows.append(
                (
                    f"detection p99 ≤ {interval + 1:.0f} s at N=5,000 ({_transport(transport)})",
                    f"{_fmt(p99, 2)} s",
                    None if p99 is None else p99 <= interval + 1,
                )
            )
    big = _run(results, "vbrain", 10_000, "plain")
    if big:
        rows.append(("10,000 concurrent waits, zero errors", f"{big['errors']} errors", big["errors"] == 0))
    slot = results.get("worker_slot")
    if slot:
        held = slot["variants"]["deferrable"]["worker_held_s"]
        ratio = slot.get("ratio_tutorial_to_deferrable")
        rows.append(
            (f"worker-held < 2 s per {slot['job_seconds']:.0f} s job (deferrable)", f"{held:.3f} s", held < 2)
        )
        rows.append(
            (
                "≥ 30\u00d7 below the tutorial loop",
                f"{_fmt(ratio, 0)}\u00d7",
                None if ratio is None else ratio >= 30,
            )
        )
    parse = results.get("parse")
    if parse:
        added = parse["added_ms"]["airflow + vbrain"]
        http_added = parse["added_ms"]["airflow + http provider"]
        rows.append(
            (
                "DAG-parse: our modules add < 30 ms to `import airflow`",
                f"+{added:.1f} ms (HTTP provider: +{http_added:.1f} ms)",
                added < 30,
            )
        )
    lookup = retry_lookup.target(results)
    if lookup:
        rows.append(lookup)
    rows.extend(polling_report.targets(results))
    return rows


# ------------------------------------------------------------------------------------------ chart


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cpu_ax, rss_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    runs = results.get("triggerer", {}).get("runs", [])
    for poller in ("vbrain", "http", "bare"):
        for transport, style in (("plain", "-o"), ("tls", "--s")):
            points = sorted(
                (r["n"], r["cpu_us_per_poll"], r["rss_added_mb"])
                for r in runs
                if r["poller"] == poller and r["transport"] == transport and r["cpu_us_per_poll"]
            )
            if not points:
                continue
            label = f"{NAMES[poller]}{' (TLS)' if transport == 'tls' else ''}"
            ns = [p[0] for p in points]
            cpu_ax.plot(ns, [p[1] for p in points], style, color=COLORS[poller], label=label)
            rss_ax.plot(ns, [p[2] for p in points], style, color=COLORS[poller], label=label)
    for ax, title, unit in (
        (cpu_ax, "Client CPU per poll", "µs per poll"),
        (rss_ax, "Client RSS added by the waits", "MB"),
    ):
        ax.set_xscale("log")
        ax.set_xlabel("concurrent waits (N)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    cpu_ax.set_ylim(bottom=0)
    rss_ax.set_ylim(bottom=0)
    cpu_ax.legend(fontsize=7)
    machine = results.get("machine", {})
    fig.suptitle(
        f"Triggerer load, one event loop, poll every 2 s — {machine.get('cpu_model', '?')}, "
        f"{machine.get('cores', '?')} cores, Python {machine.get('python', '?')}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ page


def markdown(results: dict[str, Any]) -> str:
    machine = results.get("machine", {})
    versions = machine.get("versions", {})
    out: list[str] = []
    add = out.append
    add("# Benchmarks\n")
    add(
        "How our provider compares with the two ways users wait for VBrain jobs without it: the platform "
        "tutorial's loop in a `PythonOperator` (`requests` + `time.sleep(10)`), and Airflow's generic HTTP "
        "provider (`HttpOperator` + deferrable `HttpSensor`, whose `HttpSensorTrigger` opens a new aiohttp "
        "session on every poll). All numbers on this page come from one run of `make bench` "
        "(raw data: `benchmarks/results/latest.json`), or of one benchmark alone where its section says "
        "when; ratios compare measurements of that same run.\n"
    )
    add(
        f"Machine: {machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('memory_gb', '?')} GB, {machine.get('os', '?')}; Python {machine.get('python', '?')}, "
        f"Airflow {versions.get('apache-airflow', '?')}, apache-airflow-providers-http "
        f"{versions.get('apache-airflow-providers-http', '?')}, aiohttp {versions.get('aiohttp', '?')}, "
        f"requests {versions.get('requests', '?')}; run on {machine.get('date', '?')}; "
        f"client and emulator pinned to separate cores: {'yes' if machine.get('taskset_pinning') else 'no'}. "
        f"Whole run: {_fmt(results.get('total_s'), 0)} s.\n"
    )
    add("## Targets\n")
    add("| target | measured | |\n|---|---|---|")
    for target, measured, ok in targets(results):
        add(f"| {target} | {measured} | {_verdict(ok)} |")
    add("")
    add(_why_missed(results))
    _triggerer_section(results, add)
    _worker_section(results, add)
    _parse_section(results, add)
    retry_lookup.section(results, add)
    polling_report.section(results, add)
    add("## Running them\n")
    add(
        "`make bench` runs everything (about a quarter of an hour on the machine above, five minutes of "
        "it the polling benchmark) and rewrites "
        "`benchmarks/results/latest.json`, this page and its charts; `python benchmarks/report.py` "
        "rebuilds the page from the JSON alone. `make bench-check` (part of `make test`) runs each "
        "benchmark once at a tiny size and writes nothing: it keeps the scripts working and is not a "
        "measurement. `python benchmarks/run.py --only triggerer` (or `worker_slot`, `parse`, "
        "`retry_lookup`, `polling`) runs one; its results replace its own in the JSON and on this page, "
        "the others are kept as measured (the machine and date above are the full run's).\n"
    )
    return "\n".join(out).rstrip() + "\n"


def _why_missed(results: dict[str, Any]) -> str:
    missed = [t for t, _, ok in targets(results) if ok is False]
    if not missed:
        return "Every target is met in this run.\n"
    lines = ["Why the missed targets are missed:\n"]
    pool = []
    for transport in ("plain", "tls"):
        ours, bare = _run(results, "vbrain", 5_000, transport), _run(results, "bare", 5_000, transport)
        if ours and bare:
            pool.append(
                f"{_transport(transport)}: ours opened {ours['tcp_connections']:,} connections against "
                f"{bare['tcp_connections']:,}, made {ours['requests_per_wait']:.1f} polls per wait against "
                f"{bare['requests_per_wait']:.1f}, loop lag p99 {_fmt(ours['loop_lag_p99_s'], 1)} s against "
                f"{_fmt(bare['loop_lag_p99_s'], 1)} s, detection p99 {_fmt(ours['latency_p99_s'], 1)} s "
                f"against {_fmt(bare['latency_p99_s'], 1)} s, RSS added {ours['rss_added_mb']:,.0f} MB "
                f"against {bare['rss_added_mb']:,.0f} MB"
            )
    if any("1.2" + X + " bare" in t for t in missed):
        gaps = []
        for transport in ("plain", "tls"):
            ours, bare = _run(results, "vbrain", 1_000, transport), _run(results, "bare", 1_000, transport)
            if ours and bare:
                extra = ours["cpu_us_per_poll"] - bare["cpu_us_per_poll"]
                gaps.append(f"{extra:,.0f} \u00b5s a poll at N = 1,000 over {_transport(transport)}")
        gap = " and ".join(gaps) or "see the table"
        lines.append(
            f"- **CPU per poll above 1.2{X} the bare poller.** A profile of one N = 1,000 run "
            "(`VBRAIN_BENCH_PROFILE=DIR python benchmarks/run.py --point 1000:plain`) shows ours making "
            "the same aiohttp calls per poll as the bare poller; the difference "
            f"({gap} in this run) is the provider's own Python per poll: the retry core "
            "(`_client.exchange.exchange`, a generator), the scoping headers built and checked, the "
            "answer read within `max_answer_bytes`, redacted and typed into a `JobStatus`, the wait "
            "loop's bookkeeping, and, since adaptive polling, the connection's gate, the schedule's "
            "jitter draw, the timer that lets a wait's deadline end a held poll, the metering call and "
            "the check of the proxy variables (these five about 15 \u00b5s a poll together, timed "
            "outside the profiler). The INFO line on each state change (two or three per job) goes "
            "through Airflow's logging. The environment's proxy is looked up once per Base URL and "
            "values of the proxy variables: aiohttp's own lookup (`trust_env`) cost two trips to a "
            "thread, about 300 \u00b5s, on every poll. Adaptive polling did not raise the cost of "
            "a poll: the provider as it was just before it (commit `f26b349`), run alternately with "
            "this code three times at N = 1,000 over HTTP on this machine, cost 686\u2013792 \u00b5s "
            f"a poll, 2.37\u20132.66{X} the bare poller of the same run, against 485\u2013517 "
            f"\u00b5s, 1.74\u20131.88{X}, for this code (`git worktree add` that commit, then "
            "`--point 1000:plain` in each); the 1.15\u20131.33" + X + " this page reported "
            "then does not come back with that code here now. Both share one session per event loop "
            "with at most 100 connections, so connection handling is alike (N = 5,000, "
            + "; ".join(pool)
            + "). On this shared two-core machine the ratio at one point moves by up to 0.3 between "
            "runs of the same code (the bare poller's own cost moves as much). What 1.2"
            + X
            + " would take: state changes logged at DEBUG (or outside "
            "Airflow's logging) and a success path that skips the retry core; we keep both, since the "
            "task log's progress lines and one retry rule for every request are worth a few tens of "
            "microseconds a poll."
        )
    floors = []
    for transport, need in (("plain", 2.5), ("tls", 4.0)):
        for n in (1_000, 5_000):
            http, bare = _run(results, "http", n, transport), _run(results, "bare", n, transport)
            label = f"{_transport(transport)}, N={n:,}"
            if http and bare and any("HttpSensorTrigger" in t and label in t for t in missed):
                floor = _ratio(http["cpu_us_per_poll"], bare["cpu_us_per_poll"]) or 0.0
                floors.append(
                    f"{label}: the bare poller itself is {floor:.2f}{X} below HttpSensorTrigger, so "
                    f"{need}{X} needs ours within {floor / need:.2f}{X} of the bare poller"
                )
    if floors:
        lines.append(
            "- **Margin over HttpSensorTrigger.** The target leaves less room than it seems: "
            + "; ".join(floors)
            + ". HttpSensorTrigger's cost per poll is a new session, connection (and TLS handshake) "
            "per poll; ours is the bare poller's plus the overhead above."
        )
    return "\n".join(lines) + "\n"


def _triggerer_section(results: dict[str, Any], add: Any) -> None:
    load = results.get("triggerer")
    if not load:
        return
    settings = load["settings"]
    add("## 1. Triggerer load\n")
    add(
        f"N jobs, each lasting {settings['min_seconds']:.0f}\u2013{settings['max_seconds']:.0f} s "
        "on the emulator, "
        f"are waited on concurrently, polled every {settings['poll_interval']:.0f} s, in one client process "
        "and one asyncio event loop, as a triggerer runs its triggers; the waits start spread over one "
        "poll interval, as deferrals arrive. The emulator runs in its own process on the other core. "
        "Each measurement is a fresh client process.\n"
    )
    add("![CPU per poll and RSS against N for the three pollers](_static/benchmarks.png)\n")
    add(
        "| poller | transport | N | CPU µs/poll | requests | requests/wait | TCP connections | "
        "peak RSS MB | RSS/job KB | latency p50 s | latency p99 s | loop lag p99 s | errors |"
    )
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    order = {"vbrain": 0, "bare": 1, "http": 2, "http_status": 3}
    runs = sorted(load["runs"], key=lambda r: (r["transport"] != "plain", r["n"], order[r["poller"]]))
    for r in runs:
        if r["poller"] == "http_status":
            continue
        add(
            f"| {NAMES[r['poller']]} | {'TLS' if r['transport'] == 'tls' else 'HTTP'} | {r['n']:,} | "
            f"{_fmt(r['cpu_us_per_poll'])} | {r['requests']:,} | {r['requests_per_wait']:.2f} | "
            f"{r['tcp_connections']:,} | {r['rss_peak_mb']:.0f} | {r['rss_per_job_kb']:.1f} | "
            f"{_fmt(r['latency_p50_s'], 2)} | {_fmt(r['latency_p99_s'], 2)} | "
            f"{_fmt(r['loop_lag_p99_s'], 2)} | "
            f"{r['errors']} |"
        )
    add("")
    add("How each column is measured:\n")
    add(
        "- **CPU µs/poll**: the client process's CPU time (`time.process_time()`, user + system) from the "
        "first wait's start to the last wait's end, divided by the requests the emulator answered in that "
        "window. It includes everything the loop did: connection set-up, TLS, JSON, logging.\n"
        "- **requests**, **TCP connections**: counted in the emulator process (a middleware and a "
        "`connection_made` counter around the unmodified emulator app).\n"
        "- **peak RSS**: resident memory of the client, sampled every 0.25 s on the loop; **RSS/job** is "
        "peak minus the baseline taken just before the triggers were built, divided by N. All three "
        "clients import the same modules first, so baselines match.\n"
        "- **latency**: from the job's end (its end time in the emulator) to the trigger's first event, "
        "on the same clock. **loop lag**: how late a 0.25 s sleep wakes, the sign of a saturated loop.\n"
        "- **errors**: waits that raised, ended with a non-success event, or had no event 60 s after the "
        "last job ended.\n"
    )
    add("What is compared, and the work-arounds fairness needed:\n")
    early = next((r for r in load["runs"] if r["poller"] == "http_status"), None)
    early_text = ""
    if early:
        early_text = (
            f" Pointed at `GET /api/v1/job/{{id}}` it fired for {early['fired_before_job_end']} of "
            f"{early['n']} jobs before they ended, a median "
            f"{_fmt(early['fired_before_job_end_median_s'], 1)} s "
            "early, after one request each."
        )
    add(
        "- **Ours**: `VBrainJobTrigger` exactly as `VBrainJobSensor` builds it when deferring "
        "(`sensor.job_trigger(...)`), rebuilt from `serialize()` as the triggerer does, polling "
        "`GET /api/v1/job/{id}` (202 while the job runs, 200 when it is over).\n"
        "- **HttpSensorTrigger**, built as `HttpSensor` builds it when deferring, with the VBrain scoping "
        "headers in the HTTP connection's extras and `repository_id` in the sensor's `headers`. It treats "
        "any 2xx as done, VBrain's 202 \"still running\" included, so on VBrain's real endpoint it cannot "
        f"wait at all.{early_text} To measure what it costs when it does wait, the benchmark's emulator "
        "process adds one route, `GET /bench/v1/job/{id}`, that answers 404 until the job is over and 200 "
        "after: the only answer on which HttpSensorTrigger sleeps and polls again. It also re-polls with "
        "no sleep on any other error (401, 403, 429, 5xx after its retries), which this run never "
        "triggers.\n"
        "- **Bare poller**: one shared `aiohttp.ClientSession()` with aiohttp's defaults (at most 100 "
        "connections, kept alive), `GET`, `await response.json()`, `asyncio.sleep(2)`; nothing else. "
        "The floor for Python. Ours shares one session per event loop too, with the same cap of 100 "
        "connections.\n"
        "- **TLS**: the emulator serves HTTPS with a self-signed RSA-2048 certificate made for the run. "
        "Ours trusts it through the connection's `verify` extra (a CA-bundle path); HttpSensorTrigger "
        "and the bare poller cannot be given a CA path through configuration, so the client process runs "
        "with `SSL_CERT_FILE` set to the same file, which aiohttp's default SSL context loads. All three "
        "then verify against a store holding that one certificate.\n"
        "- **Schedule**: each measurement takes about 25 s (10\u201320 s jobs), so to stay under ten minutes "
        "the full run measures all three pollers at N = 100, 1,000 and 5,000 over HTTP, ours alone at "
        "10,000, and TLS at N = 1,000 and 5,000 only.\n"
        "- Airflow logging is left as configured by default (the triggers' INFO lines are written), the "
        "same for all.\n"
    )


def _worker_section(results: dict[str, Any], add: Any) -> None:
    slot = results.get("worker_slot")
    if not slot:
        return
    add("## 2. Worker-slot time\n")
    add(
        f"One Tutorial job lasting {slot['job_seconds']:.0f} s on the emulator, waited on with "
        f"`dag.test()`, polling every {slot['poll_seconds']:.0f} s in all three variants (the tutorial's "
        "interval). The three DAGs (`benchmarks/dags/bench_worker_slot.py`) run at the same time, each in "
        "its own process and Airflow home. *Worker-held* is the wall time spent inside the tasks' "
        "`execute` and `execute_complete` (timed by wrapping those methods in the benchmark process); "
        "`dag.test()` runs the deferred trigger inline, outside both, as a triggerer would.\n"
    )
    add("| variant | worker-held s per job | tasks (s) | requests | status polls | DAG run wall s |")
    add("|---|---:|---|---:|---:|---:|")
    labels = {
        "tutorial": "tutorial loop in a `PythonOperator`",
        "deferrable": "`VBrainExecuteJobOperator` + `VBrainJobSensor(deferrable=True)`",
        "poke": "`VBrainExecuteJobOperator` + `VBrainJobSensor` (poke)",
        "start_from_trigger": "`VBrainExecuteJobOperator` + `VBrainJobSensor(start_from_trigger=True)`, "
        "on `airflow standalone`",
    }
    for name, v in slot["variants"].items():
        spans = ", ".join(f"{s['task_id']}.{s['method']} {s['seconds']:.3f}" for s in v["spans"])
        add(
            f"| {labels[name]} | {v['worker_held_s']:.3f} | {spans} | {v['requests']} | "
            f"{v['status_polls']} | {v['dag_run_wall_s']:.1f} |"
        )
    add("")
    add(
        f"Tutorial loop ÷ deferrable sensor: **{_fmt(slot.get('ratio_tutorial_to_deferrable'), 0)}\u00d7**. "
        "Requests are counted by the emulator for each variant's repository (job submission included, "
        "repository creation not). The poke sensor holds its slot for the whole wait, like the tutorial "
        "loop, but uses the provider's retries and typed errors.\n"
    )
    if "start_from_trigger" in slot["variants"]:
        add(
            "The `start_from_trigger` sensor never runs on a worker, on any line: its trigger ends the "
            "task, with the job's output and link as XCom (on Airflow 3 the trigger pushes them itself, "
            "as a worker does; see {doc}`deferrable`), so it adds no span above. (`execute.execute` is "
            "the operator that submits the job, on a worker in every variant; before Airflow 3.3, where "
            "the sensor starts on the triggerer only with the job's plain id, the benchmark submits the "
            "job beforehand instead.)\n"
        )


def _parse_section(results: dict[str, Any], add: Any) -> None:
    parse = results.get("parse")
    if not parse:
        return
    add("## 3. DAG-parse cost\n")
    add(
        f"Medians of {parse['rounds']} fresh Python processes per variant, pinned to one core, run "
        "round-robin after one warm-up round, bytecode cached. *Added* is timed inside each process, from "
        "just after `import airflow` to just after the variant's imports, so interpreter start-up noise "
        "stays out of it; *total* is from just before the process is started to just after its imports. "
        "(`import airflow` already loads `airflow.sdk`, which every DAG file imports anyway.)\n"
    )
    add("| imports | added after `import airflow`, ms (CPU ms) | total ms | heavy modules it adds |")
    add("|---|---:|---:|---|")
    for name, total in parse["median_total_ms"].items():
        added = parse["added_ms"].get(name)
        cpu = parse["added_cpu_ms"].get(name)
        added_text = "" if added is None else f"{added:+.1f} ({cpu:.1f})"
        heavy = ", ".join(f"`{m}`" for m in parse["heavy_modules_loaded"].get(name, [])) or "none"
        add(f"| `{name}` | {added_text} | {total:.0f} | {heavy} |")
    add("")
    already = ", ".join(f"`{m}`" for m in parse["heavy_modules_after_import_airflow"]) or "none of them"
    add(
        "*Heavy modules* lists which of `aiohttp`, `requests`, `zipfile`, the emulator and `tenacity` the "
        f"variant loads beyond what `import airflow` alone loads ({already}). Our operators, sensor and "
        "hook import aiohttp, requests and the emulator only when a task runs.\n"
    )
    overlap = (results.get("worker_slot") or {}).get("overlapped_measurement")
    if overlap is not None:
        add(
            "To fit the ten-minute budget these samples are taken while the worker-slot jobs run, when "
            "those three processes only sleep between polls"
            + (
                "; the samples ended before any of those jobs did."
                if overlap.get("ended_before_the_jobs")
                else "; in this run the samples outlasted the jobs, so they may be slightly perturbed."
            )
            + "\n"
        )


if __name__ == "__main__":
    write(json.loads((RESULTS / "latest.json").read_text()))
