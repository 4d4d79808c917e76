"""``make demo`` and ``make demo-ui``: the example DAGs on the bundled emulator, offline.

``demo``: runs ``airflow dags test example_vbrain_tutorial`` against a fresh
emulator and prints the tutorial's result in one line; exits non-zero if
anything failed. ``ui``: real Airflow (``airflow standalone``) plus the
emulator, to trigger the examples from the UI and watch deferral happen. The
connection ``vbrain_default`` is stored in Airflow's database (so Admin >
Connections shows it, and its Test button works), pointing at the emulator on
a fixed port (8765; ``--emulator-port`` or ``VBRAIN_EMULATOR_PORT`` to change).

Everything lives under ``.airflow-demo/`` and ``.airflow-demo-ui/`` in the
project (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import airflow

from airflow_provider_vbrain._airflow.form import FORM_FIELDS

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".airflow-demo"
DEMO_UI = ROOT / ".airflow-demo-ui"  # apart from dag.test()'s DB, whose trigger rows a triggerer would fire
RESULT = re.compile(r"VBrain result: (\{.*?\})")
EMULATOR_PORT = 8765
#: The only key the demo's emulator accepts, so a wrong key in the UI is refused as VBrain would.
DEMO_API_KEY = "demo-api-key"


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "example_dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        # airflow standalone starts its components as `airflow ...`: this environment's.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        **extra,
    )
    return env


def migrate_if_needed(env: dict[str, str], home: Path) -> None:
    """Create or upgrade the metadata DB, once per Airflow version."""
    stamp = home / ".migrated"
    if stamp.exists() and stamp.read_text() == airflow.__version__:
        return
    home.mkdir(parents=True, exist_ok=True)
    print(f"Preparing Airflow {airflow.__version__}'s database in {home} (first run only)...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    stamp.write_text(airflow.__version__)


@contextlib.contextmanager
def emulator(port: int = 0) -> Iterator[str]:
    """Run the emulator in a child process, accepting only :data:`DEMO_API_KEY`; yield its base URL."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "vbrain_emulator", "--port", str(port)),
            *("--api-key", DEMO_API_KEY, "--quiet"),
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        if not match:
            process.wait(timeout=10)
            raise RuntimeError(f"the emulator did not start on port {port} (is the port in use?): {line!r}")
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def connection(url: str) -> str:
    """The demo connection as ``AIRFLOW_CONN_VBRAIN_DEFAULT`` holds it (``make demo``)."""
    return json.dumps(
        {
            "conn_type": "vbrain",
            "host": url,
            "login": "demo",
            "password": DEMO_API_KEY,
            "extra": {
                "organization_id": "demo-org",
                "client_id": "demo-client",
                "application_id": "Tutorial",
            },
        }
    )


def demo_connection(emulator_port: int) -> dict[str, Any]:
    """The demo connection as ``make demo-ui`` stores it in the metadata database.

    The port sits in the Port field rather than in the URL: Airflow 3.3.1 and 3.3.2 refuse the
    Test button of a connection whose Port is empty.
    """
    return {
        "conn_id": "vbrain_default",
        "conn_type": "vbrain",
        "description": "The bundled VBrain emulator (make demo-ui)",
        "host": "http://127.0.0.1",
        "port": emulator_port,
        "login": "demo",
        "password": DEMO_API_KEY,
        "extra": json.dumps(
            {
                "organization_id": "demo-org",
                "client_id": "demo-client",
                "application_id": "Tutorial",
                # The form of Airflow 3.2+ shows a typed field only for the extras a connection holds.
                **{field.name: field.default for field in FORM_FIELDS if field.default is not None},
                "job_url_template": f"http://127.0.0.1:{emulator_port}/ui/jobs/{{job_id}}",
            }
        ),
    }


