"""The blocking transport (requests): sends what the core asks, sleeps when it says, classifies failures."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_vbrain._client.answers import AnswerBody
from airflow_provider_vbrain._client.decoding import BodyDecoder, DecodingError
from airflow_provider_vbrain._client.download import Body, Transfer, download_exchange
from airflow_provider_vbrain._client.endpoints import ApiRequest
from airflow_provider_vbrain._client.exchange import Exchange, Send, exchange
from airflow_provider_vbrain._client.http import FailureKind, Response, TransportFailure, clip
from airflow_provider_vbrain._client.proxy import proxy_failure
from airflow_provider_vbrain._transport.deadline import Deadline, deadline_adapter
from airflow_provider_vbrain._transport.multipart import MultipartBody, open_upload
from airflow_provider_vbrain._transport.sink import Sink
from airflow_provider_vbrain._transport.tls import trust_store

if TYPE_CHECKING:
    import requests

    from airflow_provider_vbrain.connection import VBrainSettings

__all__ = ["SyncTransport", "classify"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Bytes per read when streaming a download to disk.
CHUNK = 1024 * 1024
#: Bytes per read of an answer.
ANSWER_CHUNK = 64 * 1024


class SyncTransport:
    """One requests session (pooled connections) and the loop that drives the core over it."""

    def __init__(self) -> None:
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            import requests

            self._session = requests.Session()
            adapter = deadline_adapter()
            self._session.mount("https://", adapter)
            self._session.mount("http://", adapter)
        return self._session

    def call(
        self,
        settings: VBrainSettings,
        application_id: str | None,
        request: ApiRequest[T],
        sink: Sink | None = None,
        log: Any = None,
    ) -> T:
        """Run ``request`` to its value or typed error; a download's body goes to ``sink``; retries
        are reported to ``log``."""
        if sink is None:
            steps = exchange(request, settings.retry, secrets=settings.secrets, log=log)
            return self._drive(steps, settings, application_id)
        transfer = sink.transfer(settings, request)
        steps = download_exchange(request, settings.retry, transfer, secrets=settings.secrets, log=log)
        try:
            return self._drive(steps, settings, application_id, sink, transfer)
        finally:
            sink.discard()  # a partial file left by a download that failed for good

    def _drive(
        self,
        steps: Exchange[T],
        settings: VBrainSettings,
        application_id: str | None,
        sink: Sink | None = None,
        transfer: Transfer | None = None,
    ) -> T:
        command = next(steps)
        while True:
            try:
                if isinstance(command, Send):
                    outcome: Response | TransportFailure | None = self._send(
                        settings, application_id, command, sink, transfer
                    )
                else:
                    time.sleep(command.seconds)
                    outcome = None
                command = steps.send(outcome)
            except StopIteration as done:
                return done.value

    def _send(
        self,
        settings: VBrainSettings,
        application_id: str | None,
        command: Send,
        sink: Sink | None,
        transfer: Transfer | None,
    ) -> Response | TransportFailure:
        import requests

        request = command.request
        sent = settings.headers(application_id, request.repository_id, request.accept)
        if transfer is None:
            deadline = Deadline(settings.timeout)
        else:  # the headers within the timeout, then the body as long as it keeps moving
            sent.update(transfer.range_headers())
            deadline = Deadline(transfer.headers_time(), transfer.stall.check_every)
        kwargs: dict[str, Any] = {
            # UTF-8 bytes, as aiohttp sends them: both hooks put the same bytes on the wire.
            "headers": {name: value.encode("utf-8") for name, value in sent.items()},
            "params": request.query,
            "verify": trust_store(settings.verify),
            "stream": True,  # read in bounded chunks, under the deadline
            "allow_redirects": False,  # a redirect would carry the API key to another host
        }
        if settings.proxy:
            # The connection's proxy for both schemes: requests then ignores HTTP(S)_PROXY and NO_PROXY.
            kwargs["proxies"] = {"http": settings.proxy, "https": settings.proxy}
        log.debug("VBrain %s (attempt %d)", request.endpoint, command.attempt)
        body_started = False
        with open_upload(request.upload) as file:
            if file is not None and request.upload is not None:  # streamed from disk, never whole
                body = MultipartBody(request.form or {}, request.upload, file)
                kwargs["data"] = body
                kwargs["headers"] = {**kwargs["headers"], "content-type": body.content_type}
            elif request.form is not None:  # multipart without a file: each field a part of its own
                kwargs["files"] = {name: (None, value) for name, value in request.form.items()}
            elif request.json_body is not None:
                kwargs["json"] = request.json_body
            try:
                # Each socket operation waits at most the time left; the deadline ends the rest.
                with (
                    deadline,
                    self.session.request(
                        request.method,
                        settings.api_url + request.path,
                        timeout=_waits(deadline, transfer),
                        **kwargs,
                    ) as answer,
                ):
                    headers = {k.lower(): v for k, v in answer.headers.items()}
                    decision = None if transfer is None else transfer.answer(answer.status_code, headers)
                    if isinstance(decision, Body):
                        assert sink is not None
                        assert transfer is not None
                        body_started = True
                        _receive(answer, decision, deadline, sink, transfer)
                        return Response(200, headers)
                    if decision is not None:
                        assert sink is not None
                        return sink.settle(decision)
                    return Response(
                        answer.status_code, headers, _read(answer, settings, request.endpoint, deadline)
                    )
            except requests.exceptions.RequestException as err:
                failure = classify(err)
                if failure.may_have_been_processed and deadline.passed():
                    # Cut at the deadline (a connection never made stays "could not connect").
                    if transfer is not None and body_started:
                        return TransportFailure(FailureKind.TIMEOUT, _cut(deadline.why, err))
                    return TransportFailure(FailureKind.TIMEOUT, _too_slow(deadline.seconds, err))
                return failure


def _waits(deadline: Deadline, transfer: Transfer | None) -> float | tuple[float, float]:
    """How long one socket operation may wait: the time left; for a download's reads, twice the
    stall window, so that the stall rule (which names the stall) ends a silent body first."""
    if transfer is None:
        return deadline.left()
    return deadline.left(), 2 * transfer.stall.window


def _receive(
    answer: requests.Response, body: Body, deadline: Deadline, sink: Sink, transfer: Transfer
) -> None:
    """Stream a download's body into ``sink`` from byte ``body.offset``, as long as it keeps moving."""
    left = transfer.left()
    deadline.move(float("inf") if left is None else left)

    deadline.watch_progress(transfer.cut_reason)
    sink.begin(body.offset)
    for chunk in _bounded(answer, CHUNK, deadline, as_it_comes=True):
        data = transfer.feed(chunk)
        if data:
            sink.write(data)
            sink.progress(transfer)
    transfer.end()
    sink.finish()


