"""The provider's metrics through Airflow's ``Stats``: names, tags and types, what is sent when nothing
is configured (nothing, and no warning), and Airflow's real StatsD client sending to a UDP socket."""

from __future__ import annotations

import collections
import json
import logging
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_vbrain._airflow import compat, metrics
from airflow_provider_vbrain._airflow.metrics import StatsMeter
from airflow_provider_vbrain._client import metering
from airflow_provider_vbrain._client.endpoints import ENDPOINT_NAMES
from airflow_provider_vbrain._transport.aio import close_shared_session
from airflow_provider_vbrain.hooks.vbrain import VBrainAsyncHook, VBrainHook
from airflow_provider_vbrain.jobs import EventStatus
from tests.core import Recorder

STATUS_PATH = r"^/api/v1/job/[^/]+$"


class FakeStats:
    """Airflow's ``Stats`` as the meter calls it, keeping what it was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def incr(self, stat: str, count: int = 1, rate: float = 1, *, tags: dict[str, str] | None = None) -> None:
        self.sent.append(("incr", stat, tags))

    def timing(self, stat: str, dt: Any, *, tags: dict[str, str] | None = None) -> None:
        self.sent.append(("timing", stat, dt, tags))


class BrokenStats:
    def incr(self, *args: Any, **kwargs: Any) -> None:
        raise OSError("the metrics backend is gone")

    timing = incr


@pytest.fixture
def fake() -> FakeStats:
    return FakeStats()


@pytest.fixture
def restore_meter() -> Iterator[None]:
    previous = metering.set_meter(None)
    yield
    metering.set_meter(previous)


# -- names, tags and types ---------------------------------------------------------------------


def test_a_request_is_counted_tagged_and_under_a_name_that_spells_its_tags(fake: FakeStats) -> None:
    StatsMeter(fake).request("get_job_status", 202)
    assert fake.sent == [
        ("incr", "vbrain.requests", {"endpoint": "get_job_status", "status_class": "2xx"}),
        ("incr", "vbrain.requests.get_job_status.2xx", None),
    ]


def test_a_429_is_a_4xx_and_throttled(fake: FakeStats) -> None:
    StatsMeter(fake).request("execute_job", 429)
    assert fake.sent[2:] == [
        ("incr", "vbrain.throttled", {"endpoint": "execute_job"}),
        ("incr", "vbrain.throttled.execute_job", None),
    ]
    assert fake.sent[1] == ("incr", "vbrain.requests.execute_job.4xx", None)


def test_no_answer_is_an_error_and_a_retry_is_counted(fake: FakeStats) -> None:
    meter = StatsMeter(fake)
    meter.request("list_jobs", None)
    meter.retry("list_jobs")
    assert [sent[1] for sent in fake.sent] == [
        "vbrain.requests",
        "vbrain.requests.list_jobs.error",
        "vbrain.retries",
        "vbrain.retries.list_jobs",
    ]
    assert fake.sent[2][2] == {"endpoint": "list_jobs"}


def test_the_end_of_a_wait_counts_it_and_times_its_polls_and_duration(fake: FakeStats) -> None:
    StatsMeter(fake).wait_ended(EventStatus.TIMEOUT, 12, 61.5)
    tags = {"outcome": "timeout"}
    assert fake.sent == [
        ("incr", "vbrain.wait.ended", tags),
        ("incr", "vbrain.wait.ended.timeout", None),
        ("timing", "vbrain.wait.polls", 12, tags),
        ("timing", "vbrain.wait.polls.timeout", 12, None),
        ("timing", "vbrain.wait.duration", timedelta(seconds=61.5), tags),
        ("timing", "vbrain.wait.duration.timeout", timedelta(seconds=61.5), None),
    ]


def test_a_held_request_is_timed(fake: FakeStats) -> None:
    meter = StatsMeter(fake)
    meter.held(0.25)
    meter.held(-1.0)  # a clock that stepped back: no negative time
    meter.held(float("nan"))
    assert fake.sent == [
        ("timing", "vbrain.held", timedelta(seconds=0.25), None),
        ("timing", "vbrain.held", timedelta(0), None),
    ]


def test_without_names_that_spell_tags_only_the_tagged_names_go(fake: FakeStats) -> None:
    meter = StatsMeter(fake, dotted=False)
    meter.request("get_job_result", 500)
    meter.wait_ended("failed", 2, 3.0)
    assert [sent[1] for sent in fake.sent] == [
        "vbrain.requests",
        "vbrain.wait.ended",
        "vbrain.wait.polls",
        "vbrain.wait.duration",
    ]


def test_ids_and_endpoint_texts_never_reach_a_name_or_tag(fake: FakeStats) -> None:
    meter = StatsMeter(fake)
    meter.request("GET /api/v1/job/job-8c1f", 200)
    meter.retry("job-8c1f")
    meter.wait_ended("job-8c1f", 1, 1.0)
    assert "job-8c1f" not in repr(fake.sent)
    assert {sent[1] for sent in fake.sent} >= {"vbrain.requests.other.2xx", "vbrain.wait.ended.other"}


def every_name_and_tag() -> tuple[set[str], set[str]]:
    """Every metric name and tag (``key=value``) the meter can send."""
    fake = FakeStats()
    meter = StatsMeter(fake)
    for endpoint in [*ENDPOINT_NAMES, "anything else"]:
        for status in (None, 100, 200, 302, 429, 503, 700):
            meter.request(endpoint, status)
        meter.retry(endpoint)
    for outcome in [*EventStatus, "anything else"]:
        meter.wait_ended(outcome, 1, 1.0)
    meter.held(1.0)
    tags = {f"{k}={v}" for sent in fake.sent for k, v in (sent[-1] or {}).items()}
    return {sent[1] for sent in fake.sent}, tags


def test_every_name_passes_airflows_stat_name_checks() -> None:
    validators = ("airflow.sdk._shared.observability.metrics.validators", "airflow.metrics.validators")
    statsd_check = compat.find("stat_name_default_handler", *validators)
    otel_check = compat.find("stat_name_otel_handler", *validators)
    names, tags = every_name_and_tag()
    endpoints, outcomes = len(ENDPOINT_NAMES) + 1, len(EventStatus) + 1  # each with "other"
    # 7 tagged names; spelled out: requests by endpoint and 7 classes, throttled and retries by
    # endpoint, and the 3 wait metrics but held by outcome.
    assert len(names) == 7 + endpoints * 7 + 2 * endpoints + 3 * outcomes
    for name in names:
        assert statsd_check(name) == name
        assert otel_check("airflow", name) == f"airflow.{name}"
    assert all(set(tag) <= set("abcdefghijklmnopqrstuvwxyz_0123456789=") for tag in tags)


def test_a_failing_backend_never_fails_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    meter = StatsMeter(BrokenStats())
    with caplog.at_level(logging.DEBUG, logger="airflow_provider_vbrain._airflow.metrics"):
        meter.request("get_job_status", 200)
        meter.retry("get_job_status")
        meter.wait_ended("succeeded", 1, 1.0)
        meter.held(1.0)
    assert [record.levelno for record in caplog.records] == [logging.DEBUG] * 4


def test_a_failing_backend_never_fails_a_request(vbrain_conn: Any, restore_meter: None) -> None:
    metering.set_meter(StatsMeter(BrokenStats()))
    assert VBrainHook().list_repositories() == []


# -- installing the meter ----------------------------------------------------------------------


def test_airflows_stats_is_found_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = compat.airflow_stats()
        assert callable(stats.incr)
        assert callable(stats.timing)


@pytest.mark.parametrize("option", ["STATSD_ON", "STATSD_DATADOG_ENABLED", "OTEL_ON"])
def test_the_meter_is_installed_when_airflow_sends_metrics(
    option: str, monkeypatch: pytest.MonkeyPatch, restore_meter: None
) -> None:
    monkeypatch.setenv(f"AIRFLOW__METRICS__{option}", "True")
    metrics.install()
    assert isinstance(metering.meter(), StatsMeter)
    assert metering.meter().dotted


def test_legacy_names_off_sends_tagged_names_only(
    monkeypatch: pytest.MonkeyPatch, restore_meter: None
) -> None:
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__LEGACY_NAMES_ON", "False")
    metrics.install()
    assert not metering.meter().dotted  # type: ignore[attr-defined]


def test_a_meter_set_before_is_kept(monkeypatch: pytest.MonkeyPatch, restore_meter: None) -> None:
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    recorder = Recorder()
    metering.set_meter(recorder)
    metrics.install()
    assert metering.meter() is recorder


def test_nothing_configured_leaves_the_no_op_meter(restore_meter: None) -> None:
    assert not metrics.metrics_on()
    metrics.install()
    assert metering.meter() is metering.NOOP


def test_airflows_own_stats_unconfigured_takes_every_metric_silently(
    vbrain_conn: Any, restore_meter: None, caplog: pytest.LogCaptureFixture
) -> None:
    """With no backend configured, Airflow's real Stats drops what the meter sends: no error, no
    warning (the meter is not installed then; this is what a meter set by hand would do)."""
    metering.set_meter(StatsMeter())
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        hook = VBrainHook()
        repository_id = hook.create_repository()
        hook.list_jobs(repository_id)
        metering.meter().wait_ended("succeeded", 1, 1.0)
        metering.meter().held(0.5)
    assert [str(w.message) for w in caught] == []
    assert not [r for r in caplog.records if r.name.startswith("airflow_provider_vbrain._airflow.metrics")]


# -- the hooks report what they send ------------------------------------------------------------


def test_the_sync_hook_reports_each_attempt(vbrain_conn: Any, recorded: Recorder) -> None:
    hook = VBrainHook()
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id, {"a": 1, "b": 2})
    vbrain_conn.inject_fault(429, method="GET", path=STATUS_PATH, retry_after="0")
    vbrain_conn.inject_fault(method="GET", path=STATUS_PATH, drop=True)
    hook.get_job_status(job_id, repository_id)
    assert recorded.calls == [
        ("request", "create_repository", 201),
        ("request", "execute_job", 201),
        ("request", "get_job_status", 429),
        ("retry", "get_job_status"),
        ("request", "get_job_status", None),
        ("retry", "get_job_status"),
        ("request", "get_job_status", 202),
    ]


async def test_the_async_hook_reports_each_attempt(vbrain_conn: Any, recorded: Recorder) -> None:
    repository_id = VBrainHook().create_repository()
    job_id = VBrainHook().execute_job(repository_id, {"a": 1, "b": 2})
    del recorded.calls[:]
    vbrain_conn.inject_fault(503, method="GET", path=STATUS_PATH)
    try:
        await VBrainAsyncHook().get_job_status(job_id, repository_id)
    finally:
        await close_shared_session()
    assert recorded.calls == [
        ("request", "get_job_status", 503),
        ("retry", "get_job_status"),
        ("request", "get_job_status", 202),
    ]


# -- Airflow's StatsD client, a real UDP socket ----------------------------------------------------

#: Run in a fresh process: Airflow sets up its ``Stats`` from ``[metrics]`` once per process.
SCENARIO = """
import json
try:  # Airflow 3.2+ sets Stats up where a task or the triggerer starts, as the task SDK's serde loads
    import airflow.sdk.serde  # noqa: F401
