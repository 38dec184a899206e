"""Small helpers shared by the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg


def one(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    """The single value a query returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def counts(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """(rows in system_status, rows in system_status_history)."""
    return (
        one(conn, "SELECT count(*) FROM system_status"),
        one(conn, "SELECT count(*) FROM system_status_history"),
    )


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Polls until ``condition`` holds; fails after ``seconds`` (a bound, not a measurement)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)
