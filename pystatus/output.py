"""Dataclass rows to text: a table for people, JSON or CSV for programs.

The columns are the dataclass's fields, named as in SQL. A table goes through
rich, which colours only a terminal and honours NO_COLOR (and FORCE_COLOR).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Row = TypeVar("Row", bound=DataclassInstance)
else:
    Row = TypeVar("Row")

FORMATS = ("table", "json", "csv")
# A field's table column is its name unless its metadata says otherwise.
HEADER = "header"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def _json_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def write_rows(
    row_type: type[Row],
    rows: Sequence[Row],
    fmt: str,
    out: TextIO | None = None,
    emphasize: Callable[[Row], bool] = lambda row: False,
) -> None:
    """Writes ``rows`` as a table, JSON or CSV, a column per field of ``row_type``; in a
    table on a terminal, the rows ``emphasize`` picks are red."""
    out = out or sys.stdout
    columns = fields(row_type)
    values = [[getattr(row, column.name) for column in columns] for row in rows]
    if fmt == "json":
        records = [dict(zip((c.name for c in columns), line)) for line in values]
        json.dump(records, out, default=_json_value, indent=2)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow([c.name for c in columns])
        writer.writerows([[_text(v) for v in line] for line in values])
    else:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
        for column in columns:
            table.add_column(column.metadata.get(HEADER, column.name))
        for row, line in zip(rows, values):
            # Text, not str: a service named "[red]" must not be read as rich markup.
            table.add_row(*(Text(_text(v)) for v in line), style="red" if emphasize(row) else None)
        _print_table(table, out)


def _print_table(table: Table, out: TextIO) -> None:
    console = Console(file=out, highlight=False, markup=False, emoji=False)
    if not console.is_terminal:
        console.width = 1_000_000  # piped: one line per row however wide, for grep and awk
    with console.capture() as captured:
        console.print(table)
    # rich pads each cell to its column's width; people and diffs need no trailing blanks.
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
