"""``make wheel-test``: the provider as users get it, on the oldest stack it supports.

The repository builds two distributions: the provider and the emulator (``emulator/``), which the
provider's ``testing`` extra installs.

1. ``uv build`` makes each one's sdist, then its wheel from that sdist; a second wheel built
   straight from the source tree must hold the same files with the same hashes.
2. What the archives hold is checked: the package, ``py.typed``, ``LICENSE`` and the
   metadata, and nothing else (no tests, no caches, no stray files; no emulator module in the
   provider's).
3. A clean virtual environment on the lowest Python that ``Requires-Python`` admits gets
   the provider's wheel with its ``testing`` extra (the emulator's wheel), not the source tree,
   beside the lowest Airflow we support. Both wheels' declared dependencies are resolved with
   ``--resolution lowest-direct``, so their floors are what gets installed and tested;
   everything else as PyPI stood the day after that Airflow's release (``--exclude-newer``),
   close to what its constraints file pins, and the same on every run.
4. Inside that environment (this file again, command ``installed``), for each distribution:
   every module of the package imports, every third-party import is a declared dependency, each
   dependency is installed at its declared floor; and Airflow finds the provider through its
   entry point.
5. ``airflow db migrate`` on a fresh ``AIRFLOW_HOME``; the emulator starts from the installed
   ``vbrain-emulator`` command, over HTTPS with a self-signed certificate; the tutorial DAG
   runs with ``dag.test()``: it must succeed with the result ``{"value": 200}``.
6. pytest, added to the environment, runs a test that uses the fixtures the emulator
   registers through its ``pytest11`` entry point.

Everything is written under ``build/wheel-test/`` (git-ignored), emptied at each run. To try
another Python: ``uv run --no-project python scripts/wheel_test.py --python 3.12``.
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import dataclasses
import email.message
import email.parser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "wheel-test"
#: Each Airflow release we test as the lowest, with the day after its upload to PyPI:
#: dependencies newer than that are excluded, as its constraints file could not pin them.
AIRFLOW_RELEASED = {"2.10.1": "2024-09-07"}
#: The package files besides its modules; anything else in the package folder is a stray.
PACKAGE_DATA = {"py.typed"}
#: The dist-info files of a wheel.
DIST_INFO_FILES = {"METADATA", "WHEEL", "RECORD", "entry_points.txt", "licenses/LICENSE"}


@dataclasses.dataclass(frozen=True)
class Dist:
    """One distribution this repository builds.

    :param name: its name on PyPI.
    :param package: the one import package its wheel holds.
    :param root: the folder of its ``pyproject.toml``.
    :param entry_points: the entry points users rely on: group -> name -> object reference.
    :param sdist_files: what its sdist holds besides the package: what building the wheel needs.
    """

    name: str
    package: str
    root: Path
    entry_points: dict[str, dict[str, str]]
    sdist_files: frozenset[str]


PROVIDER = Dist(
    "airflow-provider-vbrain",
    "airflow_provider_vbrain",
    ROOT,
    {
        "apache_airflow_provider": {"provider_info": "airflow_provider_vbrain:get_provider_info"},
        "console_scripts": {"vbrain-probe": "airflow_provider_vbrain.probe:main"},
    },
    frozenset({"PKG-INFO", "pyproject.toml", "README.md", "LICENSE", ".gitignore"}),
)
EMULATOR = Dist(
    "vbrain-emulator",
    "vbrain_emulator",
    ROOT / "emulator",
    {
        "pytest11": {"vbrain_emulator": "vbrain_emulator.pytest_plugin"},
        "console_scripts": {"vbrain-emulator": "vbrain_emulator.__main__:main"},
    },
    frozenset({"PKG-INFO", "pyproject.toml", "README.md", "LICENSE", ".gitignore"}),
)
DISTS = {dist.name: dist for dist in (PROVIDER, EMULATOR)}
#: The provider's extra that installs the emulator.
TESTING_EXTRA = "testing"
#: The provider's optional extras, installed at their floors too.
OPTIONAL_EXTRAS = ("openlineage",)
#: Where the package may import a third-party module without declaring it: only in code that
#: just the program providing that module runs. "pytest11" is the plugin module, which pytest
#: alone loads; the form widgets are built only when Airflow's web UI asks the hook for them
#: (Airflow 2, which depends on these; Airflow 3.2+ reads the provider info's conn-fields).
FORM_WIDGETS = ("get_connection_form_widgets", "hook_form_widgets")
HOST_PROVIDED = {
    "pytest": ("pytest11",),
    "flask_appbuilder": FORM_WIDGETS,
    "flask_babel": FORM_WIDGETS,
    "wtforms": FORM_WIDGETS,
    # The OpenLineage facet class: built only when the OpenLineage provider asks for lineage, which
    # brings attrs with it.
    "attrs": ("_facet_class",),
}
#: Modules whose distribution differs from the one users declare: on Airflow 3 the ``airflow``
#: package comes from apache-airflow-core and the task SDK, which apache-airflow brings.
UMBRELLA = {"airflow": "apache-airflow"}
#: Marks the lines the commands run inside the test venv print for the outside to show.
SAID = "wheel-test: "

PLUGIN_TEST = """
from airflow_provider_vbrain.hooks.vbrain import VBrainHook


