"""The Airflow lines the provider is verified on, how each is installed and what runs there.

This is the one place that says so: ``make matrix`` runs this file, ``make lines``
prints the table, and docs/compatibility.md reports what the runs showed.

Each line is installed as its users install it. Where Amazon MWAA builds an image for
the Airflow version, with MWAA's own constraints files for that image
(tests/managed/mwaa/<version>/, copied from MWAA's public repository), as MWAA's install
step applies them; our test tools come in within those pins. Elsewhere (3.1, which MWAA
does not offer), ``apache-airflow==X`` and, where today's newest releases of a dependency
break X, the version Airflow's own constraints file for X holds (those files cannot be
downloaded on CI machines: each such pin says what breaks without it). The locked line
runs in uv.lock's environment; the same lock, on Python 3.13, gives the 3.13 line.

Every environment but the locked one lives in build/lines/<line>/ and is made again only
when what it is made from changed (a second run takes seconds).

Usage::

    python scripts/airflow_lines.py list
    python scripts/airflow_lines.py run [--jobs N] [LINE ...]

Only the standard library is used: this runs before any environment exists.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The lines' environments (git-ignored, kept between runs).
ENVIRONMENTS = ROOT / "build" / "lines"
#: MWAA's constraints files, one folder per MWAA image.
MWAA = ROOT / "tests" / "managed" / "mwaa"

#: The whole suite.
FULL = ("tests",)
#: The whole suite runs as two shards at once, each in its own pytest: the DAG runs (which mostly
#: wait on emulated jobs and retry delays) and the rest, so a line takes about half as long.
DAG_RUNS = ("tests/e2e", "tests/chaos", "tests/triggers", "tests/operators")
#: Tests of what never imports Airflow (the emulator): the same on every line, run on the locked one.
AIRFLOW_FREE = ("tests/emulator",)
#: What every line in between runs: registration (``airflow providers list`` and ``hooks``),
#: importing our modules with warnings as errors, the connection form, how deferral timeouts
#: and trigger failures reach a task, the example DAGs end to end (logging no warning of ours), a
#: sensor started and ended on a real triggerer, the tutorial with the sensor deferrable and poking,
#: and the metrics reaching StatsD through each line's own Stats.
EVERY_LINE = (
    "tests/test_provider.py",
    "tests/test_compat.py",
    "tests/test_metrics.py",
    "tests/e2e/test_examples.py",
    "tests/e2e/test_start_from_trigger.py",
    "tests/e2e/test_dags.py::test_tutorial_with_the_sensor[deferrable]",
    "tests/e2e/test_dags.py::test_tutorial_with_the_sensor[poke]",
)
#: The test tools, as the dev group of pyproject.toml asks for them: at uv.lock's versions where a
#: line is free to take them, within the constraints where a constraints file pins them.
TEST_TOOLS = ("pytest", "pytest-asyncio", "pytest-mock", "pytest-timeout", "jsonschema", "proxy.py", "statsd")
#: The Python most lines run on (this machine's); Python 3.13 comes from scripts/python313.sh.
DEFAULT_PYTHON = "3.11"


@dataclasses.dataclass(frozen=True)
class Line:
    """One Airflow line: its exact version, how it is installed, and the tests it runs.

    :param pins: extra pins (requirement: why) for a line without constraints files.
    :param locked: runs from uv.lock (the project's .venv on the default Python).
    :param mwaa: installed with the constraints of MWAA's image of this Airflow version.
    :param lineage: with the provider's optional ``[openlineage]`` extra.
    :param python: the Python version it runs on.
    """

    name: str
    airflow: str
    tests: tuple[str, ...]
    pins: dict[str, str] = dataclasses.field(default_factory=dict)
    locked: bool = False
    mwaa: bool = False
    lineage: bool = True
    python: str = DEFAULT_PYTHON

    @property
    def label(self) -> str:
        how = "MWAA" if self.mwaa else "uv.lock" if self.locked else "pinned"
        extra = "" if self.lineage else ", no extra"
        return f"Airflow {self.airflow} ({how}{extra}, Python {self.python})"

    @property
    def environment(self) -> Path:
        return ENVIRONMENTS / self.name


LINES = (
    Line("2.10", "2.10.1", FULL, mwaa=True),
    Line("2.11", "2.11.2", EVERY_LINE, mwaa=True, lineage=False),
    Line("3.0", "3.0.6", FULL, mwaa=True),
    Line("3.1", "3.1.8", EVERY_LINE),
    Line("3.1-py3.13", "3.1.8", EVERY_LINE, python="3.13"),
    Line("3.2", "3.2.1", EVERY_LINE, mwaa=True),
    Line("3.3-mwaa", "3.3.1", EVERY_LINE, mwaa=True, lineage=False),
    Line("3.3", "3.3.2", FULL, locked=True),
    Line("3.3-py3.13", "3.3.2", FULL, locked=True, python="3.13"),
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
        normal = re.sub(r"[-_.]+", "-", name).lower()
        match = re.search(rf'^name = "{re.escape(normal)}"\nversion = "([^"]+)"', lock, re.MULTILINE)
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
        # The emulator's own tests run once, with the locked line on the default Python.
        skip = [] if self.line.locked and self.line.python == DEFAULT_PYTHON else list(AIRFLOW_FREE)
        if self.shard == "dag runs":
            return list(DAG_RUNS)
        return ["tests", *(f"--ignore={path}" for path in (*skip, *DAG_RUNS))]

    @property
    def what(self) -> str:
        return f"full suite: {self.shard}" if self.shard else "every-line checks"


def jobs_of(line: Line) -> list[Job]:
    return [Job(line, "dag runs"), Job(line, "the rest")] if line.tests == FULL else [Job(line)]


# --------------------------------------------------------------------------- environments


def python_for(line: Line) -> str:
    """The interpreter (or version request) the line's environment is made with."""
    if line.python == "3.13":
        built = subprocess.run(
            ["bash", str(ROOT / "scripts" / "python313.sh")], check=True, stdout=subprocess.PIPE, text=True
        )
        return built.stdout.strip().splitlines()[-1]
    return line.python


def install_command(line: Line, python: str) -> list[list[str]]:
    """The commands that make the line's environment (in ``line.environment``)."""
    target = line.environment
    if line.locked:
        # The lock's own versions, on this line's Python; only the groups the tests need.
        return [[*uv(), "sync", "--locked", "--python", python, "--no-default-groups", "--group", "dev"]]
    provider = ".[openlineage]" if line.lineage else "."
    tools = [_tool_requirement(name) for name in TEST_TOOLS]
    if line.mwaa:
        folder = MWAA / line.airflow
        constraints = ["-c", str(folder / "mwaa_essential_constraints.txt")]
        constraints += ["-c", str(folder / "airflow_constraints.txt")]
        requirements = [f"apache-airflow=={line.airflow}", *tools]
    else:
        constraints = []
        locked = locked_versions(*TEST_TOOLS)
        requirements = [
            f"apache-airflow=={line.airflow}",
            *line.pins,
            *(f"{n}=={v}" for n, v in locked.items()),
        ]
    pip = [*uv(), "pip", "install", "--quiet", "--python", str(target / "bin" / "python")]
    return [
        [*uv(), "venv", "--quiet", "--python", python, str(target)],
        [*pip, *constraints, "-e", provider, "-e", "./emulator", *requirements],
    ]


def _tool_requirement(name: str) -> str:
    """A test tool as pyproject.toml's dev group asks for it (its lower bound)."""
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(rf'^\s*"({re.escape(name)}(?:[<>=!~;\s][^"]*)?)"', text, re.MULTILINE)
    if not match:
        raise SystemExit(f"pyproject.toml's dev group does not name {name}")
    return match.group(1)


def _fingerprint(line: Line, commands: list[list[str]]) -> str:
    """What the environment is made from: its commands and the files they read."""
    digest = hashlib.sha256(repr(commands).encode())
    sources = [ROOT / "pyproject.toml", ROOT / "emulator" / "pyproject.toml", ROOT / "uv.lock"]
    if line.mwaa:
        sources += sorted((MWAA / line.airflow).glob("*.txt"))
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def prepare(line: Line) -> str:
    """Make the line's environment unless it is up to date; return what was done."""
    if line.locked and line.python == DEFAULT_PYTHON:
        return "uv.lock's .venv"
    python = python_for(line)
    commands = install_command(line, python)
    stamp = line.environment / ".made-from"
    fingerprint = _fingerprint(line, commands)
    if stamp.is_file() and stamp.read_text() == fingerprint:
        return "up to date"
    shutil.rmtree(line.environment, ignore_errors=True)
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(line.environment)}
    for command in commands:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(
                f"making the environment of line {line.name} failed:\n{shlex.join(command)}\n"
                f"{done.stdout[-3000:]}{done.stderr[-6000:]}"
            )
    stamp.write_text(fingerprint)
    return "made"


