"""``make smoke``: the example DAGs on a real, distributed Airflow 3 deployment.

PostgreSQL as the metadata database, Redis as the Celery broker, and Airflow's
own processes (API server, scheduler, DAG processor, triggerer, one Celery
worker), plus the VBrain emulator, all on this machine. Every example DAG is
triggered through the CLI; the run passes when each DAG run succeeds and the
deferrable tasks really went through the triggerer. Everything started is
stopped by process group and checked gone, also when something fails.

PostgreSQL and Redis are installed from Debian packages when missing (as root).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".smoke"
EXAMPLES = ["example_vbrain_tutorial", "example_vbrain_files", "example_vbrain_mapped"]
DEFERRED_TASKS = {  # tasks that must have waited on the triggerer
    "example_vbrain_tutorial": ["wait_for_job"],
    "example_vbrain_files": ["summarise_sales"],
    "example_vbrain_mapped": ["wait_for_scenario"],
}
RUN_TIMEOUT = 300
LEFT_BEHIND: list[str] = []


def log(message: str) -> None:
    print(f"[smoke {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_packages() -> None:
    """PostgreSQL and Redis servers, from Debian's packages when missing."""
    missing = []
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        missing.append("postgresql")
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    if not missing:
        return
    log(f"installing {', '.join(missing)} from Debian packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


class Processes:
    """Children started in their own process groups, stopped together."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        out = (WORK / "logs" / f"{name}.log").open("wb")
        process = subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.started.append((name, process))
        log(f"started {name} (pid {process.pid})")
        return process

    def check_alive(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited early with code {process.returncode}; see {WORK}/logs/{name}.log"
                )

    def stop_all(self) -> list[str]:
        """Stop every group (newest first): SIGTERM, then SIGKILL what is left; return what survived."""
        for name, process in reversed(self.started):
            # PostgreSQL's SIGTERM waits for clients; SIGINT is its fast shutdown.
            _signal_group(process.pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
        groups = [process.pid for _, process in self.started]
        if not _wait_gone(groups, 30):
            for pgid in groups:
                _signal_group(pgid, signal.SIGKILL)
            _wait_gone(groups, 10)
        for _, process in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)
        return [f"{name} (group {p.pid})" for name, p in self.started if _group_members(p.pid)]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, read from /proc."""
    members = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(Path(stat).parent.name))
    return members


def _wait_gone(groups: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_group_members(pgid) for pgid in groups):
            return True
        time.sleep(0.25)
    return False


