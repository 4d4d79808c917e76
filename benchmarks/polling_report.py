"""The polling benchmark's part of the page (``docs/benchmarks.md``) and its chart
(``docs/_static/polling.png``).

Read from the results of :mod:`polling`, by :mod:`report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_provider_vbrain._client.polling import JITTER

X = "\u00d7"
NAMES = {"today": "before", "after": "now"}
COLORS = {"today": "#d62728", "after": "#1f77b4"}


def _num(value: float | None, digits: int = 1) -> str:
    return "\u2013" if value is None else f"{value:,.{digits}f}"


def _both(found: dict[str, Any], scenario: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    runs = found.get(scenario, {}).get("runs", {})
    return (runs["today"], runs["after"]) if "today" in runs and "after" in runs else None


def _schedule_rows(found: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The schedule's rows by (job length, mode)."""
    return {(r["duration"], r["mode"]): r for r in found["schedule"]["rows"]}


def _ratios(found: dict[str, Any]) -> dict[str, float]:
    """Fixed requests per job divided by adaptive ones, by job length."""
    by = _schedule_rows(found)
    return {
        label: by[(label, "fixed")]["requests_mean"] / by[(label, "adaptive")]["requests_mean"]
        for label, mode in by
        if mode == "fixed" and (label, "adaptive") in by
    }


# ------------------------------------------------------------------------------------------ targets


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """The target rows of the page, all ratios from the same run."""
    found = results.get("polling")
    if not found:
        return []
    rows: list[tuple[str, str, bool | None]] = []
    by = _schedule_rows(found)
    for label, ratio in _ratios(found).items():
        if label in ("1 h", "6 h"):
            fixed, adaptive = by[(label, "fixed")], by[(label, "adaptive")]
            rows.append(
                (
                    f"polling: ≥ 5{X} fewer status requests than every 10 s ({label} jobs)",
                    f"{fixed['requests_mean']:,.0f} vs {adaptive['requests_mean']:,.0f} = {ratio:.1f}{X}",
                    ratio >= 5,
                )
            )
    adaptive_rows = [r for r in found["schedule"]["rows"] if r["mode"] == "adaptive"]
    met, jobs = sum(r["within_bound"] for r in adaptive_rows), sum(r["jobs"] for r in adaptive_rows)
    rows.append(
        (
            "polling: every end seen within max(poll_interval, 10 % of the run time), capped at 5 min",
            f"{met:,} of {jobs:,} jobs",
            met == jobs,
        )
    )
    fan = _both(found, "fanout")
    if fan:
        today, after = fan
        rows.append(
            (
                f"{after['n']:,} waits deferred in the same second: peak ≤ 1.5{X} mean requests/s",
                f"{after['peak_to_mean']:.2f}{X} (before: {today['peak_to_mean']:.2f}{X})",
                after["peak_to_mean"] <= 1.5,
            )
        )
    limited = _both(found, "limited")
    if limited:
        today, after = limited
        limit = found["limited"]["settings"]["rate_limit"]
        rows.append(
            (
                f"{after['n']:,} waits, server limited to {limit} requests/s: < 5 % answered 429",
                f"{after['share_429']:.1%} (before: {today['share_429']:.1%})",
                after["share_429"] < 0.05,
            )
        )
        rows.append(
            (
                f"{after['n']:,} waits, server limited to {limit} requests/s: every job detected",
                f"{after['detected']:,} of {after['n']:,} (before: {today['detected']:,})",
                after["detected"] == after["n"],
            )
        )
    return rows


# ------------------------------------------------------------------------------------------ page


def section(results: dict[str, Any], add: Any) -> None:
    """The page's section on polling."""
    found = results.get("polling")
    if not found:
        return
    add("## 5. Polling\n")
    add(
        "How many status requests a wait costs VBrain, how late it sees the job's end, and how waits "
        "share the server: alone, deferred together, and against a server that throttles "
        f"(`benchmarks/polling.py`). Measured on {found.get('date', '?')}, with "
        "`python benchmarks/run.py --only polling`.\n"
    )
    _schedule_part(found, add)
    _fanout_part(found, add)
    _limited_part(found, add)


