"""ZIP downloads answer ``Range`` the way common servers do (206 and ``Content-Range``, 416 past the
end, ``If-Range`` naming the file by its ETag); the ``ignores-range`` profile answers every request
with the whole file, as a server without range support does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from conftest import Api


@pytest.fixture
def output(api: Api) -> tuple[str, str]:
    """A finished job's output download: its path and repository."""
    repository_id = api.create_repository(files={"file": ("in.csv", b"x\n1\n")})
    job_id = api.execute(repository_id, json={"params": {"a": 2, "b": 3}})
    api.server.finish_job(job_id)
    return f"/job/{job_id}/output", repository_id


def _get(api: Api, output: tuple[str, str], **headers: str) -> requests.Response:
    path, repository_id = output
    return api.get(path, repository_id=repository_id, headers=headers)


def test_a_whole_download_offers_ranges_and_names_its_file(api: Api, output: tuple[str, str]) -> None:
    whole = _get(api, output)
    assert whole.status_code == 200
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["ETag"].startswith('"')
    assert _get(api, output).content == whole.content, "the same file downloads as the same bytes"


@pytest.mark.parametrize(
    ("asked", "first", "last"),
    [("bytes=10-", 10, None), ("bytes=10-19", 10, 19), ("bytes=-7", -7, None), ("bytes=0-999999", 0, None)],
)
def test_range_answers_206_with_the_bytes_asked_for(
    api: Api, output: tuple[str, str], asked: str, first: int, last: int | None
) -> None:
    whole = _get(api, output).content
    part = _get(api, output, Range=asked)
    assert part.status_code == 206
    expected = whole[first:] if last is None else whole[first : last + 1]
    assert part.content == expected
    start = first % len(whole)
    assert part.headers["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{len(whole)}"


def test_range_past_the_end_answers_416_with_the_size(api: Api, output: tuple[str, str]) -> None:
    size = len(_get(api, output).content)
    answer = _get(api, output, Range=f"bytes={size}-")
    assert answer.status_code == 416
    assert answer.headers["Content-Range"] == f"bytes */{size}"


def test_if_range_naming_another_file_gets_the_whole_file(api: Api, output: tuple[str, str]) -> None:
    whole = _get(api, output)
    same = _get(api, output, Range="bytes=5-", **{"If-Range": whole.headers["ETag"]})
    assert same.status_code == 206
    other = _get(api, output, Range="bytes=5-", **{"If-Range": '"another"'})
    assert other.status_code == 200
    assert other.content == whole.content


@pytest.mark.parametrize("asked", ["bytes=1-2,5-6", "items=1-", "bytes=abc"])
def test_ranges_it_does_not_serve_get_the_whole_file(api: Api, output: tuple[str, str], asked: str) -> None:
    answer = _get(api, output, Range=asked)
    assert answer.status_code == 200
    assert answer.content == _get(api, output).content


def test_ignores_range_profile_answers_the_whole_file(api: Api, output: tuple[str, str]) -> None:
    api.server.set_profile("ignores-range")
    answer = _get(api, output, Range="bytes=10-")
    assert answer.status_code == 200
    assert answer.content[:4] == b"PK\x03\x04"
    assert "Accept-Ranges" not in answer.headers
    assert "Content-Range" not in answer.headers
