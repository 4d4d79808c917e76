"""``make managed-check``: does the built wheel install where managed Airflow services install it?

Amazon MWAA installs a user's ``requirements.txt`` as
``pip install -c mwaa_essential_constraints.txt -r requirements.txt -c airflow_constraints.txt``.
``tests/managed/mwaa/<version>/`` holds those two files for each MWAA image (see
``tests/managed/README.md``). Google Cloud Composer publishes no constraints files.

1. ``uv build --wheel`` makes the provider's wheel in ``build/managed-check/`` (git-ignored,
   emptied at each run).
2. For each MWAA image, and each of the wheel alone and the wheel with its ``[openlineage]``
   extra, ``uv pip compile`` resolves it with the image's two constraints files, for the Python of
   the image (the header of its ``airflow_constraints.txt`` names it). The ``testing`` extra (the
   emulator, which is not on PyPI) is left out.
3. For each Composer 3 Airflow line, the same two resolutions beside ``apache-airflow==X`` alone,
   for Python 3.11 (Composer 3 runs 3.11.8).
4. Every image from Airflow ``LOWEST_SUPPORTED`` on, and every Composer line, must resolve, with
   and without the extra; every older image must not (if it did, the provider's Airflow floor
   would let pip install it beside an Airflow it does not support).
5. The support table in ``docs/managed-airflow.md``, between its marker comments, must be what
   this run produced; ``--write`` rewrites it instead.

Resolving needs PyPI: with uv's cache warm a run takes well under a minute, most of it uv
revalidating the index pages it cached. Each resolution's requirements (``.in``) and its output or
uv's error (``.txt``) are kept in ``build/managed-check/`` for a closer look.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import difflib
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "managed-check"
MWAA = ROOT / "tests" / "managed" / "mwaa"
PAGE = ROOT / "docs" / "managed-airflow.md"
START = "<!-- managed-check: start -->"
END = "<!-- managed-check: end -->"
DISTRIBUTION = "airflow-provider-vbrain"
EXTRA = "openlineage"
OPENLINEAGE = "apache-airflow-providers-openlineage"
#: The lowest Airflow the provider supports (its declared floor): MWAA images from this one on must
#: resolve, older ones must not.
LOWEST_SUPPORTED = "2.10.1"
#: Cloud Composer 3's Airflow lines (3.1.8 stands for the 3.1.x builds, the 3.1 we test), on its
#: Python.
COMPOSER_AIRFLOW = ("2.10.5", "2.11.1", "3.1.8", "3.3.1")
COMPOSER_PYTHON = "3.11"
JOBS = 4
#: How much of uv's error the failure message shows.
ERROR_LINES = 12


class Failure(Exception):
    """The check failed, or could not run; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Target:
    """One place the provider is installed: an MWAA image, or a Composer Airflow line.

    :param service: the service's name, as the table shows it.
    :param name: the image or line.
    :param airflow: the Airflow it runs.
    :param python: the Python it runs (major.minor).
    :param constraints: the constraints files it installs with (none for Composer).
    :param openlineage_pin: the OpenLineage provider those constraints pin, if any.
    """

    service: str
    name: str
    airflow: str
    python: str
    constraints: tuple[Path, ...]
    openlineage_pin: str | None

    @property
    def expected(self) -> bool:
        """Whether the provider must resolve here (False: it must not)."""
        return version_key(self.airflow) >= version_key(LOWEST_SUPPORTED)

    @property
    def slug(self) -> str:
        """A name for its files in build/managed-check/."""
        return f"{'mwaa' if self.constraints else 'composer'}-{self.airflow}"


