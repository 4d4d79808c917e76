"""The probe's findings: one row per check, and the table they print as."""

from __future__ import annotations

import dataclasses
import enum
import textwrap
from collections.abc import Iterable

from airflow_provider_vbrain._client.http import clip

__all__ = ["Finding", "Report", "Verdict"]

#: Column widths of the printed table: verdict, check, what the server did, what it means.
WIDTHS = (4, 24, 46, 52)
HEADINGS = ("", "check", "what the server did", "what it means for the operators")


class Verdict(enum.Enum):
    """How a finding bears on the provider: fine, worth knowing, limits a feature, or stops it."""

    OK = "ok"
    NOTE = "note"
    WARN = "warn"
    FAIL = "FAIL"


@dataclasses.dataclass(frozen=True)
class Finding:
    """One row of the table.

    :param check: what was checked.
    :param verdict: how it bears on the provider.
    :param did: what the server did, in its own terms (statuses, shapes, quotes).
    :param means: what it means for the operators' settings.
    """

    check: str
    verdict: Verdict
    did: str
    means: str


class Report:
    """The findings so far, in the order the checks ran."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def add(self, check: str, verdict: Verdict, did: str, means: str) -> Finding:
        finding = Finding(check, verdict, clip(did), means)
        self.findings.append(finding)
        return finding

    @property
    def failed(self) -> bool:
        """Whether a check found something the provider cannot work with."""
        return any(finding.verdict is Verdict.FAIL for finding in self.findings)

    def table(self) -> str:
        """The findings as a plain-text table, each cell wrapped to its column."""
        rule = tuple("-" * width for width in WIDTHS)
        rows = [HEADINGS, rule]
        rows += [(f.verdict.value, f.check, f.did, f.means) for f in self.findings]
        return "\n".join(line for row in rows for line in _wrapped(row))


def _wrapped(cells: Iterable[str]) -> list[str]:
    """One table row as lines: each cell wrapped to its width, columns padded."""
    columns = [textwrap.wrap(cell, width) or [""] for cell, width in zip(cells, WIDTHS, strict=True)]
    height = max(len(column) for column in columns)
    lines = []
    for index in range(height):
        parts = [
            (column[index] if index < len(column) else "").ljust(width)
            for column, width in zip(columns, WIDTHS, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return lines
