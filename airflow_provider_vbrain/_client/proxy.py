"""A proxy between the hooks and VBrain: its URL checked, what of it is secret, and how it fails.

Both hooks send through the connection's ``proxy`` extra when it is set, else through the proxy the
environment names (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``). A proxy that fails
(cannot be reached, refuses the tunnel or the request) fails before the request reaches VBrain: the
transports classify their libraries' proxy errors as :class:`ProxyFailure` of kind ``CONNECT``, and
a ``407`` answer (a plain-HTTP request the proxy refused) becomes one here, so a create may be
repeated.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from airflow_provider_vbrain._client.http import FailureKind, Response, TransportFailure
from airflow_provider_vbrain._client.wire import CONTROL_CHARS

__all__ = [
    "PROXY_AUTHENTICATION_REQUIRED",
    "ProxyFailure",
    "proxy_failure",
    "proxy_refusal",
    "proxy_secrets",
    "proxy_url_problem",
]

#: The status only a proxy answers: it wants (other) credentials.
PROXY_AUTHENTICATION_REQUIRED = 407


class ProxyFailure(Exception):
    """A proxy failed the request before it reached VBrain; the message never holds its credentials."""


def proxy_failure(detail: str, kind: FailureKind = FailureKind.CONNECT) -> TransportFailure:
    """A failure of the proxy: ``detail`` says what it did (it must hold no credentials)."""
    return TransportFailure(kind, ProxyFailure(detail))


def proxy_refusal(response: Response) -> TransportFailure | None:
    """The failure a ``407`` answer means (None for any other): the proxy refused to forward the
    request, which never reached VBrain."""
    if response.status != PROXY_AUTHENTICATION_REQUIRED:
        return None
    return proxy_failure(
        "the proxy refused the request: HTTP 407 Proxy Authentication Required (check the proxy's user "
        "name and password: the connection's proxy extra, or HTTP_PROXY/HTTPS_PROXY)"
    )


def proxy_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a proxy URL, or None. Never quotes it: it may hold a password."""
    if CONTROL_CHARS.search(url) or " " in url:
        return "must not hold spaces or control characters (percent-encode them in a password)"
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number in range
        return "has a port that is not a number from 1 to 65535 (or a password not percent-encoded)"
    if not usable:
        return "must be an http:// or https:// URL with a host"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "must not hold a path, query or fragment (percent-encode / ? # @ in a password)"
    return None


def proxy_secrets(url: str | None) -> tuple[str, ...]:
    """What of a proxy URL nothing may quote: the URL, and its password as written and as sent."""
    if not url:
        return ()
    password = urlsplit(url).password
    return (url, password, unquote(password)) if password else (url,)
