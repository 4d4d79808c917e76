"""The VBrain connection: its defaults, and validated, immutable settings read from it.

Parsed once per hook, when a request first needs it; never at DAG-parse time. Reads the fields of
the connection object it is given and imports nothing of Airflow.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow_provider_vbrain._client import wire
from airflow_provider_vbrain._client.decoding import ACCEPT_ENCODING
from airflow_provider_vbrain._client.proxy import proxy_secrets, proxy_url_problem
from airflow_provider_vbrain._client.retry import RetryPolicy
from airflow_provider_vbrain._client.wire import API_PREFIX, DEFAULT_BASE_URL, header_value_problem

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = [
    "CONN_TYPE",
    "DEFAULT_CONN_ID",
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DEFAULT_MAX_ANSWER_BYTES",
    "DEFAULT_TIMEOUT",
    "JOB_URL_PLACEHOLDERS",
    "VBrainSettings",
    "header_value_problem",
]

#: The connection type, as Airflow's UI and ``AIRFLOW_CONN_*`` variables name it.
CONN_TYPE = "vbrain"
#: The connection hooks and tasks use when given none.
DEFAULT_CONN_ID = "vbrain_default"
#: Seconds allowed for each HTTP request when the connection's ``timeout`` extra is unset.
DEFAULT_TIMEOUT = 60.0
#: Seconds a download may take in all (retries included) when the ``download_timeout`` extra is
#: unset: 6 hours, some 8 GiB at 400 KiB/s. Stalled transfers fail long before (see reliability docs).
DEFAULT_DOWNLOAD_TIMEOUT = 6 * 3600.0
#: Most bytes of an answer (decompressed) read when the ``max_answer_bytes`` extra is unset.
DEFAULT_MAX_ANSWER_BYTES = 8 * 1024 * 1024

# A host name (underscores too: container names such as vbrain_emulator) or an IP address.
_HOSTNAME = re.compile(r"^[A-Za-z0-9._\-]+$|^[0-9A-Fa-f:.]+$")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
#: What extra ``job_url_template`` may name: ids only, so a link never carries a secret.
JOB_URL_PLACEHOLDERS = ("job_id", "repository_id", "organization_id", "client_id", "application_id")


#: The connection field each header comes from, for messages.
_CONNECTION_FIELDS = {
    wire.ORGANIZATION_HEADER: "extra organization_id",
    wire.CLIENT_HEADER: "extra client_id",
    wire.USERNAME_HEADER: "login (username)",
    wire.API_KEY_HEADER: "password (API key)",
}


@dataclasses.dataclass(frozen=True)
class VBrainSettings:
    """Everything needed to talk to VBrain, read from one Airflow connection.

    :param conn_id: the Airflow connection id it came from (for messages).
    :param base_url: scheme, host and optional port, without ``/api/v1``.
    :param username: sent as the ``username`` header.
    :param api_key: sent as ``x-api-key``; excluded from ``repr``.
    :param organization_id: sent as ``organization_id``.
    :param client_id: sent as ``client_id``.
    :param application_id: default ``application_id`` for requests, may be None.
    :param timeout: seconds allowed for each API request, from connecting to the answer's last byte; a
        download's headers must arrive within it, and its body fails when it stalls for that long.
    :param download_timeout: seconds a download may take in all, its retries included; None: no limit.
    :param verify: TLS verification: True, False or a CA-bundle path.
    :param retry: how transient failures are retried.
    :param job_url_template: the address of a job's page in VBrain's web UI, with
        placeholders among :data:`JOB_URL_PLACEHOLDERS`; None when not set.
    :param max_answer_bytes: most bytes of an answer read (decompressed); downloads excepted.
    :param max_download_bytes: most bytes of a download; None for no limit.
    :param proxy: the HTTP(S) proxy for every request, overriding ``HTTP(S)_PROXY`` and
        ``NO_PROXY``; None to follow those variables. May hold credentials: excluded from ``repr``.
    :param user_agent: sent as ``User-Agent`` by both hooks; None leaves the HTTP library's own.
    """

    conn_id: str
    base_url: str
    username: str
    api_key: str = dataclasses.field(repr=False)
    organization_id: str
    client_id: str
    application_id: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    download_timeout: float | None = DEFAULT_DOWNLOAD_TIMEOUT
    verify: bool | str = True
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    job_url_template: str | None = None
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    max_download_bytes: int | None = None
    proxy: str | None = dataclasses.field(default=None, repr=False)
    user_agent: str | None = None

    @property
    def api_url(self) -> str:
        """The base URL with the API prefix, e.g. ``https://vbrain.visagio.com/api/v1``."""
        return self.base_url + API_PREFIX

    @functools.cached_property  # read on every request: the proxy URL is parsed once
    def secrets(self) -> tuple[str, ...]:
        """What nothing may quote: the API key; the proxy URL and its password."""
        return tuple(dict.fromkeys((self.api_key, *proxy_secrets(self.proxy))))

    def headers(
        self, application_id: str | None, repository_id: str | None = None, accept: str = "application/json"
    ) -> dict[str, str]:
        """The scoping and authentication headers of a request.

        :param application_id: the task's or hook's application, else the connection's.
        :param repository_id: sent as ``repository_id`` (job endpoints).
        :param accept: the ``Accept`` header.
        """
        application = application_id or self.application_id
        if not application:
            raise _config_error(
                self.conn_id,
                "extra application_id",
                "is not set: set it on the connection or pass application_id to the hook or task",
            )
        headers = {
            wire.ORGANIZATION_HEADER: self.organization_id,
            wire.APPLICATION_HEADER: application,
            wire.CLIENT_HEADER: self.client_id,
            wire.USERNAME_HEADER: self.username,
            wire.API_KEY_HEADER: self.api_key,
            "accept": accept,
            "accept-encoding": ACCEPT_ENCODING,  # what _client.decoding decompresses, within bounds
        }
        if self.user_agent:
            headers["user-agent"] = self.user_agent
        if repository_id is not None:
            headers[wire.REPOSITORY_HEADER] = repository_id
        for name, value in headers.items():
            problem = header_value_problem(value)
            if problem is None:
                continue
            # Never echo the value: it may be the key.
            if name in _CONNECTION_FIELDS:
                raise _config_error(self.conn_id, _CONNECTION_FIELDS[name], problem)
            raise _input_error(name, f"{problem} (sent as the {name} header)")
        return headers

    def job_web_url(self, job_id: str, repository_id: str, application_id: str | None) -> str | None:
        """The job's page in VBrain's web UI, from ``job_url_template``; None without a template.

        Each id is URL-encoded, so an id cannot change the link's host or path.

        :param application_id: the task's application, else the connection's.
        """
        if self.job_url_template is None:
            return None
        values = {
            "job_id": job_id,
            "repository_id": repository_id,
            "organization_id": self.organization_id,
            "client_id": self.client_id,
            "application_id": application_id or self.application_id or "",
        }
        return self.job_url_template.format_map({k: quote(str(v), safe="") for k, v in values.items()})

    @classmethod
    def from_connection(cls, conn: Connection, conn_id: str | None = None) -> VBrainSettings:
        """Validate ``conn`` and build settings from it.

        :param conn_id: the id to name in messages, when not ``conn.conn_id`` (the UI's Test
            button reads the connection under a temporary id).
        :raises ~airflow_provider_vbrain.exceptions.VBrainConfigError: naming the connection id and the
            field at fault.
        """
        conn_id = conn_id or conn.conn_id or "<unnamed>"
        extra = _extra(conn_id, conn)

        def required(field: str, value: Any) -> str:
            text = "" if value is None else str(value).strip()
            if not text:
                raise _config_error(conn_id, field, "is required but empty")
            return text

        application_id = str(extra.get("application_id") or "").strip() or None
        return cls(
            conn_id=conn_id,
            base_url=_base_url(conn_id, conn.host, conn.port),
            username=required("login (username)", conn.login),
            api_key=required("password (API key)", conn.password),
            organization_id=required("extra organization_id", extra.get("organization_id")),
            client_id=required("extra client_id", extra.get("client_id")),
            application_id=application_id,
            timeout=_positive(conn_id, "timeout", extra.get("timeout"), DEFAULT_TIMEOUT),
            download_timeout=_download_timeout(conn_id, extra.get("download_timeout")),
            verify=_verify(conn_id, extra.get("verify")),
            retry=_retry_policy(conn_id, extra),
            job_url_template=_job_url_template(conn_id, extra.get("job_url_template")),
            max_answer_bytes=_byte_count(conn_id, "max_answer_bytes", extra.get("max_answer_bytes"))
            or DEFAULT_MAX_ANSWER_BYTES,
            max_download_bytes=_byte_count(conn_id, "max_download_bytes", extra.get("max_download_bytes")),
            proxy=_proxy(conn_id, extra.get("proxy")),
        )


