"""The endpoints of the VBrain reference, one builder each, and the checks on their arguments.

A builder validates its arguments and returns an :class:`ApiRequest`: a full,
immutable description of one call, typed by the value its answer parses into.
Nothing here sends anything; a bad argument fails before any request.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import IO, Any, Generic, TypeVar
from urllib.parse import quote

from airflow_provider_vbrain._client import answers
from airflow_provider_vbrain._client.answers import Parser
from airflow_provider_vbrain._client.wire import (
    API_PREFIX,
    CONTROL_CHARS,
    DATE_FORMAT,
    INPUT_SUFFIXES,
    SUBMISSION_FIELDS,
)
from airflow_provider_vbrain.exceptions import VBrainInputError
from airflow_provider_vbrain.jobs import JobStatus

__all__ = ["ENDPOINT_NAMES", "ApiRequest", "Upload", "job_path", "json_object", "resource_id"]

T = TypeVar("T")

_DATE_RE = re.compile(r"^\d{12}$")
#: The deepest nesting of params or metadata sent. What a server's JSON parser takes varies (Python's
#: refuses about a thousand levels, and the limit moves between versions); real params nest a few.
MAX_JSON_DEPTH = 500
_CONTENT_TYPES = {
    ".zip": "application/zip",
    ".csv": "text/csv",
    ".json": "application/json",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclasses.dataclass(frozen=True)
class Upload:
    """A file to attach as multipart ``file``; ``open`` is called once per attempt."""

    name: str
    open: Callable[[], IO[bytes]]

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES.get(suffix(self.name), "application/octet-stream")


@dataclasses.dataclass(frozen=True)
class ApiRequest(Generic[T]):
    """One call to one endpoint, fully described and validated.

    :param method: HTTP method.
    :param path: path below ``/api/v1``, ids already percent-encoded.
    :param parse: turns the successful answer into the caller's value.
    :param query: query-string parameters.
    :param json_body: JSON body.
    :param form: multipart/form-data text fields (sent as multipart even without a file).
    :param upload: the attached file.
    :param repository_id: the ``repository_id`` header of job endpoints.
    :param creates: ``"job"`` or ``"repository"`` when the call creates one (not idempotent).
    :param download: the answer is a ZIP to stream to a destination.
    :param name: which endpoint, as metrics name it (one of :data:`ENDPOINT_NAMES`): never an id.
    """

    method: str
    path: str
    parse: Parser[T]
    query: Mapping[str, str] | None = None
    json_body: Mapping[str, Any] | None = None
    form: Mapping[str, str] | None = None
    upload: Upload | None = None
    repository_id: str | None = None
    creates: str | None = None
    download: bool = False
    name: str = "other"

    @functools.cached_property
    def endpoint(self) -> str:
        """Method and full path, as error messages show it (a request polled again reuses it)."""
        return f"{self.method} {API_PREFIX}{self.path}"

    @property
    def accept(self) -> str:
        """The ``Accept`` header: a ZIP for downloads, else JSON."""
        return "application/zip, */*" if self.download else "application/json"


# --------------------------------------------------------------------------- argument checks


def resource_id(argument: str, value: Any) -> str:
    """Validate an id that goes into a path segment or header."""
    text = "" if value is None else str(value)
    if not text.strip():
        raise VBrainInputError(argument, "is empty")
    if text in (".", ".."):
        raise VBrainInputError(argument, f"{text!r} is not a valid id")
    if CONTROL_CHARS.search(text):
        raise VBrainInputError(argument, f"{text!r} contains a control character")
    return text


def json_object(argument: str, value: Any) -> dict[str, Any] | None:
    """Check that ``value`` is None or a JSON-serialisable mapping with string keys."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise VBrainInputError(argument, f"must be a mapping (JSON object), got {type(value).__name__}")
    if _depth(value) > MAX_JSON_DEPTH:
        raise VBrainInputError(
            argument, f"is nested more than {MAX_JSON_DEPTH} levels deep, too deep to send as JSON"
        )
    try:
        json.dumps(value, allow_nan=False)
    except RecursionError:
        raise VBrainInputError(argument, "is nested too deeply to send as JSON") from None
    except (TypeError, ValueError) as err:
        raise VBrainInputError(argument, f"is not JSON-serialisable: {err}") from err
    if not all(isinstance(key, str) for key in value):
        raise VBrainInputError(argument, "keys must be strings")
    return dict(value)


def _depth(value: Any) -> int:
    """How deep ``value`` nests lists and mappings, counted without recursion (any depth is safe)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, Mapping | list | tuple):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                break
            todo.extend(
                (child, level + 1) for child in (item.values() if isinstance(item, Mapping) else item)
            )
    return deepest


def api_date(argument: str, value: Any) -> str | None:
    """Format a listing bound as VBrain wants it: ``YYYYMMDDHHMM``; an aware datetime in UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.strftime(DATE_FORMAT)
    text = str(value).strip()
    if not _DATE_RE.match(text):
        raise VBrainInputError(argument, f"must be a datetime or 'YYYYMMDDHHMM', got {value!r}")
    return text


def input_name(argument: str, name: str) -> str:
    """Check that an input file's name has an extension VBrain accepts."""
    if suffix(name) not in INPUT_SUFFIXES:
        raise VBrainInputError(
            argument, f"{name!r} must be a ZIP, .csv, .xlsx or .json file (VBrain accepts no other input)"
        )
    return name


def suffix(name: str) -> str:
    """A file name's extension, lower-case with its dot (``""`` when it has none)."""
    base = name.rsplit("/", 1)[-1]
    return "." + base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _segment(argument: str, value: Any) -> str:
    # safe="" encodes "/" and "?" too, so an id can never reach another endpoint.
    return quote(resource_id(argument, value), safe="")


