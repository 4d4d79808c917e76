"""Keeping the connection's secrets out of everything quoted from an answer or a failure.

The secrets are the API key, and the proxy's URL and password when the connection names a proxy
(:attr:`~airflow_provider_vbrain.connection.VBrainSettings.secrets`). A server may echo the key it
received (a 403 body quoting it, a redirect's target, a status field), and a library's exception
text may carry the key or the proxy's URL. The exchange passes every answer and failure detail
through here before anything reads it, so no message, error, event or value built from them can
hold a secret, in any spelling a leak could take.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from airflow_provider_vbrain._client.http import Response

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "redact", "redact_response"]

#: What stands where a secret was.
REDACTED = "***"
#: Shorter secrets are not redacted (as Airflow's secrets masker does): replacing every
#: occurrence of a two-letter string would garble every answer.
MIN_SECRET_LENGTH = 5


def _one_secret(secret: str) -> set[str]:
    """A secret as text may show it: raw, JSON-escaped (ASCII or not), ``repr``, URL-encoded."""
    if len(secret) < MIN_SECRET_LENGTH:
        return set()
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
    }


@functools.lru_cache(maxsize=8)
def _spellings(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """Every spelling of every secret, longest first, so that a spelling containing another (a
    proxy URL holding its password) is replaced whole."""
    spellings = set().union(*(_one_secret(secret) for secret in secrets))
    return tuple(sorted(spellings, key=len, reverse=True))


@functools.lru_cache(maxsize=8)
def _byte_spellings(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    spellings = {text.encode("utf-8") for text in _spellings(secrets)}
    for secret in secrets:
        # A secret as latin-1 bytes, as older clients sent a key.
        if _one_secret(secret):
            with contextlib.suppress(UnicodeEncodeError):
                spellings.add(secret.encode("latin-1"))
    return tuple(sorted(spellings, key=len, reverse=True))


def _tuple(secrets: str | Iterable[str]) -> tuple[str, ...]:
    return (secrets,) if isinstance(secrets, str) else tuple(secrets)


def redact(text: str, secrets: str | Iterable[str]) -> str:
    """``text`` with every spelling of each of ``secrets`` replaced by :data:`REDACTED`."""
    for spelling in _spellings(_tuple(secrets)):
        if spelling in text:
            text = text.replace(spelling, REDACTED)
    return text


def redact_response(response: Response, secrets: str | Iterable[str]) -> Response:
    """``response`` with ``secrets`` redacted from its body and header values (the same object
    when it holds none)."""
    secrets = _tuple(secrets)
    body = response.body
    for spelling in _byte_spellings(secrets):
        if spelling in body:
            body = body.replace(spelling, REDACTED.encode())
    # Every answer passes through here (each poll of every waiting trigger): the header values are
    # searched together, and rebuilt only when one holds a secret.
    values = "\n".join(response.headers.values())
    if any(spelling in values for spelling in _spellings(secrets)):
        headers = {name: redact(value, secrets) for name, value in response.headers.items()}
        return dataclasses.replace(response, headers=headers, body=body)
    return response if body is response.body else dataclasses.replace(response, body=body)
