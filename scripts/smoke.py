"""``make smoke``: the example DAGs on a real, distributed Airflow 3 deployment, then a kill pass.

PostgreSQL as the metadata database, Redis as the Celery broker, and Airflow's
own processes (API server, scheduler, DAG processor, two triggerers, one Celery
worker), plus the VBrain emulator, all on this machine. Every example DAG is
triggered through the CLI; they pass when each DAG run succeeds and the
deferrable tasks really went through a triggerer.

Then the kill pass (DAGs in scripts/smoke_dags/): the Celery worker is SIGKILLed
(its whole process tree) while it runs two tasks, one whose job was created and
whose answer is held back, one that recorded its job in Airflow's task state
store and waits on it on a second emulator whose job status echoes no metadata;
a new worker is started; the triggerer holding a deferred sensor's trigger is
SIGKILLed. Every DAG run must succeed, the killed tasks must be retried and
reattach to their jobs (the second through the store, listing nothing), the
other triggerer must take the trigger over, and the emulators must hold exactly
one job per execute task (counted by the jobs' "airflow" metadata tag).

Everything started is stopped by process group (every group of its process
tree) and checked gone, also when something fails. PostgreSQL and Redis are
installed from Debian packages when missing (as root).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
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
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".smoke"
DAG_FOLDERS = [ROOT / "example_dags", ROOT / "scripts" / "smoke_dags"]
EXAMPLES = ["example_vbrain_tutorial", "example_vbrain_files", "example_vbrain_mapped"]
KILL_DAGS = ["smoke_kill_worker", "smoke_kill_triggerer", "smoke_kill_store"]
#: The kill pass's DAG whose VBrain (a second emulator) echoes no metadata in job status answers.
NO_ECHO_DAG = "smoke_kill_store"
EXECUTE_OPERATOR = "VBrainExecuteJobOperator"
DEFERRED_TASKS = {  # tasks that must have waited on the triggerer
    "example_vbrain_tutorial": ["wait_for_job"],
    "example_vbrain_files": ["summarise_sales"],
    "example_vbrain_mapped": ["wait_for_scenario"],
}
RUN_TIMEOUT = 300
#: A task whose worker died is noticed after this many seconds without a heartbeat (Airflow: 300).
TASK_HEARTBEAT_TIMEOUT = 30
#: A triggerer silent this long loses its triggers to the others (Airflow: 30); it beats every 2 s here.
TRIGGERER_HEALTH_THRESHOLD = 10
#: The kill pass's jobs: long enough that the triggerer dies while its trigger still waits.
KILL_PASS_JOBS = {"queue_seconds": 5, "run_seconds": 40}
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
        self.killed: set[str] = set()  # killed on purpose: not expected to be alive

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
            if name not in self.killed and process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited early with code {process.returncode}; see {WORK}/logs/{name}.log"
                )

    def kill(self, name: str) -> int:
        """SIGKILL a child's whole process tree at once, as a machine that dies would; return how many died.

        Airflow's task supervisor puts each task in a process group of its own, so the child's
        group alone would leave the task running: every group of the tree is killed.
        """
        (process,) = [p for n, p in self.started if n == name]
        self.killed.add(name)
        groups = _tree_groups(process.pid)
        members = {pid for pgid in groups for pid in _group_members(pgid)}
        for pgid in groups:
            _signal_group(pgid, signal.SIGKILL)
        if not _wait_gone(sorted(groups), 10):
            raise RuntimeError(f"{name}: processes survived SIGKILL")
        process.wait(timeout=5)
        return len(members)

    def stop_all(self) -> list[str]:
        """Stop every group of every child's tree (newest first): SIGTERM, then SIGKILL what is left;
        return what survived."""
        trees = [(name, process, _tree_groups(process.pid)) for name, process in self.started]
        for name, _, groups in reversed(trees):
            for pgid in groups:
                # PostgreSQL's SIGTERM waits for clients; SIGINT is its fast shutdown.
                _signal_group(pgid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
        every = sorted({pgid for _, _, groups in trees for pgid in groups})
        if not _wait_gone(every, 30):
            for pgid in every:
                _signal_group(pgid, signal.SIGKILL)
            _wait_gone(every, 10)
        for _, process in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)
        return [
            f"{name} (group {pgid})" for name, _, groups in trees for pgid in groups if _group_members(pgid)
        ]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _processes() -> list[tuple[int, int, int]]:
    """``(pid, parent pid, process group)`` of every live (not zombie) process, read from /proc."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                found.append((int(Path(stat).parent.name), int(fields[1]), int(fields[2])))
    return found


