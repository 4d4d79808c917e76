"""Files named in a task: a local path or an object-storage URL (Airflow's ``ObjectStoragePath``),
as inputs to upload and as destinations of downloads."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow_provider_vbrain._airflow.compat import object_storage_path
from airflow_provider_vbrain._client.endpoints import Upload, input_name
from airflow_provider_vbrain._transport.sink import is_local
from airflow_provider_vbrain.exceptions import VBrainInputError

__all__ = ["InputFile", "file_safe", "location", "upload"]

#: What an ``input_file`` argument may be: a local path, or an object with
#: ``open("rb")`` and a ``name`` (Airflow's ``ObjectStoragePath``, say).
InputFile = str | os.PathLike[str] | Any


def location(value: Any) -> Any:
    """A local path, or Airflow's ``ObjectStoragePath`` for a URL such as ``s3://bucket/key`` or ``file:///x``.

    An ``ObjectStoragePath`` (or any object with ``open``) is used as it is.
    """
    if isinstance(value, str | os.PathLike):
        text = os.fspath(value)
        return object_storage_path(text) if "://" in text else text
    if callable(getattr(value, "open", None)):
        return value
    raise VBrainInputError(
        "location", f"must be a path, a URL or an ObjectStoragePath, got {type(value).__name__}"
    )


def file_safe(resource: str) -> str:
    """An id as part of a file name: path separators and dots can't lead out of the folder."""
    return quote(resource, safe="-_")


def upload(input_file: InputFile | None) -> Upload | None:
    """Describe ``input_file`` for sending, checking it exists and has an accepted extension."""
    if input_file is None:
        return None
    if is_local(input_file):
        path = Path(input_file)
        input_name("input_file", path.name)
        if not path.is_file():
            raise VBrainInputError("input_file", f"{os.fspath(path)!r} does not exist or is not a file")
        return Upload(path.name, lambda: path.open("rb"))
    name = str(getattr(input_file, "name", "") or "")
    opener = getattr(input_file, "open", None)
    if not name or opener is None:
        raise VBrainInputError(
            "input_file", f"must be a path or object-storage path, got {type(input_file).__name__}"
        )
    input_name("input_file", name)
    exists = getattr(input_file, "exists", None)
    if callable(exists) and not exists():
        raise VBrainInputError("input_file", f"{input_file!s} does not exist")
    return Upload(name, functools.partial(opener, "rb"))
