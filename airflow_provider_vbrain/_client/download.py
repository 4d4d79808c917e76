"""A download from first attempt to last byte, with no I/O: what both transports stream through.

A download (a job's output or logs, a repository's inputs) is not held to the whole-request deadline
of API calls: it may take as long as it keeps moving. :class:`Transfer` keeps its state across the
attempts of one call: the bytes already kept (a retried attempt asks for the rest with ``Range``),
what each answer means (a whole body, the rest of it, or a reason to start over), the ZIP check of
the file's first bytes, the ``max_download_bytes`` cap, the stall rule (:class:`Stall`) and the
download's own deadline (``download_timeout``). :func:`download_exchange` runs the core's exchange
for it and stops retrying once that deadline has passed. :class:`Progress` says when a long
transfer is worth a log line.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from airflow_provider_vbrain._client.answers import not_a_zip
from airflow_provider_vbrain._client.endpoints import ApiRequest
from airflow_provider_vbrain._client.exchange import Exchange, Send, Sleep, exchange, failure_error
from airflow_provider_vbrain._client.http import Response, TransportFailure
from airflow_provider_vbrain._client.redact import redact_response
from airflow_provider_vbrain._client.retry import RetryPolicy
from airflow_provider_vbrain.exceptions import VBrainAnswerTooLargeError

__all__ = [
    "MIN_DOWNLOAD_RATE",
    "PROGRESS_INTERVAL",
    "ZIP_SIGNATURES",
    "Progress",
    "Stall",
    "Transfer",
    "download_exchange",
    "human_bytes",
]

T = TypeVar("T")

#: The first bytes of a ZIP file: a local file header, or the end record of an empty archive.
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_SIGNATURE_BYTES = 4
#: How much of a refused download is read to quote the server's answer.
QUOTED_BYTES = 64 * 1024
#: The stall rule's minimum, in bytes per second of the connection's ``timeout``: a download fails
#: when fewer than ``MIN_DOWNLOAD_RATE * timeout`` bytes arrived in the last ``timeout`` seconds.
MIN_DOWNLOAD_RATE = 1024
#: Seconds between two progress lines of a long download, at least.
PROGRESS_INTERVAL = 5.0
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)\s*/\s*(\d+|\*)\s*$", re.I)


def human_bytes(count: float) -> str:
    """``count`` bytes for a log line: ``812 B``, ``30.0 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Stall:
    """The stall rule: stalled when fewer than ``min_bytes`` arrived in the last ``window`` seconds.

    Arrivals are kept in buckets of at least an eighth of the window, each stamped with its start and
    the count before it, so memory stays flat however the bytes arrive, and the rule errs on the
    lenient side. Checks open buckets too: a silent transfer is judged from the check that first
    saw it silent, so it fails within a window and a half when checked every quarter of one.
    """

    def __init__(self, window: float, min_bytes: int, now: float) -> None:
        self.window = window
        self.min_bytes = min_bytes
        self._total = 0
        self._marks: collections.deque[tuple[float, int]] = collections.deque([(now, 0)])

    def feed(self, count: int, now: float) -> None:
        self._mark(now)
        self._total += count

    def stalled(self, now: float) -> bool:
        self._mark(now)  # a silent stretch is marked by the checks: the window moves on without bytes
        marks = self._marks
        while len(marks) > 1 and marks[1][0] <= now - self.window:
            marks.popleft()
        since, before = marks[0]
        return since <= now - self.window and self._total - before < self.min_bytes

    def _mark(self, now: float) -> None:
        if now - self._marks[-1][0] >= self.window / 8:
            self._marks.append((now, self._total))

    @property
    def check_every(self) -> float:
        """Seconds between two checks of a silent transfer."""
        return self.window / 4

    def describe(self) -> str:
        return (
            f"the download stalled: fewer than {human_bytes(self.min_bytes)} arrived in the last "
            f"{self.window:g} s (the connection's timeout, the deadline for progress)"
        )


