"""Airflow's ``Stats`` behind the client's meter: the provider's metrics go wherever the deployment
sends Airflow's own (StatsD, Datadog, OpenTelemetry), named as the metrics page of the docs lists.

Importing this module (the hooks do) installs :class:`StatsMeter` when ``[metrics]`` turns a backend
on. Otherwise the client keeps its no-op meter, and a status poll pays a method call for metrics.

Each metric is sent the way Airflow sends its own: one name with the dimensions as tags
(``vbrain.requests`` tagged ``endpoint`` and ``status_class``), and, since plain StatsD drops tags,
the same count under a name that spells them (``vbrain.requests.get_job_status.2xx``), unless
``[metrics] legacy_names_on`` (Airflow 3.2+) turns such names off.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from airflow_provider_vbrain._airflow import compat
from airflow_provider_vbrain._client import metering
from airflow_provider_vbrain._client.metering import Meter, endpoint_name, outcome_name, status_class

__all__ = ["PREFIX", "StatsMeter", "install", "metrics_on"]

log = logging.getLogger(__name__)

#: What every metric's name starts with (after the deployment's own ``statsd_prefix``, ``airflow``).
PREFIX = "vbrain"
#: The ``[metrics]`` options of which one on means Airflow sends metrics somewhere.
_BACKENDS = ("statsd_on", "statsd_datadog_enabled", "otel_on")


def metrics_on() -> bool:
    """Whether Airflow's ``[metrics]`` sends metrics anywhere (StatsD, Datadog or OpenTelemetry)."""
    from airflow.configuration import conf

    return any(conf.getboolean("metrics", option, fallback=False) for option in _BACKENDS)


def _names_with_dimensions() -> bool:
    """``[metrics] legacy_names_on`` (Airflow 3.2+; on where it does not exist, as before 3.2)."""
    from airflow.configuration import conf

    return conf.getboolean("metrics", "legacy_names_on", fallback=True)


class StatsMeter(Meter):
    """The meter that sends through Airflow's ``Stats``; a failure to send is logged at DEBUG, never
    raised into the request or wait that reported it.

    :param stats: the ``Stats`` to send through (default: Airflow's, looked up at first use).
    :param dotted: also send each metric under a name that spells its dimensions, for StatsD.
    """

    __slots__ = ("_stats", "dotted")

    def __init__(self, stats: Any = None, *, dotted: bool = True) -> None:
        self._stats = stats
        self.dotted = dotted

    @property
    def stats(self) -> Any:
        if self._stats is None:
            self._stats = compat.airflow_stats()
        return self._stats

    def request(self, endpoint: str, status: int | None) -> None:
        try:
            name, status_kind = endpoint_name(endpoint), status_class(status)
            self._count("requests", {"endpoint": name, "status_class": status_kind}, name, status_kind)
            if status == 429:
                self._count("throttled", {"endpoint": name}, name)
        except Exception:
            log.debug("VBrain metrics: a request could not be counted", exc_info=True)

    def retry(self, endpoint: str) -> None:
        try:
            name = endpoint_name(endpoint)
            self._count("retries", {"endpoint": name}, name)
        except Exception:
            log.debug("VBrain metrics: a retry could not be counted", exc_info=True)

    def wait_ended(self, outcome: str, polls: int, seconds: float) -> None:
        try:
            name = outcome_name(outcome)
            tags = {"outcome": name}
            self._count("wait.ended", tags, name)
            self._time("wait.polls", int(polls), tags, name)
            if math.isfinite(seconds):
                self._time("wait.duration", timedelta(seconds=max(seconds, 0.0)), tags, name)
        except Exception:
            log.debug("VBrain metrics: the end of a wait could not be recorded", exc_info=True)

    def held(self, seconds: float) -> None:
        try:
            if math.isfinite(seconds):
                self._time("held", timedelta(seconds=max(seconds, 0.0)), None)
        except Exception:
            log.debug("VBrain metrics: a held request could not be recorded", exc_info=True)

    def _count(self, metric: str, tags: dict[str, str], *dimensions: str) -> None:
        stats = self.stats
        stats.incr(f"{PREFIX}.{metric}", tags=tags)
        if self.dotted:
            stats.incr(".".join((PREFIX, metric, *dimensions)))

    def _time(
        self, metric: str, value: timedelta | int, tags: dict[str, str] | None, *dimensions: str
    ) -> None:
        # A timedelta, as Airflow's own timers pass: each backend turns it into its unit (StatsD ms).
        stats = self.stats
        stats.timing(f"{PREFIX}.{metric}", value, tags=tags)
        if self.dotted and dimensions:
            stats.timing(".".join((PREFIX, metric, *dimensions)), value)


def install() -> None:
    """Put :class:`StatsMeter` behind the client's meter when Airflow sends metrics somewhere and no
    other meter was set; otherwise leave the no-op meter (a configuration error included: metrics
    must not stop the hooks from loading)."""
    try:
        if metering.meter() is metering.NOOP and metrics_on():
            metering.set_meter(StatsMeter(dotted=_names_with_dimensions()))
    except Exception:
        log.debug("VBrain metrics: not installed", exc_info=True)


install()
