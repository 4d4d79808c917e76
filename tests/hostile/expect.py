"""What users must see after an attack, as assertions over a probe's :class:`~tests.hostile.probe.Report`.

Every outcome is bounded: the call ended (it was not killed over the time or memory bound), the API key
showed nowhere (message, args, the whole cause chain with reprs, logs, printed output, the value or
event), and an async call or trigger never held its event loop longer than :data:`LOOP_BLOCK_LIMIT`.
Each failed assertion says what the call did instead, with the measured numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tests.hostile.probe import MEMORY_LIMIT_MB, Report

#: Most CPU time one callback may hold the event loop. Asyncio reports every callback over 50 ms of
#: wall time (the aim); the assertion counts the CPU those callbacks spent, and allows five times the
#: aim, so a loaded 2-core machine does not fail it, while a parse that is not linear-time holds the
#: loop for seconds.
LOOP_BLOCK_LIMIT = 0.25
#: What a message says when an answer was refused for its size.
TOO_LARGE = r"larger|too large|too big|limit|exceed"


def _bounded(report: Report, memory_mb: float) -> list[str]:
    problems = []
    if report.killed is not None:
        problems.append(f"did not end within its {report.killed.value}")
    if report.peak_mb > memory_mb:
        problems.append(f"grew {report.peak_mb:.0f} MB (bound {memory_mb} MB)")
    if report.leaks:
        problems.append(f"showed the API key in {', '.join(report.leaks)}")
    if report.longest_block > LOOP_BLOCK_LIMIT:
        problems.append(f"held its event loop for {report.longest_block:.2f} s of CPU in one callback")
    return problems


def _says(text: str, patterns: Iterable[str]) -> list[str]:
    return [
        f"says nothing matching {pattern!r}" for pattern in patterns if not re.search(pattern, text, re.I)
    ]


def _check(problems: list[str], report: Report) -> None:
    assert not problems, f"{'; '.join(problems)}. It {report.describe()}"


def clean_failure(
    report: Report,
    *,
    endpoint: str | None = None,
    says: Iterable[str] = (),
    memory_mb: float = MEMORY_LIMIT_MB,
) -> None:
    """The call raised a ``VBrainError`` (never a raw ``OverflowError``, ``RecursionError``,
    ``UnicodeEncodeError`` or ``MemoryError``) naming ``endpoint`` and matching ``says``, in bounds."""
    problems = _bounded(report, memory_mb)
    if report.outcome != "raised":
        if report.killed is None:
            problems.append("did not raise")
    elif not report.is_vbrain_error:
        problems.append(f"raised a raw {report.error_types[0]}")
    else:
        if endpoint and endpoint not in report.message:
            problems.append(f"does not name {endpoint}")
        problems += _says(report.message, says)
    _check(problems, report)


def clean_return(report: Report, *, memory_mb: float = MEMORY_LIMIT_MB) -> Any:
    """The call returned, in bounds; its value (JSON-able form)."""
    problems = _bounded(report, memory_mb)
    if report.outcome != "returned" and report.killed is None:
        problems.append("did not return")
    _check(problems, report)
    return report.value


def clean_event(
    report: Report, *, status: str | Iterable[str] | None = None, says: Iterable[str] = ()
) -> dict[str, Any]:
    """The trigger ended with one event (never an exception, never a hang) whose ``status`` is one of
    ``status`` and whose message matches ``says``, in bounds; the event's payload."""
    problems = _bounded(report, MEMORY_LIMIT_MB)
    event = report.value if report.outcome == "returned" else None
    if report.outcome == "raised":
        problems.append("crashed instead of firing an event")
    elif event is not None:
        wanted = {status} if isinstance(status, str) else set(status or ())
        if wanted and event.get("status") not in wanted:
            problems.append(f"fired {event.get('status')!r}, not {' or '.join(sorted(wanted))}")
        problems += _says(str(event.get("message", "")), says)
    _check(problems, report)
    return event or {}


def clean_failures(reports: Iterable[Report], endpoints: Iterable[str], says: Iterable[str] = ()) -> None:
    """:func:`clean_failure` for calls run together: one assertion naming every call that fell short."""
    shortfalls = []
    for report, endpoint in zip(reports, endpoints, strict=True):
        try:
            clean_failure(report, endpoint=endpoint, says=says)
        except AssertionError as err:
            shortfalls.append(str(err))
    assert not shortfalls, "\n".join(shortfalls)
