"""What the benchmarks share: paths, machine facts, CPU pinning, child processes, a test certificate."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
DOCS = REPO / "docs"
#: Cores for the client under test and for the emulator, when the machine has two or more.
CLIENT_CORE = 0
SERVER_CORE = 1


def pinned(command: Sequence[str], core: int) -> list[str]:
    """``command`` run on one core with ``taskset`` when it exists and the core does."""
    taskset = shutil.which("taskset")
    if taskset is None or (os.cpu_count() or 1) <= core:
        return list(command)
    return [taskset, "-c", str(core), *command]


def pinning_available() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) > SERVER_CORE


def python(script: str, *args: str) -> list[str]:
    """A command running one of the benchmark scripts with this interpreter."""
    return [sys.executable, str(BENCH_DIR / script), *args]


def airflow_env(home: str | Path, **extra: str) -> dict[str, str]:
    """The environment of a child that imports Airflow: a throwaway home, no examples."""
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(Path(home) / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH", "")])),
        }
    )
    env.update(extra)
    return env


def machine_facts() -> dict[str, Any]:
    """CPU model, cores, memory, Python and the versions of what is measured."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory_gb = round(pages * page_size / 1024**3, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {
            name: installed(name)
            for name in (
                "apache-airflow",
                "apache-airflow-core",
                "apache-airflow-providers-http",
                "airflow-provider-vbrain",
                "aiohttp",
                "requests",
            )
        },
        "taskset_pinning": pinning_available(),
    }


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (it is its own CA); (cert, key) paths."""
    from vbrain_emulator.tls import self_signed_certificate

    return self_signed_certificate(folder, common_name="vbrain-bench")


#: Where temp_dir() makes its folders: the system's temporary directory until run.py points it at
#: one folder per run (removed after a clean run).
TEMP_ROOT: Path | None = None


def temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=TEMP_ROOT))


def run_json(command: Sequence[str], env: Mapping[str, str], timeout: float, log: Path) -> dict[str, Any]:
    """Run a child that prints one JSON object as its last stdout line; its stderr goes to ``log``."""
    with log.open("ab") as err:
        done = subprocess.run(
            list(command), env=dict(env), stdout=subprocess.PIPE, stderr=err, timeout=timeout, check=False
        )
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{command[-1]!r} exited {done.returncode}; stderr tail:\n{tail}")
    return json.loads(lines[-1])


def run_results(
    command: Sequence[str], env: Mapping[str, str], timeout: float, log: Path
) -> list[dict[str, Any]]:
    """Run a client child that prints ``RESULT {json}`` lines; return their objects. Its stderr goes
    to ``log``, whose tail a failure quotes."""
    with log.open("ab") as err:
        done = subprocess.run(
            list(command), env=dict(env), stdout=subprocess.PIPE, stderr=err, timeout=timeout, check=False
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        script = next((part for part in command if part.endswith(".py")), command[0])
        raise RuntimeError(f"the {script} client exited {done.returncode}; stderr tail:\n{tail}")
    return [json.loads(x[7:]) for x in done.stdout.decode().splitlines() if x.startswith("RESULT {")]


@contextlib.contextmanager
def bench_server(log: Path, home: Path, *args: str, tls: bool = False) -> Iterator[str]:
    """Run the benchmark emulator (``_server.py``) pinned to its core; yield its base URL; stop it after."""
    server = subprocess.Popen(
        pinned(python("_server.py", *args), SERVER_CORE),
        env=airflow_env(home),
        stdout=subprocess.PIPE,
        stderr=log.open("ab"),
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the benchmark emulator did not start; see {log}")
        yield f"{'https' if tls else 'http'}://127.0.0.1:{int(line.split()[1])}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def control(
    url: str, path: str, body: Any = None, method: str | None = None, cafile: str | None = None
) -> Any:
    """Call the bench server's control API (``/_emulator/...``, ``/_bench/...``): its JSON answer."""
    import ssl

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, method=method or ("GET" if data is None else "POST")
    )
    request.add_header("content-type", "application/json")
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    with urllib.request.urlopen(request, timeout=300, context=context) as answer:
        return json.loads(answer.read())


def create_jobs(
    url: str, spec: Mapping[str, Any], queue_seconds: float, seed: int, cafile: str | None = None
) -> Any:
    """Have the bench server create ``spec["n"]`` jobs lasting ``min_seconds`` to ``max_seconds`` (drawn
    from ``seed``) in a new repository: ``{"repository_id": ..., "jobs": [...]}``."""
    body = {
        "n": spec["n"],
        "min_seconds": spec["min_seconds"],
        "max_seconds": spec["max_seconds"],
        "queue_seconds": queue_seconds,
        "seed": seed,
    }
    return control(url, "/_bench/jobs", body, cafile=cafile)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile of ``values`` (the nearest rank); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]
