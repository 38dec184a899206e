"""Small helpers shared by the tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from pystatus.cluster import Cluster


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


def pystatus_jobs(cron_db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """pystatus's jobs in pg_cron: (name, schedule, command, database), by name."""
    return cron_db.execute(
        "SELECT jobname, schedule, command, database FROM cron.job"
        " WHERE jobname LIKE 'pystatus-%' ORDER BY jobname"
    ).fetchall()


@contextmanager
def empty_databases(cluster: Cluster, *names: str) -> Iterator[list[str]]:
    """New empty databases of these names (dropped first if left over); their DSNs.
    Dropped afterwards."""

    def drop(admin: psycopg.Connection[Any], name: str) -> None:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        for name in names:
            drop(admin, name)
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield [cluster.dsn(name) for name in names]
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        for name in names:
            drop(admin, name)
