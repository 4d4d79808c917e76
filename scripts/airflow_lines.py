"""The Airflow lines the provider is verified on, how each is installed and what runs there.

This is the one place that says so: ``make matrix`` runs this file, ``make lines``
prints the table, and docs/compatibility.md reports what the runs showed.

Each line is installed as its users install it: ``apache-airflow==X`` and, where
today's newest releases of a dependency break X, the version Airflow's own
constraints file for X holds. Those files cannot be downloaded on CI machines
(no access to GitHub), so each pin below was found by running the line with and
without it, and says what breaks without it. The test tools come in at the
versions uv.lock holds, so every line runs the same pytest.

Usage::

    python scripts/airflow_lines.py list
    python scripts/airflow_lines.py run [--jobs N] [LINE ...]

Only the standard library is used: this runs before any environment exists.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The whole suite.
FULL = ("tests",)
#: The whole suite runs as two shards at once, each in its own pytest: the DAG runs (which mostly
#: wait on emulated jobs and retry delays) and the rest, so a line takes about half as long.
DAG_RUNS = ("tests/e2e", "tests/chaos", "tests/triggers", "tests/operators")
#: Tests of what never imports Airflow (the emulator): the same on every line, run on the locked one.
AIRFLOW_FREE = ("tests/emulator",)
#: What every line in between runs: registration (``airflow providers list`` and ``hooks``),
#: importing our modules with warnings as errors, the connection form, how deferral timeouts
#: and trigger failures reach a task, the example DAGs end to end, and the tutorial with the
#: sensor deferrable and poking.
EVERY_LINE = (
    "tests/test_provider.py",
    "tests/test_compat.py",
    "tests/e2e/test_examples.py",
    "tests/e2e/test_dags.py::test_tutorial_with_the_sensor[deferrable]",
    "tests/e2e/test_dags.py::test_tutorial_with_the_sensor[poke]",
)
#: Installed beside Airflow on every line, at uv.lock's versions.
TEST_TOOLS = ("pytest", "pytest-asyncio", "pytest-mock", "pytest-timeout", "jsonschema")


@dataclasses.dataclass(frozen=True)
class Line:
    """One Airflow line: its exact version, extra pins (requirement: why), and the tests it runs."""

    name: str
    airflow: str
    tests: tuple[str, ...]
    pins: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Runs in the project's .venv, made from uv.lock, instead of an environment of its own.
    locked: bool = False

    @property
    def label(self) -> str:
        return f"Airflow {self.airflow}"


LINES = (
    Line(
        "2.10",
        "2.10.5",
        FULL,
        {"universal-pathlib==0.2.6": "0.3 breaks ObjectStoragePath (2.10 allows it, 2.11 caps it)"},
    ),
    Line("2.11", "2.11.2", EVERY_LINE),
    Line(
        "3.0",
        "3.0.6",
        FULL,
        {
            "universal-pathlib==0.2.6": "0.3 breaks ObjectStoragePath (3.0 allows it, 3.1 caps it)",
            "fastapi==0.116.2": "newer FastAPI and Cadwyn make the execution API reject every task's start",
            "pyjwt==2.10.1": "2.11+ refuses 3.0's tokens without an issuer (TypeError: Issuer (iss) must be "
            "a string): the in-process API's answers fail",
        },
    ),
    Line("3.1", "3.1.8", EVERY_LINE),
    Line(
        "3.2",
        "3.2.2",
        EVERY_LINE,
        {
            "fastapi==0.136.3": "newer FastAPI and Cadwyn fail to build the execution API (pydantic error)",
            "svcs==25.1.0": "svcs 26 leaves the in-process execution API without its registry (dag.test)",
        },
    ),
    Line("3.3", "3.3.2", FULL, locked=True),
)


def by_name(names: list[str]) -> list[Line]:
    known = {line.name: line for line in LINES}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown Airflow line(s) {unknown}; known: {', '.join(known)}")
    return [known[name] for name in names] if names else list(LINES)


def locked_versions(*names: str) -> dict[str, str]:
    """The versions uv.lock holds for ``names``."""
    lock = (ROOT / "uv.lock").read_text()
    found = {}
    for name in names:
        match = re.search(rf'^name = "{re.escape(name)}"\nversion = "([^"]+)"', lock, re.MULTILINE)
        if not match:
            raise SystemExit(f"uv.lock has no {name}")
        found[name] = match.group(1)
    return found


def uv() -> list[str]:
    return shlex.split(os.environ.get("UV", f"{shlex.quote(sys.executable)} -m uv"))


@dataclasses.dataclass(frozen=True)
class Job:
    """One pytest run of a line: its whole test list, or one shard of the full suite."""

    line: Line
    shard: str = ""

    @property
    def tests(self) -> list[str]:
        if self.line.tests != FULL:
            return list(self.line.tests)
        skip = [] if self.line.locked else [f"--ignore={path}" for path in AIRFLOW_FREE]
        if self.shard == "dag runs":
            return list(DAG_RUNS)
        return ["tests", *skip, *(f"--ignore={path}" for path in DAG_RUNS)]

    @property
    def what(self) -> str:
        return f"full suite: {self.shard}" if self.shard else "every-line checks"


def jobs_of(line: Line) -> list[Job]:
    return [Job(line, "dag runs"), Job(line, "the rest")] if line.tests == FULL else [Job(line)]


def command(job: Job) -> list[str]:
    line = job.line
    pytest = ["pytest", "-p", "no:cacheprovider", "--durations=10", *job.tests]
    if line.locked:
        return [*uv(), "run", "--locked", *pytest]
    tools = [f"{name}=={version}" for name, version in locked_versions(*TEST_TOOLS).items()]
    withs = [f"apache-airflow=={line.airflow}", *line.pins, *tools]
    return [
        *uv(),
        "run",
        "--isolated",
        "--no-project",
        "--with-editable",
        # With the optional lineage extra, so OpenLineage is tested on each line too (it resolves
        # the newest OpenLineage provider that line's Airflow accepts).
        ".[openlineage]",
        # The emulator, from this repository (what the provider's testing extra installs).
        "--with-editable",
        "./emulator",
        *_each("--with", withs),
        *pytest,
    ]


def _each(flag: str, values: list[str]) -> list[str]:
    return [part for value in values for part in (flag, value)]


def check_the_lock() -> None:
    """The locked line must be the Airflow uv.lock really holds."""
    for line in LINES:
        locked = locked_versions("apache-airflow")["apache-airflow"]
        if line.locked and line.airflow != locked:
            raise SystemExit(f"line {line.name} says Airflow {line.airflow}, but uv.lock holds {locked}")


@dataclasses.dataclass
class Outcome:
    job: Job
    returncode: int
    seconds: float
    output: str


def run_job(job: Job) -> Outcome:
    with tempfile.TemporaryFile(mode="w+") as log:
        started = time.monotonic()
        done = subprocess.run(command(job), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)
        seconds = time.monotonic() - started
        log.seek(0)
        return Outcome(job, done.returncode, seconds, log.read())


def run(lines: list[Line], jobs: int) -> int:
    check_the_lock()
    # The full suites' shards first: they take longest, so the short runs fill the gaps. A suite
    # spends much of its time waiting (emulated jobs, retry delays), so several at a time on two
    # cores finish sooner than one after another.
    order = sorted((job for line in lines for job in jobs_of(line)), key=lambda job: not job.shard)
    print(f"Running {len(lines)} Airflow line(s) as {len(order)} pytest runs, {jobs} at a time:", flush=True)
    for job in order:
        print(f"  {job.line.name} ({job.what}): {shlex.join(command(job))}", flush=True)
    started = time.monotonic()
    outcomes = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in concurrent.futures.as_completed([pool.submit(run_job, job) for job in order]):
            outcome = future.result()
            outcomes.append(outcome)
            verdict = "passed" if outcome.returncode == 0 else f"FAILED (exit {outcome.returncode})"
            print(f"\n===== {outcome.job.line.label}, {outcome.job.what}: {verdict}, {outcome.seconds:.0f} s")
            print(outcome.output.rstrip(), flush=True)
    print(f"\n===== Airflow lines, {time.monotonic() - started:.0f} s wall:")
    for outcome in sorted(outcomes, key=lambda o: (LINES.index(o.job.line), o.job.shard)):
        verdict = "passed" if outcome.returncode == 0 else "FAILED"
        print(f"  {outcome.job.line.label:<16} {outcome.job.what:<28} {verdict:<7} {outcome.seconds:4.0f} s")
    return 0 if all(outcome.returncode == 0 for outcome in outcomes) else 1


def show() -> None:
    for line in LINES:
        where = "uv.lock's .venv" if line.locked else "its own environment"
        what = "the full suite, in two shards" if line.tests == FULL else ", ".join(line.tests)
        print(f"{line.name}: {line.label} in {where}; runs {what}")
        for pin, why in line.pins.items():
            print(f"    pins {pin}: {why}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="print the lines, their pins and what runs on each")
    runner = sub.add_parser("run", help="run the tests of some lines (default: all)")
    runner.add_argument("lines", nargs="*", metavar="LINE", help="e.g. 3.1")
    runner.add_argument("--jobs", type=int, default=int(os.environ.get("LINES_JOBS", "4")))
    args = parser.parse_args()
    if args.action == "list":
        show()
        return 0
    return run(by_name(args.lines), max(1, args.jobs))


if __name__ == "__main__":
    sys.exit(main())
