"""The named queries of sql/queries.sql, loaded once, and the few ways they are run.

Only the client (writes), answers (reads), admin (operations) and alerts name queries.
"""

from __future__ import annotations

import importlib.resources
import re
from typing import Any, TypeVar, cast

import psycopg
from psycopg.rows import class_row, tuple_row
from typing_extensions import LiteralString

from pystatus.errors import PystatusError, translate_errors

Conn = psycopg.Connection[Any]
Row = TypeVar("Row")


def _load() -> dict[str, LiteralString]:
    text = (importlib.resources.files("pystatus") / "sql" / "queries.sql").read_text()
    sections = re.split(r"^-- (\w+) --\n", text, flags=re.MULTILINE)[1:]
    # Plain strings, not sql.SQL objects: psycopg caches the parsing of a string
    # query, which keeps a heartbeat as cheap as a hand-written execute().
    return {
        name: cast(LiteralString, body.split("\n", 1)[1].strip())  # drop the description line
        for name, body in zip(sections[::2], sections[1::2])
    }


QUERIES = _load()


def only_row(row: Row | None, name: str) -> Row:
    """The row of a query that always returns exactly one; an error, not None, if it did not."""
    if row is None:
        raise PystatusError(f"the {name} query returned no row: is the pystatus schema intact?")
    return row


def fetch_all(
    conn: Conn, row_type: type[Row], name: str, params: dict[str, Any] | None = None
) -> list[Row]:
    """Every row of the named query, each as a ``row_type``."""
    with translate_errors(), conn.cursor(row_factory=class_row(row_type)) as cursor:
        return cursor.execute(QUERIES[name], params).fetchall()


def fetch_one(
    conn: Conn, row_type: type[Row], name: str, params: dict[str, Any] | None = None
) -> Row:
    """The single row of the named query, as a ``row_type``."""
    with translate_errors(), conn.cursor(row_factory=class_row(row_type)) as cursor:
        return only_row(cursor.execute(QUERIES[name], params).fetchone(), name)


def fetch_value(conn: Conn, name: str, params: dict[str, Any] | None = None) -> Any:
    """The single value of the named query (a call returning one scalar)."""
    with translate_errors(), conn.cursor(row_factory=tuple_row) as cursor:
        return only_row(cursor.execute(QUERIES[name], params).fetchone(), name)[0]


async def fetch_value_async(
    conn: psycopg.AsyncConnection[Any], name: str, params: dict[str, Any] | None = None
) -> Any:
    """``fetch_value`` on an asyncio connection."""
    with translate_errors():
        async with conn.cursor(row_factory=tuple_row) as cursor:
            return only_row(await (await cursor.execute(QUERIES[name], params)).fetchone(), name)[0]