def _group_members(pgid: int) -> list[int]:
    """Live processes of a process group."""
    return [pid for pid, _, group in _processes() if group == pgid]


def _tree_groups(root: int) -> set[int]:
    """The process groups of ``root`` (a group leader) and of every live descendant."""
    table = _processes()
    tree, groups = {root}, {root}
    grew = True
    while grew:
        grew = False
        for pid, parent, group in table:
            if parent in tree and pid not in tree:
                tree.add(pid)
                groups.add(group)
                grew = True
    return groups


def _wait_gone(groups: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_group_members(pgid) for pgid in groups):
            return True
        time.sleep(0.25)
    return False


def wait_for(what: str, check: Callable[[], T], timeout: float, procs: Processes, every: float = 1) -> T:
    """Call ``check`` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        with contextlib.suppress(Exception):
            if value := check():
                return value
        time.sleep(every)
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


def start_emulator(procs: Processes, name: str = "emulator", *profile: str) -> str:
    port = free_port()
    # Jobs long enough (5 s queued, 15 s running) that every wait outlasts Celery's scheduling delay.
    # The control API lets the kill pass hold an answer back and count every job created.
    procs.start(
        name,
        [
            *(sys.executable, "-m", "vbrain_emulator", "--port", str(port), "--control"),
            *("--queue-seconds", "5", "--run-seconds", "15", *profile),
        ],
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(
        name,
        lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None,
        30,
        procs,
    )
    return url


def dags_folder() -> Path:
    """One DAG folder for Airflow: the examples and the kill pass's DAGs, linked."""
    folder = WORK / "dags"
    folder.mkdir()
    for source in DAG_FOLDERS:
        for path in sorted(source.glob("*.py")):
            (folder / path.name).symlink_to(path)
    return folder


def vbrain_connection(url: str) -> str:
    return json.dumps(
        {
            "conn_type": "vbrain",
            "host": url,
            "login": "smoke",
            "password": "smoke-" + secrets.token_hex(8),
            "extra": {"organization_id": "smoke-org", "client_id": "smoke", "application_id": "Tutorial"},
        }
    )


def airflow_env(
    pg_port: int, redis_port: int, api_port: int, emulator_url: str, no_echo_url: str
) -> dict[str, str]:
    database = f"airflow:airflow@127.0.0.1:{pg_port}/airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(WORK / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder()),
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
        # A worker killed with its tasks cannot say so: the scheduler notices a running task whose
        # supervisor stopped heartbeating (every 5 s) after this timeout, checked every 2 s, and
        # fails that try, which Airflow then retries. Celery plays no part: with acks_late the dead
        # worker's message stays unacknowledged in Redis, redelivered only after the broker's
        # visibility_timeout (a day, as Airflow sets it), by when the task was long retried.
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT=str(TASK_HEARTBEAT_TIMEOUT),
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="2",
        # A triggerer's triggers move to another once its last heartbeat is older than this.
        AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC="2",
        AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD=str(TRIGGERER_HEALTH_THRESHOLD),
        AIRFLOW_CONN_VBRAIN_DEFAULT=vbrain_connection(emulator_url),
        AIRFLOW_CONN_VBRAIN_NOECHO=vbrain_connection(no_echo_url),
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


