"""Dates as the emulator writes and reads them: ``created_on``, log lines, and the listings' bounds.

The listing bounds (``from_date``, ``to_date``) are read in the format the client writes them
(``DATE_FORMAT`` in ``vbrain_emulator.wire``).
"""

from __future__ import annotations

from datetime import datetime, timezone

from vbrain_emulator.errors import EmulatorError
from vbrain_emulator.wire import DATE_FORMAT

__all__ = ["CREATED_ON_FORMAT", "created_on", "in_range", "log_time", "parse_date_filter", "utc"]

#: ``created_on`` in the platform's answers (the reference's examples).
CREATED_ON_FORMAT = "%Y-%m-%d_%H:%M:%S"
# strptime accepts fewer digits than the format writes ("2026112810" parses); the reference's bounds
# are always this long.
_DATE_FILTER_LENGTH = len(datetime(2000, 1, 1).strftime(DATE_FORMAT))


def utc(timestamp: float) -> datetime:
    """A clock reading as an aware UTC datetime.

    :param timestamp: seconds since the epoch.
    """
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def created_on(moment: datetime) -> str:
    """The ``created_on`` text of an object created at ``moment``.

    :param moment: an aware UTC datetime.
    """
    return moment.strftime(CREATED_ON_FORMAT)


def log_time(timestamp: float) -> str:
    """The timestamp of a ``job.log`` line.

    :param timestamp: seconds since the epoch.
    """
    return utc(timestamp).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_date_filter(name: str, value: str | None) -> datetime | None:
    """Parse a ``from_date``/``to_date`` query value (``YYYYMMDDHHMM``, UTC).

    :param name: the query parameter's name, for the error message.
    :param value: its value, or None when absent.
    :raises EmulatorError: 400 naming the parameter when the value is malformed.
    """
    if value is None:
        return None
    try:
        if len(value) != _DATE_FILTER_LENGTH or not value.isdigit():
            raise ValueError(value)
        return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise EmulatorError(400, f"Invalid {name}: {value!r} (expected YYYYMMDDHHMM)") from None


def in_range(created: datetime, start: datetime | None, end: datetime | None) -> bool:
    """Whether a creation time falls within listing bounds (either may be None: unbounded).

    :param created: when the object was created (aware UTC).
    :param start: the ``from_date`` bound, or None.
    :param end: the ``to_date`` bound, or None.
    """
    # Filters have minute resolution and both ends are inclusive, so compare whole minutes.
    minute = created.replace(second=0, microsecond=0)
    return (start is None or minute >= start) and (end is None or minute <= end)
