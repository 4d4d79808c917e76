"""docs/metrics.md stays true: its table lists every metric the provider sends, and its tag values are
the code's."""

from __future__ import annotations

import re
from pathlib import Path

from airflow_provider_vbrain._client.endpoints import ENDPOINT_NAMES
from airflow_provider_vbrain._client.metering import OUTCOMES, STATUS_CLASSES
from tests.test_metrics import every_name_and_tag

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()


def definition(term: str) -> set[str]:
    """The backquoted words of the definition of ``term`` (a MyST definition list item)."""
    match = re.search(rf"^`{term}`\n: (.*?)(?:\n\n|\Z)", PAGE, re.MULTILINE | re.DOTALL)
    assert match, f"docs/metrics.md defines no {term}"
    return set(re.findall(r"`([a-z0-9_]+)`", match.group(1)))


def test_the_table_lists_every_metric_and_its_spelled_out_name() -> None:
    rows = re.findall(r"^\| `(vbrain\.[a-z.]+)` \| [^|]+ \| [^|]+ \| ([^|]+) \|", PAGE, re.MULTILINE)
    names, _ = every_name_and_tag()
    tagged = {name for name in names if not any(name.startswith(f"{row}.") for row, _ in rows)}
    assert {row for row, _ in rows} == tagged
    for row, spelled in rows:
        spelled_names = {name for name in names if name.startswith(f"{row}.")}
        pattern = (
            spelled.strip().strip("`").replace(".", r"\.").replace("<", "(?P<").replace(">", ">[a-z0-9_]+)")
        )
        assert all(re.fullmatch(pattern, name) for name in spelled_names), row
        assert bool(spelled_names) == (spelled.strip() != "none"), row


def test_the_tag_values_are_the_codes() -> None:
    assert definition("endpoint") == set(ENDPOINT_NAMES)
    assert definition("status_class") >= set(STATUS_CLASSES)
    assert definition("outcome") == set(OUTCOMES)
