"""The built-in applications and the registry, called directly."""

from __future__ import annotations

from typing import Any

import pytest

from vbrain_emulator import application_names, register_application, unregister_application
from vbrain_emulator.applications import (
    ApplicationError,
    ApplicationResult,
    csv_summary,
    get_application,
    tutorial,
)


def test_tutorial_multiplies() -> None:
    assert tutorial({"a": 10, "b": 20}, {}).output == {"value": 200}
    assert tutorial({"a": 1.5, "b": 2}, {}).output == {"value": 3.0}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"b": 1}, "missing parameter 'a'"),
        ({"a": "10", "b": 1}, "parameter 'a' is not a number: '10'"),
        ({"a": True, "b": 1}, "parameter 'a' is not a number: True"),
        ({}, "missing parameter 'a'; missing parameter 'b'"),
    ],
    ids=["missing", "string", "bool", "both-missing"],
)
def test_tutorial_fails_clearly(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ApplicationError, match=message):
        tutorial(params, {})


def test_csv_summary_pools_files_and_skips_text_columns() -> None:
    result = csv_summary(
        {},
        {
            "a.csv": b"\xef\xbb\xbfname;qty;price\nx;1;2.5\ny;3;\n",
            "sub/b.csv": b"name,qty\nz,2\n",
            "notes.json": b"{}",
        },
    )
    assert result.output == {
        "rows": 3,
        "files": ["a.csv", "sub/b.csv"],
        "columns": {
            "qty": {"count": 3, "sum": 6.0, "mean": 2.0},
            "price": {"count": 1, "sum": 2.5, "mean": 2.5},
        },
    }
    assert set(result.files) == {"summary.json", "summary.csv"}


def test_csv_summary_needs_a_csv() -> None:
    with pytest.raises(ApplicationError, match=r"needs at least one \.csv input file; got notes\.json"):
        csv_summary({}, {"notes.json": b"{}"})


def test_registry() -> None:
    assert {"Tutorial", "CsvSummary"} <= set(application_names())

    def echo(params: dict[str, Any], input_files: dict[str, bytes]) -> ApplicationResult:
        return ApplicationResult(output=params)

    register_application("Echo", echo)
    try:
        assert get_application("Echo") is echo
    finally:
        unregister_application("Echo")
    assert get_application("Echo") is None
    with pytest.raises(TypeError):
        register_application("Bad", "not callable")  # type: ignore[arg-type]
