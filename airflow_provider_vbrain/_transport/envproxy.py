"""The proxy the trigger's requests go through: the connection's, else the one the environment names
for VBrain's URL, chosen as requests chooses it for the sync hook, so both hooks take the same route.

aiohttp can read the environment itself (``trust_env``), but does it on every request, in two trips
to a thread pool (the proxy variables, and ``~/.netrc``) that cost a poll more CPU than the request.
Here the environment's choice is looked up once per Base URL and values of the proxy variables, in a
thread (on some systems urllib asks the system's settings, or resolves names, for it), and kept: a
change to a variable is seen by the next request, at the cost of reading the variables on each. (On
macOS urllib falls back to the system's proxy settings when no variable is set: a change to those
is seen after a restart.)"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow_provider_vbrain.connection import VBrainSettings

__all__ = ["PROXY_VARIABLES", "Route", "environment_route", "route"]

#: The variables that choose a proxy for an ``http://`` or ``https://`` URL, in the spellings in use
#: (urllib reads ``REQUEST_METHOD`` too: a CGI environment's ``HTTP_PROXY`` is not trusted).
PROXY_VARIABLES = (
    *(f"{name}_proxy" for name in ("http", "https", "all", "no")),
    *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "ALL", "NO")),
    "REQUEST_METHOD",
)
#: Routes kept at most (one per Base URL and environment); all are forgotten when it is reached.
_ROUTES_KEPT = 64


class Route(NamedTuple):
    """How a request goes out: through ``proxy`` (None: directly), or not at all (``problem``)."""

    proxy: str | None
    #: Why the proxy the environment names cannot be used (never quoting it: it may hold a password).
    problem: str | None = None


_DIRECT = Route(None)
_ROUTES: dict[tuple[str, tuple[str | None, ...]], Route] = {}


async def route(settings: VBrainSettings) -> Route:
    """The route of ``settings``' requests: the connection's ``proxy`` extra whatever the
    environment says, else :func:`environment_route` (looked up in a thread the first time)."""
    if settings.proxy:  # checked when the connection was read (proxy_url_problem)
        return Route(settings.proxy)
    variables = _variables()
    key = (settings.base_url, variables)
    found = _ROUTES.get(key)
    if found is None:
        found = await asyncio.to_thread(environment_route, settings.api_url)
        if _variables() == variables:  # not changed while it was looked up
            if len(_ROUTES) >= _ROUTES_KEPT:
                _ROUTES.clear()
            _ROUTES[key] = found
    return found


def _variables() -> tuple[str | None, ...]:
    get = os.environ.get
    return tuple([get(name) for name in PROXY_VARIABLES])


def environment_route(url: str) -> Route:
    """The proxy the environment names for ``url``, as the sync hook's requests picks it: the
    scheme's variable (``HTTPS_PROXY``, ``HTTP_PROXY``), else ``ALL_PROXY``; none for a host that
    ``NO_PROXY`` covers; ``http://`` assumed for a URL without a scheme. Credentials in its URL are
    sent to the proxy (Basic), as requests sends them. Blocking on some systems: call it in a thread.
    """
    from requests.utils import get_environ_proxies, prepend_scheme_if_needed, select_proxy

    proxies = get_environ_proxies(url)
    named = select_proxy(url, proxies)
    if not named:
        return _DIRECT
    problem = "must be an http:// or https:// URL with a host"
    try:
        proxy = prepend_scheme_if_needed(named, "http")
        parts = urlsplit(proxy)
        # Reading the port raises ValueError when it is not a number within range.
        if parts.scheme in ("http", "https") and parts.hostname and (parts.port or 0) >= 0:
            return Route(proxy)
    except ValueError:  # not a URL (urllib3's LocationParseError is one)
        problem = "is not a valid URL (percent-encode special characters in a password)"
    scheme = urlsplit(url).scheme
    variable = f"{scheme if scheme in proxies else 'all'}_proxy".upper()
    return Route(None, f"the proxy {variable} (or {variable.lower()}) names {problem}")
