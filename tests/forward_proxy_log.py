"""A proxy.py plugin for :mod:`tests.forward_proxy`: one log line per request the proxy forwards.

proxy.py's own access log has a line per client connection, written when it closes, naming the
connection's first request only: the requests a client sends over a kept-alive connection after
that one would not show. This plugin logs each, as it is forwarded (a CONNECT tunnel once: what
goes through it is encrypted). It is loaded in the proxy's process only (``--plugins``).
"""

from __future__ import annotations

import logging
from typing import Any

from proxy.http.proxy import HttpProxyBasePlugin

__all__ = ["MARK", "RequestLog"]

#: What starts each line this plugin logs: ``vbrain-forwarded METHOD HOST:PORT[PATH]``.
MARK = "vbrain-forwarded"

logger = logging.getLogger(__name__)


class RequestLog(HttpProxyBasePlugin):  # type: ignore[misc]
    """Logs every request the proxy forwards, pipelined ones included, once authenticated."""

    def handle_client_request(self, request: Any) -> Any:
        def text(value: bytes | None) -> str:
            return value.decode("latin-1") if value else ""

        path = "" if request.is_https_tunnel else text(request.path) or "/"
        logger.info("%s %s %s:%s%s", MARK, text(request.method), text(request.host), request.port, path)
        return request