except ImportError:  # before 3.2 Stats sets itself up at first use
    pass
from airflow_provider_vbrain._client.metering import meter
from airflow_provider_vbrain.hooks.vbrain import VBrainHook

hook = VBrainHook()
repository_id = hook.create_repository()
job_id = hook.execute_job(repository_id, {"a": 1, "b": 2})
hook.get_job_status(job_id, repository_id)
meter().wait_ended("succeeded", 3, 1.5)
meter().held(0.25)
print(json.dumps([type(meter()).__name__, repository_id, job_id]))
"""


def statsd_run(emulator: Any, **metrics_options: str) -> tuple[list[str], list[str]]:
    """Run :data:`SCENARIO` against ``emulator`` with Airflow's StatsD client sending to a UDP socket
    bound here; return the packets received and what the scenario printed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        options = {
            "STATSD_ON": "True",
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": str(sink.getsockname()[1]),
            "STATSD_PREFIX": "airflow",
            **metrics_options,
        }
        env = {**os.environ, **{f"AIRFLOW__METRICS__{k}": v for k, v in options.items()}}
        # No Fernet key: once an earlier test's `airflow` command has written one to the airflow.cfg
        # of the tests' AIRFLOW_HOME, Airflow 3.1.8 fails to read any connection with a password
        # (its get_fernet sets an attribute the cryptography it resolves with no longer allows).
        env["AIRFLOW__CORE__FERNET_KEY"] = ""
        emulator.inject_fault(429, method="GET", path=STATUS_PATH, retry_after="0")
        emulator.inject_fault(503, method="GET", path=STATUS_PATH)
        emulator.inject_fault(method="GET", path=STATUS_PATH, drop=True)
        done = subprocess.run(
            [sys.executable, "-c", SCENARIO], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-3000:]
        # Sent over loopback before the process ended: every packet is in the socket's buffer now.
        sink.setblocking(False)
        packets = []
        while True:
            try:
                packets.append(sink.recv(65536).decode())
            except BlockingIOError:
                break
    return packets, json.loads(done.stdout.strip().splitlines()[-1])