class Progress:
    """When a long download is worth a log line: at most one every :data:`PROGRESS_INTERVAL` seconds."""

    def __init__(self, now: float, interval: float = PROGRESS_INTERVAL) -> None:
        self._start = self._last = now
        self._interval = interval
        self._first = 0

    def restart(self, done: int, now: float) -> None:
        """An attempt begins with ``done`` bytes already kept: the rate counts from here."""
        self._start, self._first = now, done

    def line(self, done: int, total: int | None, now: float) -> str | None:
        """The line to log now, or None (too soon since the last one)."""
        if now - self._last < self._interval:
            return None
        self._last = now
        rate = (done - self._first) / max(now - self._start, 1e-6)
        of = f" of {human_bytes(total)} ({100 * done / total:.0f} %)" if total else ""
        return f"{human_bytes(done)}{of} at {human_bytes(rate)}/s"


@dataclasses.dataclass(frozen=True)
class Body:
    """An answer whose body is the file from byte ``offset`` on (0: the whole file, anything kept
    is dropped); ``total`` is the file's size when the answer says it."""

    offset: int
    total: int | None


@dataclasses.dataclass(frozen=True)
class Restart:
    """An answer that cannot continue what was kept: drop it, and the next attempt starts over."""

    reason: str


#: What an answer to a download attempt means (None: not a download body; read it as an answer).
Decision = Body | Restart | Response | None


