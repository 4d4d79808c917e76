"""Applications the emulator can run, and the registry that names them.

On the real platform an *application* (``Tutorial``, demand forecasting, ...) is chosen per request with
the ``application_id`` header. Here an application is a plain function::

    def my_app(params: dict[str, Any], input_files: dict[str, bytes]) -> ApplicationResult: ...

``params`` are the job's parameters (the repository's merged with the job's own) and ``input_files``
maps each input file name (paths inside an uploaded ZIP keep their folders) to its bytes. Raise
:class:`ApplicationError` for a clear, expected failure (its message becomes the job's error); any other
exception also fails the job, with its traceback in the job's logs.

Register your own with :func:`register_application`; the emulator looks names up when a request
arrives, so registering after the server started works too.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vbrain_emulator._values import is_number

__all__ = [
    "Application",
    "ApplicationError",
    "ApplicationResult",
    "application_names",
    "csv_summary",
    "get_application",
    "register_application",
    "tutorial",
    "unregister_application",
]


@dataclass(frozen=True)
class ApplicationResult:
    """What an application produced.

    :param output: the JSON object ``GET /job/{id}/result`` answers as ``{"output": ...}`` (also
        written to ``output.json`` in the output ZIP).
    :param files: extra output files, name to bytes, for the output ZIP.
    :param logs: log lines (plain messages; the emulator adds timestamps and levels).
    """

    output: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)


class ApplicationError(Exception):
    """An expected application failure: the job ends ``failed`` with this message in its logs."""


Application = Callable[[dict[str, Any], dict[str, bytes]], ApplicationResult]

_REGISTRY: dict[str, Application] = {}


def register_application(name: str, fn: Application) -> None:
    """Make ``fn`` runnable as ``application_id: name`` (replacing any application of that name).

    :param name: the ``application_id`` header value that selects it.
    :param fn: the application function.
    """
    if not name:
        raise ValueError("An application needs a non-empty name")
    if not callable(fn):
        raise TypeError(f"Application {name!r} must be callable, got {type(fn).__name__}")
    _REGISTRY[name] = fn


def unregister_application(name: str) -> None:
    """Forget the application ``name`` (no error when it is not registered).

    :param name: the application's name.
    """
    _REGISTRY.pop(name, None)


def get_application(name: str, registry: Mapping[str, Application] | None = None) -> Application | None:
    """Return the application registered as ``name``, or None.

    :param name: the application's name.
    :param registry: where to look; the global registry when None.
    """
    return (_REGISTRY if registry is None else registry).get(name)


def application_names(registry: Mapping[str, Application] | None = None) -> list[str]:
    """Return the registered application names, sorted.

    :param registry: where to look; the global registry when None.
    """
    return sorted(_REGISTRY if registry is None else registry)


def tutorial(params: dict[str, Any], input_files: dict[str, bytes]) -> ApplicationResult:
    """The platform's ``Tutorial``: multiply ``params["a"]`` by ``params["b"]``.

    :param params: must hold numbers ``a`` and ``b``.
    :param input_files: ignored by this application (the platform's tutorial uploads none).
    """
    problems = []
    for name in ("a", "b"):
        if name not in params:
            problems.append(f"missing parameter {name!r}")
        elif not is_number(params[name]):
            problems.append(f"parameter {name!r} is not a number: {params[name]!r}")
    if problems:
        raise ApplicationError("Tutorial needs numeric parameters 'a' and 'b': " + "; ".join(problems))
    value = params["a"] * params["b"]
    return ApplicationResult(output={"value": value}, logs=[f"computed {params['a']!r} * {params['b']!r}"])


def _decode(data: bytes) -> str:
    # Spreadsheet exports are often UTF-8 with a BOM, or Latin-1 from older Excel versions.
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _read_csv(text: str) -> list[list[str]]:
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        # One-column files give the sniffer nothing to go on: plain commas are the right guess.
        dialect = csv.excel
    return [row for row in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in row)]


def _to_float(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def csv_summary(params: dict[str, Any], input_files: dict[str, bytes]) -> ApplicationResult:
    """``CsvSummary``: count the rows of the ``.csv`` inputs and sum/average their numeric columns.

    Several CSV files are summarised together: same-named columns are pooled. A column is numeric when
    every non-empty cell in it parses as a number. Output::

        {"rows": 3, "files": ["sales.csv"],
         "columns": {"qty": {"count": 3, "sum": 6.0, "mean": 2.0}}}

    and the files ``summary.json`` (that object) and ``summary.csv`` (one line per numeric column).

    :param params: not used by this application.
    :param input_files: the job's inputs; only names ending in ``.csv`` are read.
    """
    csv_names = sorted(name for name in input_files if name.lower().endswith(".csv"))
    if not csv_names:
        raise ApplicationError(
            "CsvSummary needs at least one .csv input file; got "
            + (", ".join(sorted(input_files)) if input_files else "no input files")
        )
    logs: list[str] = []
    rows = 0
    # column -> list of values, or None once a non-numeric cell disqualified it
    values: dict[str, list[float] | None] = {}
    for name in csv_names:
        table = _read_csv(_decode(input_files[name]))
        if not table:
            logs.append(f"{name}: empty file")
            continue
        header, body = [cell.strip() for cell in table[0]], table[1:]
        rows += len(body)
        logs.append(f"{name}: {len(body)} rows, columns {', '.join(header)}")
        for index, column in enumerate(header):
            numbers = values.setdefault(column, [])
            for row in body:
                cell = row[index].strip() if index < len(row) else ""
                if not cell or numbers is None:
                    continue
                number = _to_float(cell)
                if number is None:
                    numbers = values[column] = None
                else:
                    numbers.append(number)
    columns = {
        column: {"count": len(numbers), "sum": sum(numbers), "mean": sum(numbers) / len(numbers)}
        for column, numbers in values.items()
        if numbers
    }
    output = {"rows": rows, "files": csv_names, "columns": columns}
    table_out = io.StringIO()
    writer = csv.writer(table_out, lineterminator="\n")
    writer.writerow(["column", "count", "sum", "mean"])
    for column, stats in columns.items():
        writer.writerow([column, stats["count"], stats["sum"], stats["mean"]])
    logs.append(f"summarised {rows} rows, {len(columns)} numeric columns")
    return ApplicationResult(
        output=output,
        files={
            "summary.json": json.dumps(output, indent=2).encode(),
            "summary.csv": table_out.getvalue().encode(),
        },
        logs=logs,
    )


register_application("Tutorial", tutorial)
register_application("CsvSummary", csv_summary)
