"""The asyncio transport (aiohttp), for the triggerer: send, sleep, classify failures.

Everything that waits here awaits: nothing blocks the event loop that every
deferred task of a deployment shares. Per event loop it keeps one aiohttp
session (closed when the loop ends). aiohttp is imported only when used, so
DAG files that use the operators do not pay for it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import weakref
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_vbrain._client.answers import AnswerBody
from airflow_provider_vbrain._client.decoding import BodyDecoder, DecodingError
from airflow_provider_vbrain._client.download import Body, Transfer, download_exchange
from airflow_provider_vbrain._client.endpoints import ApiRequest
from airflow_provider_vbrain._client.exchange import Send, exchange
from airflow_provider_vbrain._client.http import (
    MAX_HEADERS,
    BrokenAnswer,
    FailureKind,
    Response,
    TransportFailure,
    clip,
)
from airflow_provider_vbrain._client.metering import meter
from airflow_provider_vbrain._client.proxy import ProxyFailure, proxy_failure
from airflow_provider_vbrain._transport.envproxy import route
from airflow_provider_vbrain._transport.gate import gate_for
from airflow_provider_vbrain._transport.sink import Sink
from airflow_provider_vbrain._transport.tls import trust_store
from airflow_provider_vbrain.exceptions import VBrainConfigError, VBrainInputError

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_vbrain.connection import VBrainSettings

__all__ = ["SHARED_SESSION_CONNECTIONS", "call", "classify", "close_shared_session", "shared_session"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Bytes of a download gathered before they are written (in a thread: no disk write on the loop).
_WRITE_CHUNK = 1024 * 1024
#: Connections the shared session keeps open at most (requests beyond wait for one to free up).
SHARED_SESSION_CONNECTIONS = 100

_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)
_SESSION_CLOSERS: set[asyncio.Task[None]] = set()


async def call(
    settings: VBrainSettings,
    application_id: str | None,
    request: ApiRequest[T],
    log: Any = None,
    sink: Sink | None = None,
) -> T:
    """Run ``request`` to its value or typed error; retries are reported to ``log``; a download's
    body goes to ``sink``, as with the sync transport (its file work in a thread). Each attempt
    passes the connection's :class:`.Gate` first: its back-off and its cap on requests in flight."""
    transfer = None if sink is None else sink.transfer(settings, request)
    if transfer is None:
        steps = exchange(request, settings.retry, secrets=settings.secrets, log=log)
    else:
        steps = download_exchange(request, settings.retry, transfer, secrets=settings.secrets, log=log)
    gate = gate_for(settings)
    try:
        command = next(steps)
        while True:
            try:
                if isinstance(command, Send):
                    held = await gate.enter()
                    if held > 0:
                        meter().held(held)
                    outcome: Response | TransportFailure | None = None
                    sent_at = gate.now()
                    try:
                        outcome = await _send(settings, application_id, command, sink, transfer)
                    finally:
                        gate.leave(outcome, sent_at)
                else:
                    await asyncio.sleep(command.seconds)
                    outcome = None
                command = steps.send(outcome)
            except StopIteration as done:
                return done.value
    finally:
        if sink is not None:  # a partial file left by a download that failed for good
            await asyncio.to_thread(sink.discard)


