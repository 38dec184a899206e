"""Rows to text: an aligned table for people, JSON or CSV for programs."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

FORMATS = ("table", "json", "csv")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def _json_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


RED, RESET = "\033[31m", "\033[0m"


def write_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: str,
    out: TextIO | None = None,
    emphasize: Callable[[Sequence[Any]], bool] = lambda row: False,
) -> None:
    """Writes rows as a table, JSON or CSV; in a table, rows ``emphasize`` picks are red."""
    out = out or sys.stdout
    if fmt == "json":
        records = [dict(zip(columns, row)) for row in rows]
        json.dump(records, out, default=_json_value, indent=2)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([[_text(v) for v in row] for row in rows])
    else:
        cells = [[_text(v) for v in row] for row in rows]
        widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
        out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
        out.write("  ".join("-" * w for w in widths) + "\n")
        for row, line in zip(rows, cells):
            text = "  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip()
            out.write(f"{RED}{text}{RESET}\n" if emphasize(row) else text + "\n")
