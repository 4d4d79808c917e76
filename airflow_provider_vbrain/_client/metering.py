"""What the client counts, with no metrics library: the :class:`Meter` it reports to, one per process.

The exchange reports each attempt's answer and each retry; the wait loop reports each wait's end,
and the per-connection back-off the time it held a request. Where the numbers go is not decided
here: the default meter drops them at the cost of a method call (they happen on every status poll
of every trigger), and the hooks install Airflow's ``Stats`` behind one when the deployment has
metrics configured (:mod:`airflow_provider_vbrain._airflow.metrics`). Tests swap it with
:func:`set_meter`.

Everything a metric may be named or tagged with comes from a fixed set (:func:`endpoint_name`,
:func:`status_class`, :func:`outcome_name`), so no id or free text ever reaches a metric.
"""

from __future__ import annotations

import enum

from airflow_provider_vbrain._client.endpoints import ENDPOINT_NAMES

__all__ = [
    "NOOP",
    "OUTCOMES",
    "STATUS_CLASSES",
    "Meter",
    "endpoint_name",
    "meter",
    "outcome_name",
    "set_meter",
    "status_class",
]

#: What an attempt's status is counted as: its class, or ``error`` when no answer came.
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "error", "other")
#: How a wait on a job can end (:class:`~airflow_provider_vbrain.jobs.EventStatus`'s values).
OUTCOMES = frozenset({"succeeded", "failed", "timeout", "error"})
#: What stands for a value outside the fixed sets.
OTHER = "other"


class Meter:
    """Where the client reports what it counts. This base drops everything: subclass it and override
    the methods wanted. A method must return quickly and never raise (a request must not fail because
    a metric could not be sent): the Stats meter swallows its own errors.
    """

    __slots__ = ()

    def request(self, endpoint: str, status: int | None) -> None:
        """One attempt of one call ended.

        :param endpoint: the request's :attr:`~airflow_provider_vbrain._client.endpoints.ApiRequest.name`
            (``get_job_status``, ``execute_job``...; see :func:`endpoint_name`).
        :param status: the answer's HTTP status; None when no answer came (the connection could not be
            made or broke, TLS failed, the deadline passed, the library refused to send it).
        """

    def retry(self, endpoint: str) -> None:
        """A failed attempt is being repeated: called as the next attempt begins, after the wait.

        :param endpoint: as for :meth:`request`.
        """

    def wait_ended(self, outcome: str, polls: int, seconds: float) -> None:
        """A wait on a job ended.

        :param outcome: the end event's status: ``succeeded``, ``failed``, ``timeout`` or ``error``.
        :param polls: how many times the job's status was read during the wait.
        :param seconds: how long the wait took.
        """

    def held(self, seconds: float) -> None:
        """A request was held back this long by the client's own per-connection back-off.

        :param seconds: the time it waited before it could be sent.
        """


#: The meter in force when nothing is configured: it drops everything.
NOOP = Meter()
_current: Meter = NOOP


def meter() -> Meter:
    """The process's meter (:data:`NOOP` unless one was set)."""
    return _current


def set_meter(new: Meter | None) -> Meter:
    """Make ``new`` the process's meter (None: the no-op one again); return the one it replaces."""
    global _current
    previous, _current = _current, NOOP if new is None else new
    return previous


def endpoint_name(endpoint: str) -> str:
    """``endpoint`` if it is one of the endpoints' names (:data:`.ENDPOINT_NAMES`), else ``other``:
    an endpoint's text (``GET /api/v1/job/<id>``) or anything else never passes."""
    return endpoint if endpoint in ENDPOINT_NAMES else OTHER


def status_class(status: int | None) -> str:
    """``2xx``, ``4xx``... for an HTTP status; ``error`` for None (no answer); ``other`` past 599."""
    if status is None:
        return "error"
    if 100 <= status <= 599:
        return STATUS_CLASSES[status // 100 - 1]
    return OTHER


def outcome_name(outcome: str) -> str:
    """A wait's outcome as metrics name it (an :class:`enum.Enum` member counts by its value);
    ``other`` for anything but the four statuses of a wait's end event."""
    value = outcome.value if isinstance(outcome, enum.Enum) else outcome
    return value if value in OUTCOMES else OTHER