def test_the_fixtures_serve_the_tutorial(vbrain_emulator_connection):
    hook = VBrainHook(vbrain_emulator_connection)
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, params={"a": 6, "b": 7})
    hook.wait_for_job(job_id, repository_id, poll_interval=0.1)
    assert hook.get_job_result(job_id, repository_id) == {"value": 42}
"""


class Failure(Exception):
    """A check failed; the message says which and why."""


# ---------------------------------------------------------------- outside: build, check, install, run


def main_outside(args: argparse.Namespace) -> int:
    started = time.monotonic()
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        raise Failure("uv not found: run this through `make wheel-test` or `uv run`")
    if args.airflow not in AIRFLOW_RELEASED:
        raise Failure(f"add Airflow {args.airflow}'s PyPI release date to AIRFLOW_RELEASED in {__file__}")
    # A fresh venv each run: compiling all of Airflow's bytecode would cost more than it saves.
    os.environ.pop("UV_COMPILE_BYTECODE", None)
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "tmp").mkdir(parents=True)
    os.environ["TMPDIR"] = str(WORK / "tmp")  # uv's lock files, the emulator's certificate, Airflow's

    built: dict[str, tuple[Path, Path, email.message.Message]] = {}
    for dist in DISTS.values():
        with step(f"{dist.name}: build the sdist, then a wheel from it, and one from the tree; check them"):
            built[dist.name] = build_and_check(uv, dist)
    _, wheel, metadata = built[PROVIDER.name]
    emulator_wheel = built[EMULATOR.name][1]

    with step("the provider's Python and Airflow floors"):
        python = args.python or lowest_python(metadata["Requires-Python"])
        floor = declared_floor(metadata.get_all("Requires-Dist") or [], "apache-airflow")
        if floor != args.airflow:
            raise Failure(
                f"the wheel declares apache-airflow>={floor}, but {args.airflow} is the lowest tested"
            )
        for dist, (_, _, declared) in built.items():
            check_classifiers(dist, declared, python, chosen=bool(args.python))
        extras = {
            direct(r) for r in metadata.get_all("Requires-Dist") or [] if f"extra == '{TESTING_EXTRA}'" in r
        }
        if {re.split(r"[<>=!~ ;]", r)[0] for r in extras} != {EMULATOR.name}:
            raise Failure(f"the extra [{TESTING_EXTRA}] must install {EMULATOR.name} alone, got {extras}")

    venv = WORK / "venv"
    with step(
        f"install the wheel [{TESTING_EXTRA}] on Python {python} beside Airflow {args.airflow}, "
        "dependencies at floors"
    ):
        run([uv, "venv", "--quiet", "--python", find_python(uv, python), venv])
        # The emulator's wheel is named as the testing extra's distribution (it is not on an index);
        # the optional extras' requirements are direct too, so they come at their floors as well.
        requirements = [
            direct(r)
            for _, _, declared in built.values()
            for r in declared.get_all("Requires-Dist") or []
            if not re.search(rf"\bextra\s*==\s*['\"]{TESTING_EXTRA}['\"]", r)
        ]
        install = [uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python"]
        install += ["--exclude-newer", AIRFLOW_RELEASED[args.airflow]]
        wheels = [
            f"{PROVIDER.name}[{','.join((TESTING_EXTRA, *OPTIONAL_EXTRAS))}] @ {wheel.as_uri()}",
            f"{EMULATOR.name} @ {emulator_wheel.as_uri()}",
        ]
        at_floors = ["--resolution", "lowest-direct", *wheels, *requirements]
        run([*install, *at_floors, *line_pins(args.airflow)])
        run([uv, "pip", "check", "--quiet", "--python", venv / "bin" / "python"])

    home = WORK / "airflow-home"
    (home / "dags").mkdir(parents=True)
    shutil.copy(ROOT / "example_dags" / "example_vbrain_tutorial.py", home / "dags")
    env = clean_env(home)
    this = [venv / "bin" / "python", "-I", Path(__file__).resolve()]

    for dist in DISTS.values():
        with step(f"{dist.name}: import every module; imports declared; floors installed"):
            print(said(run([*this, "installed", dist.name], env=env)))

    with step("airflow db migrate on a fresh AIRFLOW_HOME"):
        run([venv / "bin" / "airflow", "db", "migrate"], env=env)

    with step("the tutorial DAG with dag.test() against the emulator (HTTPS) started from its command"):
        with emulator(venv, env) as (url, certificate, log):
            env["AIRFLOW_CONN_VBRAIN_DEFAULT"] = connection(url, certificate)
            print(said(run([*this, "tutorial"], env=env)))
        check_emulator_log(log.read_text(), user_agent(venv))

    with step("pytest finds the emulator's fixtures through its pytest11 entry point"):
        run([*install, "pytest"])
        (WORK / "plugin-test").mkdir()
        (WORK / "plugin-test" / "test_plugin.py").write_text(PLUGIN_TEST)
        # Its own rootdir: pytest would otherwise take this repository's pyproject.toml as its config.
        (WORK / "plugin-test" / "pytest.ini").write_text("[pytest]\n")
        env.pop("AIRFLOW_CONN_VBRAIN_DEFAULT")
        out = run(
            [venv / "bin" / "python", "-I", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plugin.py"],
            env=env,
            cwd=WORK / "plugin-test",
        )
        print(indent(out.strip().splitlines()[-1]))

    names = ", ".join(f"{w.name}, {d.name}" for d, w, _ in built.values())
    print(f"wheel test passed in {time.monotonic() - started:.0f} s ({names})")
    return 0


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    print(f"-- {title}", flush=True)
    started = time.monotonic()
    yield
    print(f"   ok ({time.monotonic() - started:.1f} s)", flush=True)


def run(command: list[Any], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run a command; return its output, or raise with the output when it fails."""
    done = subprocess.run(
        [str(part) for part in command],
        env=env,
        cwd=cwd or WORK,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise Failure(f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout[-6000:]}")
    return done.stdout


def indent(text: str) -> str:
    return textwrap.indent(text.rstrip(), "   ")


def say(line: str) -> None:
    """Print a result line from inside the test venv, for the outside to show among Airflow's logs."""
    print(f"{SAID}{line}", flush=True)


def said(output: str) -> str:
    return indent("\n".join(line[len(SAID) :] for line in output.splitlines() if line.startswith(SAID)))


def wheel_digests(wheel: Path) -> dict[str, str]:
    """Each file of a wheel (RECORD aside) with the SHA-256 of its content."""
    with zipfile.ZipFile(wheel) as archive:
        return {
            name: base64.urlsafe_b64encode(hashlib.sha256(archive.read(name)).digest()).decode()
            for name in archive.namelist()
            if not name.endswith(".dist-info/RECORD")
        }


def build_and_check(uv: str, dist: Dist) -> tuple[Path, Path, email.message.Message]:
    """Build ``dist``'s sdist, its wheel from that sdist, and a wheel from the tree; check what they
    hold. Returns the sdist, the wheel and the wheel's metadata."""
    out = WORK / "dist" / dist.name
    run([uv, "build", "--quiet", "--out-dir", out, dist.root])
    run([uv, "build", "--quiet", "--wheel", "--out-dir", out / "tree", dist.root])
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    (tree_wheel,) = (out / "tree").glob("*.whl")
    if wheel_digests(wheel) != wheel_digests(tree_wheel):
        raise Failure(f"the wheel built from the sdist differs from one built from the tree: {sdist.name}")
    metadata = check_wheel(dist, wheel)
    check_sdist(dist, sdist, metadata["Version"])
    return sdist, wheel, metadata


def source_package_files(dist: Dist) -> set[str]:
    """The package's files in the source tree that belong in a distribution."""
    return {
        path.relative_to(dist.root).as_posix()
        for path in (dist.root / dist.package).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and (path.suffix == ".py" or path.name in PACKAGE_DATA)
    }


def check_wheel(dist: Dist, wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        others = [other.package for other in DISTS.values() if other is not dist]
        if any(name.split("/")[0] in others or "/emulator/" in name for name in names):
            raise Failure(f"the {dist.name} wheel holds another distribution's modules: {sorted(names)}")
        dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        expected = source_package_files(dist) | {f"{dist_info}/{name}" for name in DIST_INFO_FILES}
        compare_files(f"{dist.name} wheel", names, expected)
        if archive.read(f"{dist_info}/licenses/LICENSE") != (ROOT / "LICENSE").read_bytes():
            raise Failure(f"the {dist.name} wheel's LICENSE differs from the repository's")
        metadata = email.parser.BytesParser().parsebytes(archive.read(f"{dist_info}/METADATA"))
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    found = re.findall(r"^(\S+) = (\S+)$", entry_points, re.MULTILINE)
    wanted = [(name, target) for group in dist.entry_points.values() for name, target in group.items()]
    if sorted(found) != sorted(wanted):
        raise Failure(f"the {dist.name} wheel's entry points are {found}, not {wanted}")
    for group, names_to_targets in dist.entry_points.items():
        for name, target in names_to_targets.items():
            if not re.search(
                rf"^\[{re.escape(group)}\]$[^\[]*^{re.escape(name)} = {re.escape(target)}$",
                entry_points,
                re.MULTILINE,
            ):
                raise Failure(f"the {dist.name} wheel lacks the entry point [{group}] {name} = {target}")
    if metadata["License-Expression"] != "Apache-2.0" or metadata.get_all("License-File") != ["LICENSE"]:
        raise Failure(
            f"the {dist.name} wheel's metadata must say License-Expression: Apache-2.0 and "
            "License-File: LICENSE"
        )
    return metadata


def check_sdist(dist: Dist, sdist: Path, version: str) -> None:
    top = f"{dist.package}-{version}"
    with tarfile.open(sdist) as archive:
        members = archive.getmembers()
        names = {m.name for m in members if m.isfile()}
        if any(not (m.isfile() or m.isdir()) for m in members):
            raise Failure(f"the {dist.name} sdist holds links or special files")
        license_file = archive.extractfile(f"{top}/LICENSE")
        assert license_file is not None
        if license_file.read() != (ROOT / "LICENSE").read_bytes():
            raise Failure(f"the {dist.name} sdist's LICENSE differs from the repository's")
    expected = {f"{top}/{name}" for name in source_package_files(dist) | dist.sdist_files}
    compare_files(f"{dist.name} sdist", names, expected)


def compare_files(what: str, found: set[str], expected: set[str]) -> None:
    missing, stray = sorted(expected - found), sorted(found - expected)
    if missing or stray:
        raise Failure(f"the {what} is missing {missing or 'nothing'} and has stray files {stray or 'none'}")


def check_classifiers(dist: str, metadata: email.message.Message, python: str, chosen: bool) -> None:
    """Typed, no license classifier, and the Python tested here among the classifiers, unless
    it was ``chosen`` on the command line to try a version not claimed yet."""
    classifiers = set(metadata.get_all("Classifier") or [])
    if "Typing :: Typed" not in classifiers:
        raise Failure(f"the {dist} wheel ships py.typed but lacks the Typing :: Typed classifier")
    if f"Programming Language :: Python :: {python}" not in classifiers and not chosen:
        raise Failure(f"Python {python} is tested here but not among the {dist} classifiers")
    # PEP 639: License-Expression supersedes license classifiers; setuptools even refuses both.
    if any(c.startswith("License ::") for c in classifiers):
        raise Failure(f"drop the {dist} License :: classifier: the License-Expression states the license")


def declared_floor(requirements: list[str], name: str) -> str | None:
    for requirement in requirements:
        match = re.match(rf"{re.escape(name)}\s*[^;]*?>=\s*([\w.]+)", requirement, re.IGNORECASE)
        if match:
            return match.group(1)
    return None


def direct(requirement: str) -> str:
    """A Requires-Dist line as a top-level requirement: its ``extra == ...`` condition dropped."""
    spec, _, marker = requirement.partition(";")
    marker = re.sub(r"""\(?\s*extra\s*==\s*['"][^'"]*['"]\s*\)?""", " ", marker)
    marker = re.sub(r"\band\s+and\b", "and", marker.strip())
    marker = re.sub(r"^and\b|\band$", "", marker).strip()
    return f"{spec.strip()}; {marker}" if marker else spec.strip()


def lowest_python(requires_python: str) -> str:
    match = re.fullmatch(r">=\s*(3\.\d+)(\.\d+)?", requires_python.strip())
    if not match:
        raise Failure(f"cannot tell the lowest Python from Requires-Python {requires_python!r}")
    return match.group(1)


def find_python(uv: str, version: str) -> str:
    """An interpreter for ``version``: one uv finds, else one pyenv installed, else uv's request."""
    found = subprocess.run(
        [uv, "python", "find", "--no-python-downloads", version], capture_output=True, text=True, check=False
    )
    if found.returncode == 0:
        return found.stdout.strip()
    # pyenv's shims answer only for its selected versions, so uv may not see the others.
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [
        p
        for p in (pyenv_root / "versions").glob(f"{version}.*/bin/python{version}")
        if re.fullmatch(rf"{re.escape(version)}\.\d+", p.parents[1].name)
    ]
    if candidates:
        return str(max(candidates, key=lambda p: int(p.parents[1].name.rsplit(".", 1)[1])))
    return version  # uv venv finds or downloads it, or says why it cannot


def clean_env(home: Path) -> dict[str, str]:
    """The environment for everything run in the test venv: no Airflow settings or Python paths
    inherited, and a fresh AIRFLOW_HOME (TMPDIR already points into the work folder)."""
    skip = ("AIRFLOW", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "UV_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    return env


@contextlib.contextmanager
def emulator(venv: Path, env: dict[str, str]) -> Iterator[tuple[str, str, Path]]:
    """The emulator from the wheel's console script, on a free port, over HTTPS."""
    log = WORK / "emulator.log"
    with log.open("w") as errors:
        process = subprocess.Popen(
            [str(venv / "bin" / "vbrain-emulator"), "--port", "0", "--tls-self-signed"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            cwd=WORK,
        )
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        url = re.search(r"listening on (https://\S+)", first)
        certificate = re.search(r"certificate with: (\S+)", second)
        if not (url and certificate):
            raise Failure(f"the emulator did not start: {first!r} {second!r}\n{log.read_text()}")
        yield url.group(1), certificate.group(1), log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def connection(url: str, certificate: str) -> str:
    extra = {
        "organization_id": "acme",
        "client_id": "ops",
        "application_id": "Tutorial",
        "verify": certificate,
    }
    return json.dumps(
        {"conn_type": "vbrain", "host": url, "login": "ana", "password": "wheel-test-key", "extra": extra}
    )


def user_agent(venv: Path) -> str:
    """The User-Agent the installed provider must send: its version, Airflow's and Python's, read
    from the venv (not from the provider)."""
    code = (
        "import importlib.metadata as m, platform; "
        "print(f\"airflow-provider-vbrain/{m.version('airflow-provider-vbrain')} "
        "Airflow/{m.version('apache-airflow')} Python/{platform.python_version()}\")"
    )
    return run([venv / "bin" / "python", "-I", "-c", code]).strip()


#: One line of aiohttp's access log, as the emulator writes it: '%a %t "%r" %s %b "%{Referer}i"
#: "%{User-Agent}i"'.
ACCESS_LINE = re.compile(
    r'^\S+ \[[^\]]*\] "(?P<method>\S+) (?P<path>\S+)[^"]*" (?P<status>\d{3}) \S+ "[^"]*" "(?P<agent>[^"]*)"$'
)


def check_emulator_log(log: str, agent: str) -> None:
    """The tutorial made the repository and the job, polled it and cleaned up, and every API request
    of both hooks (the sync hook's creates, the trigger's polls) carried our User-Agent."""
    served = [match.groupdict() for line in log.splitlines() if (match := ACCESS_LINE.match(line))]
    api = [entry for entry in served if entry["path"].startswith("/api/v1/")]
    wanted = [
        "POST /api/v1/repository",
        "POST /api/v1/job/execute",
        "GET /api/v1/job/",
        "DELETE /api/v1/repository",
    ]
    for request in wanted:
        method, path = request.split(" ")
        if not any(
            e["method"] == method and e["path"].startswith(path) and e["status"][0] == "2" for e in api
        ):
            raise Failure(f"the emulator saw no successful {request}: the log:\n{log[-3000:]}")
    others = sorted({e["agent"] for e in api if e["agent"] != agent})
    if others:
        raise Failure(
            f"API requests came without the User-Agent {agent!r}, with {others}: the log:\n{log[-3000:]}"
        )
    print(indent(f"all {len(api)} API requests carried the User-Agent {agent}"))


# ---------------------------------------------------------------- inside the test venv


def main_installed(distribution: str) -> int:
    """Imports, declared dependencies and installed floors of ``distribution``; for the provider,
    its registration with Airflow too."""
    import importlib
    import importlib.metadata
    import pkgutil
    import sysconfig
    import warnings

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    dist = DISTS[distribution]
    package = importlib.import_module(dist.package)
    location = Path(package.__file__ or "").resolve()
    if Path(sysconfig.get_paths()["purelib"]).resolve() not in location.parents:
        raise Failure(
            f"{dist.package} was imported from {location}, not from the wheel installed in {sys.prefix}"
        )
    plugin = entry_point_module(dist, "pytest11")

    imported = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for module in pkgutil.walk_packages(package.__path__, f"{dist.package}."):
            try:
                importlib.import_module(module.name)
            except ModuleNotFoundError as err:
                if not (module.name == plugin and err.name == "pytest"):
                    raise
                continue  # the plugin runs inside pytest only: the last step loads it there
            imported.append(module.name)
    ours = [w for w in caught if Path(w.filename).resolve().is_relative_to(location.parent)]
    if ours:
        raise Failure("importing the package warned:\n" + "\n".join(str(w.message) for w in ours))
    by_pytest = f" ({plugin} is imported by pytest, last step)" if plugin else ""
    say(f"imported {len(imported)} modules of {dist.package}{by_pytest}")

    # What the package imports must be a dependency of its own, not of an optional extra; the
    # extras' floors are checked with the others (the testing extra's emulator is checked as itself).
    every = list(map(Requirement, importlib.metadata.requires(distribution) or []))
    declared = {str(canonicalize_name(r.name)) for r in every if not (r.marker and "extra" in str(r.marker))}
    check_imports(dist.package, location.parent, declared, plugin)

    def applies(requirement: Requirement) -> bool:  # here: this Python, the optional extras
        marker = requirement.marker
        return marker is None or any(marker.evaluate({"extra": extra}) for extra in ("", *OPTIONAL_EXTRAS))

    requirements = [r for r in every if applies(r)]
    for requirement in requirements:
        floors = [s.version for s in requirement.specifier if s.operator in (">=", "==", "~=")]
        if not floors:
            raise Failure(f"{requirement} declares no floor")
        installed = importlib.metadata.version(requirement.name)
        if Version(installed) != Version(max(floors, key=Version)):
            raise Failure(
                f"{requirement.name} {installed} is installed, not its declared floor {requirement}"
            )
    say(
        "installed at their floors: "
        + ", ".join(f"{r.name} {importlib.metadata.version(r.name)}" for r in requirements)
    )
    if dist is not PROVIDER:
        return 0

    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    if distribution not in manager.providers:
        raise Failure(f"Airflow does not list {distribution} among its providers")
    hook = manager.hooks.get("vbrain")
    if hook is None or hook.hook_class_name != f"{dist.package}.hooks.vbrain.VBrainHook":
        raise Failure(f"Airflow has no working hook for connection type vbrain: {hook}")
    say(
        f"Airflow lists provider {distribution} {manager.providers[distribution].version} "
        f"and connection type vbrain"
    )
    return 0


def entry_point_module(dist: Dist, group: str) -> str | None:
    """The module ``dist``'s entry point of ``group`` names, if it has one."""
    target = next(iter(dist.entry_points.get(group, {}).values()), None)
    return None if target is None else target.split(":")[0]


def check_imports(package: str, package_dir: Path, declared: set[str], plugin: str | None) -> None:
    """Every module the package imports at run time is in the standard library, the package
    itself, a declared dependency, or provided by the only program that runs that code."""
    import importlib.metadata

    from packaging.utils import canonicalize_name

    providers = importlib.metadata.packages_distributions()
    problems, seen = [], set()
    for path in sorted(package_dir.rglob("*.py")):
        module = ".".join(path.relative_to(package_dir.parent).with_suffix("").parts)
        for name, function in runtime_imports(ast.parse(path.read_text(), str(path))):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == package:
                continue
            seen.add(top)
            where = f"{module}.{function}()" if function else module
            if top in HOST_PROVIDED:
                allowed = HOST_PROVIDED[top]
                if not (module == plugin if allowed == ("pytest11",) else function in allowed):
                    problems.append(f"{where} imports {top}, which it may only in {', '.join(allowed)}")
                continue
            dists = {canonicalize_name(d) for d in providers.get(top, [])}
            if top in UMBRELLA:
                dists.add(canonicalize_name(UMBRELLA[top]))
            if not dists & declared:
                problems.append(
                    f"{where} imports {top} (from {sorted(dists) or 'nothing installed'}), "
                    f"which the wheel does not declare"
                )
    unused = declared - {canonicalize_name(d) for top in seen for d in providers.get(top, [])}
    unused -= {canonicalize_name(UMBRELLA[top]) for top in seen if top in UMBRELLA}
    problems += [f"{name} is declared but never imported" for name in sorted(unused)]
    if problems:
        raise Failure("dependencies:\n" + "\n".join(problems))
    say(
        "third-party imports, all declared: "
        + ", ".join(sorted(seen - set(HOST_PROVIDED)))
        + "; provided by their callers: "
        + ", ".join(sorted(seen & set(HOST_PROVIDED)))
    )


def runtime_imports(tree: ast.Module) -> Iterator[tuple[str, str | None]]:
    """(module, enclosing function or None) for each absolute import outside ``if TYPE_CHECKING:``."""

    def visit(node: ast.AST, function: str | None) -> Iterator[tuple[str, str | None]]:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.orelse:
                yield from visit(statement, function)
            return
        if isinstance(node, ast.Import):
            yield from ((alias.name, function) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, function
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        for child in ast.iter_child_nodes(node):
            yield from visit(child, function)

    yield from visit(tree, None)


def main_tutorial() -> int:
    """Run the tutorial DAG with dag.test(); check its state, its result and its clean-up."""
    from airflow.models import DagBag

    from airflow_provider_vbrain.hooks.vbrain import VBrainHook

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])  # examples are off in the env
    if bag.import_errors:
        raise Failure(f"the tutorial DAG does not load: {bag.import_errors}")
    dag = bag.get_dag("example_vbrain_tutorial")
    dag_run = dag.test()
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    if str(getattr(dag_run.state, "value", dag_run.state)) != "success":
        raise Failure(f"the tutorial run ended {dag_run.state}: {states}")
    result = xcom(dag_run, "report")
    if result != {"value": 200}:
        raise Failure(f"the tutorial's result is {result!r}, not {{'value': 200}}")
    left = VBrainHook().list_repositories()
    if left:
        raise Failure(f"the tutorial left repositories behind: {left}")
    say(f"tutorial run succeeded ({', '.join(f'{t} {s}' for t, s in states.items())}); result {result}")
    return 0


def xcom(dag_run: Any, task_id: str) -> Any:
    ids = {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "task_id": task_id, "key": "return_value"}
    try:
        from airflow.models.xcom import XComModel  # Airflow 3
    except ImportError:
        from airflow.models.xcom import XCom

        return XCom.get_one(**ids)
    from airflow.utils.session import create_session

    with create_session() as session:
        return XComModel.deserialize_value(session.query(XComModel).filter_by(**ids).one())


# ---------------------------------------------------------------- command line


def _lines() -> Any:
    """scripts/airflow_lines.py's lines, loaded by path: this script also runs isolated (``-I``) in
    the test environment, where its own folder is not on ``sys.path``."""
    import importlib.util

    path = Path(__file__).with_name("airflow_lines.py")
    spec = importlib.util.spec_from_file_location("airflow_lines", path)
    if spec is None or spec.loader is None:
        raise Failure(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("airflow_lines", module)  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module.LINES


def lowest_airflow() -> str:
    """The lowest Airflow the project is verified on (the first of scripts/airflow_lines.py's lines)."""
    return _lines()[0].airflow


def line_pins(airflow: str) -> list[str]:
    """The pins the Airflow line of ``airflow`` is installed with (scripts/airflow_lines.py keeps them)."""
    (line,) = (line for line in _lines() if line.airflow == airflow)
    return list(line.pins)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="all",
        choices=["all", "installed", "tutorial"],
        help="'all' (the default) runs everything; the others run inside the test venv",
    )
    parser.add_argument("distribution", nargs="?", help="for 'installed': the distribution name")
    parser.add_argument(
        "--airflow", default=lowest_airflow(), help="the lowest Airflow, which the wheel must declare"
    )
    parser.add_argument("--python", help="the Python version (default: the lowest Requires-Python admits)")
    args = parser.parse_args()
    try:
        if args.command == "installed":
            return main_installed(args.distribution)
        if args.command == "tutorial":
            return main_tutorial()
        return main_outside(args)
    except Failure as err:
        print(f"wheel test FAILED: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
