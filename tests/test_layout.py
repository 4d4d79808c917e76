"""The package's layout stays as docs/architecture.md describes it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "airflow_provider_vbrain"
# Past this, a module holds more than one concern: split it by concern (docs/architecture.md).
MAX_MODULE_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_at_load(path: Path, names: set[str]) -> set[str]:
    """The package modules ``path`` imports when it is loaded (not under TYPE_CHECKING, not in functions)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in names}


def test_no_import_cycle() -> None:
    found = modules()
    graph = {name: imports_at_load(path, set(found)) - {name} for name, path in found.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_the_wire_constants_import_nothing_of_the_project() -> None:
    """The emulator, which never imports Airflow, shares them."""
    assert imports_at_load(PACKAGE / "_wire.py", set(modules())) == set()


def test_no_module_is_longer_than_400_lines() -> None:
    too_long = {
        name: length
        for name, path in modules().items()
        if (length := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"
