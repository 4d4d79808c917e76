"""The errors this provider raises.

Every one is an ``AirflowException``, so Airflow's retry and failure handling
applies. API errors carry the endpoint (method and path, never the host or a
credential), the HTTP status and the server's own message, so a task log says
what went wrong without anyone re-running the request. Subclasses set
``self.args`` to their constructor's arguments so that they survive pickling.
"""

from __future__ import annotations

from airflow.exceptions import AirflowException

__all__ = [
    "VBrainAPIError",
    "VBrainAnswerTooLargeError",
    "VBrainAuthError",
    "VBrainBadRequestError",
    "VBrainConfigError",
    "VBrainConnectionError",
    "VBrainError",
    "VBrainInputError",
    "VBrainJobFailedError",
    "VBrainJobNotFinishedError",
    "VBrainJobTimeoutError",
    "VBrainMaybeCreatedError",
    "VBrainNotFoundError",
    "VBrainRateLimitError",
    "VBrainReattachUnknownError",
    "VBrainResultTooLargeError",
    "VBrainServerError",
]


class VBrainError(AirflowException):
    """Base class of every error raised by this provider."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class VBrainConfigError(VBrainError, ValueError):
    """The Airflow connection for VBrain is missing a field or holds a bad value."""

    def __init__(self, conn_id: str, field: str, problem: str) -> None:
        super().__init__(f"VBrain connection {conn_id!r}: {field} {problem}")
        self.args = (conn_id, field, problem)
        self.conn_id = conn_id
        self.field = field
        self.problem = problem


class VBrainInputError(VBrainError, ValueError):
    """An argument cannot be sent to VBrain; raised before any request."""

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")
        self.args = (argument, problem)
        self.argument = argument


class VBrainConnectionError(VBrainError):
    """No usable HTTP answer: the server could not be reached, timed out or hung up.

    :param kind: how the request failed (a ``FailureKind`` value such as ``"timed out"``), when
        known. The library's own exception is not chained: its ``repr`` may hold request headers.
    """

    def __init__(self, endpoint: str, reason: str, attempts: int = 1, kind: str = "") -> None:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"VBrain {endpoint} failed{tries}: {reason}")
        self.args = (endpoint, reason, attempts, kind)
        self.endpoint = endpoint
        self.reason = reason
        self.attempts = attempts
        self.kind = kind


class VBrainAPIError(VBrainError):
    """VBrain answered with an error status.

    :param endpoint: method and path, e.g. ``GET /api/v1/job/<id>``.
    :param status: the HTTP status code.
    :param server_message: what the server said (``error`` or ``message`` field,
        or the start of a non-JSON body).
    """

    def __init__(self, endpoint: str, status: int, server_message: str, attempts: int = 1) -> None:
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"VBrain {endpoint} answered HTTP {status}{tries}: {server_message}")
        self.args = (endpoint, status, server_message, attempts)
        self.endpoint = endpoint
        self.status = status
        self.server_message = server_message
        self.attempts = attempts


class VBrainBadRequestError(VBrainAPIError):
    """HTTP 400 for a reason other than a missing scoping header."""


class VBrainAuthError(VBrainAPIError):
    """Authentication or scoping failed: HTTP 403, or 400 for a missing header."""


class VBrainNotFoundError(VBrainAPIError):
    """HTTP 404: the repository or job does not exist (for these credentials)."""


class VBrainRateLimitError(VBrainAPIError):
    """HTTP 429 that outlasted the retries."""


class VBrainServerError(VBrainAPIError):
    """HTTP 5xx from VBrain or a proxy in front of it."""


class VBrainMaybeCreatedError(VBrainError):
    """A create request may have reached VBrain although no answer confirmed it.

    Creating repositories and jobs is not idempotent, so such a request is not
    repeated blindly; the message says how to check what exists.
    """

    def __init__(self, endpoint: str, what: str, reason: str, how_to_check: str) -> None:
        super().__init__(
            f"VBrain {endpoint} may have created a {what} although it did not confirm it ({reason}); "
            f"it was not retried, to avoid a duplicate. {how_to_check}"
        )
        self.args = (endpoint, what, reason, how_to_check)
        self.endpoint = endpoint
        self.what = what
        self.reason = reason


class VBrainJobFailedError(VBrainError):
    """A VBrain job ended in the ``failed`` state (or its result could not be read)."""

    def __init__(self, job_id: str, repository_id: str, status: str, detail: str = "") -> None:
        text = f"VBrain job {job_id} in repository {repository_id} ended {status}"
        super().__init__(f"{text}: {detail}" if detail else text)
        self.args = (job_id, repository_id, status, detail)
        self.job_id = job_id
        self.repository_id = repository_id
        self.status = status
        self.detail = detail


class VBrainJobTimeoutError(VBrainError):
    """A job did not end within the time allowed for waiting on it.

    :param waited: seconds waited, when known.
    """

    def __init__(self, job_id: str, repository_id: str, waited: float | None, last_status: str) -> None:
        after = f"after waiting {waited:.0f} s" if waited is not None else "when the wait's deadline passed"
        super().__init__(f"VBrain job {job_id} in repository {repository_id} still {last_status} {after}")
        self.args = (job_id, repository_id, waited, last_status)
        self.job_id = job_id
        self.repository_id = repository_id
        self.last_status = last_status


class VBrainJobNotFinishedError(VBrainAPIError):
    """A job's result or output was asked for before the job ended (HTTP 202)."""


