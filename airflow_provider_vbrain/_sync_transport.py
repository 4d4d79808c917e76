"""The blocking transport (requests): sends what the core asks, sleeps when it says, classifies failures."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_vbrain._answers import not_a_zip
from airflow_provider_vbrain._endpoints import ApiRequest
from airflow_provider_vbrain._exchange import Send, exchange
from airflow_provider_vbrain._files import MultipartBody, Sink, open_upload, zip_checked
from airflow_provider_vbrain._http import FailureKind, Response, TransportFailure

if TYPE_CHECKING:
    import requests

    from airflow_provider_vbrain.connection import VBrainSettings

__all__ = ["SyncTransport", "classify"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Bytes per read when streaming a download to disk.
CHUNK = 1024 * 1024


class SyncTransport:
    """One requests session (pooled connections) and the loop that drives the core over it."""

    def __init__(self) -> None:
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def call(
        self,
        settings: VBrainSettings,
        application_id: str | None,
        request: ApiRequest[T],
        sink: Sink | None = None,
    ) -> T:
        """Run ``request`` to its value or typed error; a download's body goes to ``sink``."""
        steps = exchange(request, settings.retry)
        command = next(steps)
        while True:
            try:
                if isinstance(command, Send):
                    outcome: Response | TransportFailure | None = self._send(
                        settings, application_id, command, sink
                    )
                else:
                    time.sleep(command.seconds)
                    outcome = None
                command = steps.send(outcome)
            except StopIteration as done:
                return done.value

    def _send(
        self, settings: VBrainSettings, application_id: str | None, command: Send, sink: Sink | None
    ) -> Response | TransportFailure:
        import requests

        request = command.request
        kwargs: dict[str, Any] = {
            "headers": settings.headers(application_id, request.repository_id, request.accept),
            "params": request.query,
            "timeout": settings.timeout,
            "verify": settings.verify,
            "stream": request.download,
            "allow_redirects": False,  # a redirect would carry the API key to another host
        }
        log.debug("VBrain %s (attempt %d)", request.endpoint, command.attempt)
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
                with self.session.request(
                    request.method, settings.api_url + request.path, **kwargs
                ) as answer:
                    headers = {k.lower(): v for k, v in answer.headers.items()}
                    if sink is not None and answer.status_code == 200:

                        def refuse(head: bytes) -> Exception:
                            return not_a_zip(request.endpoint, Response(answer.status_code, headers, head))

                        sink.write(zip_checked(answer.iter_content(CHUNK), refuse))
                        return Response(answer.status_code, headers)
                    return Response(answer.status_code, headers, answer.content)
            except requests.exceptions.RequestException as err:
                return classify(err)


def classify(err: Exception) -> TransportFailure:
    """What a requests exception says about whether the request left and may have been processed."""
    import requests
    from urllib3.exceptions import NewConnectionError

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