def _repo(repository_id: str) -> str:
    return resource_id("repository_id", repository_id)


def _dates(from_date: Any, to_date: Any) -> dict[str, str] | None:
    query = {
        name: formatted
        for name, value in (("from_date", from_date), ("to_date", to_date))
        if (formatted := api_date(name, value)) is not None
    }
    return query or None


def _body(
    params: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    upload: Upload | None,
    *,
    form: bool = False,
) -> dict[str, Any]:
    """The body of a create: JSON without a file, multipart form-data with one (or when ``form``)."""
    params = json_object("params", params)
    metadata = json_object("metadata", metadata)
    fields = {k: v for k, v in zip(SUBMISSION_FIELDS, (params, metadata), strict=True) if v is not None}
    if upload is None and not form:
        return {"json_body": fields or None}
    if upload is None and not fields:
        return {}  # nothing to send: no body at all, as the platform's tutorial does
    return {"form": {k: json.dumps(v) for k, v in fields.items()}, "upload": upload}


# --------------------------------------------------------------------------- the endpoints

#: Every endpoint's name (its builder's, the hook method's), as ``ApiRequest.name`` carries it into
#: metrics: a fixed set, so no id ever reaches a metric's name or tags.
ENDPOINT_NAMES = frozenset(
    {
        "list_repositories",
        "create_repository",
        "get_repository",
        "delete_repository",
        "get_repository_params",
        "download_repository_input",
        "list_jobs",
        "execute_job",
        "get_job_status",
        "get_job_result",
        "get_job_params",
        "download_job_output",
        "download_job_logs",
        "delete_job",
    }
)


def list_repositories(from_date: Any = None, to_date: Any = None) -> ApiRequest[list[str]]:
    query = _dates(from_date, to_date)
    return ApiRequest("GET", "/repository", answers.json_list, query=query, name="list_repositories")


def create_repository(
    params: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    upload: Upload | None = None,
) -> ApiRequest[str]:
    # The reference documents this endpoint as multipart/form-data only: a server that reads
    # form fields alone would silently drop a JSON body's params and metadata.
    return ApiRequest(
        "POST",
        "/repository",
        answers.text_field("repository_id"),
        creates="repository",
        name="create_repository",
        **_body(params, metadata, upload, form=True),
    )


def get_repository(repository_id: str) -> ApiRequest[dict[str, Any]]:
    return ApiRequest("GET", repository_path(repository_id), answers.json_object, name="get_repository")


def delete_repository(repository_id: str) -> ApiRequest[None]:
    return ApiRequest("DELETE", repository_path(repository_id), answers.no_value, name="delete_repository")


def get_repository_params(repository_id: str) -> ApiRequest[dict[str, Any]]:
    path = repository_path(repository_id) + "/params"
    return ApiRequest("GET", path, answers.json_object, name="get_repository_params")


def download_repository_input(repository_id: str) -> ApiRequest[bytes]:
    path = repository_path(repository_id) + "/input"
    return ApiRequest("GET", path, answers.body_bytes, download=True, name="download_repository_input")


def list_jobs(repository_id: str, from_date: Any = None, to_date: Any = None) -> ApiRequest[list[str]]:
    return ApiRequest(
        "GET",
        "/job",
        answers.json_list,
        query=_dates(from_date, to_date),
        repository_id=_repo(repository_id),
        name="list_jobs",
    )


def execute_job(
    repository_id: str,
    params: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    upload: Upload | None = None,
) -> ApiRequest[str]:
    return ApiRequest(
        "POST",
        "/job/execute",
        answers.text_field("job_id"),
        repository_id=_repo(repository_id),
        creates="job",
        name="execute_job",
        **_body(params, metadata, upload),
    )


def get_job_status(job_id: str, repository_id: str) -> ApiRequest[JobStatus]:
    parse = answers.job_status(resource_id("job_id", job_id), _repo(repository_id))
    return _job("get_job_status", "GET", "", job_id, repository_id, parse)


def get_job_result(job_id: str, repository_id: str) -> ApiRequest[Any]:
    parse = answers.finished(answers.field("output"))
    return _job("get_job_result", "GET", "/result", job_id, repository_id, parse)


def get_job_params(job_id: str, repository_id: str) -> ApiRequest[dict[str, Any]]:
    return _job("get_job_params", "GET", "/params", job_id, repository_id, answers.json_object)


def download_job_output(job_id: str, repository_id: str) -> ApiRequest[bytes]:
    parse = answers.finished(answers.body_bytes)
    request = _job("download_job_output", "GET", "/output", job_id, repository_id, parse)
    return dataclasses.replace(request, download=True)


def download_job_logs(job_id: str, repository_id: str) -> ApiRequest[bytes]:
    request = _job("download_job_logs", "GET", "/logs", job_id, repository_id, answers.body_bytes)
    return dataclasses.replace(request, download=True)


def delete_job(job_id: str, repository_id: str) -> ApiRequest[None]:
    return _job("delete_job", "DELETE", "", job_id, repository_id, answers.no_value)


def _job(
    name: str, method: str, tail: str, job_id: str, repository_id: str, parse: Parser[T]
) -> ApiRequest[T]:
    return ApiRequest(method, job_path(job_id) + tail, parse, repository_id=_repo(repository_id), name=name)


def job_path(job_id: str) -> str:
    """A job's path below ``/api/v1``, the id encoded into one segment."""
    return f"/job/{_segment('job_id', job_id)}"


def repository_path(repository_id: str) -> str:
    """A repository's path below ``/api/v1``, the id encoded into one segment."""
    return f"/repository/{_segment('repository_id', repository_id)}"
