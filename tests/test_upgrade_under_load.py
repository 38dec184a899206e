"""Upgrading a loaded release while services heartbeat, each statement under
``statement_timeout = 1s``: no heartbeat fails, whatever the upgrade waits for.
A service's transaction left open on its row makes migrate give way (tried
again after pauses, then stopped with nothing changed, naming the session),
never the other services wait."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pystatus import migrations
from pystatus.errors import PystatusError
from tests.helpers import one
from tests.test_releases import WITH_MIGRATIONS_PENDING, install_release, released_migrations

SERVICES = 40
DAYS = 3

# The migrations that rewrite rollups, which must run before the status tables are locked.
REWRITE_ROLLUPS = {"0006_rollup_spans", "0007_current_hour_spans", "0009_rollup_running_totals"}


def load_history(dsn: str) -> int:
    """SERVICES services with DAYS days of one-minute history, as the release wrote it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO system_status (service_name, status, last_heartbeat, updated_at)"
            " SELECT 'svc-' || s, 'ok', now(), now() FROM generate_series(1, %s) AS s",
            [SERVICES],
        )
        conn.execute(
            "INSERT INTO system_status_history (service_name, status, heartbeat_timestamp)"
            " SELECT 'svc-' || s, CASE WHEN m %% 97 = 0 THEN 'down' ELSE 'ok' END,"
            "        now() - %s * interval '1 day' + m * interval '1 minute'"
            " FROM generate_series(1, %s) AS s, generate_series(0, %s * 1440 - 1) AS m",
            [DAYS, SERVICES, DAYS],
        )
        return one(conn, "SELECT count(*) FROM system_status_history")  # type: ignore[no-any-return]


class Writers:
    """Services heartbeating in threads, the way each writes: a legacy UPDATE of
    its row, and pystatus.heartbeat() (in both the release and this version)."""

    def __init__(self, dsn: str, services: list[str]) -> None:
        self.dsn, self.services = dsn, services
        self.stop = threading.Event()
        self.written: list[str] = []
        self.failed: list[str] = []
        self.threads = [threading.Thread(target=self.run, args=(s,)) for s in services]

    def run(self, service: str) -> None:
        legacy = service.endswith(("1", "3", "5", "7", "9"))
        with psycopg.connect(self.dsn, autocommit=True, options="-c statement_timeout=1s") as conn:
            while not self.stop.is_set():
                try:
                    if legacy:
                        conn.execute(
                            "UPDATE system_status SET status = 'ok', last_heartbeat = now(),"
                            " updated_at = now() WHERE service_name = %s",
                            [service],
                        )
                    else:
                        conn.execute("SELECT pystatus.heartbeat(%s, 'ok')", [service])
                    self.written.append(service)
                except psycopg.Error as exc:
                    self.failed.append(f"{service}: {type(exc).__name__}: {exc}")
                self.stop.wait(0.02)

    @contextmanager
    def running(self) -> Iterator[Writers]:
        for thread in self.threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in self.threads:
                thread.join(30)


@contextmanager
def open_transaction_on(dsn: str, service: str) -> Iterator[int]:
    """A service's transaction that wrote its row and stays open: it holds a lock
    on system_status (and on the history partitions its write reached)."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT pystatus.heartbeat(%s, 'ok')", [service])
        yield one(conn, "SELECT pg_backend_pid()")
        conn.rollback()


@pytest.mark.parametrize(
    "release", WITH_MIGRATIONS_PENDING, ids=[r.stem for r in WITH_MIGRATIONS_PENDING]
)
def test_upgrading_a_loaded_release_fails_no_heartbeat(release: Path, empty_dsn: str) -> None:
    install_release(empty_dsn, release)
    loaded = load_history(empty_dsn)
    writers = Writers(empty_dsn, [f"svc-{i}" for i in range(2, 8)])
    with writers.running():
        writers_before = len(writers.written)
        # A service's transaction stays open through the first migrate: it gives
        # way, again and again, then stops with nothing changed and names it.
        with (
            open_transaction_on(empty_dsn, "svc-1") as blocker,
            pytest.raises(PystatusError) as stopped,
        ):
            migrations.apply(empty_dsn, lock_wait=3)
        assert "gave way to sessions holding locks it needs for 3 s" in str(stopped.value)
        assert f"pid {blocker} " in str(stopped.value) and "nothing changed" in str(stopped.value)
        assert migrations.applied(empty_dsn) == released_migrations(release)
        # Then the upgrade itself, with the services still heartbeating.
        done = migrations.apply(empty_dsn)
        assert done.migrations and done.definitions
        during = len(writers.written) - writers_before
    assert writers.failed == []
    assert during > 0 and len(writers.written) > 0
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        # Every heartbeat is in history, before the upgrade, during and after.
        rows = one(conn, "SELECT count(*) FROM system_status_history")
        assert rows == loaded + len(writers.written)
    assert not migrations.apply(empty_dsn)


def test_rollback_gives_way_too(dsn: str) -> None:
    ids = [m.id for m in migrations.Sources().migrations()]
    newest = ids[ids.index("0010_job_locks") :]  # the last one drops pystatus.limits
    with psycopg.connect(dsn) as reader:
        # A session reading the bounds keeps rolling back 0010 (which drops them) waiting.
        reader.execute("SELECT * FROM pystatus.limits")
        blocker = one(reader, "SELECT pg_backend_pid()")
        with pytest.raises(
            PystatusError, match=f"pystatus rollback gave way .* pid {blocker} .*holding limits"
        ):
            migrations.rollback(dsn, count=len(newest), lock_wait=2)
    assert migrations.applied(dsn)[-len(newest) :] == newest


def test_an_upgrade_locks_the_status_tables_only_after_rewriting_rollups(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migrations that change system_status or history (which every heartbeat
    writes, and waits for) run after those that rewrite rollups, so the locks
    they hold until commit are held briefly: asked of the migrating session
    itself after each migration of an upgrade from each release."""
    locked_after: dict[str, list[str]] = {}
    run_migration = migrations._Steps.run_migration

    def watched(self: Any, migration: Any, direction: str) -> None:
        run_migration(self, migration, direction)
        held = self.backend.connection.execute(
            "SELECT array_agg(DISTINCT c.relname::text ORDER BY c.relname::text) FROM pg_locks AS l"
            " JOIN pg_class AS c ON c.oid = l.relation WHERE l.pid = pg_backend_pid()"
            " AND l.mode IN ('AccessExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock')"
            " AND c.relname IN ('system_status', 'system_status_history')"
        ).fetchone()[0]
        locked_after[migration.id] = held or []

    monkeypatch.setattr(migrations._Steps, "run_migration", watched)
    for release in WITH_MIGRATIONS_PENDING:
        install_release(empty_dsn, release)
        load_history(empty_dsn)
        done = migrations.apply(empty_dsn)
        order = done.migrations
        first_locked = next(i for i, m in enumerate(order) if locked_after[m])
        rewrites = REWRITE_ROLLUPS & set(order)
        assert rewrites, f"{release.stem}: no rollup rewrite to order"
        assert all(order.index(m) < first_locked for m in rewrites), locked_after