def demo() -> int:
    env = airflow_env(DEMO)
    migrate_if_needed(env, DEMO)
    log = DEMO / "last-demo.log"
    with emulator() as url:
        print(f"VBrain emulator at {url}; running example_vbrain_tutorial...", flush=True)
        env["AIRFLOW_CONN_VBRAIN_DEFAULT"] = connection(url)
        with log.open("w") as out:
            done = subprocess.run(
                [sys.executable, "-m", "airflow", "dags", "test", "example_vbrain_tutorial"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
    text = log.read_text(errors="replace")
    found = RESULT.search(text)
    if done.returncode != 0 or not found:
        print(text[-4000:])
        print(f"demo FAILED (exit code {done.returncode}); full log: {log}")
        return done.returncode or 1
    print(f"result: {found.group(1)}")
    print(f"(full Airflow log: {log})")
    return 0


def demo_ui(port: int, emulator_port: int) -> int:
    try:
        with ui_demo(DEMO_UI, port, emulator_port) as demo:
            print(f"VBrain emulator at {demo.emulator_url} (API key {DEMO_API_KEY!r})")
            print(f"Airflow UI: {demo.airflow_url}  (local demo: no login, every user is an admin)")
            print("Admin > Connections holds vbrain_default, and its Test button works.")
            print("Trigger example_vbrain_tutorial, _files or _mapped; Ctrl-C stops everything.", flush=True)
            code = demo.standalone.wait()
    except KeyboardInterrupt:
        code = 0
    print("Stopped Airflow and the emulator; nothing is left running.", flush=True)
    return code


@dataclasses.dataclass(frozen=True)
class UiDemo:
    """What :func:`ui_demo` started."""

    airflow_url: str
    emulator_url: str
    env: dict[str, str]
    standalone: subprocess.Popen[bytes]


@contextlib.contextmanager
def ui_demo(
    home: Path, port: int, emulator_port: int, *, quiet: bool = False, ready_timeout: float = 300
) -> Iterator[UiDemo]:
    """Airflow standalone with the VBrain connection in its database, beside the emulator.

    Yields once the API server answers (``quiet``: once scheduler and triggerer are healthy
    too, with Airflow's output in ``home/standalone.log``). On the way out, however it is left
    (Ctrl-C, SIGTERM, an error), stops Airflow and the emulator and checks that nothing is left.

    :param home: the ``AIRFLOW_HOME`` (created and migrated when needed).
    :param port: the Airflow UI's port.
    :param emulator_port: the emulator's port, which the stored connection points at.
    """
    env = airflow_env(
        home,
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        # Airflow 3 disables the Test button by default; the demo has nothing to protect.
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW__API__PORT=str(port),
        # Tasks report to the API server: on another port than 8080 they must be told where it is.
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{port}/execution/",
    )
    # Started in the background of a script, this process may have inherited SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    migrate_if_needed(env, home)
    store_connection(env, emulator_port)
    out = (home / "standalone.log").open("wb") if quiet else None
    with emulator(emulator_port) as url:
        standalone = subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if quiet else None,
            stdin=subprocess.DEVNULL,
            # Its own process group: the terminal's Ctrl-C reaches this script only, which then stops
            # standalone the one way it shuts down cleanly (SIGINT to its main process alone).
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            airflow_url = f"http://localhost:{port}"
            wait_until_ready(airflow_url, standalone, ready_timeout, components=quiet)
            yield UiDemo(airflow_url, url, env, standalone)
        finally:
            # A second Ctrl-C must not cut the shutdown short and leave components behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            if not quiet:
                print("\nStopping Airflow and the emulator...", flush=True)
            left = stop_standalone(standalone)
            if out is not None:
                out.close()
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if left:
                raise RuntimeError(f"processes left running after stopping Airflow: {left}")


def store_connection(env: dict[str, str], emulator_port: int) -> None:
    """Create ``vbrain_default`` in the metadata database unless it is there (kept as the UI left it)."""
    done = subprocess.run(
        [sys.executable, "-c", _STORE_CONNECTION, json.dumps(demo_connection(emulator_port))],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not store the demo connection:\n{done.stderr[-3000:]}")
    if done.stdout.strip():
        print(done.stdout.strip(), flush=True)


# Run with the demo's AIRFLOW_HOME; Airflow 3's ORM (the demo runs the locked Airflow).
_STORE_CONNECTION = """
import json, sys
from sqlalchemy import select
from airflow.models import Connection
from airflow.utils.session import create_session

spec = json.loads(sys.argv[1])
with create_session() as session:
    found = session.scalar(select(Connection).where(Connection.conn_id == spec["conn_id"]))
    if found is None:
        session.add(Connection(**spec))
        print(f"Created the connection {spec['conn_id']} (Admin > Connections).")
    elif (found.host, found.port) != (spec["host"], spec["port"]):
        print(
            f"Kept the connection {spec['conn_id']} as it is in the database ({found.host}, port "
            f"{found.port}); the emulator listens on {spec['host']}:{spec['port']}."
        )
"""


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float, components: bool) -> None:
    """Until the API server answers (and, with ``components``, the scheduler and triggerer are healthy)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"airflow standalone exited with code {process.returncode}")
        with contextlib.suppress(OSError, ValueError, KeyError):
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as answer:
                health = json.load(answer)
            needed = ("metadatabase", "scheduler", "triggerer") if components else ("metadatabase",)
            if all(health[name]["status"] == "healthy" for name in needed):
                return
        time.sleep(1)
    raise TimeoutError(f"Airflow was not ready at {url} after {timeout:.0f} s")


def stop_standalone(process: subprocess.Popen[bytes]) -> list[str]:
    """Stop ``airflow standalone`` and its components; return what is still running (nothing, normally).

    SIGINT to its main process alone is what makes it stop each component and wait for them
    (about 10 s). A SIGINT to the whole group instead reaches the executor's workers too, which
    then hang the shutdown until they are killed.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=45)
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if not _wait_group_gone(process.pid, 0 if sig == signal.SIGTERM else grace):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            _wait_group_gone(process.pid, grace)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    return [f"{pid} {name}" for pid, name in _group_members(process.pid)]


def _group_members(pgid: int) -> list[tuple[int, str]]:
    """Live (not zombie) processes of a process group, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            head, _, rest = stat.read_text().rpartition(")")
            fields = rest.split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append((int(stat.parent.name), head.partition("(")[2]))
    return members


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["demo", "ui"], nargs="?", default="demo")
    parser.add_argument("--port", type=int, default=8080, help="Airflow UI port for 'ui' (default 8080)")
    parser.add_argument(
        "--emulator-port",
        type=int,
        default=int(os.environ.get("VBRAIN_EMULATOR_PORT", EMULATOR_PORT)),
        help=f"the emulator's port for 'ui', kept in the stored connection (default {EMULATOR_PORT}, "
        "or VBRAIN_EMULATOR_PORT)",
    )
    args = parser.parse_args()
    return demo() if args.command == "demo" else demo_ui(args.port, args.emulator_port)


if __name__ == "__main__":
    sys.exit(main())