async def _send(
    settings: VBrainSettings,
    application_id: str | None,
    command: Send,
    sink: Sink | None = None,
    transfer: Transfer | None = None,
) -> Response | TransportFailure:
    import aiohttp

    request = command.request
    if request.upload is not None:
        raise VBrainInputError("input_file", "uploads are sent with the sync VBrainHook")
    if log.isEnabledFor(logging.DEBUG):  # the arguments cost a string on every poll otherwise
        log.debug("VBrain %s (attempt %d)", request.endpoint, command.attempt)
    headers = settings.headers(application_id, request.repository_id, request.accept)
    if transfer is not None:
        headers.update(transfer.range_headers())
    via = await route(settings)
    if via.problem is not None:  # as requests refuses it in the sync hook
        return TransportFailure(FailureKind.NOT_SENT, ProxyFailure(via.problem))
    try:
        started: Any = shared_session().request(
            request.method,
            settings.api_url + request.path,
            headers=headers,
            params=request.query,
            json=request.json_body,
            data=_form_data(request),
            # A download: its headers within the timeout (below), then its body while it keeps moving.
            timeout=_client_timeout(None if transfer else settings.timeout),
            ssl=await _ssl_option(settings),
            # The connection's proxy, else the environment's for this URL, as requests chooses it.
            proxy=via.proxy,
            allow_redirects=False,  # a redirect would carry the API key to another host
        )
        if transfer is not None:
            started = await asyncio.wait_for(started, transfer.headers_time())
        async with started as answer:
            if len(answer.raw_headers) > MAX_HEADERS:
                broken = BrokenAnswer(f"more than {MAX_HEADERS} header lines")
                return TransportFailure(FailureKind.DISCONNECTED, broken)
            fields = {k.lower(): v for k, v in answer.headers.items()}
            decision = None if transfer is None else transfer.answer(answer.status, fields)
            if isinstance(decision, Body):
                assert sink is not None
                assert transfer is not None
                return await _receive(answer, decision, sink, transfer, fields)
            if decision is not None:
                assert sink is not None
                return await asyncio.to_thread(sink.settle, decision)
            body = await _read(answer, settings.max_answer_bytes, request.endpoint)
            return Response(answer.status, fields, body)
    except (aiohttp.ClientError, asyncio.TimeoutError, DecodingError) as err:
        return classify(err)


async def _receive(
    answer: aiohttp.ClientResponse, body: Body, sink: Sink, transfer: Transfer, fields: dict[str, str]
) -> Response | TransportFailure:
    """Stream a download's body into ``sink`` from byte ``body.offset``, as long as it keeps moving.

    Reads wait at most a quarter of the stall window, so a silent server is noticed as soon as a
    trickling one; the file is written a MiB at a time, in a thread.
    """
    import aiohttp

    await asyncio.to_thread(sink.begin, body.offset)
    decoder = BodyDecoder(fields.get("content-encoding", ""))
    pending = bytearray()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(answer.content.readany(), transfer.stall.check_every)
            except asyncio.TimeoutError:
                chunk = None
            why = transfer.cut_reason()
            if why is not None:
                raise asyncio.TimeoutError(why)
            if chunk is None:
                continue
            if not chunk:
                break
            for piece in decoder.feed(chunk):
                pending += transfer.feed(piece)
            if len(pending) >= _WRITE_CHUNK:
                await asyncio.to_thread(sink.write, bytes(pending))
                pending.clear()
                sink.progress(transfer)
        decoder.finish()
        transfer.end()
    except (aiohttp.ClientError, asyncio.TimeoutError, DecodingError):
        # What arrived before the cut is counted as kept: it is written, for the next attempt to resume.
        await asyncio.to_thread(sink.write, bytes(pending))
        raise
    await asyncio.to_thread(sink.write, bytes(pending))
    await asyncio.to_thread(sink.finish)
    return Response(200, fields)


async def _read(answer: aiohttp.ClientResponse, limit: int, endpoint: str) -> bytes:
    """The whole answer, up to ``limit`` bytes decompressed, a bounded piece at a time (the session
    leaves compressed answers to :class:`.BodyDecoder`: no read inflates in one event-loop callback)."""
    body = AnswerBody(answer.status, limit, endpoint)
    decoder = BodyDecoder(answer.headers.get("Content-Encoding", ""))
    while chunk := await answer.content.readany():
        for piece in decoder.feed(chunk):
            if body.full(piece):
                return body.collected()
    decoder.finish()
    return body.collected()


def _form_data(request: ApiRequest[Any]) -> Any:
    """Multipart form-data for a request with form fields (None without)."""
    if request.form is None:
        return None
    import aiohttp

    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in request.form.items():
        form.add_field(name, value)
    return form