def _schedule_part(found: dict[str, Any], add: Any) -> None:
    sched = found["schedule"]
    add("### Requests per job and detection latency\n")
    add(
        f"For each job length, {sched['jobs_per_duration']} jobs, each lasting the nominal length "
        f"within {sched['job_spread']:.0%} (drawn uniformly), are waited on from their submission with "
        f"`poll_interval={sched['poll_interval_s']:g}`: every {sched['poll_interval_s']:g} s "
        "(`max_poll_interval=None`), and adaptive (the default, `max_poll_interval` "
        f"{sched['max_poll_interval_s']:g} s). The package's own `JobWait` decides every sleep, driven "
        "as the trigger drives it (the first poll after `first_delay()`, each next one after the sleep "
        "the poll returns), and the emulator's state answers each poll (202 while the job runs, 200 "
        "once it is over). Both read one simulated clock, so six hours run in a moment "
        f"({sched['cpu_s']:g} s of CPU for the whole table); a poll takes no time here, where a real one "
        "adds its round trip and the event loop's lag. *Requests* are the trigger's status polls (the "
        "sensor's one poke before it defers comes on top, in both modes). *Latency* is the detecting "
        "poll's time less the job's end. *Bound* is the one the docs state, max(`poll_interval`, 10 % "
        "of the run time) capped at `max_poll_interval` (every 10 s: `poll_interval`), shown for the "
        "nominal length; each job is checked against the bound of its own length.\n"
    )
    add(
        f"| job length | polling | status requests per job (min\u2013max) | every 10 s {X} adaptive | "
        "latency p50 s | p99 s | max s | bound s | jobs within their bound |"
    )
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    ratios = _ratios(found)
    for r in sched["rows"]:
        mode = f"every {sched['poll_interval_s']:g} s" if r["mode"] == "fixed" else "adaptive"
        ratio = f"{ratios[r['duration']]:.1f}{X}" if r["mode"] == "adaptive" else ""
        add(
            f"| {r['duration']} | {mode} | {r['requests_mean']:,.1f} ({r['requests_min']:,}\u2013"
            f"{r['requests_max']:,}) | {ratio} | {r['latency_p50_s']:.1f} | {r['latency_p99_s']:.1f} | "
            f"{r['latency_max_s']:.1f} | {r['bound_s']:g} | {r['within_bound']} of {r['jobs']} |"
        )
    add("")
    interval = sched["poll_interval_s"]
    strict = ", ".join(
        f"{r['duration']} {r['nominal_s'] / interval / r['requests_mean']:.1f}{X}"
        for r in sched["rows"]
        if r["mode"] == "adaptive" and r["nominal_s"] >= 3600
    )
    add(
        "Up to 100 s of waiting (ten intervals) both schedules are the same sleeps, so jobs of a "
        f"minute or less cost the same. Every sleep is {1 - JITTER:.0%}\u2013100 % of the interval, so "
        f'polling "every {interval:g} s" makes about one request per {(1 - JITTER / 2) * interval:g} s. '
        f"Against polls exactly {interval:g} s apart (fixed polling before the jitter), adaptive polling "
        f"makes fewer requests by: {strict}.\n"
    )


