"""Fault bookkeeping: validation and matching, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from vbrain_emulator.faults import FaultBook, FaultSpecError


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "needs a status, drop or delay"),
        ({"status": 99}, "between 100 and 599"),
        ({"status": "500"}, "integer HTTP status"),
        ({"status": 500, "count": 0}, "positive integer"),
        ({"status": 500, "drop": True}, "not both"),
        ({"delay": 1, "after": True}, "after needs a status or drop"),
        ({"delay": -1}, "non-negative"),
        ({"drop": True, "html": True}, "only apply to a fault with a status"),
        ({"status": 500, "path": "("}, "not a valid regular expression"),
        ({"status": 500, "colour": "red"}, "Unknown fault field"),
    ],
)
def test_invalid_specs(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(FaultSpecError, match=message):
        FaultBook().add(spec)


def test_first_matching_fault_wins_and_is_used_up() -> None:
    book = FaultBook()
    jobs = book.add({"status": 503, "method": "GET", "path": r"^/api/v1/job/[^/]+$", "count": 2})
    anything = book.add({"status": 500})
    assert book.take("GET", "/api/v1/job/abc") is jobs
    assert book.take("POST", "/api/v1/job/abc") is anything
    assert book.take("GET", "/api/v1/job/abc") is jobs
    assert book.take("GET", "/api/v1/job/abc") is None
    assert book.active() == []
