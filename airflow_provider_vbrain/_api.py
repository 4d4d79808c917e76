"""The I/O-free core of the VBrain client, shared by the sync and async transports.

It knows the endpoints, builds requests (path, query, headers, body), decides
whether and when to retry, and turns answers into values or typed errors. The
transports in :mod:`airflow_provider_vbrain.hooks.vbrain` only send and sleep:
they drive :func:`exchange`, a generator that yields :class:`Send` and
:class:`Sleep` commands and receives what each send produced.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import random
import re
import time
from collections.abc import Callable, Generator, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_vbrain.exceptions import (
    VBrainAPIError,
    VBrainAuthError,
    VBrainBadRequestError,
    VBrainConfigError,
    VBrainConnectionError,
    VBrainInputError,
    VBrainJobNotFinishedError,
    VBrainMaybeCreatedError,
    VBrainNotFoundError,
    VBrainRateLimitError,
    VBrainServerError,
)
from airflow_provider_vbrain.jobs import JobStatus

if TYPE_CHECKING:
    from airflow_provider_vbrain.connection import VBrainSettings

DEFAULT_BASE_URL = "https://vbrain.visagio.com"
API_PREFIX = "/api/v1"

#: Input files VBrain accepts: a ZIP of all inputs, or one data file.
INPUT_SUFFIXES = (".zip", ".csv", ".xlsx", ".json")

#: Statuses worth retrying on a request that is safe to repeat.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Statuses that prove a request was not processed, so even a create may be repeated.
NOT_PROCESSED_STATUSES = frozenset({429, 503})

_DATE_RE = re.compile(r"^\d{12}$")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<[^>]+>")
_MESSAGE_LIMIT = 300


# --------------------------------------------------------------------------- retry rule


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried: exponential backoff with full jitter, capped.

    :param max_attempts: attempts in all, the first included (1 disables retries).
    :param base_delay: seconds; the n-th retry waits up to ``base_delay * 2 ** (n - 1)``.
    :param max_delay: cap on any single wait, ``Retry-After`` included.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError(f"invalid retry policy: {self}")

    def backoff(self, retry_number: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``retry_number`` (1-based), jittered."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        return ceiling * rng()


class FailureKind(enum.Enum):
    """How a request failed without an HTTP answer."""

    #: The connection could not be made: the request never left.
    CONNECT = "could not connect"
    #: TLS failed (e.g. certificate verification): the request never left, and trying again won't help.
    TLS = "TLS handshake failed"
    #: The server did not answer in time: it may have processed the request.
    TIMEOUT = "timed out"
    #: The connection broke before an answer: the server may have processed it.
    DISCONNECTED = "connection lost"


@dataclasses.dataclass(frozen=True)
class TransportFailure:
    """A send that produced no HTTP answer, classified by the transport."""

    kind: FailureKind
    error: BaseException

    @property
    def reason(self) -> str:
        # The exception's text names the URL and the low-level cause (refused, DNS, which
        # certificate check); requests and aiohttp never put request headers in it.
        detail = _clip(str(self.error)) or "no detail"
        return f"{self.kind.value} ({type(self.error).__name__}: {detail})"


@dataclasses.dataclass(frozen=True)
class Response:
    """An HTTP answer as the core needs it. ``headers`` keys are lower-case."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Parse ``Retry-After``: delta-seconds or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def should_retry(request: ApiRequest, outcome: Response | TransportFailure) -> bool:
    """The one retry rule.

    Safe requests retry 429, 502, 503, 504, failed connections and timeouts (not TLS failures).
    A create (``POST /repository``, ``POST /job/execute``) is repeated only when
    the failure proves the server did not process it: no connection, 429, 503.
    """
    if isinstance(outcome, TransportFailure):
        if outcome.kind is FailureKind.TLS:
            return False
        return outcome.kind is FailureKind.CONNECT or not request.creates
    statuses = NOT_PROCESSED_STATUSES if request.creates else RETRY_STATUSES
    return outcome.status in statuses


