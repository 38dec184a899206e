"""Small helpers shared by the tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

import pystatus
from pystatus.cluster import Cluster


def one(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    """The single value a query returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def as_login(dsn: str, login: str) -> str:
    """The DSN ``dsn`` with another login."""
    return f"{dsn} user={login}"


def user(dsn: str) -> str:
    """The login a DSN connects as."""
    return str(conninfo_to_dict(dsn)["user"])


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


# The seed's table, as a seed install has it.
SEED_TABLE = """
CREATE TABLE system_status (
    service_name VARCHAR(64) PRIMARY KEY,
    status VARCHAR(16) NOT NULL,
    current_task TEXT,
    last_heartbeat TIMESTAMP NOT NULL,
    updated_at TIMESTAMP DEFAULT NOW()
);
INSERT INTO system_status VALUES
    ('librarian', 'ok', 'indexing', '2026-11-29 10:00:00', '2026-11-29 10:00:01'),
    ('scheduler', 'down', NULL, '2026-11-28 23:30:00', NULL);
"""


# The order migrations apply in (their `-- depends:` lines, not their numbers):
# those that change the status tables, which heartbeats lock, come after those
# that rewrite rollups, so that an upgrade takes those locks at its end.
MIGRATION_ORDER = [
    "0001_baseline",
    "0003_alerts",
    "0004_ping_tokens",
    "0006_rollup_spans",
    "0007_current_hour_spans",
    "0009_rollup_running_totals",
    "0002_finite_times",
    "0005_compact_history",
    "0008_history_time_index",
    "0010_job_locks",
    "0011_alert_queue",
    "0012_overview_pages",
    "0013_metric_families",
]


PATIENT_WRITER = "options='-c statement_timeout=1000'"


@contextmanager
def heartbeats_flowing(dsn: str) -> Iterator[list[BaseException]]:
    """Services heartbeating as fast as they can until the block ends; yields the
    failures, which the caller reads after the block."""
    failures: list[BaseException] = []
    done = threading.Event()
    beats = [0]

    def beat() -> None:
        with psycopg.connect(f"{dsn} {PATIENT_WRITER}", autocommit=True) as conn:
            while not done.is_set():
                try:
                    pystatus.heartbeat(conn, f"svc-{beats[0] % 10}")
                    beats[0] += 1
                except pystatus.PystatusError as error:
                    failures.append(error)

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        yield failures
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert beats[0] > 0


def make_maintenance_due(db: psycopg.Connection[Any]) -> None:
    """Expired partitions to drop (retention one day) and a missing one to create."""
    db.execute("SELECT pystatus.set_history_retention('1 day')")
    future = one(
        db,
        "SELECT partition::text FROM pystatus.history_partitions"
        " WHERE starts > now() ORDER BY starts LIMIT 1",
    )
    db.execute(f"DROP TABLE {future}")
    assert one(db, "SELECT pystatus._maintenance_due()") != {}