def wait_for(what: str, check: object, timeout: float, procs: Processes) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        with contextlib.suppress(Exception):
            if check():  # type: ignore[operator]
                return
        time.sleep(1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


def start_postgres(procs: Processes) -> int:
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]
    bindir = Path(initdb).parent
    data = WORK / "postgres"
    data.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    procs.start(
        "postgres",
        [
            *run_as,
            str(bindir / "postgres"),
            *("-D", str(data), "-p", str(port), "-k", str(data)),
            *("-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "fsync=off"),
        ],
    )

    def ready() -> bool:
        return (
            subprocess.run(
                ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", "select 1"],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )

    wait_for("PostgreSQL", ready, 60, procs)
    for sql in ("CREATE USER airflow PASSWORD 'airflow'", "CREATE DATABASE airflow OWNER airflow"):
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-q", "-c", sql],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return port


def start_redis(procs: Processes) -> int:
    port = free_port()
    procs.start(
        "redis",
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    )

    def ready() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    wait_for("Redis", ready, 30, procs)
    return port


def start_emulator(procs: Processes) -> str:
    port = free_port()
    # Jobs long enough (5 s queued, 15 s running) that every wait outlasts Celery's scheduling delay.
    procs.start(
        "emulator",
        [
            *(sys.executable, "-m", "airflow_provider_vbrain.emulator", "--port", str(port)),
            *("--queue-seconds", "5", "--run-seconds", "15"),
        ],
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(
        "emulator",
        lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None,
        30,
        procs,
    )
    return url


def airflow_env(pg_port: int, redis_port: int, api_port: int, emulator_url: str) -> dict[str, str]:
    database = f"airflow:airflow@127.0.0.1:{pg_port}/airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(WORK / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "example_dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CORE__PARALLELISM="8",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__FERNET_KEY="",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"postgresql+psycopg2://{database}",
        AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:{redis_port}/0",
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+postgresql+psycopg2://{database}",
        AIRFLOW__CELERY__WORKER_CONCURRENCY="4",
        AIRFLOW__API__PORT=str(api_port),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
        AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
        AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="5",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW_CONN_VBRAIN_DEFAULT=json.dumps(
            {
                "conn_type": "vbrain",
                "host": emulator_url,
                "login": "smoke",
                "password": "smoke-" + secrets.token_hex(8),
                "extra": {"organization_id": "smoke-org", "client_id": "smoke", "application_id": "Tutorial"},
            }
        ),
    )
    return env


def airflow(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def psql(pg_port: int, sql: str) -> list[list[str]]:
    connect = ("-h", "127.0.0.1", "-p", str(pg_port), "-U", "airflow", "-d", "airflow")
    out = subprocess.run(
        ["psql", *connect, "-A", "-t", "-F", "\t", "-c", sql],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


@contextlib.contextmanager
def deployment() -> Iterator[tuple[dict[str, str], int, Processes]]:
    procs = Processes()
    try:
        pg_port = start_postgres(procs)
        redis_port = start_redis(procs)
        emulator_url = start_emulator(procs)
        api_port = free_port()
        env = airflow_env(pg_port, redis_port, api_port, emulator_url)
        log("migrating the metadata database")
        airflow(env, "db", "migrate")
        procs.start("api-server", [sys.executable, "-m", "airflow", "api-server"], env)
        procs.start("scheduler", [sys.executable, "-m", "airflow", "scheduler"], env)
        procs.start("dag-processor", [sys.executable, "-m", "airflow", "dag-processor"], env)
        procs.start("triggerer", [sys.executable, "-m", "airflow", "triggerer"], env)
        procs.start("celery-worker", [sys.executable, "-m", "airflow", "celery", "worker"], env)

        def healthy() -> bool:
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", timeout=5) as r:
                body = json.load(r)
            return all(body[c]["status"] == "healthy" for c in ("metadatabase", "scheduler", "triggerer"))

        wait_for("Airflow API server, scheduler and triggerer", healthy, 180, procs)
        yield env, pg_port, procs
    finally:
        survivors = procs.stop_all()
        if survivors:
            LEFT_BEHIND.extend(survivors)
            log(f"processes left behind: {', '.join(survivors)}")
        else:
            log("stopped every process it started")


def run_examples(env: dict[str, str], pg_port: int, procs: Processes) -> None:
    wait_for(
        "the example DAGs to be parsed",
        lambda: (
            len(psql(pg_port, "SELECT dag_id FROM dag WHERE dag_id LIKE 'example_vbrain_%'")) == len(EXAMPLES)
        ),
        180,
        procs,
    )
    conf = {"example_vbrain_files": {"output_location": f"{WORK}/output/"}}
    for dag_id in EXAMPLES:
        airflow(env, "dags", "trigger", dag_id, "--conf", json.dumps(conf.get(dag_id, {})))
        log(f"triggered {dag_id}")

    def finished() -> bool:
        rows = psql(pg_port, "SELECT dag_id, state FROM dag_run WHERE dag_id LIKE 'example_vbrain_%'")
        return len(rows) == len(EXAMPLES) and all(state in ("success", "failed") for _, state in rows)

    wait_for("the DAG runs to finish", finished, RUN_TIMEOUT, procs)
    states = dict(psql(pg_port, "SELECT dag_id, state FROM dag_run WHERE dag_id LIKE 'example_vbrain_%'"))
    log(f"DAG run states: {states}")
    failed = [dag_id for dag_id, state in states.items() if state != "success"]
    if failed:
        raise AssertionError(f"DAG runs failed: {failed}; task logs under {WORK}/airflow/logs")

    logs = WORK / "airflow" / "logs"
    for dag_id, tasks in DEFERRED_TASKS.items():
        for task_id in tasks:
            files = [p for p in logs.glob(f"dag_id={dag_id}/**/task_id={task_id}/**/*") if p.is_file()]
            text = "\n".join(p.read_text(errors="replace") for p in files)
            # Airflow writes a trigger's log lines (logger VBrainJobTrigger) beside the task's logs
            # only when the triggerer ran it: the task really deferred.
            if not re.search(r"VBrain job \S+ is finished", text) or "VBrainJobTrigger" not in text:
                raise AssertionError(f"{dag_id}.{task_id}: no sign in its task log that the triggerer waited")
    log("every example DAG succeeded, and the waits went through the triggerer")


def main() -> int:
    if WORK.exists():
        shutil.rmtree(WORK)
    (WORK / "logs").mkdir(parents=True)
    ensure_packages()
    started = time.monotonic()
    try:
        with deployment() as (env, pg_port, procs):
            run_examples(env, pg_port, procs)
    except Exception as err:
        log(f"FAILED: {err}")
        for name in ("scheduler", "triggerer", "celery-worker", "api-server", "dag-processor"):
            path = WORK / "logs" / f"{name}.log"
            if path.exists():
                print(f"--- last lines of {name}.log ---")
                print("\n".join(path.read_text(errors="replace").splitlines()[-25:]))
        log(f"logs kept in {WORK}")
        return 1
    if LEFT_BEHIND:
        return 1
    log(f"passed in {time.monotonic() - started:.0f} s")
    shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