class VBrainResultTooLargeError(VBrainError):
    """A job's output is too large to hand on through XCom."""

    def __init__(self, job_id: str, size: int, limit: int) -> None:
        super().__init__(
            f"VBrain job {job_id} produced an output of {size:,} bytes as JSON, over the "
            f"{limit:,}-byte limit for XCom (max_result_bytes). Download it instead with "
            "VBrainDownloadJobFilesOperator(kind='output') and set fetch_result=False on the sensor "
            "(or leave wait_for_completion off the execute operator), or raise max_result_bytes "
            "if your XCom backend stores large values."
        )
        self.args = (job_id, size, limit)
        self.job_id = job_id
        self.size = size
        self.limit = limit


class VBrainReattachUnknownError(VBrainError):
    """A retried task cannot tell whether an earlier try already created its repository or job.

    Raised instead of creating a possible duplicate when the server's answers do not say which
    task created what (job status answers without the job's own metadata) and the operator's
    ``on_unknown_earlier`` is ``"fail"``.
    """

    def __init__(self, what: str, reason: str, candidates: str) -> None:
        super().__init__(
            f"Cannot tell whether an earlier try of this task already created a {what}: {reason} "
            f"(candidates: {candidates}). None was created, to avoid a duplicate. Check the candidates, "
            f"then clear the task; or set on_unknown_earlier='submit' to create one anyway. The "
            "vbrain-probe command says what this VBrain's answers allow."
        )
        self.args = (what, reason, candidates)
        self.what = what
        self.reason = reason
        self.candidates = candidates


class VBrainAnswerTooLargeError(VBrainError):
    """An answer (or a download) was larger than the connection allows; it was not read further.

    Not retried: the server answered, and would answer the same again.

    :param endpoint: method and path, e.g. ``GET /api/v1/job/<id>``.
    :param limit: the number of bytes allowed.
    :param extra: the connection extra that sets ``limit`` (``max_answer_bytes`` or
        ``max_download_bytes``).
    """

    def __init__(self, endpoint: str, limit: int, extra: str) -> None:
        super().__init__(
            f"VBrain {endpoint} answered with more than {limit:,} bytes, the limit set by the "
            f"connection's extra {extra}; the answer was not read further. Raise {extra} on the "
            "connection if answers this large are expected."
        )
        self.args = (endpoint, limit, extra)
        self.endpoint = endpoint
        self.limit = limit
        self.extra = extra
