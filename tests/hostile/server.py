"""A misbehaving HTTP server, for tests only: it breaks HTTP on purpose, as each test tells it to.

It is not the emulator: it speaks HTTP/1.1 on raw asyncio streams, so an answer can be anything a
broken proxy or a hostile host could send (endless or trickling bodies, gzip bombs, resets mid-body,
malformed status lines, absurd ``Retry-After`` values, redirects, pathological error pages, deeply
nested JSON, a 403 that quotes the key it received, logs ZIPs that would fill a worker's memory).

It runs its own event loop in a background thread, on 127.0.0.1, optionally over TLS with a
self-signed certificate. A test routes paths to answers::

    server.route(r"/job/[^/]+$", reply(429, headers={"Retry-After": "..."}), reply(202, json={...}))

Each route's answers are used in order and the last one repeats. Every request is logged with its
raw header bytes and the size of its body (read and thrown away).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import io
import json as jsonlib
import re
import socket
import ssl
import struct
import threading
import time
import zipfile
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "GiB",
    "HostileServer",
    "MiB",
    "Request",
    "deflate_of",
    "endless",
    "gzip_bomb",
    "gzip_of",
    "interim_forever",
    "nested_json",
    "raw",
    "redirect",
    "reply",
    "silent",
    "small_zip",
    "stream",
    "trickle",
    "zip_many_members",
    "zip_one_huge_member",
]

MiB = 1024 * 1024
GiB = 1024 * MiB
#: No endless body goes past this, and no answer streams longer than this many seconds, whoever reads.
SAFETY_BYTES = 4 * GiB
SAFETY_SECONDS = 120.0
_BLOCK = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Request:
    """One request as the server read it.

    :param headers: (lower-case name, raw value bytes) pairs, in the order sent.
    :param body_size: bytes of body read (and discarded).
    """

    method: str
    target: str
    headers: tuple[tuple[str, bytes], ...]
    body_size: int
    time: float

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def raw_header(self, name: str) -> bytes | None:
        return next((value for key, value in self.headers if key == name.lower()), None)

    def header(self, name: str) -> str | None:
        """A header's value as text: UTF-8 when it decodes, latin-1 otherwise (what a server echoes)."""
        value = self.raw_header(name)
        if value is None:
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")


class Gone(Exception):
    """The client went away while the server was writing."""


class Wire:
    """The connection to one client, for an answer to write on."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.sent = 0
        self.started = time.monotonic()

    async def send(self, data: bytes) -> None:
        if self.writer.is_closing():
            raise Gone()
        if time.monotonic() - self.started > SAFETY_SECONDS or self.sent > SAFETY_BYTES:
            raise Gone()
        self.writer.write(data)
        self.sent += len(data)
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as err:
            raise Gone() from err

    def reset(self) -> None:
        """Abort the connection with a TCP reset (no orderly close)."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def hang(self) -> None:
        """Keep the connection open, silent, until the client leaves (or the safety bound)."""
        deadline = self.started + SAFETY_SECONDS
        while not self.writer.is_closing() and time.monotonic() < deadline:
            try:
                if await asyncio.wait_for(self.reader.read(65536), 0.5) == b"":
                    return
            except asyncio.TimeoutError:
                continue
            except (ConnectionError, OSError):
                return


#: How a test answers a request: a coroutine writing whatever it likes on the wire.
Answer = Callable[[Request, Wire], Awaitable[None]]
Value = Any  # a body value, or a function of the request returning one


def _resolve(value: Value, request: Request) -> Any:
    return value(request) if callable(value) else value


