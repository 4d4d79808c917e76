"""Finding what an earlier attempt created."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_vbrain._reattach import Seen, newest_tagged


@pytest.mark.parametrize(
    ("bodies", "found"),
    [
        pytest.param([], None, id="nothing-listed"),
        pytest.param([("a", {"metadata": {}})], None, id="none-tagged"),
        pytest.param(
            [
                ("old", {"metadata": {"airflow": {"run_id": "r"}}, "created_on": "2026-01-01_10:00:00"}),
                ("new", {"metadata": {"airflow": {"run_id": "r"}}, "created_on": "2026-01-01_11:00:00"}),
                ("other", {"metadata": {"airflow": {"run_id": "x"}}, "created_on": "2026-01-01_12:00:00"}),
            ],
            "new",
            id="newest-tagged",
        ),
    ],
)
def test_finding_by_identity(bodies: list[Any], found: str | None) -> None:
    lookup = newest_tagged(bodies, {"run_id": "r"}, "job")
    assert lookup.value == found
    assert lookup.seen is (Seen.FOUND if found else Seen.ABSENT)


def test_finding_by_identity_needs_metadata_in_the_answers() -> None:
    lookup = newest_tagged([("a", {"job_status": "started"})], {"run_id": "r"}, "job")
    assert lookup.seen is Seen.UNKNOWN
    assert "job answers carry no metadata" in lookup.reason
