"""Dataclass rows to text: a table for people, JSON or CSV for programs.

The columns are the dataclass's fields, named as in SQL. A table goes through
rich, which colours only a terminal and honours NO_COLOR (and FORCE_COLOR).

A terminal is an interpreter: an escape sequence in a service's task would be
an instruction to it. So every text the CLI prints for people goes through
terminal_safe() (tables, messages, errors, logs), and JSON escapes on its own.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields, is_dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pystatus.names import UNPRINTABLE

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Row = TypeVar("Row", bound=DataclassInstance)
else:
    Row = TypeVar("Row")

FORMATS = ("table", "json", "csv")
# A field's table column is its name unless its metadata says otherwise.
HEADER = "header"


# How a table shows statuses on a terminal (never by colour alone: the word stays).
# Colours only, no bold: NO_COLOR then leaves no escape code at all.
STATUS_STYLES = {
    "ok": "green",
    "degraded": "yellow",
    "down": "red",
    "stale": "red",
    "maintenance": "blue",
    "starting": "cyan",
    "stopping": "cyan",
}
STATUS_FIELDS = {"status", "effective_status", "reported_status", "from_status", "to_status"}
LATENCY_FIELDS = {"latency_ms", "p50", "p95", "max"}

# What a terminal must not be given raw: the characters no text of pystatus's may
# hold (C0, DEL, C1, invisible and direction-changing ones, lone surrogates), the
# line and paragraph separators, and every other format character (Unicode's
# category Cf: deprecated format controls, tag characters, ...).
_ESCAPED = (
    f"{UNPRINTABLE}\u2028\u2029\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u206a-\u206f"
    "\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
_UNSAFE = re.compile(f"[{_ESCAPED}]")


def _escape(character: str) -> str:
    code = ord(character)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal_safe(text: str, lines: bool = False) -> str:
    """``text`` with every character a terminal could act on written as a Python escape
    (``\\x1b``, ``\\u202e``); with ``lines``, line breaks and tabs are kept (messages)."""
    kept = "\n\t" if lines else ""
    return _UNSAFE.sub(lambda c: c[0] if c[0] in kept else _escape(c[0]), text)


def echo(text: str = "", file: TextIO | None = None, flush: bool = False) -> None:
    """print(), for a message of the CLI that may carry any text."""
    print(terminal_safe(text, lines=True), file=file or sys.stdout, flush=flush)


class TerminalSafeFormatter(logging.Formatter):
    """Log records as terminal_safe() text: they quote what clients sent."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record), lines=True)


def duration(seconds: float) -> str:
    """A duration for a table, to the second: ``42 s``, ``5 min 3 s``, ``3 h 7 min``,
    ``1 d 0 h 21 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d" + (f" {hours} h {minutes} min" if hours or minutes else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    if minutes:
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    return f"{secs} s"


def rough_duration(seconds: float | timedelta) -> str:
    """A duration at a glance: ``45 s``, ``12 min``, ``20 h``, ``3 d``, whole units
    rounded down (the dashboard; its app.js writes the same)."""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    s = int(max(0.0, float(seconds)))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def age(seconds: float) -> str:
    """How long ago, in its largest unit: ``42 s ago``, ``5 min ago``, ``20 h ago``, ``3 d ago``."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{max(int(seconds), 0)} s ago"


def moment(value: datetime) -> str:
    """A time for people: ISO-like, to the second, with its zone (UTC, or the offset)."""
    offset = value.utcoffset()
    if offset is None:
        return f"{value:%Y-%m-%d %H:%M:%S}"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}" if minutes else "UTC"
    return f"{value:%Y-%m-%d %H:%M:%S} {zone}"


def human(name: str, value: Any) -> str:
    """A table cell: ``value`` of the field ``name``, as a person reads it."""
    if name == "ok" and value is None:
        return "unknown"
    if value is None:
        return ""
    if name == "uptime":
        return f"{float(value) * 100:.2f} %"
    if name.endswith("_change"):
        return f"{float(value) * 100:+.2f} %"
    if name == "seconds_since":
        return age(float(value))
    if isinstance(value, timedelta):
        return duration(value.total_seconds())
    if name.endswith("_seconds") and isinstance(value, int | float | Decimal):
        return duration(float(value))
    if isinstance(value, datetime):
        return moment(value)
    if isinstance(value, float | Decimal):
        shown = f"{float(value):.2f}"
        return f"{shown} ms" if name in LATENCY_FIELDS or name.endswith(("_p50", "_p95")) else shown
    return str(value)


def _csv_value(value: Any, for_terminal: bool) -> Any:
    """A CSV cell: the exact value, as JSON gives it (times ISO 8601, durations in seconds);
    escaped when the CSV is printed on a terminal rather than kept."""
    plain = jsonable(value)
    if plain is None:
        return ""
    return terminal_safe(plain) if for_terminal and isinstance(plain, str) else plain


_PLAIN_TYPES = frozenset({str, int, float, bool})


def jsonable(value: Any) -> Any:
    """``value`` as JSON types, the same in the CLI's ``--format json`` and the HTTP API:
    dataclasses as objects named by their fields, times as ISO 8601 with their offset,
    durations as seconds, decimals as numbers."""
    # The common cases first: the dashboard converts every field of 10,000 rows.
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        # Arrays of plain values (the overview's hourly strips, 24,000 numbers
        # at 1,000 services) as they are: a call for each cost a third of the response.
        if all(v is None or type(v) in _PLAIN_TYPES for v in value):
            return list(value)
        return [jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {name: jsonable(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


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
        json.dump(jsonable(list(rows)), out, indent=2)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow([c.name for c in columns])
        for_terminal = out.isatty()
        writer.writerows([[_csv_value(v, for_terminal) for v in line] for line in values])
    else:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
        for column in columns:
            table.add_column(column.metadata.get(HEADER, column.name))
        for row, line in zip(rows, values):
            # Text, not str: a service named "[red]" must not be read as rich markup.
            cells = [
                Text(
                    terminal_safe(human(c.name, v)),
                    style=STATUS_STYLES.get(v, "") if c.name in STATUS_FIELDS else "",
                )
                for c, v in zip(columns, line)
            ]
            table.add_row(*cells, style="red" if emphasize(row) else None)
        _print_table(table, out)


def _print_table(table: Table, out: TextIO) -> None:
    console = Console(file=out, highlight=False, markup=False, emoji=False)
    if not console.is_terminal:
        console.width = 1_000_000  # piped: one line per row however wide, for grep and awk
    with console.capture() as captured:
        console.print(table)
    # rich pads each cell to its column's width; people and diffs need no trailing blanks.
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
