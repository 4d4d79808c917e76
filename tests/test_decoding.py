"""Compressed answers, decompressed a bounded piece at a time whatever the HTTP library's version."""

from __future__ import annotations

import gzip
import zlib

import pytest

from airflow_provider_vbrain._client.decoding import BodyDecoder, DecodingError

TEXT = b'{"job_status": "finished", "output": {"value": 200}}' * 50


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def decoded(encoding: str, body: bytes, network_chunk: int = 7) -> bytes:
    """``body`` fed as a network would hand it over, in small chunks."""
    decoder = BodyDecoder(encoding)
    out = b"".join(
        piece
        for at in range(0, len(body), network_chunk)
        for piece in decoder.feed(body[at : at + network_chunk])
    )
    decoder.finish()
    return out


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        pytest.param("", TEXT, id="none"),
        pytest.param("identity", TEXT, id="identity"),
        pytest.param("gzip", gzip.compress(TEXT), id="gzip"),
        pytest.param("x-gzip", gzip.compress(TEXT), id="x-gzip"),
        pytest.param("GZIP ", gzip.compress(TEXT), id="gzip-spelled-loosely"),
        pytest.param("gzip", gzip.compress(TEXT[:100]) + gzip.compress(TEXT[100:]), id="gzip-two-members"),
        pytest.param("deflate", zlib.compress(TEXT), id="deflate-zlib-wrapped"),
        pytest.param("deflate", raw_deflate(TEXT), id="deflate-raw"),
    ],
)
def test_every_encoding_asked_for_comes_back_whole(encoding: str, body: bytes) -> None:
    assert decoded(encoding, body) == TEXT


def test_a_bomb_comes_out_in_bounded_pieces_and_stops_with_its_reader() -> None:
    bomb = gzip.compress(b"\0" * (256 * 1024 * 1024))  # 256 MiB in about 250 KiB
    decoder = BodyDecoder("gzip")
    read = 0
    for piece in decoder.feed(bomb, piece=64 * 1024):
        assert len(piece) <= 64 * 1024
        read += len(piece)
        if read >= 1024 * 1024:  # a reader's cap: nothing more is inflated
            break
    assert read == 1024 * 1024


@pytest.mark.parametrize(
    ("encoding", "body", "says"),
    [
        pytest.param("br", b"\x0b\x02\x80", "not asked for", id="brotli-not-asked-for"),
        pytest.param("gzip, gzip", gzip.compress(gzip.compress(TEXT)), "not asked for", id="stacked"),
        pytest.param("gzip", b"this is not gzip at all", "cannot be decompressed", id="corrupt-gzip"),
        pytest.param("deflate", b"\xff" * 40, "cannot be decompressed", id="corrupt-deflate"),
        pytest.param("gzip", gzip.compress(TEXT)[:-20], "ended before", id="cut-gzip"),
    ],
)
def test_what_cannot_be_decompressed_is_a_clear_failure(encoding: str, body: bytes, says: str) -> None:
    with pytest.raises(DecodingError, match=says):
        decoded(encoding, body)