def _cut(why: str | None, err: Exception) -> Exception:
    """What a download cut in its body failed with: it stalled, or its own deadline passed."""
    import requests

    failure = requests.exceptions.Timeout(why or "the download was cut at its deadline")
    failure.__cause__ = err
    return failure


def _bounded(
    answer: requests.Response, size: int, deadline: Deadline, *, as_it_comes: bool = False
) -> Iterator[bytes]:
    """The body, decompressed (by :class:`.BodyDecoder`, never by urllib3), in chunks of at most
    ``size`` bytes, until the deadline. urllib3's errors come out as requests' own, as they would
    from ``iter_content``.

    :param as_it_comes: hand over what each read brought (a download's progress is counted as it
        arrives), rather than waiting for ``size`` bytes.
    """
    import requests
    from urllib3.exceptions import ProtocolError, ReadTimeoutError, SSLError

    decoder = BodyDecoder(answer.headers.get("content-encoding", ""))
    try:
        for data in _reads(answer.raw, size, as_it_comes):
            for chunk in decoder.feed(data, size):
                if deadline.passed():
                    raise requests.exceptions.ReadTimeout("deadline passed")
                yield chunk
        decoder.finish()
    except ProtocolError as err:
        raise requests.exceptions.ChunkedEncodingError(err) from err
    except ReadTimeoutError as err:
        raise requests.exceptions.ConnectionError(err) from err
    except SSLError as err:
        raise requests.exceptions.SSLError(err) from err
    except DecodingError as err:
        raise requests.exceptions.ContentDecodingError(err) from err
    if deadline.expired:
        # The shut-down socket can read as the end of the headers or body: what came is not whole.
        raise requests.exceptions.ReadTimeout("deadline passed")


