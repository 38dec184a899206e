"""One source for every answer's shape: each dataclass that a named query fills has
the columns the query returns, by name, order and type, as PostgreSQL describes
them. Found by reading the code, so a new pair is checked without being listed."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

import pystatus
from pystatus.queries import QUERIES

# What psycopg gives for each type pystatus's answers use.
PYTHON_TYPES: dict[str, type] = {
    "text": str,
    "name": str,
    "varchar": str,
    "bool": bool,
    "int2": int,
    "int4": int,
    "int8": int,
    "float8": float,
    "numeric": Decimal,
    "timestamptz": datetime,
    "date": date,
    "interval": timedelta,
    "uuid": UUID,
    "jsonb": dict,
    "_float8": list,
    "_text": list,
}
# Queries that read pg_cron's database, not pystatus's.
IN_CRON_DATABASE = {"check_jobs_in_cron_database", "install_plan_cron"}


def filled_rows() -> list[tuple[str, type, str]]:
    """(module, dataclass, query name) of every fetch_all/fetch_one call in pystatus."""
    found = []
    root = Path(pystatus.__file__).parent
    for path in sorted(root.rglob("*.py")):
        module_name = ".".join(("pystatus", *path.relative_to(root).with_suffix("").parts))
        module_name = module_name.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("fetch_all", "fetch_one")
            ):
                continue
            row_type, name = node.args[1], node.args[2]
            # A row type or query named any other way would go unchecked: refused.
            assert isinstance(row_type, ast.Name) and isinstance(name, ast.Constant), (
                f"{path}:{node.lineno}: name the dataclass and the query plainly"
            )
            module = importlib.import_module(module_name)
            found.append((module_name, getattr(module, row_type.id), name.value))
    return found


FILLED = filled_rows()


def columns(conn: psycopg.Connection[Any], query: str) -> list[tuple[str, str]]:
    """(name, type) of each column ``query`` returns, without running what it calls: a
    LIMIT 0 outside it never asks it for a row."""
    params = {name: None for name in _parameters(query)} or None  # None: % is literal
    with conn.transaction(force_rollback=True), conn.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({query}) AS q LIMIT 0", params)  # type: ignore[arg-type]
        assert cursor.description is not None
        oids = [column.type_code for column in cursor.description]
        names = dict(conn.execute("SELECT oid, typname FROM pg_type WHERE oid = ANY(%s)", (oids,)))
        return [(column.name, names[column.type_code]) for column in cursor.description]


def _parameters(query: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)s", query))


def _expected_type(hint: Any) -> type:
    """The type a field holds when it is not None: ``X | None`` is X, ``list[X]`` list."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return typing.get_origin(hint) or hint  # type: ignore[no-any-return]


def shape_problems(row_type: type, described: list[tuple[str, str]]) -> list[str]:
    """How ``row_type`` differs from the columns a query returns; empty when it does not."""
    hints = typing.get_type_hints(row_type)
    fields = [field.name for field in dataclasses.fields(row_type)]
    names = [name for name, _ in described]
    if fields != names:
        return [f"{row_type.__name__} has fields {fields}, the query returns columns {names}"]
    problems = []
    for name, sql_type in described:
        wanted = PYTHON_TYPES.get(sql_type)
        if wanted is None:
            problems.append(f"{row_type.__name__}.{name}: no Python type known for {sql_type}")
        elif _expected_type(hints[name]) is not wanted:
            problems.append(
                f"{row_type.__name__}.{name} is {hints[name]}, the query returns {sql_type}"
            )
    return problems


def test_the_pairs_are_found() -> None:
    found = {(row_type.__name__, name) for _, row_type, name in FILLED}
    assert {
        ("LiveStatus", "live_status"),
        ("Uptime", "uptime"),
        ("Message", "claim_alert_messages"),
    } <= found
    assert len(FILLED) >= 25


def test_each_dataclass_has_its_querys_columns(
    db: psycopg.Connection[Any], cron_db: psycopg.Connection[Any]
) -> None:
    problems = [
        f"{module}, query {query}: {problem}"
        for module, row_type, query in FILLED
        for problem in shape_problems(
            row_type, columns(cron_db if query in IN_CRON_DATABASE else db, QUERIES[query])
        )
    ]
    assert problems == []


def test_a_drifted_dataclass_is_caught(db: psycopg.Connection[Any]) -> None:
    described = columns(db, QUERIES["incidents"])

    @dataclass(frozen=True)
    class Renamed:
        service_name: str
        started: datetime
        ended: datetime | None
        length: timedelta
        cause: str

    @dataclass(frozen=True)
    class Retyped:
        service_name: str
        started: datetime
        ended: datetime | None
        duration: float
        cause: str

    assert shape_problems(Renamed, described) == [
        "Renamed has fields ['service_name', 'started', 'ended', 'length', 'cause'], "
        "the query returns columns ['service_name', 'started', 'ended', 'duration', 'cause']"
    ]
    assert shape_problems(Retyped, described) == [
        "Retyped.duration is <class 'float'>, the query returns interval"
    ]
