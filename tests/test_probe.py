"""``vbrain-probe`` against the emulator, under every reference profile and when things go wrong.

The probe runs once per profile (it submits a job, so each run takes a second or two); the
expectations below read that run's printed table.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points
from typing import Any

import pytest

from airflow_provider_vbrain.probe import main
from airflow_provider_vbrain.probe._report import WIDTHS
from tests.conftest import API_KEY, connection_json, key_leaks
from vbrain_emulator import EmulatorServer

FAST = ["--poll-interval", "0.05", "--listing-timeout", "10", "--job-timeout", "30"]
SUBMIT = "/api/v1/job/execute"


@dataclasses.dataclass(frozen=True)
class Run:
    """One probe run: exit status, what it printed, and what the emulator holds afterwards."""

    status: int
    out: str
    err: str
    repositories: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    submits: int

    def row(self, check: str) -> tuple[str, str, str]:
        """The (verdict, what the server did, what it means) of a check, its wrapped lines joined."""
        return table(self.out)[check]


def table(out: str) -> dict[str, tuple[str, str, str]]:
    """The printed table, read back column by column (a row's continuation lines start blank)."""
    starts = [sum(WIDTHS[:i]) + 2 * i for i in range(len(WIDTHS))]
    rows: list[list[list[str]]] = []
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("----"))
    for line in lines[first + 1 :]:
        if not line.strip():
            break
        cells = [line[start : start + width].strip() for start, width in zip(starts, WIDTHS, strict=True)]
        if cells[0]:
            rows.append([[cell] for cell in cells])
        else:
            for column, cell in zip(rows[-1], cells, strict=True):
                column.append(cell)
    joined = {}
    for verdict, check, did, means in ([_join(part) for part in row] for row in rows):
        joined[check] = (verdict, did, means)
    return joined


def _join(parts: list[str]) -> str:
    text = ""
    for part in filter(None, parts):
        # textwrap breaks after a hyphen without a space, and at spaces otherwise.
        text += part if not text or text.endswith("-") else " " + part
    return text


