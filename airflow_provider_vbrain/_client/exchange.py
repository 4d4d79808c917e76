"""One API call from first attempt to value or error, with no I/O.

:func:`exchange` is a generator that yields :class:`Send` and :class:`Sleep`
commands and receives what each send produced; the transports drive it and
only send and sleep, so the sync and async paths cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

from airflow_provider_vbrain._client import metering
from airflow_provider_vbrain._client.answers import api_error, status_text
from airflow_provider_vbrain._client.endpoints import ApiRequest
from airflow_provider_vbrain._client.http import FailureKind, Response, TransportFailure
from airflow_provider_vbrain._client.proxy import proxy_refusal
from airflow_provider_vbrain._client.redact import redact, redact_response
from airflow_provider_vbrain._client.retry import (
    AMBIGUOUS_STATUSES,
    RetryPolicy,
    retry_delay,
    should_retry,
)
from airflow_provider_vbrain._client.wire import API_PREFIX
from airflow_provider_vbrain.exceptions import (
    VBrainConnectionError,
    VBrainInputError,
    VBrainMaybeCreatedError,
)

__all__ = ["Exchange", "Send", "Sleep", "exchange", "failure_error", "retry_note"]

T = TypeVar("T")

#: Where retries are reported when the caller gives no logger of its own (the hooks give theirs).
_log = logging.getLogger("airflow_provider_vbrain")


@dataclasses.dataclass(frozen=True)
class Send:
    """Command: send ``request`` (attempt number ``attempt``) and report the outcome."""

    request: ApiRequest[Any]
    attempt: int


@dataclasses.dataclass(frozen=True)
class Sleep:
    """Command: wait ``seconds`` before going on."""

    seconds: float


#: What a transport drives: commands out, outcomes in, the parsed value at the end.
Exchange = Generator["Send | Sleep", "Response | TransportFailure | None", T]


def exchange(
    request: ApiRequest[T],
    policy: RetryPolicy,
    *,
    secrets: Sequence[str] = (),
    clock: Callable[[], float] = time.time,
    rng: Callable[[], float] = random.random,
    log: Any = None,
) -> Exchange[T]:
    """Run one API call to its end: send, retry as the rule says, then parse or raise.

    The generator's return value is the parsed value of the successful answer. A ``407`` answer
    is the proxy's refusal, not VBrain's: it fails as a connection that could not be made. Each
    attempt's status and each retry are reported to the process's meter (:mod:`.metering`).

    :param secrets: the connection's secrets (:attr:`.VBrainSettings.secrets`: the API key, the
        proxy's URL and password), redacted from every answer and failure detail before it is read,
        so no value, message or error built from them can quote one.
    :param log: where each retry is reported, one WARNING line per retried attempt (a logger).
    """
    attempt = 1
    creates = request.creates is not None
    secrets = tuple(secrets)
    while True:
        outcome = yield Send(request, attempt)
        if outcome is None:
            raise RuntimeError("a transport must answer Send with a Response or TransportFailure")
        metering.meter().request(request.name, outcome.status if isinstance(outcome, Response) else None)
        if isinstance(outcome, Response):
            outcome = proxy_refusal(outcome) or redact_response(outcome, secrets)
        if isinstance(outcome, Response) and outcome.status < 300:
            return request.parse(request.endpoint, outcome)
        if attempt < policy.max_attempts and should_retry(creates, outcome):
            delay = retry_delay(policy, attempt, outcome, clock(), rng)
            (log or _log).warning("%s", retry_note(request, outcome, attempt, policy, delay, secrets))
            yield Sleep(delay)
            # Counted once the wait is over: a download past its deadline stops at the Sleep.
            metering.meter().retry(request.name)
            attempt += 1
            continue
        # Not chained to the library's exception: its repr may hold the request's headers, key
        # included; the error names its class and a clipped, redacted detail instead.
        raise failure_error(request, outcome, attempt, secrets) from None


def failure_error(
    request: ApiRequest[Any],
    outcome: Response | TransportFailure,
    attempts: int,
    secrets: Sequence[str] = (),
) -> Exception:
    """The typed error for a call that ended in ``outcome``: an answer :func:`exchange` has already
    redacted, or a failure whose detail ``secrets`` are redacted from here."""
    if isinstance(outcome, TransportFailure):
        ambiguous = outcome.may_have_been_processed
        reason = redact(outcome.reason, secrets)
    else:
        ambiguous = outcome.status in AMBIGUOUS_STATUSES
        reason = status_text(outcome)
    if request.creates and ambiguous:
        return VBrainMaybeCreatedError(request.endpoint, request.creates, reason, _how_to_check(request))
    if isinstance(outcome, TransportFailure):
        if outcome.kind is FailureKind.NOT_SENT:
            return VBrainInputError(
                f"VBrain {request.endpoint}", f"the HTTP library refused to send the request: {reason}"
            )
        return VBrainConnectionError(request.endpoint, reason, attempts, outcome.kind.value)
    return api_error(request.endpoint, outcome, attempts)


def retry_note(
    request: ApiRequest[Any],
    outcome: Response | TransportFailure,
    attempt: int,
    policy: RetryPolicy,
    delay: float,
    secrets: Sequence[str] = (),
) -> str:
    """The line that reports a retry: what failed, which attempt of how many, and the wait.

    Built from an answer :func:`exchange` has already redacted, or from a failure whose detail
    ``secrets`` are redacted from here, so it never quotes the key.
    """
    if isinstance(outcome, TransportFailure):
        what = redact(outcome.reason, secrets)
        asked = ""
    else:
        what = status_text(outcome)
        retry_after = outcome.headers.get("retry-after")
        asked = "" if retry_after is None else f" (Retry-After: {redact(retry_after[:60], secrets)!r})"
    return (
        f"VBrain {request.endpoint}: attempt {attempt} of {policy.max_attempts} failed: {what}; "
        f"retrying in {delay:.1f} s{asked}"
    )


def _how_to_check(request: ApiRequest[Any]) -> str:
    if request.creates == "job":
        return (
            f"Check the jobs of repository {request.repository_id} (GET {API_PREFIX}/job, "
            "VBrainHook.list_jobs) before submitting again."
        )
    return f"Check the repositories (GET {API_PREFIX}/repository, VBrainHook.list_repositories)."
