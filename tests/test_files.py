"""Files on the worker's side: the streamed multipart body is the body requests would have built."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import requests
import urllib3.filepost

from airflow_provider_vbrain._client.endpoints import Upload
from airflow_provider_vbrain._transport.multipart import MultipartBody, open_upload


@pytest.mark.parametrize(
    ("name", "form"),
    [
        pytest.param("inputs.zip", {"params": '{"a": 1}', "metadata": '{"team": "ops"}'}, id="two-fields"),
        pytest.param("données été.csv", {"params": '{"é": "ü"}'}, id="non-ascii-name-and-field"),
        pytest.param("sales.xlsx", {}, id="file-alone"),
    ],
)
def test_the_streamed_body_is_the_one_requests_builds_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, form: dict[str, str]
) -> None:
    path = tmp_path / name
    path.write_bytes(bytes(range(256)) * 1000 + b"\r\n--end")
    attached = Upload(name, lambda: path.open("rb"))
    with open_upload(attached) as file:
        body = MultipartBody(form, attached, file)
        streamed = b"".join(body)
    boundary = re.fullmatch(r"multipart/form-data; boundary=(\w+)", body.content_type).group(1)  # type: ignore[union-attr]
    monkeypatch.setattr(urllib3.filepost, "choose_boundary", lambda: boundary)
    with path.open("rb") as file:
        files = {"file": (name, file, attached.content_type)}
        built = requests.Request("POST", "http://vbrain.test/", data=form, files=files).prepare()
    assert built.headers["Content-Type"] == body.content_type
    assert streamed == built.body
    assert len(body) == len(streamed)


class _Unseekable(io.RawIOBase):
    """A stream that tells neither its size nor its position (a pipe, some object stores)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_file_of_unknown_size_is_sent_whole_with_its_length() -> None:
    data = b"a,b\n1,2\n" * 100_000
    attached = Upload("inputs.csv", lambda: io.BufferedReader(_Unseekable(data)))
    with open_upload(attached) as file:
        body = MultipartBody({"params": "{}"}, attached, file)
        streamed = b"".join(body)
    assert len(body) == len(streamed)
    assert data in streamed