class Transfer:
    """One download's state across its attempts.

    :param request: the download's request (for messages).
    :param max_bytes: ``max_download_bytes``: the most bytes of the file; None for no limit.
    :param secrets: redacted from a refused answer before it is quoted.
    :param stall_window: the connection's ``timeout``: the stall rule's window, and how long an
        attempt may wait for its answer's headers.
    :param budget: ``download_timeout``: seconds the download may take in all, its retries and their
        waits included; None for no limit.
    """

    def __init__(
        self,
        request: ApiRequest[Any],
        *,
        max_bytes: int | None,
        secrets: Sequence[str] = (),
        stall_window: float,
        budget: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.request = request
        self.max_bytes = max_bytes
        self.secrets = tuple(secrets)
        self.stall_window = stall_window
        self.budget = budget
        self.deadline = None if budget is None else clock() + budget
        self.clock = clock
        #: Bytes of the file kept so far (written to the destination's partial file).
        self.kept = 0
        self.total: int | None = None
        self.progress = Progress(clock())
        self.stall = Stall(stall_window, int(MIN_DOWNLOAD_RATE * stall_window), clock())
        self._validator: str | None = None
        self._can_resume = False
        self._head = b""
        self._refused: Response | None = None

    # ----------------------------------------------------------------- before and after sending

    def range_headers(self) -> dict[str, str]:
        """``Range`` (and ``If-Range``) for an attempt that can continue what was kept; else none."""
        if not (self._can_resume and self.kept >= _SIGNATURE_BYTES):
            return {}
        headers = {"range": f"bytes={self.kept}-"}
        if self._validator:
            headers["if-range"] = self._validator
        return headers

    def left(self) -> float | None:
        """Seconds left before the download's deadline; None without one."""
        return None if self.deadline is None else self.deadline - self.clock()

    def headers_time(self) -> float:
        """How long an attempt may wait for its answer's headers: the connection's timeout, within
        the download's own deadline."""
        left = self.left()
        return self.stall_window if left is None else max(min(self.stall_window, left), 0.001)

    def cut_reason(self) -> str | None:
        """Why the body must be cut now (it stalled, or the download's deadline passed), or None."""
        if self.stall.stalled(self.clock()):
            return self.stall.describe()
        if self.out_of_time():
            assert self.budget is not None
            return f"the download did not end within its deadline (download_timeout, {self.budget:g} s)"
        return None

    def out_of_time(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    def answer(self, status: int, headers: Mapping[str, str]) -> Decision:
        """What the answer to an attempt (its status and lower-case headers) means."""
        asked = bool(self.range_headers())
        if status == 200:
            self._remember(headers)
            return self._begin(0, _number(headers.get("content-length")), headers)
        if status == 206 and asked:
            start, _, total = _content_range(headers.get("content-range"))
            if start != self.kept:
                return self._restart(f"asked for bytes {self.kept}- and got {headers.get('content-range')!r}")
            return self._begin(self.kept, total, headers)
        if status == 206:
            return self._restart("a partial answer (206) to a request for the whole file")
        if status == 416 and asked:
            _, _, total = _content_range(headers.get("content-range"))
            if total == self.kept:  # the last attempt had the whole file: it only missed the end
                return Response(200, headers)
            return self._restart(
                f"the server cannot send bytes {self.kept}- (416) of a file of {total} bytes"
            )
        return None

    def _restart(self, reason: str) -> Restart:
        self.dropped()
        return Restart(reason)

    def _remember(self, headers: Mapping[str, str]) -> None:
        # Resume only what the server sent as is (byte ranges count encoded bytes), and only the
        # same file: its strong ETag, else its Last-Modified date, goes in If-Range.
        etag = headers.get("etag", "")
        self._validator = etag if etag and not etag.startswith("W/") else headers.get("last-modified")
        self._can_resume = headers.get("content-encoding", "identity").strip().lower() in ("", "identity")

    def _begin(self, offset: int, total: int | None, headers: Mapping[str, str]) -> Body:
        self.kept = offset
        self.total = total if self._can_resume else None  # a compressed body's length is not the file's
        self.progress.restart(offset, self.clock())
        if offset == 0:
            self._head = b""
            self._refused = Response(200, headers)
        return Body(offset, self.total)

    # ----------------------------------------------------------------- the body

    def feed(self, chunk: bytes) -> bytes:
        """Take a piece of the body; return what to write (``b""`` while the first bytes are checked).

        :raises VBrainAPIError: the file does not start like a ZIP (the server's answer quoted).
        :raises VBrainAnswerTooLargeError: the file grew past ``max_bytes``.
        """
        self.stall.feed(len(chunk), self.clock())
        if self._refused is not None:  # the first bytes are still being checked
            self._head += chunk
            if len(self._head) < _SIGNATURE_BYTES:
                return b""
            if not self._head.startswith(ZIP_SIGNATURES):
                if len(self._head) >= QUOTED_BYTES:
                    raise self.refusal()
                return b""
            self._refused = None
            chunk, self._head = self._head, b""
        self.kept += len(chunk)
        if self.max_bytes is not None and self.kept > self.max_bytes:
            raise VBrainAnswerTooLargeError(self.request.endpoint, self.max_bytes, "max_download_bytes")
        return chunk

    def end(self) -> None:
        """The body ended: a short body that never proved to be a ZIP is refused now."""
        if self._refused is not None:
            raise self.refusal()
        self._can_resume = False  # done: nothing to resume

    def refusal(self) -> Exception:
        """The error for a body that is not a ZIP, quoting its start (redacted)."""
        page = self._refused or Response(200, {})
        page = Response(page.status, page.headers, self._head[:QUOTED_BYTES])
        return not_a_zip(self.request.endpoint, redact_response(page, self.secrets))

    def dropped(self) -> None:
        """The partial file was dropped: the next attempt asks for the whole file."""
        self.kept = 0
        self._can_resume = False

    def progress_line(self) -> str | None:
        return self.progress.line(self.kept, self.total, self.clock())


def _number(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """``Content-Range: bytes START-END/TOTAL`` (or ``bytes */TOTAL``) as numbers; Nones when unreadable."""
    match = _CONTENT_RANGE.match(value or "")
    if match is None:
        return None, None, None
    start, end, total = match.groups()
    return (
        None if start is None else int(start),
        None if end is None else int(end),
        None if total in (None, "*") else int(total),
    )


def download_exchange(
    request: ApiRequest[T],
    policy: RetryPolicy,
    transfer: Transfer,
    **options: Any,
) -> Exchange[T]:
    """:func:`.exchange` for a download: the same retries, until the download's deadline passes.

    A failed attempt is retried (resuming where it stopped) while the deadline leaves time for the
    wait and another attempt; after that the call fails with the last attempt's error.
    """
    steps = exchange(request, policy, **options)
    command = next(steps)
    last: Response | TransportFailure | None = None
    attempt = 1
    while True:
        if isinstance(command, Sleep) and last is not None:
            left = transfer.left()
            if left is not None and left <= command.seconds:
                steps.close()
                if isinstance(last, Response):
                    last = redact_response(last, transfer.secrets)
                raise failure_error(request, last, attempt, transfer.secrets) from None
        if isinstance(command, Send):
            attempt = command.attempt
        outcome = yield command
        if outcome is not None:
            last = outcome
        try:
            command = steps.send(outcome)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