def _fanout_part(found: dict[str, Any], add: Any) -> None:
    pair = _both(found, "fanout")
    if not pair:
        return
    today, after = pair
    s = found["fanout"]["settings"]
    add("### Waits deferred in the same second\n")
    add(
        f"{s['n']:,} `VBrainJobTrigger`s, built as the sensor builds them when it defers and rebuilt "
        "from `serialize()` as the triggerer does, all started in the same second on one asyncio event "
        "loop, in a client process on one core, against the emulator in its own process on the other, "
        f"over HTTP. Jobs last {s['min_seconds']:g}\u2013{s['max_seconds']:g} s, `poll_interval` "
        f"{s['poll_interval']:g} s. The emulator's request log, binned by second from the deferral, "
        "gives the rate; the *steady window* is the whole seconds from the deferral to the first "
        f"job's end ({after['steady_seconds']} s).\n"
    )
    add(
        "*Before* is the behaviour before adaptive polling, reproduced in the benchmark's process by "
        "patching, never in the package (`polling.today_behaviour()`): `max_poll_interval=None`, no "
        "jitter (`JITTER = 0`), the first poll at once (`PollSchedule.first_delay` returning 0), and "
        "no per-connection gate (`aio.gate_for` returning a gate that lets every request through at "
        "once). *Now* is the package as it is: adaptive, each sleep jittered, the first poll anywhere "
        "in the first interval, the gate. Both run in the same client process, one after the other, "
        "on jobs of their own.\n"
    )
    add(
        "![Requests per job; request rate of waits deferred together; against a rate limit]"
        "(_static/polling.png)\n"
    )
    add(
        "| polling | peak requests/s | mean requests/s | peak ÷ mean | requests | requests per wait | "
        "detection p50 s | p99 s | detected |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for variant, r in (("today", today), ("after", after)):
        add(
            f"| {NAMES[variant]} | {r['peak_per_s']:,} | {r['mean_per_s']:,.0f} | "
            f"{r['peak_to_mean']:.2f}{X} | "
            f"{r['requests']:,} | {r['requests_per_wait']:.1f} | {_num(r['latency_p50_s'], 2)} | "
            f"{_num(r['latency_p99_s'], 2)} | {r['detected']:,} of {r['n']:,} |"
        )
    add("")
    first = today["per_second"][:6]
    add(
        f"Before, every wait polled at once ({max(first):,} requests in one second) and then all of "
        f"them again each {s['poll_interval']:g} s, in step: the first seconds saw "
        f"{', '.join(f'{x:,}' for x in first)} requests. Now the first second sees "
        f"{after['per_second'][0]:,} and the steady window stays within "
        f"{min(after['per_second'][1 : after['steady_seconds']]):,}\u2013{after['peak_per_s']:,} a second "
        "(the low end from 20 s on, as the intervals grow). "
        f"The mean is higher now because the jittered sleeps average {1 - JITTER / 2:.0%} of the interval "
        f"({after['requests_per_wait']:.1f} requests per wait against {today['requests_per_wait']:.1f}), "
        f"until the interval starts growing, after {10 * s['poll_interval']:g} s of waiting. The "
        "detection latency is higher because it has grown by the jobs' ends: a tenth of 30\u201340 s "
        "of waiting, 3\u20134 s.\n"
    )


def _gate_story(after: dict[str, Any], limit: int) -> str:
    """What the gate's sampled pace says, in numbers; empty when it never paced."""
    trace = [t for t in after.get("gate_trace", []) if t[1] is not None]
    if not trace:
        return ""
    low, high = min(t[1] for t in trace), max(t[1] for t in trace)
    refused = after["refused_per_second"]
    seen = after["per_second"]
    span = int(after["last_detected_s"] or len(seen))
    answered = sum(a - b for a, b in zip(seen[:span], refused[:span], strict=True)) / max(1, span)
    return (
        "The gate's pace (dotted in the right-hand chart, sampled every 0.5 s): after the first "
        f"second's 429 it paced at {trace[0][1]:.0f} requests/s (0.9 of what the server had accepted "
        "in the second before), rising by about one request per second each second and cut again to "
        "0.9 of what the server accepted at the next 429 (once: the 429s of requests that left before "
        f"the cut do not cut again); it stayed within {low:.0f}\u2013{high:.0f} requests/s. Paced "
        "requests leave one at a time at the pace in force when each leaves, so a cut takes effect at "
        f"once. Over the {span} s to the last detection the server answered {answered:.0f} requests a "
        f"second of the {limit} it allows."
    )


def _limited_part(found: dict[str, Any], add: Any) -> None:
    pair = _both(found, "limited")
    if not pair:
        return
    today, after = pair
    s = found["limited"]["settings"]
    limit = s["rate_limit"]
    add("### Against a rate-limited server\n")
    add(
        f"The same, with {s['n']:,} waits and the emulator limited to {limit} API requests per second "
        "per API key (its fixed one-second windows; past the limit `429` with `Retry-After: 1`): "
        f"jobs of {s['min_seconds']:g}\u2013{s['max_seconds']:g} s polled every "
        f"{s['poll_interval']:g} s at first, a demand of about {s['n'] / s['poll_interval']:.0f} requests/s, "
        f"twice the limit. The connection has the default retry settings (5 attempts, `Retry-After` "
        f"honoured). A wait that has no event {s['grace']:g} s after the last job's end is stopped. "
        "*Detected*: the trigger fired `succeeded`; *error events*: it fired `error` (five polls in a "
        "row failed after their retries).\n"
    )
    add(
        "| polling | requests | answered 429 | jobs detected | error events | no event | last job end, s | "
        "last detected, s | detection p50 s | p99 s | max s |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for variant, r in (("today", today), ("after", after)):
        add(
            f"| {NAMES[variant]} | {r['requests']:,} | {r['share_429']:.1%} | {r['detected']:,} of "
            f"{r['n']:,} | {r['error_events']:,} | {r['no_event']:,} | {r['last_end_s']:.0f} | "
            f"{_num(r['last_detected_s'])} | {_num(r['latency_p50_s'])} | {_num(r['latency_p99_s'])} | "
            f"{_num(r['latency_max_s'])} |"
        )
    add("")
    add(
        f"Before, each round of polls arrived at once: {limit} passed, the rest were answered 429 and "
        "retried together one second later, where again only "
        f"{limit} passed; {today['share_429']:.0%} of all requests were refused and "
        f"{today['error_events']:,} waits ended with an error event (a task that fails, or retries) "
        "although their job finished. Now the first second's 429 makes the connection's gate hold "
        f"every request and pace them: {after['share_429']:.1%} refused, every job detected, "
        f"{after['requests_per_wait']:.1f} requests per wait against {today['requests_per_wait']:.1f}. "
        "Seeing the ends takes longer: "
        f"the last job was seen {_num((after['last_detected_s'] or 0) - after['last_end_s'])} s after "
        f"it ended (p99 {_num(after['latency_p99_s'])} s), with a {s['poll_interval']:g} s interval.\n"
    )
    story = _gate_story(after, limit)
    if story:
        add(story + "\n")


# ------------------------------------------------------------------------------------------ chart


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = results["polling"]
    fig, (cost_ax, fan_ax, lim_ax) = plt.subplots(1, 3, figsize=(15, 4.4))
    rows = found["schedule"]["rows"]
    labels = list(dict.fromkeys(r["duration"] for r in rows))
    width = 0.38
    for offset, mode, color in ((-width / 2, "fixed", "#7f7f7f"), (width / 2, "adaptive", "#1f77b4")):
        values = [
            next(r["requests_mean"] for r in rows if r["duration"] == d and r["mode"] == mode) for d in labels
        ]
        name = (
            f"every {found['schedule']['poll_interval_s']:g} s" if mode == "fixed" else "adaptive (default)"
        )
        cost_ax.bar([i + offset for i in range(len(labels))], values, width, color=color, label=name)
    cost_ax.set_yscale("log")
    cost_ax.set_xticks(range(len(labels)), labels)
    cost_ax.set_xlabel("job length")
    cost_ax.set_ylabel("status requests per job")
    cost_ax.set_title(
        f"Requests per job, poll_interval {found['schedule']['poll_interval_s']:g} s", fontsize=10
    )
    cost_ax.legend(fontsize=8)
    for ax, scenario in ((fan_ax, "fanout"), (lim_ax, "limited")):
        runs = found[scenario]["runs"]
        for variant in ("today", "after"):
            if variant not in runs:
                continue
            run = runs[variant]
            seen, refused = run["per_second"], run["refused_per_second"]
            if scenario == "fanout":
                ax.plot(range(len(seen)), seen, color=COLORS[variant], label=NAMES[variant])
                continue
            answered = [a - b for a, b in zip(seen, refused, strict=True)]
            ax.plot(range(len(seen)), answered, color=COLORS[variant], label=f"{NAMES[variant]}: answered")
            faint = 0.35 if variant == "today" else 1.0
            ax.plot(
                range(len(seen)),
                refused,
                color=COLORS[variant],
                ls="--",
                lw=0.8,
                alpha=faint,
                label=f"{NAMES[variant]}: 429",
            )
            paced = [t for t in run.get("gate_trace", []) if t[1] is not None]
            if paced:
                ax.plot(
                    [t[0] for t in paced],
                    [t[1] for t in paced],
                    color=COLORS[variant],
                    ls=":",
                    label=f"{NAMES[variant]}: gate's pace",
                )
        ends = [r["first_end_s"] for r in runs.values()]
        if ends:
            ax.axvline(min(ends), color="#999", ls=":", lw=1)
        ax.set_xlabel("seconds since the deferral (dotted line: first job's end)")
        ax.set_ylabel("requests per second (emulator's log)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fan, lim = found["fanout"]["settings"], found["limited"]["settings"]
    fan_ax.set_title(
        f"{fan['n']:,} waits deferred at once, poll_interval {fan['poll_interval']:g} s", fontsize=10
    )
    lim_ax.axhline(lim["rate_limit"], color="#555", lw=0.8)
    # Before, whole rounds of polls were refused at once: its 429s run off the top of the chart.
    lim_ax.set_ylim(0, 2.5 * lim["rate_limit"])
    lim_ax.set_title(
        f"{lim['n']:,} waits, poll_interval {lim['poll_interval']:g} s, limit {lim['rate_limit']} requests/s",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