def classify(err: BaseException) -> TransportFailure:
    """What an aiohttp exception says about whether the request left and may have been processed."""
    import aiohttp

    if isinstance(err, aiohttp.InvalidURL):
        return TransportFailure(FailureKind.NOT_SENT, err)
    if isinstance(err, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return TransportFailure(FailureKind.TLS, err)
    # Neither exception's text is quoted: the tunnel's error names the proxy's URL, credentials too.
    if isinstance(err, aiohttp.ClientProxyConnectionError):
        where = f"{err.host}:{err.port}"
        return proxy_failure(f"the proxy at {where} could not be reached: {clip(str(err.os_error))}")
    if isinstance(err, aiohttp.ClientHttpProxyError):
        return proxy_failure(f"the proxy refused the CONNECT tunnel: HTTP {err.status} {clip(err.message)}")
    if isinstance(err, aiohttp.ClientConnectorError):
        return TransportFailure(FailureKind.CONNECT, err)
    if isinstance(err, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return TransportFailure(FailureKind.TIMEOUT, err)
    return TransportFailure(FailureKind.DISCONNECTED, err)


# --------------------------------------------------------------------------- the shared session


def shared_session() -> aiohttp.ClientSession:
    """The ``aiohttp.ClientSession`` of the running event loop, created on first use.

    It is closed when the loop shuts down (``asyncio.run`` cancels the task that
    owns it), so short-lived loops such as ``dag.test()``'s leave nothing open.
    """
    import aiohttp

    loop = asyncio.get_running_loop()
    session = _SESSIONS.get(loop)
    if session is None or session.closed:
        # A bounded pool: thousands of waiting triggers share a few reused connections instead of
        # opening one each per burst (each new TLS connection costs a handshake and a buffer).
        connector = aiohttp.TCPConnector(limit=SHARED_SESSION_CONNECTIONS, keepalive_timeout=30)
        # trust_env off: aiohttp would read the proxy variables and ~/.netrc in two trips to a thread
        # on every request. _send passes the proxy (envproxy.route: HTTP(S)_PROXY, ALL_PROXY and
        # NO_PROXY as requests reads them, looked up once per Base URL and their values); ~/.netrc
        # is not read (VBrain authenticates with its API-key headers).
        # auto_decompress off: compressed answers are decompressed by _read, within bounds.
        session = aiohttp.ClientSession(
            connector=connector, raise_for_status=False, trust_env=False, auto_decompress=False
        )
        _SESSIONS[loop] = session
        closer = loop.create_task(_close_at_shutdown(loop, session), name="vbrain-session-closer")
        _SESSION_CLOSERS.add(closer)
        closer.add_done_callback(_SESSION_CLOSERS.discard)
    return session


async def _close_at_shutdown(loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        if _SESSIONS.get(loop) is session:
            del _SESSIONS[loop]
        await session.close()


async def close_shared_session() -> None:
    """Close the running loop's shared session (for tests and orderly shutdowns)."""
    session = _SESSIONS.pop(asyncio.get_running_loop(), None)
    if session is not None and not session.closed:
        await session.close()


@functools.lru_cache(maxsize=16)
def _client_timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    import aiohttp

    return aiohttp.ClientTimeout(total=seconds)


_SSL_CACHE_SIZE = 16
#: The CA bundles already loaded, by path: looked up on the loop, so a poll takes no trip to a thread.
_SSL_LOADED: dict[str, Any] = {}


@functools.lru_cache(maxsize=_SSL_CACHE_SIZE)
def _ssl_context(ca: str) -> Any:
    import ssl

    if os.path.isdir(ca):  # requests accepts a directory of certificates too
        return ssl.create_default_context(capath=ca)
    return ssl.create_default_context(cafile=ca)


async def _ssl_option(settings: VBrainSettings) -> Any:
    """aiohttp's ``ssl`` argument for the connection's ``verify``: the trust store the sync hook uses
    too (:func:`.trust_store`), loaded off the loop."""
    store = trust_store(settings.verify)
    if store is False or store is True:
        return store
    loaded = _SSL_LOADED.get(store)
    if loaded is not None:  # every poll after the first: no trip to a thread
        return loaded
    try:
        loaded = await asyncio.to_thread(_ssl_context, store)
    except (OSError, ValueError) as err:
        raise VBrainConfigError(
            settings.conn_id, "extra verify", f"cannot load the CA bundle: {err}"
        ) from err
    if len(_SSL_LOADED) >= _SSL_CACHE_SIZE:
        _SSL_LOADED.clear()
    _SSL_LOADED[store] = loaded
    return loaded