def readings(packets: list[str]) -> dict[tuple[str, str], list[float]]:
    """The provider's packets (``name:value|type``) as values by name and type."""
    found: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for packet in packets:
        name, _, rest = packet.partition(":")
        value, _, kind = rest.partition("|")
        if name.startswith("airflow.vbrain"):
            found[name, kind].append(float(value))
    return dict(found)


def test_statsd_receives_every_metric_under_names_without_ids(vbrain_conn: Any) -> None:
    packets, (meter, repository_id, job_id) = statsd_run(vbrain_conn)
    assert meter == "StatsMeter"
    assert not [p for p in packets if repository_id in p or job_id in p]
    p = "airflow.vbrain."
    assert readings(packets) == {
        (p + "requests", "c"): [1.0] * 6,
        (p + "requests.create_repository.2xx", "c"): [1.0],
        (p + "requests.execute_job.2xx", "c"): [1.0],
        (p + "requests.get_job_status.4xx", "c"): [1.0],
        (p + "requests.get_job_status.5xx", "c"): [1.0],
        (p + "requests.get_job_status.error", "c"): [1.0],
        (p + "requests.get_job_status.2xx", "c"): [1.0],
        (p + "throttled", "c"): [1.0],
        (p + "throttled.get_job_status", "c"): [1.0],
        (p + "retries", "c"): [1.0] * 3,
        (p + "retries.get_job_status", "c"): [1.0] * 3,
        (p + "wait.ended", "c"): [1.0],
        (p + "wait.ended.succeeded", "c"): [1.0],
        (p + "wait.polls", "ms"): [3.0],
        (p + "wait.polls.succeeded", "ms"): [3.0],
        (p + "wait.duration", "ms"): [1500.0],
        (p + "wait.duration.succeeded", "ms"): [1500.0],
        (p + "held", "ms"): [250.0],
    }


def test_statsd_with_influxdb_tags_receives_the_tags(vbrain_conn: Any) -> None:
    packets, _ = statsd_run(vbrain_conn, STATSD_INFLUXDB_ENABLED="True", LEGACY_NAMES_ON="False")
    p = "airflow.vbrain."
    requests = p + "requests,endpoint=get_job_status,status_class="
    assert readings(packets) == {
        (p + "requests,endpoint=create_repository,status_class=2xx", "c"): [1.0],
        (p + "requests,endpoint=execute_job,status_class=2xx", "c"): [1.0],
        **{(requests + status_kind, "c"): [1.0] for status_kind in ("4xx", "5xx", "error", "2xx")},
        (p + "throttled,endpoint=get_job_status", "c"): [1.0],
        (p + "retries,endpoint=get_job_status", "c"): [1.0] * 3,
        (p + "wait.ended,outcome=succeeded", "c"): [1.0],
        (p + "wait.polls,outcome=succeeded", "ms"): [3.0],
        (p + "wait.duration,outcome=succeeded", "ms"): [1500.0],
        (p + "held", "ms"): [250.0],
    }