def probe(server: EmulatorServer, capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    server.clear_requests()
    status = main([*FAST, *args])
    out, err = capsys.readouterr()
    submits = sum(1 for r in server.requests() if r["method"] == "POST" and r["path"] == SUBMIT)
    return Run(status, out, err, server.repositories(), server.jobs(), submits)


RUNS: dict[str, Run] = {}


@pytest.fixture
def probed(
    vbrain_emulator_profile: Any,
    vbrain_emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    """The probe's run under this test's profile, made by the first test that asks for it."""
    name = str(vbrain_emulator_profile)
    if name not in RUNS:
        monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(vbrain_emulator.url))
        RUNS[name] = probe(vbrain_emulator, capsys, "--other-application", "CsvSummary")
    return RUNS[name]


# ---------------------------------------------------------------- under every profile


def test_the_probe_passes_and_deletes_everything_it_created(probed: Run) -> None:
    assert probed.status == 0, probed.out
    assert "FAIL" not in {verdict for verdict, _, _ in table(probed.out).values()}
    assert probed.submits == 1  # one job: it costs compute
    assert probed.repositories == []
    assert probed.jobs == []
    verdict, did, _ = probed.row("clean-up")
    assert verdict == "ok"
    assert re.search(r"deleted job \S+ and repositories \d+, \d+$", did), did
    # The emulator reads from_date as UTC, as the provider writes it.
    verdict, did, _ = probed.row("listing dates")
    assert (verdict, did) == ("ok", "from_date in UTC, 10 minutes before the submit, lists the job"), did


def test_the_table_says_whether_reattach_for_jobs_is_available(
    vbrain_emulator_profile: Any, probed: Run
) -> None:
    verdict, did, means = probed.row("reattach for jobs")
    if "no-metadata" in vbrain_emulator_profile:
        assert (verdict, did.split(":")[0]) == ("warn", "unavailable (none)")
        assert "on_unknown_earlier='fail' (default) fails it" in means
        assert means.startswith("run the tasks on Airflow 3.3 or later")
    elif "repository-metadata" in vbrain_emulator_profile:
        assert (verdict, did.split(":")[0]) == ("warn", "unavailable (the repository's)")
        assert "'submit' submits again and may run a job twice" in means
    elif "metadata-string" in vbrain_emulator_profile:
        assert (verdict, did.split(":")[0]) == ("ok", "available (JSON string)")
    else:
        assert (verdict, did.split(":")[0]) == ("ok", "available (object)")
        assert "a retried VBrainExecuteJobOperator reuses its job" in means


def test_the_table_says_how_job_status_carries_metadata(vbrain_emulator_profile: Any, probed: Run) -> None:
    _, did, _ = probed.row("job status echoes metadata")
    expected = {
        "no-metadata": "no metadata field",
        "repository-metadata": "the repository's metadata, not the job's",
        "metadata-string": "the job's own metadata, as a JSON string",
    }
    reading = next((name for name in expected if name in vbrain_emulator_profile), None)
    assert did.endswith(expected.get(reading or "", "the job's own metadata, as an object")), did


def test_the_table_says_whether_json_bodies_to_repository_keep_params(
    vbrain_emulator_profile: Any, probed: Run
) -> None:
    verdict, did, _ = probed.row("repository: form-data body")
    assert verdict == "ok"
    assert did.endswith("metadata kept (object), params kept")  # the provider's way works everywhere
    _, did, means = probed.row("repository: JSON body")
    if "form-only-repository" in vbrain_emulator_profile:
        assert did.endswith("metadata lost, params lost")
        assert means.startswith("JSON bodies lose params and metadata here")
    else:
        assert did.endswith("metadata kept (object), params kept")
        assert means.startswith("JSON bodies work here too")


@pytest.mark.parametrize("download", ["repository input", "job logs", "job output"])
def test_the_table_flags_downloads_that_are_not_zips(
    vbrain_emulator_profile: Any, probed: Run, download: str
) -> None:
    verdict, did, means = probed.row(f"download: {download}")
    if "non-zip-downloads" in vbrain_emulator_profile:
        assert verdict == "warn"
        assert re.search(r"not a ZIP \(\d+ bytes, application/json\).*Internal server error", did), did
        assert "fails with 'expected a ZIP'" in means
    elif "html-downloads" in vbrain_emulator_profile:
        assert verdict == "warn"
        assert re.search(r"not a ZIP \(\d+ bytes, text/html\).*Service Unavailable", did), did
    elif "base64-downloads" in vbrain_emulator_profile:
        assert verdict == "warn"
        assert "the base64 text of a ZIP" in did
        assert "(it does not decode base64)" in means
    else:
        assert (verdict, means) == ("ok", "downloads work")
        assert re.match(r"HTTP 200: a ZIP \(\d+ bytes, application/zip\) of \d+ file", did), did


@pytest.mark.parametrize("listing", ["jobs", "repositories"])
def test_the_table_measures_the_listing_delay(
    vbrain_emulator_profile: Any, probed: Run, listing: str
) -> None:
    verdict, did, means = probed.row(f"listing delay: {listing}")
    if "eventual-listing" in vbrain_emulator_profile:
        seconds = float(re.fullmatch(r"listed within ([\d.]+) s", did).group(1))  # type: ignore[union-attr]
        assert seconds >= 2.0  # the profile's delay
        assert verdict == "note"
        assert means == "reattach_settle_seconds (default 20 s) covers it"
    else:
        assert (verdict, did[:15]) == ("ok", "listed at once ")
        assert means == "reattach_settle_seconds (default 20 s) is ample"


def test_the_table_says_whether_repositories_are_scoped(vbrain_emulator_profile: Any, probed: Run) -> None:
    _, did, means = probed.row("scoping by application")
    if "application-scoped" in vbrain_emulator_profile:
        assert did == "under application CsvSummary: HTTP 404 (Invalid repository_id)"
        assert means.startswith("scoped: create a repository and run its jobs under the same application_id")
    else:
        assert did == "under application CsvSummary: HTTP 200"
        assert means.startswith("not scoped")


def test_the_probe_runs_the_job_and_reads_its_result(probed: Run) -> None:
    verdict, did, _ = probed.row("job run")
    assert verdict == "ok"
    assert did.endswith('/result output {"value": 200}')  # the Tutorial's a * b
    assert did.split(" -> ")[-1].startswith("finished (200)")


def test_the_probe_never_prints_the_api_key(probed: Run) -> None:
    assert API_KEY not in probed.out + probed.err
    assert not key_leaks(probed.out + probed.err)


# ---------------------------------------------------------------- keys, failures, interruption


def test_a_refused_key_fails_the_probe_and_a_wrong_key_is_shown_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "the-right-key-0123"  # ASCII: the emulator compares the header as it decodes it
    with EmulatorServer(api_keys=[key], queue_seconds=0.05, run_seconds=0.05) as server:
        # Two connection ids: Airflow may cache a connection it has read once in a process.
        monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_WRONG", connection_json(server.url, password="not-the-key"))
        refused = probe(server, capsys, "--conn-id", "vbrain_wrong")
        monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_RIGHT", connection_json(server.url, password=key))
        accepted = probe(server, capsys, "--conn-id", "vbrain_right")
    assert refused.status == 1
    verdict, did, means = refused.row("authentication")
    assert (verdict, did) == ("FAIL", "VBrain GET /api/v1/repository answered HTTP 403: Forbidden")
    assert means.startswith("the provider cannot work: check the connection's API key")
    assert "repository: form-data body" not in table(refused.out)  # it stops there
    assert refused.row("clean-up")[1] == "nothing was created"

    assert accepted.status == 0
    assert accepted.row("a wrong API key")[:2] == ("ok", "refused: HTTP 403 (Forbidden)")
    assert accepted.repositories == []


def test_a_failed_job_fails_the_probe_and_everything_is_still_deleted(
    vbrain_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(vbrain_emulator.url))
    run = probe(vbrain_emulator, capsys, "--job-params", json.dumps({"a": "x", "b": 1}))
    assert run.status == 1
    verdict, did, means = run.row("job run")
    assert verdict == "FAIL"
    assert "parameter 'a' is not a number" in did  # the end of the job's logs
    assert means == "the job failed: check --job-params and the application"
    assert "download: job output" not in table(run.out)
    assert (run.repositories, run.jobs) == ([], [])


def test_a_check_that_errors_fails_the_probe_and_everything_is_still_deleted(
    vbrain_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(vbrain_emulator.url))
    vbrain_emulator.inject_fault(500, count=1000, method="GET", path=r"^/api/v1/job/[^/]+$")
    run = probe(vbrain_emulator, capsys)
    assert run.status == 1
    verdict, did, _ = run.row("job status echoes metadata")
    assert verdict == "FAIL"
    assert re.match(r"VBrain GET /api/v1/job/\S+ answered HTTP 500", did), did
    assert run.row("clean-up")[0] == "ok"
    assert (run.repositories, run.jobs) == ([], [])


def _interruptible() -> None:
    # A test run in the background of a non-interactive shell ignores SIGINT, and so would the
    # probe; the default disposition lets Python turn SIGINT into KeyboardInterrupt, as in a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_probe_deletes_what_it_created(vbrain_emulator: EmulatorServer, sig: int) -> None:
    vbrain_emulator.configure(queue_seconds=60, run_seconds=60)  # the job is still queued when stopped
    env = {**os.environ, "AIRFLOW_CONN_VBRAIN_DEFAULT": connection_json(vbrain_emulator.url)}
    command = [sys.executable, "-m", "airflow_provider_vbrain.probe", *FAST, "--job-timeout", "120"]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )
    try:
        deadline = time.monotonic() + 60
        while not vbrain_emulator.jobs() and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        assert vbrain_emulator.jobs(), "the probe never submitted its job"
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, out + err
    assert "interrupted: deleting what was created" in err
    assert table(out)["clean-up"][0] == "ok"
    assert (vbrain_emulator.repositories(), vbrain_emulator.jobs()) == ([], [])