def command(job: Job) -> list[str]:
    pytest = ["-m", "pytest", "-p", "no:cacheprovider", "--durations=10", *job.tests]
    if job.line.locked and job.line.python == DEFAULT_PYTHON:
        return [*uv(), "run", "--locked", "python", *pytest]
    return [str(job.line.environment / "bin" / "python"), *pytest]


def check_the_lock() -> None:
    """The locked lines must be the Airflow uv.lock really holds."""
    locked = locked_versions("apache-airflow")["apache-airflow"]
    for line in LINES:
        if line.locked and line.airflow != locked:
            raise SystemExit(f"line {line.name} says Airflow {line.airflow}, but uv.lock holds {locked}")
        if line.mwaa and not (MWAA / line.airflow).is_dir():
            raise SystemExit(f"line {line.name} has no MWAA constraints in {MWAA / line.airflow}")


# --------------------------------------------------------------------------- running


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
    started = time.monotonic()
    # The environments first (three at a time: mostly downloads and file copies), so that the test
    # runs never race to make one.
    print(f"Making the environments of {len(lines)} Airflow line(s):", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        for line, what in zip(lines, pool.map(prepare, lines), strict=True):
            print(f"  {line.name} ({line.label}): {what}", flush=True)
    print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    # The full suites' shards first: they take longest, so the short runs fill the gaps. A suite
    # spends much of its time waiting (emulated jobs, retry delays), so several at a time on two
    # cores finish sooner than one after another.
    order = sorted((job for line in lines for job in jobs_of(line)), key=lambda job: not job.shard)
    print(f"Running them as {len(order)} pytest runs, {jobs} at a time:", flush=True)
    for job in order:
        print(f"  {job.line.name} ({job.what}): {shlex.join(command(job))}", flush=True)
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
        print(f"  {outcome.job.line.label:<44} {outcome.job.what:<28} {verdict:<7} {outcome.seconds:4.0f} s")
    return 0 if all(outcome.returncode == 0 for outcome in outcomes) else 1


def show() -> None:
    for line in LINES:
        where = "uv.lock's .venv" if line.locked and line.python == DEFAULT_PYTHON else line.environment
        what = "the full suite, in two shards" if line.tests == FULL else ", ".join(line.tests)
        print(f"{line.name}: {line.label} in {where}; runs {what}")
        if line.mwaa:
            print(f"    constraints: {(MWAA / line.airflow).relative_to(ROOT)}/*.txt")
        for pin, why in line.pins.items():
            print(f"    pins {pin}: {why}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="print the lines, how each is installed and what runs on each")
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
