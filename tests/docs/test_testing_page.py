"""docs/testing.md stays true: its code comes from tests that run, and its tables match the code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from airflow_provider_vbrain import exceptions
from airflow_provider_vbrain.hooks.vbrain import VBrainHook

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "testing.md"
INCLUDE = re.compile(
    r"```\{literalinclude\} (?P<path>\S+)\n(?P<options>(?::[^\n]*\n)*)```",
)


def includes() -> list[tuple[Path, str, str]]:
    """Each ``literalinclude`` of the page: the file, its start marker, its end marker."""
    found = []
    for match in INCLUDE.finditer(PAGE.read_text()):
        options = dict(re.findall(r':([\w-]+): "?(.*?)"?\n', match["options"]))
        found.append(((PAGE.parent / match["path"]).resolve(), options["start-after"], options["end-before"]))
    return found


def test_every_code_sample_is_included_from_a_file_the_suite_runs() -> None:
    page = PAGE.read_text()
    assert "```python" not in page, "write the sample as a test and include it"
    assert includes()
    for path, start, end in includes():
        text = path.read_text()
        assert path.is_relative_to(ROOT / "tests"), path
        assert text.count(start) == 1, f"{start} not once in {path}"
        assert text.count(end) == 1, f"{end} not once in {path}"
        assert text.index(start) < text.index(end)


def test_every_recipe_is_on_the_page() -> None:
    included = {path for path, _, _ in includes()}
    recipes = set((ROOT / "tests" / "docs").glob("test_testing_*.py")) - {Path(__file__).resolve()}
    assert recipes <= included
    for path in included:
        shown = {start for included, start, _ in includes() if included == path}
        written = set(re.findall(r"# \[START howto_testing_\w+\]", path.read_text()))
        assert written == shown, path


def table(heading: str) -> dict[str, str]:
    """The first column of the table under ``heading`` (backquotes stripped), by its name."""
    section = PAGE.read_text().split(heading, 1)[1]
    lines = ("|" + section.split("\n\n|", 1)[1]).splitlines()
    rows = [re.match(r"\| `([^`]+)` \| `?([^|`]*)`?[^|]* \|", line) for line in lines[2:]]
    rows = rows[: rows.index(None)] if None in rows else rows
    return {row[1].split("(")[0]: row[1] if "(" in row[1] else row[2] for row in rows if row}


def spelled(signature: inspect.Signature) -> str:
    """A signature as the page writes it: names, and defaults as Python literals; no annotations."""
    parts = [
        name if p.default is p.empty else f"{name}={p.default!r}"
        for name, p in signature.parameters.items()
        if name != "self"
    ]
    return f"({', '.join(parts)})"


def test_the_errors_table_gives_every_error_with_its_constructor() -> None:
    rows = table("## Our typed errors, raised by a mock")
    raised = {name for name in exceptions.__all__ if name != "VBrainError"}
    assert set(rows) == raised
    for name, constructor in rows.items():
        assert constructor == name + spelled(inspect.signature(getattr(exceptions, name).__init__))


def test_the_methods_safe_to_patch_are_the_hooks_own() -> None:
    rows = table("## What is safe to patch")
    assert len(rows) == 15  # one per endpoint of the API reference, and the Test button's
    for name, written in rows.items():
        method = getattr(VBrainHook, name)
        assert not name.startswith("_")
        # The page's arguments come first, in its order; a release may add optional ones after them.
        actual = spelled(inspect.signature(method))[1:-1].split(", ")
        page = written[len(name) + 1 : -1].split(", ") if written != f"{name}()" else []
        assert actual[: len(page)] == page, name
