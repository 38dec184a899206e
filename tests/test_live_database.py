"""pystatus inside a busy database: maintenance never stalls a heartbeat, whatever
other transactions hold; concurrent administration never deadlocks or fails.

Heartbeats here run with statement_timeout = 1 s: a heartbeat that waited for
longer on pystatus's locks would fail, and the tests count failures."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import migrations
from tests.helpers import (
    MIGRATION_ORDER,
    SEED_TABLE,
    heartbeats_flowing,
    make_maintenance_due,
    one,
)

Conn = psycopg.Connection[Any]
# Transactions that hold system_status_history while maintenance must drop and
# create partitions: each is opened, does its work, and stays open.
HOLDERS: dict[str, Callable[[Conn], None]] = {
    "a report reading history": lambda c: c.execute(
        "SELECT count(*) FROM public.system_status_history"
    ).fetchall(),
    "a service heartbeating inside its own transaction": lambda c: pystatus.heartbeat(
        c, "long-transaction"
    ),
    "a dashboard reading an answer": lambda c: pystatus.uptime(
        c, "svc-1", one(c, "SELECT now() - interval '30 days'")
    ),
    "pystatus's own rollup refresh": lambda c: c.execute(
        "SELECT pystatus.refresh_rollups()"
    ).fetchall(),
}


def holds_history(db: Conn, holding: Conn) -> bool:
    return bool(
        one(
            db,
            "SELECT count(*) FROM pg_locks WHERE pid = %s"
            " AND relation = 'public.system_status_history'::regclass AND granted",
            (holding.info.backend_pid,),
        )
    )


@pytest.mark.parametrize("holder", list(HOLDERS))
def test_maintenance_defers_rather_than_stall_heartbeats(holder: str, db: Conn, dsn: str) -> None:
    pystatus.heartbeat(db, "svc-1")
    # Hours left to roll up, so that a refresh reads history.
    db.execute("UPDATE pystatus.rollup_state SET rolled_until = rolled_until - interval '2 hours'")
    make_maintenance_due(db)
    before = one(db, "SELECT count(*) FROM pystatus.history_partitions")
    with psycopg.connect(dsn) as holding, heartbeats_flowing(dsn) as failures:
        HOLDERS[holder](holding)  # the transaction stays open
        assert holds_history(db, holding)
        # Bounded, so that a maintenance that waited would fail the test, not hang it.
        db.execute("SET statement_timeout = '10s'")
        deferred = one(db, "SELECT pystatus.maintain()")
        holding.rollback()
    assert failures == []
    assert deferred["dropped"] == [] and deferred["created"] == []
    assert set(deferred["deferred"]) >= {"expired", "missing"}
    assert one(db, "SELECT count(*) FROM pystatus.history_partitions") == before

    # With the transaction gone, the next run does the work, heartbeats still flowing.
    with heartbeats_flowing(dsn) as failures:
        done = one(db, "SELECT pystatus.maintain()")
    assert failures == []
    assert done["dropped"] and done["created"] and "deferred" not in done
    assert one(db, "SELECT pystatus._maintenance_due()") == {}


def test_check_turns_red_when_retention_is_a_day_overdue(db: Conn) -> None:
    db.execute("SELECT pystatus.set_history_retention('1 day')")
    items = {
        item: (ok, detail) for item, ok, detail in db.execute("SELECT * FROM pystatus.check()")
    }
    ok, detail = items["retention"]
    assert not ok and "overdue: partition" in detail and "run pystatus maintain" in detail
    db.execute("SELECT pystatus.maintain()")
    items = {
        item: (ok, detail) for item, ok, detail in db.execute("SELECT * FROM pystatus.check()")
    }
    assert items["retention"] == (True, "1 day")


def test_two_maintenances_at_once_never_deadlock(db: Conn, dsn: str) -> None:
    def maintain(barrier: threading.Barrier) -> Any:
        with psycopg.connect(dsn, autocommit=True) as conn:
            barrier.wait()
            return one(conn, "SELECT pystatus.maintain()")

    for _ in range(5):
        make_maintenance_due(db)
        barrier = threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(maintain, [barrier] * 2))
        # Whichever came second returned at once; the work was done exactly once.
        assert sorted("skipped" in r for r in results) in ([False, True], [False, False])
        assert one(db, "SELECT pystatus._maintenance_due()") == {}
        db.execute("SELECT pystatus.set_history_retention('60 days')")


def test_two_sweeps_at_once_mark_each_service_once(db: Conn, dsn: str) -> None:
    for name in ("a", "b", "c"):
        pystatus.record_heartbeat(db, name, "ok", None, one(db, "SELECT now() - interval '1 hour'"))

    def sweep(barrier: threading.Barrier) -> int:
        with psycopg.connect(dsn, autocommit=True) as conn:
            barrier.wait()
            return int(one(conn, "SELECT pystatus.sweep()"))

    barrier = threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:
        marked = list(pool.map(sweep, [barrier] * 2))
    assert sum(marked) == 3
    assert one(db, "SELECT count(*) FROM system_status_history WHERE status = 'stale'") == 3


def test_the_sweeper_skips_a_row_another_transaction_holds(db: Conn, dsn: str) -> None:
    an_hour_ago = one(db, "SELECT now() - interval '1 hour'")
    for name in ("held", "free"):
        pystatus.record_heartbeat(db, name, "ok", None, an_hour_ago)
    with psycopg.connect(dsn) as holder:
        holder.execute("SELECT FROM system_status WHERE service_name = 'held' FOR UPDATE")
        db.execute("SET statement_timeout = '10s'")  # a sweep that waited fails the test
        assert one(db, "SELECT pystatus.sweep()") == 1
        holder.rollback()
    assert one(db, "SELECT status FROM system_status WHERE service_name = 'free'") == "stale"
    assert one(db, "SELECT pystatus.sweep()") == 1  # the next run marks it
    assert one(db, "SELECT status FROM system_status WHERE service_name = 'held'") == "stale"


def test_a_service_adopted_long_dead_keeps_its_stale_row(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        db.execute(SEED_TABLE)
        db.execute("UPDATE system_status SET last_heartbeat = now() - interval '200 days'")
    migrations.apply(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        assert one(db, "SELECT pystatus.sweep()") == 2
        assert one(db, "SELECT pystatus.history_default_rows()") == 0
        result = one(db, "SELECT pystatus.maintain()")
        assert result["created"] == [] and result["dropped"] == []
        assert one(db, "SELECT count(*) FROM system_status_history WHERE status = 'stale'") == 2


def test_a_seed_table_with_a_time_that_is_not_finite_is_refused_as_it_is(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        db.execute(SEED_TABLE)
        db.execute(
            "UPDATE system_status SET last_heartbeat = 'infinity' WHERE service_name = 'librarian'"
        )
    with pytest.raises(pystatus.InvalidTime, match="not finite: 'librarian' \\(infinity\\)"):
        migrations.apply(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        assert one(db, "SELECT to_regnamespace('pystatus')") is None  # nothing changed
        db.execute(
            "UPDATE system_status SET last_heartbeat = now() WHERE NOT isfinite(last_heartbeat)"
        )
    applied = migrations.apply(empty_dsn).migrations
    assert applied == MIGRATION_ORDER


def test_migrate_gives_way_rather_than_queue_heartbeats_behind_it(db: Conn, dsn: str) -> None:
    with psycopg.connect(dsn) as service, heartbeats_flowing(dsn) as failures:
        pystatus.heartbeat(service, "long-transaction")  # holds system_status until rollback
        pid = one(service, "SELECT pg_backend_pid()")
        # Applying the definitions again replaces the copy trigger, which needs a
        # lock the open transaction holds against it.
        with pytest.raises(
            pystatus.PystatusError,
            match=rf"gave way .* for 2 s \(\d+ attempts, nothing changed\): pid {pid} "
            r"\(login \w+, in a transaction since .*, holding .*system_status.*\)\. .*run it again",
        ):
            migrations.apply(dsn, reapply=True, lock_wait=2)
        service.rollback()
    assert failures == []
    assert migrations.apply(dsn, reapply=True).definitions  # and at a quieter moment, it does
