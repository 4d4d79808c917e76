"""A real forward proxy for the tests: proxy.py (the PyPI package ``proxy.py``) in a subprocess.

It forwards plain HTTP requests (absolute-form) and tunnels HTTPS through CONNECT, optionally
behind Basic proxy authentication. Its log has a line per forwarded request from the plugin in
:mod:`tests.forward_proxy_log` (proxy.py's own access log has one per client connection, naming
only the first of the requests a kept-alive connection carried), e.g.::

    ... [I] forward_proxy_log.handle_client_request:33 - vbrain-forwarded GET 127.0.0.1:8911/api/v1/job
    ... [I] forward_proxy_log.handle_client_request:33 - vbrain-forwarded CONNECT 127.0.0.1:8912

and a refused authentication as ``HttpProtocolException: ProxyAuthenticationFailed``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from tests.forward_proxy_log import MARK

__all__ = ["ForwardProxy", "Forwarded"]

#: Seconds the proxy may take to start (a cold interpreter importing proxy.py) or stop.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
_FORWARDED = re.compile(rf" - {MARK} (?P<method>[A-Z]+) (?P<target>\S+)$")
_ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Forwarded:
    """A request the proxy forwarded (or a tunnel it opened)."""

    method: str
    #: ``host:port`` the request went to.
    destination: str
    #: The path and query, for a forwarded request (a tunnel's requests are encrypted: None).
    path: str | None


class ForwardProxy:
    """proxy.py on 127.0.0.1, on a free port, optionally requiring ``user:password``.

    :param folder: where its port file, log and output go.
    :param user: with ``password``, the Basic credentials it requires (none when None).
    """

    def __init__(self, folder: Path, user: str | None = None, password: str | None = None) -> None:
        self.folder = folder
        self.user, self.password = user, password
        self.port = 0
        self._log = folder / "proxy.log"
        self._output = folder / "proxy.out"
        self._process: subprocess.Popen[bytes] | None = None
        self._read_from = 0

    @property
    def url(self) -> str:
        """The proxy's URL, with its credentials (percent-encoded) when it requires some."""
        return self.url_with(self.user, self.password)

    def url_with(self, user: str | None, password: str | None) -> str:
        """The proxy's URL with other credentials (none when ``user`` is None)."""
        credentials = f"{quote(user, safe='')}:{quote(password or '', safe='')}@" if user else ""
        return f"http://{credentials}127.0.0.1:{self.port}"

    def start(self) -> ForwardProxy:
        port_file = self.folder / "proxy.port"
        command = [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0"]
        command += ["--port-file", str(port_file), "--num-acceptors", "1", "--threaded"]
        command += ["--log-level", "INFO", "--log-file", str(self._log)]
        command += ["--plugins", "tests.forward_proxy_log.RequestLog"]
        if self.user is not None:
            command += ["--basic-auth", f"{self.user}:{self.password}"]
        # The plugin is imported from this repository's tests package.
        path = os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))
        with self._output.open("wb") as output:
            self._process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=_ROOT,
                env={**os.environ, "PYTHONPATH": path},
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not (port_file.exists() and port_file.read_text().strip().isdigit()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"proxy.py did not start: {self._output.read_text(errors='replace')}")
            time.sleep(0.05)
        self.port = int(port_file.read_text().strip())
        while True:  # the port file is written before the acceptor listens
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.05)
        self.mark()
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def mark(self) -> None:
        """Forget what was logged so far: :meth:`forwarded` and :meth:`refusals` count from here."""
        self._read_from = self._log.stat().st_size if self._log.exists() else 0

    def _lines(self) -> list[str]:
        if not self._log.exists():
            return []
        with self._log.open("rb") as log:
            log.seek(self._read_from)
            return log.read().decode(errors="replace").splitlines()

    def forwarded(self, settle: float = 0.0, at_least: int = 0) -> list[Forwarded]:
        """The requests forwarded since :meth:`mark`, in order; waits up to ``settle`` seconds for
        ``at_least`` of them (the log is written by another process)."""
        deadline = time.monotonic() + settle
        while True:
            found = []
            for line in self._lines():
                match = _FORWARDED.search(line)
                if match is not None:
                    destination, slash, path = match["target"].partition("/")
                    found.append(Forwarded(match["method"], destination, slash + path if slash else None))
            if len(found) >= at_least or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def refusals(self) -> int:
        """How many requests (or tunnels) it refused for their credentials since :meth:`mark`."""
        return sum("ProxyAuthenticationFailed" in line for line in self._lines())
