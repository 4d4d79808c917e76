"""The command line, run as a user would: a subprocess on a free port, stopped with a signal."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from vbrain_emulator import PROFILES
from vbrain_emulator.__main__ import main

HEADERS = {
    "organization_id": "acme",
    "application_id": "Tutorial",
    "client_id": "ops",
    "username": "ana",
    "x-api-key": "secret",
}


def test_help_lists_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--host",
        "--port",
        "--api-key",
        "--queue-seconds",
        "--run-seconds",
        "--rate-limit",
        "--control",
        "--tls-cert",
        "--tls-key",
        "--tls-self-signed",
        "--quiet",
        "--application",
    ):
        assert flag in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--tls-cert", "c.pem"],
        ["--queue-seconds", "-1"],
        ["--run-seconds", "x"],
        ["--port", "70000"],
        ["--rate-limit", "-1"],
        ["--rate-limit", "1.5"],
        ["--application", "Forecast"],
        ["--application", "Forecast=no_such_module:run"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


class Emulator:
    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vbrain_emulator", "--port", "0", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.fullmatch(r"VBrain emulator listening on (https?://127\.0\.0\.1:\d+)\n", line)
        assert match, (line, self.process.communicate()[1] if self.process.poll() is not None else "")
        self.url = match.group(1)

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str]:
        self.process.send_signal(signum)
        _, stderr = self.process.communicate(timeout=10)
        return self.process.returncode, stderr


@pytest.fixture
def emulator_process() -> Iterator[list[Emulator]]:
    started: list[Emulator] = []
    yield started
    for emulator in started:
        if emulator.process.poll() is None:
            emulator.process.kill()
            emulator.process.communicate()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serves_until_signalled(emulator_process: list[Emulator], signum: int) -> None:
    emulator = Emulator("--api-key", "secret", "--queue-seconds", "0", "--run-seconds", "0")
    emulator_process.append(emulator)
    base = f"{emulator.url}/api/v1"
    response = requests.post(f"{base}/repository", headers=HEADERS, timeout=5)
    assert response.status_code == 201
    headers = {**HEADERS, "repository_id": response.json()["repository_id"]}
    job = requests.post(
        f"{base}/job/execute", headers=headers, json={"params": {"a": 10, "b": 20}}, timeout=5
    )
    result = requests.get(f"{base}/job/{job.json()['job_id']}/result", headers=headers, timeout=5)
    assert result.json() == {"output": {"value": 200}}
    assert (
        requests.get(f"{base}/repository", headers={**HEADERS, "x-api-key": "other"}, timeout=5).status_code
        == 403
    )
    # The control API is off unless --control.
    assert requests.get(f"{emulator.url}/_emulator/requests", timeout=5).status_code == 404

    code, stderr = emulator.stop(signum)
    assert code == 0
    assert "Traceback" not in stderr
    assert "POST /api/v1/repository" in stderr  # the access log, since --quiet was not given


def test_control_flag_and_quiet(emulator_process: list[Emulator]) -> None:
    emulator = Emulator("--control", "--quiet")
    emulator_process.append(emulator)
    assert requests.get(f"{emulator.url}/_emulator/requests", timeout=5).json() == []
    code, stderr = emulator.stop()
    assert code == 0
    assert stderr == ""


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls(emulator_process: list[Emulator], tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    emulator = Emulator("--tls-cert", str(cert), "--tls-key", str(key), "--quiet")
    emulator_process.append(emulator)
    assert emulator.url.startswith("https://")
    response = requests.get(f"{emulator.url}/api/v1/repository", headers=HEADERS, verify=str(cert), timeout=5)
    assert response.json() == []
    assert emulator.stop()[0] == 0


def test_port_in_use_is_one_clear_line(emulator_process: list[Emulator]) -> None:
    emulator = Emulator("--quiet")
    emulator_process.append(emulator)
    port = emulator.url.rsplit(":", 1)[1]
    second = subprocess.run(
        [sys.executable, "-m", "vbrain_emulator", "--port", port],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert second.returncode == 1
    assert "cannot listen on 127.0.0.1:" in second.stderr
    assert "Traceback" not in second.stderr


def test_users_own_application(emulator_process: list[Emulator], tmp_path: Path) -> None:
    (tmp_path / "my_apps.py").write_text(
        "from vbrain_emulator import ApplicationResult\n"
        "def forecast(params, input_files):\n"
        "    return ApplicationResult(output={'demand': params['base'] * 2})\n"
    )
    emulator = Emulator(
        *(
            "--application",
            "Forecast=my_apps:forecast",
            "--quiet",
            "--queue-seconds",
            "0",
            "--run-seconds",
            "0",
        ),
        cwd=tmp_path,
    )
    emulator_process.append(emulator)
    headers = {**HEADERS, "application_id": "Forecast"}
    base = f"{emulator.url}/api/v1"
    repository_id = requests.post(f"{base}/repository", headers=headers, timeout=5).json()["repository_id"]
    headers["repository_id"] = repository_id
    job = requests.post(f"{base}/job/execute", headers=headers, json={"params": {"base": 21}}, timeout=5)
    result = requests.get(f"{base}/job/{job.json()['job_id']}/result", headers=headers, timeout=5)
    assert result.json() == {"output": {"demand": 42}}


def test_tls_self_signed(emulator_process: list[Emulator]) -> None:
    emulator = Emulator("--tls-self-signed", "--quiet")
    emulator_process.append(emulator)
    assert emulator.url.startswith("https://")
    assert emulator.process.stdout is not None
    cert = re.search(r"trust its certificate with: (\S+)", emulator.process.stdout.readline())
    assert cert, "the certificate's path was not printed"
    response = requests.get(
        f"{emulator.url}/api/v1/repository", headers=HEADERS, verify=cert.group(1), timeout=5
    )
    assert response.json() == []
    assert emulator.stop()[0] == 0


def test_help_lists_the_profiles_and_the_pages_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Wide enough that argparse does not wrap inside a hyphenated name.
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--profile NAME" in out
    assert "--no-ui" in out
    for name in PROFILES:
        assert name in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--profile", "nope"], "--profile: Unknown profile 'nope'"),
        (["--profile", "no-metadata", "--profile", "metadata-string"], "both set"),
        (["--profile", "eventual-listing=-2"], "non-negative number of seconds"),
    ],
)
def test_bad_profiles_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_profiles_from_the_command_line(emulator_process: list[Emulator]) -> None:
    emulator = Emulator(
        "--profile",
        "application-scoped",
        "--profile",
        "metadata-string,eventual-listing=0",
        "--control",
        "--quiet",
    )
    emulator_process.append(emulator)
    assert emulator.process.stdout is not None
    assert emulator.process.stdout.readline() == "Reference profile: metadata-string,application-scoped\n"
    base = f"{emulator.url}/api/v1"
    repository_id = requests.post(f"{base}/repository", headers=HEADERS, timeout=5).json()["repository_id"]
    other = {**HEADERS, "application_id": "CsvSummary"}
    response = requests.get(f"{base}/repository/{repository_id}", headers=other, timeout=5)
    assert (response.status_code, response.json()) == (404, {"error": "Invalid repository_id"})
    headers = {**HEADERS, "repository_id": repository_id}
    job_id = requests.post(
        f"{base}/job/execute", headers=headers, json={"metadata": {"k": 1}}, timeout=5
    ).json()["job_id"]
    assert requests.get(f"{base}/job/{job_id}", headers=headers, timeout=5).json()["metadata"] == '{"k": 1}'
    profile = requests.get(f"{emulator.url}/_emulator/profile", timeout=5).json()["profile"]
    assert profile == ["metadata-string", "application-scoped"]
    # Reset comes back to the profile the command line chose.
    requests.put(f"{emulator.url}/_emulator/profile", json={"profile": None}, timeout=5)
    requests.post(f"{emulator.url}/_emulator/reset", timeout=5)
    assert requests.get(f"{emulator.url}/_emulator/profile", timeout=5).json()["profile"] == profile
    assert emulator.stop()[0] == 0


def test_job_pages_are_announced_and_can_be_turned_off(emulator_process: list[Emulator]) -> None:
    emulator = Emulator("--quiet")
    emulator_process.append(emulator)
    assert emulator.process.stdout is not None
    line = emulator.process.stdout.readline()
    assert line == f"Job pages: {emulator.url}/ui/ (job links: {emulator.url}/ui/jobs/{{job_id}})\n"
    assert requests.get(f"{emulator.url}/ui/", timeout=5).status_code == 200
    assert emulator.stop()[0] == 0

    without = Emulator("--quiet", "--no-ui")
    emulator_process.append(without)
    assert requests.get(f"{without.url}/ui/", timeout=5).status_code == 404
    without.process.send_signal(signal.SIGINT)
    rest, _ = without.process.communicate(timeout=10)
    assert without.process.returncode == 0
    assert "Job pages" not in rest


def test_rate_limit_from_the_command_line(emulator_process: list[Emulator]) -> None:
    emulator = Emulator("--rate-limit", "2", "--control", "--quiet")
    emulator_process.append(emulator)
    assert emulator.process.stdout is not None
    assert emulator.process.stdout.readline() == "Rate limit: 2 requests per second per API key\n"
    ctl = f"{emulator.url}/_emulator"
    assert requests.get(f"{ctl}/config", timeout=5).json()["rate_limit"] == 2
    with requests.Session() as session:
        statuses = [
            session.get(f"{emulator.url}/api/v1/repository", headers=HEADERS, timeout=5).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 429]
    # The command line's limit is the initial one: reset comes back to it.
    assert requests.post(f"{ctl}/config", json={"rate_limit": None}, timeout=5).json()["rate_limit"] is None
    assert requests.post(f"{ctl}/reset", timeout=5).status_code == 200
    assert requests.get(f"{ctl}/config", timeout=5).json()["rate_limit"] == 2
    assert emulator.stop()[0] == 0