def _head(status: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    302: "Found",
    307: "Temporary Redirect",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def reply(
    status: int = 200,
    body: Value = b"",
    *,
    json: Value = None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """A well-formed answer with a ``Content-Length``; ``body`` or ``json`` may be functions of the request.

    :param headers: more headers (a ``Retry-After``, a ``Location``...).
    """

    async def answer(request: Request, wire: Wire) -> None:
        data = _resolve(body, request)
        kind = content_type
        if json is not None:
            data = jsonlib.dumps(_resolve(json, request), ensure_ascii=False).encode()
            kind = kind or "application/json"
        if isinstance(data, str):
            data = data.encode()
        fields = {"Content-Type": kind or "text/plain", **(headers or {})}
        fields |= {"Content-Length": str(len(data)), "Connection": "close"}
        await wire.send(_head(status, fields) + data)

    return answer


def redirect(status: int, location: Value) -> Answer:
    """A redirect to ``location`` (a URL, or a function of the request returning one)."""

    async def answer(request: Request, wire: Wire) -> None:
        await reply(status, b"", headers={"Location": _resolve(location, request)})(request, wire)

    return answer


def stream(
    status: int,
    chunks: Callable[[], Iterable[bytes]],
    *,
    chunked: bool = True,
    length: int | None = None,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
    finish: bool = True,
) -> Answer:
    """A body written piece by piece as fast as the client reads it.

    :param chunks: makes the pieces (called once per request).
    :param chunked: ``Transfer-Encoding: chunked``; otherwise ``Content-Length: length``.
    :param length: the declared length when not chunked (it may lie).
    :param finish: end a chunked body properly (otherwise the connection just closes).
    """

    async def answer(request: Request, wire: Wire) -> None:
        fields = {"Content-Type": content_type, **(headers or {}), "Connection": "close"}
        if chunked:
            fields["Transfer-Encoding"] = "chunked"
        elif length is not None:
            fields["Content-Length"] = str(length)
        await wire.send(_head(status, fields))
        for piece in chunks():
            if not piece:
                continue
            await wire.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked and finish:
            await wire.send(b"0\r\n\r\n")

    return answer


def endless(
    status: int = 200,
    *,
    chunked: bool = True,
    prefix: bytes = b'{"job_status": "started", "padding": "',
    block: bytes = b"x" * _BLOCK,
    limit: int = SAFETY_BYTES,
    content_type: str = "application/json",
) -> Answer:
    """A body that never ends (up to ``limit`` bytes): chunked, or under a huge ``Content-Length``."""

    def chunks() -> Iterable[bytes]:
        yield prefix
        sent = len(prefix)
        while sent < limit:
            yield block
            sent += len(block)

    return stream(
        status,
        chunks,
        chunked=chunked,
        length=None if chunked else 10**15,
        content_type=content_type,
        finish=False,
    )


def gzip_bomb(
    size: int,
    status: int = 200,
    *,
    chunked: bool = False,
    encoding: str = "gzip",
    content_type: str = "application/json",
    block: bytes = b" " * MiB,
) -> Answer:
    """A small body that ``Content-Encoding: gzip`` (or ``deflate``) expands to ``size`` bytes of
    ``block`` repeated (blanks by default)."""
    data = gzip_of(size, block) if encoding == "gzip" else deflate_of(size, block)

    def chunks() -> Iterable[bytes]:
        for start in range(0, len(data), _BLOCK):
            yield data[start : start + _BLOCK]

    return stream(
        status,
        chunks,
        chunked=chunked,
        length=len(data),
        content_type=content_type,
        headers={"Content-Encoding": encoding},
    )


def trickle(head: bytes, drip: bytes = b" ", interval: float = 0.5) -> Answer:
    """Send ``head`` at once, then one ``drip`` every ``interval`` seconds, forever.

    Each read on the client gets a byte before any read timeout, so only a deadline on the whole
    request ends it.
    """

    async def answer(request: Request, wire: Wire) -> None:
        await wire.send(head)
        while True:
            await asyncio.sleep(interval)
            await wire.send(drip)

    return answer


def interim_forever(interval: float = 0.05) -> Answer:
    """``100 Continue`` interim answers, one after another, never a final one."""

    async def answer(request: Request, wire: Wire) -> None:
        while True:
            await wire.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            await asyncio.sleep(interval)

    return answer


def raw(data: Value, *, then: str = "close") -> Answer:
    """Exactly these bytes, then ``close`` (orderly), ``reset`` (TCP RST) or ``hang`` (stay silent)."""

    async def answer(request: Request, wire: Wire) -> None:
        payload = _resolve(data, request)
        if payload:
            await wire.send(payload)
        if then == "reset":
            wire.reset()
        elif then == "hang":
            await wire.hang()

    return answer


def silent() -> Answer:
    """Read the request and never answer."""
    return raw(b"", then="hang")


# ---------------------------------------------------------------------- payloads


def nested_json(depth: int, opener: bytes = b"[") -> bytes:
    """Valid JSON nested ``depth`` levels deep: ``[[[...]]]`` or ``{"a":{"a":...}}``."""
    if opener == b"[":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@functools.lru_cache(maxsize=8)
def _flushed_segment(block: bytes, wbits: int = -15) -> bytes:
    """Raw deflate data for ``block`` that refers to nothing before it and leaves nothing pending, so
    copies of it can be laid end to end into a valid stream without compressing each copy."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)


def _deflate_run(
    size: int, block: bytes, checksum: Callable[[bytes, int], int] = zlib.crc32
) -> tuple[bytes, int]:
    """Raw deflate data expanding to ``block`` repeated up to ``size`` bytes, and the ``checksum``
    (CRC-32 for gzip and ZIP, Adler-32 for zlib) of what it expands to."""
    copies, rest = divmod(size, len(block))
    tail = block[:rest]
    pieces = [_flushed_segment(block)] * copies
    value = checksum(b"", 0 if checksum is zlib.crc32 else 1)
    for _ in range(copies):
        value = checksum(block, value)
    if tail:
        pieces.append(_flushed_segment(tail))
        value = checksum(tail, value)
    pieces.append(b"\x03\x00")  # an empty final block
    return b"".join(pieces), value


@functools.lru_cache(maxsize=4)
def gzip_of(size: int, block: bytes = b" " * MiB) -> bytes:
    """A gzip stream of ``size`` blanks (a gzip bomb: about a thousandth of ``size`` on the wire)."""
    data, crc = _deflate_run(size, block)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + data + struct.pack("<II", crc, size & 0xFFFFFFFF)


@functools.lru_cache(maxsize=4)
def deflate_of(size: int, block: bytes = b" " * MiB) -> bytes:
    """A zlib stream (HTTP's ``deflate``) of ``size`` blanks."""
    data, adler = _deflate_run(size, block, zlib.adler32)
    return b"\x78\xda" + data + struct.pack(">I", adler)


_LOG_LINE = b"2026-12-02 18:00:00,000 INFO step 42 of the model is running; nothing to report\n"


@functools.lru_cache(maxsize=2)
def zip_one_huge_member(size: int, name: str = "huge.log") -> bytes:
    """A logs ZIP with one text member of ``size`` bytes (under 4 GiB), a few MB on the wire."""
    block = _LOG_LINE * (MiB // len(_LOG_LINE))
    data, crc = _deflate_run(size, block)
    total = size
    encoded = name.encode()
    stamp = (0, (2026 - 1980) << 9 | 12 << 5 | 2)  # DOS time and date
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, *stamp, crc, len(data), total, len(encoded), 0)
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        20,
        20,
        0,
        8,
        *stamp,
        crc,
        len(data),
        total,
        len(encoded),
        0,
        0,
        0,
        0,
        0o100644 << 16,
        0,
    )
    directory_at = len(local) + len(encoded) + len(data)
    directory = central + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(directory), directory_at, 0)
    return local + encoded + data + directory + end


@functools.lru_cache(maxsize=2)
def zip_many_members(count: int, lines: int = 60) -> bytes:
    """A logs ZIP with ``count`` small text members of ``lines`` lines each."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for number in range(count):
            archive.writestr(f"worker-{number:05d}.log", _LOG_LINE * lines)
    return buffer.getvalue()


def small_zip(members: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# ---------------------------------------------------------------------- the server


class HostileServer:
    """The server: start it, route paths to answers, read what arrived.

    :param tls_folder: serve HTTPS with a self-signed certificate written there (``cert_path``).
    """

    def __init__(self, tls_folder: str | Path | None = None) -> None:
        self._lock = threading.Lock()
        self._routes: list[tuple[re.Pattern[str], list[Answer]]] = []
        self._requests: list[Request] = []
        self.errors: list[str] = []
        self.cert_path: Path | None = None
        self._ssl: ssl.SSLContext | None = None
        if tls_folder is not None:
            from vbrain_emulator.tls import self_signed_certificate

            self.cert_path, key_path = self_signed_certificate(tls_folder, "vbrain-hostile")
            self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ssl.load_cert_chain(self.cert_path, key_path)
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(
            lambda loop, context: self.errors.append(str(context.get("message")))
        )
        self._thread = threading.Thread(target=self._loop.run_forever, name="hostile-server", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> HostileServer:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl, limit=MiB, backlog=128),
            self._loop,
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def reset(self) -> None:
        """Forget every route and logged request."""
        with self._lock:
            self._routes.clear()
            self._requests.clear()

    def route(self, pattern: str, *answers: Answer) -> None:
        """Answer requests whose path matches ``pattern`` (a regex, searched) with ``answers`` in order,
        the last one repeating. Earlier routes win."""
        assert answers, "a route needs an answer"
        with self._lock:
            self._routes.append((re.compile(pattern), list(answers)))

    def requests(self, pattern: str = "") -> list[Request]:
        """The requests received so far whose path matches ``pattern``."""
        with self._lock:
            return [request for request in self._requests if re.search(pattern, request.path)]

    def _answer_for(self, request: Request) -> Answer:
        with self._lock:
            self._requests.append(request)
            for pattern, answers in self._routes:
                if pattern.search(request.path):
                    return answers.pop(0) if len(answers) > 1 else answers[0]
        return reply(404, json={"error": f"nothing routed for {request.method} {request.path}"})

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        wire = Wire(reader, writer)
        try:
            request = await _read_request(reader, writer)
            if request is None:
                return
            await self._answer_for(request)(request, wire)
        except Gone:
            pass
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception as err:  # an answer's own bug: kept for the test to see
            self.errors.append(f"{type(err).__name__}: {err}")
        finally:
            if not writer.transport.is_closing():
                writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 2)


async def _read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
        return None
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].decode("latin-1").split(" ")
    method, target = [*parts, "", ""][:2]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.decode("latin-1").strip().lower(), value.strip(b" \t")))
    fields = dict(headers)
    if fields.get("expect", b"").lower() == b"100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    size = 0
    if fields.get("transfer-encoding", b"").lower() == b"chunked":
        async for piece in _chunked_body(reader):
            size += len(piece)
    else:
        remaining = int(fields.get("content-length", b"0") or 0)
        while remaining > 0:
            piece = await reader.read(min(remaining, MiB))
            if not piece:
                break
            size += len(piece)
            remaining -= len(piece)
    return Request(method, target, tuple(headers), size, time.time())


async def _chunked_body(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        line = await reader.readuntil(b"\r\n")
        length = int(line.split(b";")[0].strip() or b"0", 16)
        if length == 0:
            await reader.readuntil(b"\r\n")
            return
        remaining = length
        while remaining > 0:
            piece = await reader.read(min(remaining, MiB))
            if not piece:
                return
            remaining -= len(piece)
            yield piece
        await reader.readexactly(2)
