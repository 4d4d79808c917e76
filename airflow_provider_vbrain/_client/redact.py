"""Keeping the API key out of everything quoted from an answer or a failure.

A server may echo the key it received (a 403 body quoting it, a redirect's target, a status
field), and a library's exception text may carry it. The exchange passes every answer and
failure detail through here before anything reads it, so no message, error, event or value
built from them can hold the key, in any spelling a leak could take.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from urllib.parse import quote, quote_plus

from airflow_provider_vbrain._client.http import Response

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "redact", "redact_response"]

#: What stands where the key was.
REDACTED = "***"
#: Shorter secrets are not redacted (as Airflow's secrets masker does): replacing every
#: occurrence of a two-letter string would garble every answer.
MIN_SECRET_LENGTH = 5


@functools.lru_cache(maxsize=8)
def _spellings(secret: str) -> tuple[str, ...]:
    """The key as text may show it: raw, JSON-escaped (ASCII or not), ``repr``, URL-encoded."""
    if len(secret) < MIN_SECRET_LENGTH:
        return ()
    spellings = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
    }
    # Longest first, so that a spelling containing another is replaced whole.
    return tuple(sorted(spellings, key=len, reverse=True))


@functools.lru_cache(maxsize=8)
def _byte_spellings(secret: str) -> tuple[bytes, ...]:
    spellings = {text.encode("utf-8") for text in _spellings(secret)}
    with contextlib.suppress(UnicodeEncodeError):  # a key as latin-1 bytes, as older clients sent it
        spellings.add(secret.encode("latin-1"))
    return tuple(sorted(spellings, key=len, reverse=True)) if _spellings(secret) else ()


def redact(text: str, secret: str) -> str:
    """``text`` with every spelling of ``secret`` replaced by :data:`REDACTED`."""
    for spelling in _spellings(secret):
        if spelling in text:
            text = text.replace(spelling, REDACTED)
    return text


def redact_response(response: Response, secret: str) -> Response:
    """``response`` with ``secret`` redacted from its body and header values (the same object
    when it holds none)."""
    body = response.body
    for spelling in _byte_spellings(secret):
        if spelling in body:
            body = body.replace(spelling, REDACTED.encode())
    # Every answer passes through here (each poll of every waiting trigger): the header values are
    # searched together, and rebuilt only when one holds the key.
    values = "\n".join(response.headers.values())
    if any(spelling in values for spelling in _spellings(secret)):
        headers = {name: redact(value, secret) for name, value in response.headers.items()}
        return dataclasses.replace(response, headers=headers, body=body)
    return response if body is response.body else dataclasses.replace(response, body=body)