def retry_delay(
    policy: RetryPolicy,
    retry_number: int,
    outcome: Response | TransportFailure,
    now: float,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before the next attempt: the server's ``Retry-After`` if given, capped."""
    if isinstance(outcome, Response):
        asked = retry_after_seconds(outcome.headers.get("retry-after"), now)
        if asked is not None:
            return min(asked, policy.max_delay)
    return policy.backoff(retry_number, rng)


# --------------------------------------------------------------------------- the exchange


@dataclasses.dataclass(frozen=True)
class Send:
    """Command: send ``request`` (attempt number ``attempt``) and report the outcome."""

    request: ApiRequest
    attempt: int


@dataclasses.dataclass(frozen=True)
class Sleep:
    """Command: wait ``seconds`` before going on."""

    seconds: float


Exchange = Generator["Send | Sleep", "Response | TransportFailure | None", Any]


def exchange(
    request: ApiRequest,
    policy: RetryPolicy,
    *,
    clock: Callable[[], float] = time.time,
    rng: Callable[[], float] = random.random,
) -> Exchange:
    """Run one API call to its end: send, retry as the rule says, then parse or raise.

    The generator's return value is the parsed value of the successful answer.
    """
    attempt = 1
    while True:
        outcome = yield Send(request, attempt)
        if outcome is None:
            raise RuntimeError("a transport must answer Send with a Response or TransportFailure")
        if isinstance(outcome, Response) and outcome.status < 300:
            return request.parse(request, outcome)
        if attempt < policy.max_attempts and should_retry(request, outcome):
            yield Sleep(retry_delay(policy, attempt, outcome, clock(), rng))
            attempt += 1
            continue
        cause = outcome.error if isinstance(outcome, TransportFailure) else None
        raise failure_error(request, outcome, attempt) from cause


def failure_error(request: ApiRequest, outcome: Response | TransportFailure, attempts: int) -> Exception:
    """The typed error for a call that ended in ``outcome``."""
    if isinstance(outcome, TransportFailure):
        ambiguous = outcome.kind in (FailureKind.TIMEOUT, FailureKind.DISCONNECTED)
    else:
        ambiguous = outcome.status in (500, 502, 504)
    if request.creates and ambiguous:
        reason = outcome.reason if isinstance(outcome, TransportFailure) else _status_text(outcome)
        return VBrainMaybeCreatedError(request.endpoint, request.creates, reason, _how_to_check(request))
    if isinstance(outcome, TransportFailure):
        return VBrainConnectionError(request.endpoint, outcome.reason, attempts)
    return api_error(request.endpoint, outcome, attempts)


def api_error(endpoint: str, response: Response, attempts: int = 1) -> VBrainAPIError:
    """Map an error answer to the matching :class:`VBrainAPIError` subclass.

    Redirects are never followed (they would carry the API key to another host):
    a 3xx is an error that names where it pointed.
    """
    message = server_message(response)
    status = response.status
    if 300 <= status < 400:
        location = response.headers.get("location", "(no Location header)")
        return VBrainAPIError(
            endpoint,
            status,
            f"redirected to {_clip(location)}; redirects are not followed, so the API key "
            "goes nowhere else: if VBrain moved, set the connection's host to the new address",
            attempts,
        )
    cls: type[VBrainAPIError]
    if status in (401, 403) or (status == 400 and message.startswith("Missing ")):
        cls = VBrainAuthError
    elif status == 400:
        cls = VBrainBadRequestError
    elif status == 404:
        cls = VBrainNotFoundError
    elif status == 429:
        cls = VBrainRateLimitError
    elif status >= 500:
        cls = VBrainServerError
    else:
        cls = VBrainAPIError
    return cls(endpoint, status, message, attempts)


def server_message(response: Response) -> str:
    """What the server said: the ``error`` or ``message`` field, or the start of the body."""
    text = response.body.decode("utf-8", errors="replace").strip()
    if not text:
        return "(empty body)"
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, Mapping):
        for key in ("error", "message", "detail"):
            if value.get(key):
                return _clip(str(value[key]))
        return _clip(json.dumps(value))
    if value is not None:
        return _clip(json.dumps(value))
    title = _TITLE_RE.search(text)
    if title and title.group(1).strip():
        return _clip(f"non-JSON answer ({response.content_type or 'no content type'}): {title.group(1)}")
    return _clip(f"non-JSON answer ({response.content_type or 'no content type'}): {_TAG_RE.sub(' ', text)}")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _status_text(response: Response) -> str:
    return f"HTTP {response.status}: {server_message(response)}"


def _how_to_check(request: ApiRequest) -> str:
    if request.creates == "job":
        return (
            f"Check the jobs of repository {request.repository_id} (GET {API_PREFIX}/job, "
            "VBrainHook.list_jobs) before submitting again."
        )
    return f"Check the repositories (GET {API_PREFIX}/repository, VBrainHook.list_repositories)."


# --------------------------------------------------------------------------- requests


@dataclasses.dataclass(frozen=True)
class Upload:
    """A file to attach as multipart ``file``; ``open`` is called once per attempt."""

    name: str
    open: Callable[[], IO[bytes]]

    @property
    def content_type(self) -> str:
        return {
            ".zip": "application/zip",
            ".csv": "text/csv",
            ".json": "application/json",
            ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }.get(_suffix(self.name), "application/octet-stream")