@dataclasses.dataclass
class Cluster:
    """What the runs need of the deployment."""

    env: dict[str, str]
    pg_port: int
    redis_port: int
    emulator_url: str
    no_echo_url: str
    procs: Processes
    #: Each triggerer's job id (its row in Airflow's job table) to its process name.
    triggerers: dict[str, str] = dataclasses.field(default_factory=dict)

    def sql(self, query: str) -> list[list[str]]:
        return psql(self.pg_port, query)

    def emulator(self, method: str, path: str, body: Any = None, *, no_echo: bool = False) -> Any:
        """Call the control API of the emulator (``no_echo``: of the one that echoes no metadata)."""
        data = None if body is None else json.dumps(body).encode()
        url = self.no_echo_url if no_echo else self.emulator_url
        request = urllib.request.Request(url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def start_worker(self, name: str) -> None:
        self.procs.start(name, [sys.executable, "-m", "airflow", "celery", "worker"], self.env)

    def start_triggerer(self, name: str) -> None:
        """Start a triggerer, and learn its job id (triggerers start one at a time to tell them apart)."""
        self.procs.start(name, [sys.executable, "-m", "airflow", "triggerer"], self.env)

        def new_row() -> str | None:
            rows = self.sql("SELECT id FROM job WHERE job_type = 'TriggererJob' ORDER BY id")
            fresh = [job_id for (job_id,) in rows if job_id not in self.triggerers]
            return fresh[0] if len(rows) == len(self.triggerers) + 1 else None

        self.triggerers[wait_for(f"{name}'s job row", new_row, 120, self.procs)] = name


@contextlib.contextmanager
def deployment() -> Iterator[Cluster]:
    procs = Processes()
    try:
        pg_port = start_postgres(procs)
        redis_port = start_redis(procs)
        emulator_url = start_emulator(procs)
        no_echo_url = start_emulator(procs, "emulator-no-echo", "--profile", "no-metadata")
        api_port = free_port()
        env = airflow_env(pg_port, redis_port, api_port, emulator_url, no_echo_url)
        cluster = Cluster(env, pg_port, redis_port, emulator_url, no_echo_url, procs)
        log("migrating the metadata database")
        airflow(env, "db", "migrate")
        procs.start("api-server", [sys.executable, "-m", "airflow", "api-server"], env)
        procs.start("scheduler", [sys.executable, "-m", "airflow", "scheduler"], env)
        procs.start("dag-processor", [sys.executable, "-m", "airflow", "dag-processor"], env)
        cluster.start_worker("celery-worker")
        cluster.start_triggerer("triggerer-1")
        cluster.start_triggerer("triggerer-2")

        def healthy() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", timeout=5) as r:
                body = json.load(r)
            return all(body[c]["status"] == "healthy" for c in ("metadatabase", "scheduler", "triggerer"))

        wait_for("Airflow API server, scheduler and triggerer", healthy, 180, procs)
        yield cluster
    finally:
        survivors = procs.stop_all()
        if survivors:
            LEFT_BEHIND.extend(survivors)
            log(f"processes left behind: {', '.join(survivors)}")
        else:
            log("stopped every process it started")


def wait_for_runs(cluster: Cluster, dag_ids: list[str]) -> None:
    """Wait until one run of each DAG is over; fail unless every one succeeded."""
    listed = ", ".join(f"'{dag_id}'" for dag_id in dag_ids)
    query = f"SELECT dag_id, state FROM dag_run WHERE dag_id IN ({listed})"

    def finished() -> bool:
        rows = cluster.sql(query)
        return len(rows) == len(dag_ids) and all(state in ("success", "failed") for _, state in rows)

    wait_for("the DAG runs to finish", finished, RUN_TIMEOUT, cluster.procs)
    states = dict(cluster.sql(query))
    log(f"DAG run states: {states}")
    failed = [dag_id for dag_id, state in states.items() if state != "success"]
    if failed:
        raise AssertionError(f"DAG runs failed: {failed}; task logs under {WORK}/airflow/logs")


def task_log(dag_id: str, task_id: str, attempt: int | None = None) -> str:
    logs = WORK / "airflow" / "logs" / f"dag_id={dag_id}"
    name = "*" if attempt is None else f"attempt={attempt}.log"
    files = [p for p in logs.glob(f"**/task_id={task_id}/**/{name}") if p.is_file()]
    return "\n".join(p.read_text(errors="replace") for p in files)


def run_examples(cluster: Cluster) -> int:
    """Run every example DAG; return how many jobs they submitted (their clean-up deletes them)."""
    every = EXAMPLES + KILL_DAGS
    wait_for(
        "the DAGs to be parsed",
        lambda: (
            len(cluster.sql(f"SELECT dag_id FROM dag WHERE dag_id IN ({', '.join(map(repr, every))})"))
            == len(every)
        ),
        180,
        cluster.procs,
    )
    conf = {"example_vbrain_files": {"output_location": f"{WORK}/output/"}}
    for dag_id in EXAMPLES:
        airflow(cluster.env, "dags", "trigger", dag_id, "--conf", json.dumps(conf.get(dag_id, {})))
        log(f"triggered {dag_id}")
    wait_for_runs(cluster, EXAMPLES)
    for dag_id, tasks in DEFERRED_TASKS.items():
        for task_id in tasks:
            text = task_log(dag_id, task_id)
            # Airflow writes a trigger's log lines (logger VBrainJobTrigger) beside the task's logs
            # only when the triggerer ran it: the task really deferred.
            if not re.search(r"VBrain job \S+ is finished", text) or "VBrainJobTrigger" not in text:
                raise AssertionError(f"{dag_id}.{task_id}: no sign in its task log that the triggerer waited")
    log("every example DAG succeeded, and the waits went through the triggerer")
    requests = cluster.emulator("GET", "/_emulator/requests")
    return sum(1 for r in requests if r["method"] == "POST" and r["path"] == "/api/v1/job/execute")


# --------------------------------------------------------------------------- the kill pass


def tagged_jobs(cluster: Cluster, dag_id: str, task_id: str) -> list[dict[str, Any]]:
    """The emulators' jobs (every tenant, listed or not) tagged by one task."""
    return [
        job
        for job in every_job(cluster)
        if (job.get("metadata") or {}).get("airflow", {}).get("dag_id") == dag_id
        and job["metadata"]["airflow"].get("task_id") == task_id
    ]


def every_job(cluster: Cluster) -> list[dict[str, Any]]:
    """Every job both emulators hold."""
    return [
        *cluster.emulator("GET", "/_emulator/jobs"),
        *cluster.emulator("GET", "/_emulator/jobs", no_echo=True),
    ]


def stored_job(cluster: Cluster, dag_id: str) -> dict[str, Any] | None:
    """``execute_job``'s record in Airflow's task state store, once it holds the created job's id."""
    rows = cluster.sql(
        "SELECT value FROM task_state_store "
        f"WHERE dag_id = '{dag_id}' AND task_id = 'execute_job' AND key = 'vbrain_job'"
    )
    record = json.loads(rows[0][0]) if rows else None
    return record if record and record.get("state") == "created" else None


def redis_unacked(cluster: Cluster) -> list[str]:
    """The Celery messages delivered to a worker and not acknowledged, as ``dag.task try N``.

    With ``acks_late`` (Airflow's default) a message is acknowledged when its task ends; kombu keeps
    the others in the Redis hash ``unacked`` and puts them back in the queue only once they are
    older than the broker's visibility timeout.
    """
    with socket.create_connection(("127.0.0.1", cluster.redis_port), timeout=5) as sock:
        sock.sendall(b"HVALS unacked\r\n")
        with sock.makefile("rb") as answer:
            values = [
                answer.read(int(answer.readline()[1:]) + 2)[:-2] for _ in range(int(answer.readline()[1:]))
            ]
    found = []
    for value in values:
        try:  # [message, exchange, routing key]; the body is [args, kwargs, ...], args[0] the workload
            body = json.loads(base64.b64decode(json.loads(value)[0]["body"]))
            ti = json.loads(body[0][0])["ti"]  # the workload's token is never printed
            found.append(f"{ti['dag_id']}.{ti['task_id']} try {ti['try_number']}")
        except (ValueError, KeyError, IndexError, TypeError):
            found.append("a message it could not read")
    return found


def kill_worker(cluster: Cluster) -> float:
    """SIGKILL the worker while it runs two tasks that created their jobs; start another.

    ``smoke_kill_worker.execute_job``: the submit's answer is held back (an emulator fault), so the
    kill lands after the job was created and before the task learnt its id: its retry can only find
    the job by its tag. ``smoke_kill_store.execute_job`` (on the emulator that echoes no metadata):
    the kill lands after the task recorded its job in Airflow's task state store, while it waits on
    it: its retry can only know the job from the store.
    :return: when it was killed (epoch seconds).
    """
    cluster.emulator(
        "POST", "/_emulator/faults", {"method": "POST", "path": "^/api/v1/job/execute$", "answer_delay": 120}
    )
    airflow(cluster.env, "dags", "trigger", "smoke_kill_worker")
    airflow(cluster.env, "dags", "trigger", NO_ECHO_DAG)
    log(f"triggered smoke_kill_worker and {NO_ECHO_DAG}; waiting for both jobs to be created")
    (job,) = wait_for(
        "smoke_kill_worker's job",
        lambda: tagged_jobs(cluster, "smoke_kill_worker", "execute_job"),
        180,
        cluster.procs,
        every=0.2,
    )
    record: dict[str, Any] = wait_for(
        f"{NO_ECHO_DAG}'s job in the task state store",
        lambda: stored_job(cluster, NO_ECHO_DAG) or {},
        100,
        cluster.procs,
        every=0.2,
    )
    killed_at = time.time()
    count = cluster.procs.kill("celery-worker")
    log(
        f"job {job['job_id']} created, its answer held back; job {record['job_id']} recorded in the "
        f"task state store: SIGKILLed the Celery worker ({count} processes)"
    )
    unacked = redis_unacked(cluster)
    log(f"Redis holds {len(unacked)} unacknowledged Celery message(s): {', '.join(unacked) or 'none'}")
    cluster.start_worker("celery-worker-2")
    return killed_at


def kill_triggerer(cluster: Cluster) -> float:
    """SIGKILL the triggerer holding ``smoke_kill_triggerer.wait_for_job``'s trigger; return how long
    the other took to pick it up."""
    airflow(cluster.env, "dags", "trigger", "smoke_kill_triggerer")
    log("triggered smoke_kill_triggerer; waiting for its sensor to defer")
    held = (
        "SELECT t.id, t.triggerer_id FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
        "WHERE ti.dag_id = 'smoke_kill_triggerer' AND ti.task_id = 'wait_for_job' "
        "AND ti.state = 'deferred' AND t.triggerer_id IS NOT NULL"
    )
    ((trigger_id, holder),) = wait_for("the sensor's trigger", lambda: cluster.sql(held), 240, cluster.procs)
    time.sleep(2)  # one poke interval: the trigger is running, not just assigned
    (job,) = tagged_jobs(cluster, "smoke_kill_triggerer", "execute_job")
    if job["status"] not in ("queued", "started"):
        raise AssertionError(f"job {job['job_id']} is already {job['status']}: the kill would prove nothing")
    name = cluster.triggerers[holder]
    killed_at = time.monotonic()
    cluster.procs.kill(name)
    log(f"SIGKILLed {name}, which held trigger {trigger_id} (job {job['job_id']} still {job['status']})")
    (other,) = [job_id for job_id in cluster.triggerers if job_id != holder]

    def moved() -> bool:
        rows = cluster.sql(f"SELECT triggerer_id FROM trigger WHERE id = {trigger_id}")
        # A trigger that is gone has fired: only the surviving triggerer can have fired it.
        return not rows or rows[0][0] == other

    wait_for("the other triggerer to take the trigger", moved, 120, cluster.procs, every=0.5)
    taken = time.monotonic() - killed_at
    log(f"{cluster.triggerers[other]} took trigger {trigger_id} over {taken:.0f} s after the kill")
    return taken


def run_kill_pass(cluster: Cluster) -> dict[str, float]:
    """The two kills; every run must succeed, the killed task reattach, the trigger move."""
    log(
        f"kill pass: task_instance_heartbeat_timeout {TASK_HEARTBEAT_TIMEOUT} s, "
        f"triggerer_health_check_threshold {TRIGGERER_HEALTH_THRESHOLD} s"
    )
    cluster.emulator("POST", "/_emulator/config", KILL_PASS_JOBS)
    cluster.emulator("POST", "/_emulator/config", KILL_PASS_JOBS, no_echo=True)
    killed_at = kill_worker(cluster)
    taken = kill_triggerer(cluster)
    wait_for_runs(cluster, KILL_DAGS)

    tries = cluster.sql(
        "SELECT try_number, extract(epoch FROM start_date) FROM task_instance "
        "WHERE dag_id = 'smoke_kill_worker' AND task_id = 'execute_job'"
    )
    failed = cluster.sql(
        "SELECT extract(epoch FROM end_date) FROM task_instance_history "
        "WHERE dag_id = 'smoke_kill_worker' AND task_id = 'execute_job' AND try_number = 1"
    )
    if int(tries[0][0]) != 2 or not failed:
        raise AssertionError(f"smoke_kill_worker.execute_job ran {tries[0][0]} tries, not 2: the kill missed")
    if "Reattaching to job" not in task_log("smoke_kill_worker", "execute_job", attempt=2):
        raise AssertionError("smoke_kill_worker.execute_job: its second try did not reattach to the job")
    check_store_kill(cluster)
    detected, retried = float(failed[0][0]) - killed_at, float(tries[0][1]) - killed_at
    log(f"the killed try was failed {detected:.0f} s after the kill; try 2 started after {retried:.0f} s")
    for dag_id, expected in (("smoke_kill_worker", 42), ("smoke_kill_triggerer", 15)):
        (value,) = cluster.sql(
            f"SELECT value FROM xcom WHERE dag_id = '{dag_id}' AND task_id = 'wait_for_job' "
            "AND key = 'return_value'"
        )
        if json.loads(value[0]) != {"value": expected}:
            raise AssertionError(f"{dag_id}.wait_for_job returned {value[0]}, not {{'value': {expected}}}")
    log("the killed task reattached to its job, and the sensor's wait survived its triggerer")
    return {"detected": detected, "retried": retried, "trigger moved": taken}


def check_store_kill(cluster: Cluster) -> None:
    """The task killed after it recorded its job, on a VBrain that echoes no metadata: retried once,
    reattached through the task state store without listing a repository, the job's result pushed."""
    (tries,) = cluster.sql(
        f"SELECT try_number FROM task_instance WHERE dag_id = '{NO_ECHO_DAG}' AND task_id = 'execute_job'"
    )
    retried = task_log(NO_ECHO_DAG, "execute_job", attempt=2)
    if int(tries[0]) != 2 or "The task state store records job" not in retried:
        raise AssertionError(f"{NO_ECHO_DAG}.execute_job: try {tries[0]} did not reattach through the store")
    listings = [
        r
        for r in cluster.emulator("GET", "/_emulator/requests", no_echo=True)
        if r["method"] == "GET" and r["path"] == "/api/v1/job"
    ]
    if listings:
        raise AssertionError(f"{NO_ECHO_DAG}.execute_job listed the repository's jobs {len(listings)} times")
    (value,) = cluster.sql(
        f"SELECT value FROM xcom WHERE dag_id = '{NO_ECHO_DAG}' AND task_id = 'execute_job' "
        "AND key = 'result'"
    )
    if json.loads(value[0]) != {"value": 36}:
        raise AssertionError(f"{NO_ECHO_DAG}.execute_job pushed {value[0]}, not {{'value': 36}}")
    log(f"{NO_ECHO_DAG}: the retry reattached through the task state store, listing nothing")


def job_counts(cluster: Cluster, example_submits: int) -> None:
    """Print the jobs per execute task; fail on any count but one."""
    tagged = Counter(
        tuple(
            str(job["metadata"]["airflow"].get(key)) for key in ("dag_id", "task_id", "run_id", "map_index")
        )
        for job in every_job(cluster)
        if isinstance((job.get("metadata") or {}).get("airflow"), dict)
    )
    rows = cluster.sql(
        "SELECT dag_id, task_id, run_id, map_index, try_number FROM task_instance "
        f"WHERE operator = '{EXECUTE_OPERATOR}' AND dag_id LIKE 'smoke_kill_%' ORDER BY dag_id"
    )
    examples = cluster.sql(
        f"SELECT count(*) FROM task_instance WHERE operator = '{EXECUTE_OPERATOR}' "
        "AND dag_id LIKE 'example_vbrain_%'"
    )[0][0]
    table = [("execute task", "tries", "jobs")]
    wrong = []
    for dag_id, task_id, run_id, map_index, tries in rows:
        count = tagged[(dag_id, task_id, run_id, map_index)]
        table.append((f"{dag_id}.{task_id}", tries, str(count)))
        if count != 1:
            wrong.append(f"{dag_id}.{task_id}: {count} jobs")
    table.append(
        (
            f"example DAGs' {examples} execute tasks (jobs deleted by their clean-up)",
            "",
            f"{example_submits} submitted",
        )
    )
    if example_submits != int(examples):
        wrong.append(f"the example DAGs submitted {example_submits} jobs for {examples} execute tasks")
    width = max(len(row[0]) for row in table)
    print("\n".join(f"  {name:<{width}}  {tries:>5}  {jobs}" for name, tries, jobs in table), flush=True)
    if len(rows) != len(KILL_DAGS) or wrong:
        raise AssertionError(f"not exactly one job per execute task: {wrong or rows}")


def main() -> int:
    if WORK.exists():
        shutil.rmtree(WORK)
    (WORK / "logs").mkdir(parents=True)
    ensure_packages()
    started = time.monotonic()
    try:
        with deployment() as cluster:
            example_submits = run_examples(cluster)
            kill_started = time.monotonic()
            timings = run_kill_pass(cluster)
            log(f"kill pass took {time.monotonic() - kill_started:.0f} s; job counts:")
            job_counts(cluster, example_submits)
            log(
                "kill timings: failed {detected:.0f} s, retried {retried:.0f} s after the worker kill; "
                "trigger moved {trigger moved:.0f} s after the triggerer kill".format(**timings)
            )
    except Exception as err:
        log(f"FAILED: {err}")
        for name in (
            "scheduler",
            "triggerer-1",
            "triggerer-2",
            "celery-worker",
            "celery-worker-2",
            "api-server",
            "dag-processor",
            "emulator-no-echo",
        ):
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
