"""The packages' layout stays as docs/architecture.md describes it.

`make lint` checks the layers with import-linter (pyproject's ``tool.importlinter``); these tests
keep what it does not see: module sizes, and cycles found by a reading of our own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "airflow_provider_vbrain": ROOT / "airflow_provider_vbrain",
    "vbrain_emulator": ROOT / "emulator" / "vbrain_emulator",
}
# Past this, a module holds more than one concern: split it by concern (docs/architecture.md).
MAX_MODULE_LINES = 400


def modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGES[package].rglob("*.py")):
        parts = (package, *path.relative_to(PACKAGES[package]).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, module: str, names: set[str] | None, *, at_load: bool = False) -> set[str]:
    """The package modules (of ``names``; every module when None) ``path`` imports: at load, in
    functions and under TYPE_CHECKING alike, or with ``at_load`` only those run as it loads."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    nodes = _load_time(tree.body) if at_load else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base])
                base = base.rstrip(".")
            # "from package import module" imports the module; any other name comes from ``base``.
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if names and f"{base}.{alias.name}" in names else base)
    return found if names is None else {name for name in found if name in names}


def _load_time(body: list[ast.stmt]) -> list[ast.stmt]:
    """The import statements of a module body that run as it loads (not in functions or classes,
    not under ``if TYPE_CHECKING``)."""
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            found += _load_time(node.body) + _load_time(node.orelse)
        elif isinstance(node, ast.Try):
            found += _load_time(node.body) + _load_time(node.orelse) + _load_time(node.finalbody)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package: str) -> None:
    found = modules(package)
    graph = {name: imports(path, name, set(found)) - {name} for name, path in found.items()}
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


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_longer_than_400_lines(package: str) -> None:
    too_long = {
        name: length
        for name, path in modules(package).items()
        if (length := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def test_the_provider_info_imports_nothing_of_airflow() -> None:
    """Airflow calls get_provider_info while it starts, possibly during the first ``import airflow``
    of a process that began by importing one of our modules: what it loads must not import Airflow,
    or that first import fails (and with it every ``airflow`` command)."""
    found = modules("airflow_provider_vbrain")
    init = found["airflow_provider_vbrain"]
    function = next(
        node
        for node in ast.walk(ast.parse(init.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name == "get_provider_info"
    )
    todo = {
        f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in found else str(node.module)
        for node in ast.walk(function)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    loaded: set[str] = set()
    while todo:
        module = todo.pop()
        loaded.add(module)
        airflow = {
            name
            for name in imports(found[module], module, None, at_load=True)
            if name.split(".")[0] == "airflow"
        }
        assert not airflow, f"get_provider_info loads {module}, which imports {airflow}"
        todo |= imports(found[module], module, set(found), at_load=True) - loaded
    assert "airflow_provider_vbrain._airflow.form" in loaded


def test_the_client_and_the_emulator_read_the_wire_alike() -> None:
    """Each keeps its own copy of what the reference fixes (the emulator imports nothing of the
    provider): they must agree, or the tests would prove only one side's reading."""
    from airflow_provider_vbrain._client import wire as sent
    from airflow_provider_vbrain.jobs import JobState
    from vbrain_emulator import wire as served

    shared = ["API_PREFIX", "SCOPE_HEADERS", "API_KEY_HEADER", "REPOSITORY_HEADER", "SUBMISSION_FIELDS"]
    shared += ["INPUT_SUFFIXES", "DATE_FORMAT"]
    assert {name: getattr(sent, name) for name in shared} == {name: getattr(served, name) for name in shared}
    assert [state.value for state in JobState] == [
        served.QUEUED,
        served.STARTED,
        served.FINISHED,
        served.FAILED,
    ]