def _parse_none(request: ApiRequest, response: Response) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class ApiRequest:
    """One call to one endpoint, fully described and validated.

    :param method: HTTP method.
    :param path: path below ``/api/v1``, ids already percent-encoded.
    :param parse: turns the successful answer into the caller's value.
    :param query: query-string parameters.
    :param json_body: JSON body, when sent without a file.
    :param form: multipart text fields, when a file is attached.
    :param upload: the attached file.
    :param repository_id: the ``repository_id`` header of job endpoints.
    :param creates: ``"job"`` or ``"repository"`` when the call creates one (not idempotent).
    :param download: the answer is a ZIP to stream to a destination.
    """

    method: str
    path: str
    parse: Callable[[ApiRequest, Response], Any] = _parse_none
    query: Mapping[str, str] | None = None
    json_body: Mapping[str, Any] | None = None
    form: Mapping[str, str] | None = None
    upload: Upload | None = None
    repository_id: str | None = None
    creates: str | None = None
    download: bool = False

    @property
    def endpoint(self) -> str:
        """Method and full path, as error messages show it."""
        return f"{self.method} {API_PREFIX}{self.path}"


def build_headers(
    settings: VBrainSettings, application_id: str | None, request: ApiRequest
) -> dict[str, str]:
    """The scoping and authentication headers for ``request``."""
    application = application_id or settings.application_id
    if not application:
        raise VBrainConfigError(
            settings.conn_id,
            "extra application_id",
            "is not set: set it on the connection or pass application_id to the hook or task",
        )
    headers = {
        "organization_id": settings.organization_id,
        "application_id": application,
        "client_id": settings.client_id,
        "username": settings.username,
        "x-api-key": settings.api_key,
        "accept": "application/json",
    }
    if request.repository_id is not None:
        headers["repository_id"] = request.repository_id
    for name, value in headers.items():
        if _CONTROL_CHARS.search(value):
            # Never echo the value: it may be the key.
            raise VBrainInputError(f"header {name}", "contains a control character (such as a newline)")
    return headers


def resource_id(argument: str, value: Any) -> str:
    """Validate an id that goes into a path segment or header."""
    text = "" if value is None else str(value)
    if not text.strip():
        raise VBrainInputError(argument, "is empty")
    if text in (".", ".."):
        raise VBrainInputError(argument, f"{text!r} is not a valid id")
    if _CONTROL_CHARS.search(text):
        raise VBrainInputError(argument, f"{text!r} contains a control character")
    return text


def _segment(argument: str, value: Any) -> str:
    # safe="" encodes "/" and "?" too, so an id can never reach another endpoint.
    return quote(resource_id(argument, value), safe="")


def json_object(argument: str, value: Any) -> dict[str, Any] | None:
    """Check that ``value`` is None or a JSON-serialisable mapping with string keys."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise VBrainInputError(argument, f"must be a mapping (JSON object), got {type(value).__name__}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise VBrainInputError(argument, f"is not JSON-serialisable: {err}") from err
    if not all(isinstance(key, str) for key in value):
        raise VBrainInputError(argument, "keys must be strings")
    return dict(value)


def api_date(argument: str, value: Any) -> str | None:
    """Format a listing bound as VBrain wants it: ``YYYYMMDDHHMM``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y%m%d%H%M")
    text = str(value).strip()
    if not _DATE_RE.match(text):
        raise VBrainInputError(argument, f"must be a datetime or 'YYYYMMDDHHMM', got {value!r}")
    return text


def input_name(argument: str, name: str) -> str:
    """Check that an input file's name has an extension VBrain accepts."""
    if _suffix(name) not in INPUT_SUFFIXES:
        raise VBrainInputError(
            argument, f"{name!r} must be a ZIP, .csv, .xlsx or .json file (VBrain accepts no other input)"
        )
    return name