@dataclasses.dataclass(frozen=True)
class Result:
    target: Target
    extra: bool
    resolved: bool
    #: uv's error, empty when it resolved.
    error: str
    seconds: float

    @property
    def label(self) -> str:
        return f"{self.target.service} {self.target.name}{f' [{EXTRA}]' if self.extra else ''}"


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def pin(path: Path, name: str) -> str | None:
    """The version ``path`` pins ``name`` to (``name==X``), if it pins it."""
    spelled = "[-_.]+".join(map(re.escape, re.split(r"[-_.]+", name)))  # any spelling pip accepts
    pattern = re.compile(rf"^{spelled}==(\S+)$", re.IGNORECASE)
    for line in path.read_text().splitlines():
        found = pattern.match(line.strip())
        if found:
            return found.group(1)
    return None


def mwaa_targets() -> list[Target]:
    """The MWAA images of tests/managed/mwaa/, oldest first, each read from its two files."""
    if not MWAA.is_dir():
        raise Failure(f"{MWAA} is missing: it holds the MWAA images' constraints files")
    targets = []
    for folder in sorted((p for p in MWAA.iterdir() if p.is_dir()), key=lambda p: version_key(p.name)):
        essential = folder / "mwaa_essential_constraints.txt"
        airflow = folder / "airflow_constraints.txt"
        for path in (essential, airflow):
            if not path.is_file():
                raise Failure(f"{path} is missing (see tests/managed/README.md)")
        pinned = pin(essential, "apache-airflow")
        if pinned != folder.name:
            raise Failure(f"{essential} pins apache-airflow=={pinned}, not the folder's {folder.name}")
        python = re.search(r"constraints-[\d.]+/constraints-(3\.\d+)\.txt", airflow.read_text())
        if not python:
            raise Failure(f"{airflow}'s header names no constraints-3.X.txt: which Python is the image's?")
        openlineage = pin(essential, OPENLINEAGE) or pin(airflow, OPENLINEAGE)
        targets.append(
            Target(
                "Amazon MWAA", folder.name, folder.name, python.group(1), (essential, airflow), openlineage
            )
        )
    if not targets:
        raise Failure(f"{MWAA} holds no image folders")
    return targets


def composer_targets() -> list[Target]:
    return [
        Target(
            "Google Cloud Composer 3",
            f"{airflow} builds" if airflow != "3.1.8" else "3.1.x builds",
            airflow,
            COMPOSER_PYTHON,
            (),
            None,
        )
        for airflow in COMPOSER_AIRFLOW
    ]


# ---------------------------------------------------------------- build and resolve


def run(command: list[str | Path], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd or WORK, capture_output=True, text=True, check=False
    )


def build_wheel(uv: str) -> Path:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    done = run([uv, "build", "--wheel", "--quiet", "--out-dir", WORK, ROOT], cwd=ROOT)
    if done.returncode != 0:
        raise Failure(f"uv build --wheel exited {done.returncode}:\n{(done.stdout + done.stderr)[-4000:]}")
    wheels = list(WORK.glob("*.whl"))
    if len(wheels) != 1:
        raise Failure(f"uv build --wheel left {len(wheels)} wheels in {WORK}, not one")
    wheel = wheels[0]
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        extras = re.findall(r"^Provides-Extra: (\S+)$", archive.read(metadata).decode(), re.MULTILINE)
    if EXTRA not in extras:
        raise Failure(f"the wheel has no [{EXTRA}] extra (it has {extras})")
    return wheel