def _config_error(conn_id: str, field: str, problem: str) -> Exception:
    """A :class:`~airflow_provider_vbrain.exceptions.VBrainConfigError`.

    The errors are imported when raised: Airflow reads this module's defaults (for the connection
    form of the provider info) while it starts, and exceptions.py imports Airflow.
    """
    from airflow_provider_vbrain.exceptions import VBrainConfigError

    return VBrainConfigError(conn_id, field, problem)


def _input_error(argument: str, problem: str) -> Exception:
    """A :class:`~airflow_provider_vbrain.exceptions.VBrainInputError` (imported when raised, as above)."""
    from airflow_provider_vbrain.exceptions import VBrainInputError

    return VBrainInputError(argument, problem)


def _extra(conn_id: str, conn: Connection) -> Mapping[str, Any]:
    raw = conn.extra
    if not raw:
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as err:
        raise _config_error(conn_id, "extra", f"is not valid JSON ({err})") from err
    if not isinstance(value, Mapping):
        raise _config_error(conn_id, "extra", "must be a JSON object")
    return value


def _base_url(conn_id: str, host: str | None, port: int | None) -> str:
    text = (host or "").strip()
    if not text:
        return DEFAULT_BASE_URL
    if "@" in text:
        # Never echo the host: what precedes the "@" is a user name and a password or key.
        raise _config_error(
            conn_id,
            "host (base URL)",
            "must not hold credentials (user:password@): put the username in Login and the API key "
            "in Password",
        )
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        parsed_port = parts.port
    except ValueError as err:
        raise _config_error(conn_id, "host (base URL)", f"is not a valid URL: {err}") from err
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not _HOSTNAME.match(parts.hostname)
        or "//" in parts.path
    ):
        raise _config_error(
            conn_id, "host (base URL)", f"must look like https://vbrain.example.com, got {host!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise _config_error(conn_id, "host (base URL)", "must not hold a query, fragment or credentials")
    path = parts.path.rstrip("/")
    if path.endswith(API_PREFIX):
        path = path[: -len(API_PREFIX)]
    netloc = parts.netloc
    if port and parsed_port is None:
        netloc = f"{netloc}:{port}"
    elif port and port != parsed_port:
        raise _config_error(
            conn_id,
            "port",
            f"is {port} but the base URL {host!r} says {parsed_port}: keep one, or make them agree",
        )
    return f"{parts.scheme}://{netloc}{path}"


def _retry_policy(conn_id: str, extra: Mapping[str, Any]) -> RetryPolicy:
    default = RetryPolicy()
    attempts = _positive(conn_id, "retry_attempts", extra.get("retry_attempts"), default.max_attempts)
    if attempts != int(attempts):
        raise _config_error(
            conn_id, "extra retry_attempts", f"must be a whole number, got {extra.get('retry_attempts')!r}"
        )
    return RetryPolicy(
        max_attempts=int(attempts),
        base_delay=_positive(conn_id, "retry_base_delay", extra.get("retry_base_delay"), default.base_delay),
        max_delay=_positive(conn_id, "retry_max_delay", extra.get("retry_max_delay"), default.max_delay),
    )


def _positive(conn_id: str, field: str, value: Any, default: float) -> float:
    """A positive number from the extra: a number, or its text (forms write either); unset when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return float(default)
    try:
        # True would read as 1: a switch is never a number of seconds.
        number = -1.0 if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0 < number < float("inf"):
        raise _config_error(conn_id, f"extra {field}", f"must be a positive number, got {value!r}")
    return number


def _download_timeout(conn_id: str, value: Any) -> float | None:
    """Seconds, or None for ``"none"`` (no limit on a download's time; the stall rule still applies)."""
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    return _positive(conn_id, "download_timeout", value, DEFAULT_DOWNLOAD_TIMEOUT)


def _byte_count(conn_id: str, field: str, value: Any) -> int | None:
    """A positive whole number of bytes from the extra (a number or its text); None when unset."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = _positive(conn_id, field, value, 1)
    if number != int(number):
        raise _config_error(conn_id, f"extra {field}", f"must be a whole number of bytes, got {value!r}")
    return int(number)


def _verify(conn_id: str, value: Any) -> bool | str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if not isinstance(value, str):
        raise _config_error(
            conn_id, "extra verify", f"must be true, false or a CA-bundle path, got {value!r}"
        )
    text = value.strip()
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    return text


def _job_url_template(conn_id: str, value: Any) -> str | None:
    """The template checked whole: every placeholder known, and an http(s) address without credentials."""
    field = "extra job_url_template"
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    known = ", ".join("{" + name + "}" for name in JOB_URL_PLACEHOLDERS)
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as err:
        raise _config_error(conn_id, field, f"is not a valid template ({err}); use {known}") from err
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        # Only bare names: "{job_id.__class__}" or "{0}" would read more than an id.
        if name not in JOB_URL_PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise _config_error(conn_id, field, f"has an unknown placeholder {shown}; use {known}")
    sample = urlsplit(text.format_map(dict.fromkeys(JOB_URL_PLACEHOLDERS, "x")))
    if sample.scheme not in ("http", "https") or not sample.hostname:
        raise _config_error(
            conn_id,
            field,
            f"must be an http(s) address such as https://vbrain.example.com/jobs/{{job_id}}, got {text!r}",
        )
    if sample.username or sample.password:
        raise _config_error(conn_id, field, "must not hold credentials")
    return text


def _proxy(conn_id: str, value: Any) -> str | None:
    """The proxy URL, e.g. ``http://user:password@proxy.example.com:3128``; never echoed (a password)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = value.strip() if isinstance(value, str) else ""
    problem = proxy_url_problem(text) if text else "must be a URL such as http://proxy.example.com:3128"
    if problem is not None:
        raise _config_error(
            conn_id, "extra proxy", f"{problem} (the value is not shown: it may hold a password)"
        )
    return text
