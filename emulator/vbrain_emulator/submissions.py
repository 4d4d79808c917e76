"""The bodies of the two creates (``POST /repository``, ``POST /job/execute``): nothing, JSON, or a
form (multipart when a file is attached), read into params, metadata and input files.

The field names are the client's (``SUBMISSION_FIELDS`` in ``vbrain_emulator.wire``), so
both read the same wire. Strict on purpose: a misspelled field silently dropped is a client bug the
emulator should surface, not hide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_request import FileField

from vbrain_emulator.archives import input_files_from_upload
from vbrain_emulator.errors import EmulatorError
from vbrain_emulator.gateway import hold
from vbrain_emulator.wire import SUBMISSION_FIELDS

__all__ = ["FILE_FIELD", "Submission", "json_object", "read_submission"]

#: The multipart field of the input file.
FILE_FIELD = "file"
_PARAMS, _METADATA = SUBMISSION_FIELDS
_FORM_FIELDS = ", ".join((FILE_FIELD, *SUBMISSION_FIELDS))
_BODY_FIELDS = ", ".join(SUBMISSION_FIELDS)


@dataclass(frozen=True)
class Submission:
    """What a create's body carries (each part empty when absent)."""

    params: dict[str, Any]
    metadata: dict[str, Any]
    input_files: dict[str, bytes]


def json_object(name: str, text: str | bytes | bytearray) -> dict[str, Any]:
    """Parse a JSON object; JSON ``null`` is an empty one.

    :param name: what the text is (a field, the request body), for the error message.
    :param text: the JSON text.
    :raises EmulatorError: 400 naming ``name`` for invalid JSON or another JSON value.
    """
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise EmulatorError(400, f"Invalid JSON in {name}: {err}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EmulatorError(400, f"{name} must be a JSON object, got {type(value).__name__}")
    return value


async def read_submission(request: web.Request, *, form_only: bool = False) -> Submission:
    """Read a repository's or job's body: nothing, JSON, or a form (multipart when a file is attached).

    Once the body is read, waits out an injected fault's delay (:func:`.gateway.hold`).

    :param request: the create request.
    :param form_only: read form fields only; any other body is read and ignored, as a server that
        only parses form data would (the ``form-only-repository`` profile).
    :raises EmulatorError: 400 for an unexpected field, invalid JSON, or an unusable file.
    """
    fields: dict[str, dict[str, Any]] = {}
    files: dict[str, bytes] = {}
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.post()
        for name, value in form.items():
            if name == FILE_FIELD:
                if not isinstance(value, FileField):
                    raise EmulatorError(400, f"{FILE_FIELD} must be an uploaded file with a file name")
                files.update(input_files_from_upload(value.filename, value.file.read()))
            elif name in SUBMISSION_FIELDS:
                # Clients may attach params as a plain field or as a part with a file name.
                text = value.file.read() if isinstance(value, FileField) else value
                fields[name] = json_object(name, text)
            else:
                raise EmulatorError(400, f"Unexpected form field: {name} (expected {_FORM_FIELDS})")
    elif form_only:
        # Read it all so the connection stays usable; its content is dropped without a word.
        await request.read()
    else:
        raw = await request.read()
        if raw.strip():
            body = json_object("request body", raw)
            unexpected = sorted(set(body) - set(SUBMISSION_FIELDS))
            if unexpected:
                raise EmulatorError(
                    400, f"Unexpected field(s) in body: {', '.join(unexpected)} (expected {_BODY_FIELDS})"
                )
            for name in SUBMISSION_FIELDS:
                part = body.get(name)
                if part is not None and not isinstance(part, dict):
                    raise EmulatorError(400, f"{name} must be a JSON object, got {type(part).__name__}")
                fields[name] = part or {}
    await hold()
    return Submission(fields.get(_PARAMS, {}), fields.get(_METADATA, {}), files)