def resolve(uv: str, wheel: Path, target: Target, extra: bool) -> Result:
    """``uv pip compile`` of the wheel (with the extra or not) as ``target`` would install it."""
    requirement = f"{DISTRIBUTION}{f'[{EXTRA}]' if extra else ''} @ {wheel.as_uri()}"
    stem = f"{target.slug}-{EXTRA if extra else 'base'}"
    requirements = WORK / f"{stem}.in"
    lines = [requirement]
    if not target.constraints:  # Composer: its Airflow stands in for the constraints it does not publish
        lines.append(f"apache-airflow=={target.airflow}")
    requirements.write_text("\n".join(lines) + "\n")
    # This interpreter runs uv's builds (none so far: everything has wheels); naming it keeps uv from
    # searching, and from downloading, an interpreter of the target's version, which costs seconds.
    command: list[str | Path] = [uv, "pip", "compile", "--python", sys.executable]
    command += ["--python-version", target.python, "--no-header", "--quiet"]
    for constraints in target.constraints:
        command += ["-c", constraints]
    command.append(requirements)
    started = time.monotonic()
    done = run(command)
    seconds = time.monotonic() - started
    (WORK / f"{stem}.txt").write_text(done.stdout if done.returncode == 0 else done.stderr)
    if done.returncode == 0:
        check_resolution(done.stdout, target, extra)
        return Result(target, extra, True, "", seconds)
    if done.returncode == 1 and "No solution found" in done.stderr:
        return Result(target, extra, False, done.stderr.strip(), seconds)
    # Anything else (no network, a bad constraints file) says nothing about the provider.
    raise Failure(
        f"{' '.join(map(str, command))} exited {done.returncode} without a resolver verdict:\n"
        + tail(done.stderr)
    )


def check_resolution(resolved: str, target: Target, extra: bool) -> None:
    """What a resolution must hold, so that a constraints file uv ignored cannot pass unnoticed."""
    wanted = {"apache-airflow": target.airflow, DISTRIBUTION: None}
    if extra:
        wanted[OPENLINEAGE] = target.openlineage_pin
    for name, version in wanted.items():
        found = re.search(rf"^{re.escape(name)}(?:==| @ )(\S+)", resolved, re.MULTILINE)
        if not found or (version and found.group(1) != version):
            raise Failure(
                f"{target.service} {target.name}{f' [{EXTRA}]' if extra else ''}: the resolution "
                f"holds {found.group(0) if found else f'no {name}'}, not {name}=={version or 'any'}"
            )


def tail(error: str) -> str:
    """The last meaningful lines of uv's error, indented."""
    lines = [line.rstrip() for line in error.splitlines() if line.strip()]
    return "\n".join(f"   {line}" for line in lines[-ERROR_LINES:])


def short_reason(error: str, target: Target) -> str:
    """uv's first conclusion, in a few words, for the table."""
    text = " ".join(line.strip().lstrip("╰─▶").strip() for line in error.splitlines())
    text = re.sub(r"\bcause:\s*", "", text)
    found = re.search(r"Because (.+?), we can conclude", text)
    if not found:
        return re.sub(r"^error:\s*", "", text)[:120]
    clause = found.group(1)
    ours = rf"{re.escape(DISTRIBUTION)}(?:\[\w+\])?==\S+"
    needs = re.fullmatch(rf"{ours} depends on (\S+) and (\S+)==(\S+)", clause)
    if needs and any(pin(path, needs.group(2)) == needs.group(3) for path in target.constraints):
        return f"needs `{needs.group(1)}`; the image pins `{needs.group(2)}=={needs.group(3)}`"
    return re.sub(ours, "the provider", clause)


# ---------------------------------------------------------------- the table


def cell(result: Result) -> str:
    if result.resolved:
        return "resolves"
    return f"fails: {short_reason(result.error, result.target)}".replace("|", "\\|")


def table(results: list[Result]) -> str:
    rows = [
        f"| service | image/line | Airflow | Python | `{DISTRIBUTION}` | with `[{EXTRA}]` | "
        f"`{OPENLINEAGE}` pinned |",
        "|---|---|---|---|---|---|---|",
    ]
    by_target: dict[Target, dict[bool, Result]] = {}
    for result in results:
        by_target.setdefault(result.target, {})[result.extra] = result
    for target, pair in by_target.items():
        if target.constraints:
            pinned = f"{target.openlineage_pin}" if target.openlineage_pin else "not pinned"
        else:
            pinned = f"no constraints published: resolved beside `apache-airflow=={target.airflow}` alone"
        rows.append(
            f"| {target.service} | {target.name} | {target.airflow} | {target.python} | "
            f"{cell(pair[False])} | {cell(pair[True])} | {pinned} |"
        )
    return "\n".join(rows)