def test_an_interrupt_lost_in_a_finalizer_still_stops_the_probe() -> None:
    """Python drops an exception a signal handler raises inside a finalizer: the probe must not go
    on as if it had not been asked to stop (it once waited out its job instead of cleaning up)."""
    from airflow_provider_vbrain.probe import _signals_interrupt
    from airflow_provider_vbrain.probe._base import INTERRUPTED, progress

    class Finalized:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000):  # the handler runs here, inside the finalizer, which drops it
                pass

    try:
        with _signals_interrupt(INTERRUPTED):
            Finalized()
            with pytest.raises(KeyboardInterrupt):
                progress("the next step")
    finally:
        INTERRUPTED.clear()


# ---------------------------------------------------------------- the command line


def test_the_command_is_installed() -> None:
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "vbrain-probe"]
    assert script.value == "airflow_provider_vbrain.probe:main"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        pytest.param('{"a": 1', "argument --job-params: not JSON", id="not-json"),
        pytest.param("[1, 2]", "argument --job-params: must be a JSON object", id="not-an-object"),
    ],
)
def test_bad_job_params_are_refused_before_anything_is_sent(
    argument: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--job-params", argument])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_connection_stored_in_the_metadata_database_is_used(
    airflow_db: None, vbrain_emulator: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The UI stores connections there; outside a task, Airflow 3's task SDK would not read them."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    stored = Connection(
        conn_id="vbrain_stored",
        conn_type="vbrain",
        host=vbrain_emulator.url,
        login="ana",
        password="stored-key-0123",
        extra=json.dumps({"organization_id": "acme", "client_id": "ops", "application_id": "Tutorial"}),
    )
    with create_session() as session:
        session.add(stored)
    try:
        run = probe(vbrain_emulator, capsys, "--conn-id", "vbrain_stored")
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == "vbrain_stored").delete()
    assert run.status == 0, run.out + run.err
    assert run.row("reattach for jobs")[0] == "ok"
    assert (run.repositories, run.jobs) == ([], [])


def test_a_missing_connection_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--conn-id", "no_such_vbrain"]) == 1
    assert "vbrain-probe: cannot use connection 'no_such_vbrain'" in capsys.readouterr().err