def _reads(raw: Any, size: int, as_it_comes: bool) -> Iterator[bytes]:
    read1 = getattr(raw, "read1", None)  # urllib3 2; 1.26 has only whole reads
    if not as_it_comes or read1 is None:
        yield from raw.stream(size, decode_content=False)
        return
    while data := read1(size, decode_content=False):
        yield data


def _read(answer: requests.Response, settings: VBrainSettings, endpoint: str, deadline: Deadline) -> bytes:
    """The whole answer, up to ``max_answer_bytes`` decompressed."""
    body = AnswerBody(answer.status_code, settings.max_answer_bytes, endpoint)
    for chunk in _bounded(answer, ANSWER_CHUNK, deadline):
        if body.full(chunk):
            break
    return body.collected()


def _too_slow(seconds: float, err: Exception) -> Exception:
    """What a request cut at its deadline failed with (the shut-down socket's error as its cause)."""
    import requests

    failure = requests.exceptions.Timeout(f"no complete answer within the {seconds:g} s deadline")
    failure.__cause__ = err
    return failure


def classify(err: Exception) -> TransportFailure:
    """What a requests exception says about whether the request left and may have been processed."""
    import requests
    from urllib3.exceptions import NewConnectionError

    if isinstance(err, requests.exceptions.ProxyError):
        proxy = _proxy_failure(err)
        if proxy is not None:
            return proxy

    if isinstance(
        err,
        requests.exceptions.InvalidHeader
        | requests.exceptions.InvalidURL
        | requests.exceptions.InvalidSchema
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidJSONError,
    ):
        return TransportFailure(FailureKind.NOT_SENT, err)
    if isinstance(err, requests.exceptions.ConnectTimeout):
        return TransportFailure(FailureKind.CONNECT, err)
    if isinstance(err, requests.exceptions.Timeout):
        return TransportFailure(FailureKind.TIMEOUT, err)
    if isinstance(err, requests.exceptions.SSLError):
        return TransportFailure(FailureKind.TLS, err)
    if isinstance(err, requests.exceptions.ConnectionError):
        reason = getattr(err.args[0], "reason", None) if err.args else None
        if isinstance(reason, NewConnectionError):
            return TransportFailure(FailureKind.CONNECT, err)
    # A broken stream (ChunkedEncodingError) and the rest: the request may have been processed.
    return TransportFailure(FailureKind.DISCONNECTED, err)


def _proxy_failure(err: Exception) -> TransportFailure | None:
    """The failure a ``ProxyError`` means when the proxy failed before forwarding the request (it
    could not be reached, or refused the CONNECT tunnel); None when that is not certain.

    urllib3 2 raises its ``ProxyError`` only before it has connected through the proxy. urllib3
    1.26 also raises it for a socket error on a connection to the proxy after the request went out
    (which the proxy may have forwarded): there only a failed connection or tunnel (the plain
    ``OSError`` of http.client's tunnel) proves nothing was forwarded.
    """
    import ssl

    import urllib3
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    reason = getattr(err.args[0], "reason", None) if err.args else None
    cause = getattr(reason, "original_error", None) or reason or err
    tls = isinstance(cause, ssl.SSLError | urllib3.exceptions.SSLError)
    before_forwarding = (
        int(urllib3.__version__.split(".")[0]) >= 2
        or isinstance(cause, NewConnectionError | ConnectTimeoutError)
        or type(cause) is OSError
        or tls
    )
    if not before_forwarding:
        return None
    # A connection that could not be made names the proxy's host and port (urllib3 2: ``conn``,
    # 1.26: ``pool``); a refused tunnel, the proxy's answer. Neither holds its credentials.
    connection = getattr(cause, "conn", None) or getattr(cause, "pool", None)
    host, port = getattr(connection, "host", None), getattr(connection, "port", None)
    proxy = f"the proxy at {host}:{port}" if isinstance(host, str) and port else "the proxy"
    if tls:
        return proxy_failure(f"TLS with {proxy} failed: {clip(str(cause))}", FailureKind.TLS)
    return proxy_failure(f"{proxy} failed before the request reached VBrain: {clip(str(cause))}")