def page_parts() -> tuple[str, str, str]:
    """docs/managed-airflow.md as (up to the start marker, the table, from the end marker)."""
    if not PAGE.is_file():
        raise Failure(f"{PAGE} is missing")
    text = PAGE.read_text()
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise Failure(f"{PAGE} must hold the table between one {START} and one {END} line")
    head, rest = text.split(START)
    body, foot = rest.split(END)
    return head + START, body.strip("\n"), END + foot


# ---------------------------------------------------------------- command line


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help=f"rewrite the table in {PAGE.relative_to(ROOT)}")
    args = parser.parse_args()
    try:
        return check(write=args.write)
    except Failure as err:
        print(f"managed check FAILED: {err}", file=sys.stderr)
        return 1


def check(write: bool) -> int:
    started = time.monotonic()
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        raise Failure("uv not found: run this through `make managed-check` or `uv run`")
    head, old_table, foot = page_parts()  # before the work, so a broken page fails at once

    wheel = build_wheel(uv)
    print(f"-- built {wheel.name} ({time.monotonic() - started:.1f} s)", flush=True)
    targets = mwaa_targets() + composer_targets()
    jobs = [(target, extra) for target in targets for extra in (False, True)]
    print(f"-- {len(jobs)} resolutions, {JOBS} at a time", flush=True)
    results: dict[tuple[Target, bool], Result] = {}
    with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
        futures = {pool.submit(resolve, uv, wheel, target, extra): (target, extra) for target, extra in jobs}
        for number, future in enumerate(concurrent.futures.as_completed(futures), 1):
            result = future.result()
            results[futures[future]] = result
            verdict = "resolves" if result.resolved else "does not resolve"
            wanted = "" if result.resolved == result.target.expected else "  <-- UNEXPECTED"
            print(
                f"   [{number:2}/{len(jobs)}] {result.label} (Python {result.target.python}): "
                f"{verdict} ({result.seconds:.1f} s){wanted}",
                flush=True,
            )
    ordered = [results[job] for job in jobs]

    problems = []
    for result in ordered:
        if result.resolved and not result.target.expected:
            problems.append(
                f"{result.label} resolves, but its Airflow {result.target.airflow} is older than "
                f"{LOWEST_SUPPORTED}, the lowest supported: the provider's apache-airflow floor is "
                "too low (or LOWEST_SUPPORTED in this script is out of date)"
            )
        elif not result.resolved and result.target.expected:
            problems.append(f"{result.label} does not resolve:\n{tail(result.error)}")
        elif not result.resolved and not re.search(r"depends on apache-airflow[<>=!~]", result.error):
            problems.append(
                f"{result.label} does not resolve, as expected, but not for its Airflow "
                f"{result.target.airflow}, older than the provider's floor:\n{tail(result.error)}"
            )
    for result in ordered:
        if not result.resolved and not result.target.expected:
            reason = short_reason(result.error, result.target)
            print(f"-- {result.label}: does not resolve, as expected: {reason}")

    new_table = table(ordered)
    print(f"\n{new_table}\n")
    relative = PAGE.relative_to(ROOT)
    if write:
        if new_table != old_table:
            PAGE.write_text(f"{head}\n\n{new_table}\n\n{foot}")
            print(f"-- rewrote the table in {relative}")
        else:
            print(f"-- the table in {relative} is up to date")
    elif new_table != old_table:
        diff = difflib.unified_diff(
            old_table.splitlines(), new_table.splitlines(), f"{relative}", "this run", lineterm=""
        )
        problems.append(
            f"the table in {relative} differs from this run's results; run `make managed-check-write` "
            f"(or `python scripts/managed_check.py --write`) and review the change:\n" + "\n".join(diff)
        )

    if problems:
        raise Failure("\n".join(problems))
    print(f"managed check passed in {time.monotonic() - started:.0f} s ({len(jobs)} resolutions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