def _suffix(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return "." + base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _body(
    params: Mapping[str, Any] | None, metadata: Mapping[str, Any] | None, upload: Upload | None
) -> dict[str, Any]:
    params = json_object("params", params)
    metadata = json_object("metadata", metadata)
    fields = {k: v for k, v in (("params", params), ("metadata", metadata)) if v is not None}
    if upload is None:
        return {"json_body": fields or None}
    return {"form": {k: json.dumps(v) for k, v in fields.items()}, "upload": upload}


def parse_json(request: ApiRequest, response: Response) -> Any:
    """The body as JSON; an answer that is not JSON is an error naming the endpoint."""
    try:
        return json.loads(response.body)
    except ValueError as err:
        raise VBrainAPIError(
            request.endpoint,
            response.status,
            f"expected JSON, got {server_message(response)}",
        ) from err


def _field(name: str) -> Callable[[ApiRequest, Response], Any]:
    def parse(request: ApiRequest, response: Response) -> Any:
        value = parse_json(request, response)
        if not isinstance(value, Mapping) or name not in value:
            raise VBrainAPIError(
                request.endpoint, response.status, f"answer has no {name!r} field: {server_message(response)}"
            )
        return value[name]

    return parse


def _typed(kind: type) -> Callable[[ApiRequest, Response], Any]:
    def parse(request: ApiRequest, response: Response) -> Any:
        value = parse_json(request, response)
        if not isinstance(value, kind):
            raise VBrainAPIError(
                request.endpoint,
                response.status,
                f"expected a JSON {'list' if kind is list else 'object'}, got {server_message(response)}",
            )
        return value

    return parse


def _finished(parse: Callable[[ApiRequest, Response], Any]) -> Callable[[ApiRequest, Response], Any]:
    """Result and output answer 202 until the job ends: that is not a value."""

    def wrapped(request: ApiRequest, response: Response) -> Any:
        if response.status == 202:
            raise VBrainJobNotFinishedError(request.endpoint, 202, server_message(response))
        return parse(request, response)

    return wrapped


def _status(job_id: str, repository_id: str) -> Callable[[ApiRequest, Response], JobStatus]:
    def parse(request: ApiRequest, response: Response) -> JobStatus:
        body = _typed(dict)(request, response)
        return JobStatus.from_answer(job_id, repository_id, response.status, body)

    return parse


def _body_bytes(request: ApiRequest, response: Response) -> bytes:
    return response.body


# One builder per endpoint of the reference. Each validates its arguments, so a
# bad one fails before anything is sent.


def list_repositories(from_date: Any = None, to_date: Any = None) -> ApiRequest:
    return ApiRequest("GET", "/repository", _typed(list), query=_dates(from_date, to_date))


def create_repository(
    params: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    upload: Upload | None = None,
) -> ApiRequest:
    return ApiRequest(
        "POST",
        "/repository",
        _field("repository_id"),
        creates="repository",
        **_body(params, metadata, upload),
    )


def get_repository(repository_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/repository/{_segment('repository_id', repository_id)}", _typed(dict))


def delete_repository(repository_id: str) -> ApiRequest:
    return ApiRequest("DELETE", f"/repository/{_segment('repository_id', repository_id)}")


def get_repository_params(repository_id: str) -> ApiRequest:
    return ApiRequest("GET", f"/repository/{_segment('repository_id', repository_id)}/params", _typed(dict))


def download_repository_input(repository_id: str) -> ApiRequest:
    path = f"/repository/{_segment('repository_id', repository_id)}/input"
    return ApiRequest("GET", path, _body_bytes, download=True)


def list_jobs(repository_id: str, from_date: Any = None, to_date: Any = None) -> ApiRequest:
    return ApiRequest(
        "GET", "/job", _typed(list), query=_dates(from_date, to_date), repository_id=_repo(repository_id)
    )


def execute_job(
    repository_id: str,
    params: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    upload: Upload | None = None,
) -> ApiRequest:
    return ApiRequest(
        "POST",
        "/job/execute",
        _field("job_id"),
        repository_id=_repo(repository_id),
        creates="job",
        **_body(params, metadata, upload),
    )


def get_job_status(job_id: str, repository_id: str) -> ApiRequest:
    return _job("", job_id, repository_id, _status(resource_id("job_id", job_id), _repo(repository_id)))


def get_job_result(job_id: str, repository_id: str) -> ApiRequest:
    return _job("/result", job_id, repository_id, _finished(_field("output")))


def get_job_params(job_id: str, repository_id: str) -> ApiRequest:
    return _job("/params", job_id, repository_id, _typed(dict))


def download_job_output(job_id: str, repository_id: str) -> ApiRequest:
    return dataclasses.replace(_job("/output", job_id, repository_id, _finished(_body_bytes)), download=True)


def download_job_logs(job_id: str, repository_id: str) -> ApiRequest:
    return dataclasses.replace(_job("/logs", job_id, repository_id, _body_bytes), download=True)


def delete_job(job_id: str, repository_id: str) -> ApiRequest:
    return dataclasses.replace(_job("", job_id, repository_id, _parse_none), method="DELETE")


def _job(
    suffix: str, job_id: str, repository_id: str, parse: Callable[[ApiRequest, Response], Any]
) -> ApiRequest:
    return ApiRequest("GET", job_path(job_id) + suffix, parse, repository_id=_repo(repository_id))


def job_path(job_id: str) -> str:
    """A job's path below ``/api/v1``, the id encoded into one segment."""
    return f"/job/{_segment('job_id', job_id)}"


def _repo(repository_id: str) -> str:
    return resource_id("repository_id", repository_id)


def _dates(from_date: Any, to_date: Any) -> dict[str, str] | None:
    query = {
        name: formatted
        for name, value in (("from_date", from_date), ("to_date", to_date))
        if (formatted := api_date(name, value)) is not None
    }
    return query or None
