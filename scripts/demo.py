"""``make demo`` and ``make demo-ui``: the example DAGs on the bundled emulator, offline.

``demo``: runs ``airflow dags test example_vbrain_tutorial`` against a fresh
emulator and prints the tutorial's result in one line; exits non-zero if
anything failed. ``ui``: real Airflow (``airflow standalone``) plus the
emulator, to trigger the examples from the UI and watch deferral happen.

Everything lives under ``.airflow-demo/`` in the project (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import airflow

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".airflow-demo"
RESULT = re.compile(r"VBrain result: (\{.*?\})")


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "example_dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
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
    """Run the emulator in a child process; yield its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_vbrain.emulator", "--port", str(port), "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        if not match:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def connection(url: str) -> str:
    return json.dumps(
        {
            "conn_type": "vbrain",
            "host": url,
            "login": "demo",
            "password": "demo-api-key",
            "extra": {
                "organization_id": "demo-org",
                "client_id": "demo-client",
                "application_id": "Tutorial",
            },
        }
    )


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


def demo_ui(port: int) -> int:
    home = ROOT / ".airflow-demo-ui"  # apart from dag.test()'s DB, whose trigger rows a triggerer would fire
    env = airflow_env(
        home,
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__API__PORT=str(port),
    )
    migrate_if_needed(env, home)
    # Started in the background of a script, this process may have inherited SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with emulator() as url:
        env["AIRFLOW_CONN_VBRAIN_DEFAULT"] = connection(url)
        print(f"VBrain emulator at {url}")
        print(f"Airflow UI: http://localhost:{port}  (local demo: no login, every user is an admin)")
        print("Trigger example_vbrain_tutorial, _files or _mapped; Ctrl-C stops everything.", flush=True)
        standalone = subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"],
            env=env,
            start_new_session=True,  # its own process group, stopped as a whole below
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            return standalone.wait()
        except KeyboardInterrupt:
            print("Stopping Airflow...", flush=True)
            return stop_group(standalone)


def stop_group(process: subprocess.Popen[bytes]) -> int:
    """SIGINT to the process's group (what Ctrl-C would send), then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["demo", "ui"], nargs="?", default="demo")
    parser.add_argument("--port", type=int, default=8080, help="Airflow UI port for 'ui' (default 8080)")
    args = parser.parse_args()
    return demo() if args.command == "demo" else demo_ui(args.port)


if __name__ == "__main__":
    sys.exit(main())
