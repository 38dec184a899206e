"""Read replicas for real: a primary and a streaming-replication hot standby (two
local clusters). The dashboard, the CLI's answers and the exporter, pointed at the
standby, answer as the primary does while it ingests and maintenance drops
partitions; maintenance and the alert worker's writers do nothing there. Then the
standby settings of docs/replicas.md, shown: what a partition drop does to a
standby query with max_standby_streaming_delay short and with it off, and what
hot_standby_feedback changes (VACUUM conflicts, not lock conflicts)."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import psycopg
import psycopg.errors
import pytest
from prometheus_client import generate_latest

import pystatus
from pystatus import cli, metrics, migrations
from pystatus.cluster import Cluster
from pystatus.dashboard import create_app
from tests.helpers import heartbeats_flowing, make_maintenance_due, one, wait_for
from tests.serving import get_json, serving

Conn = psycopg.Connection[Any]

SKIPPED = {"skipped": "this server is a replica"}
SERVICES = ["api", "billing", "search"]


@pytest.fixture(scope="module")
def primary() -> Iterator[Cluster]:
    with Cluster.temporary() as cluster:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE app")
        migrations.apply(cluster.dsn("app"))
        yield cluster


@pytest.fixture(scope="module")
def standby(primary: Cluster) -> Iterator[Cluster]:
    with Cluster.standby_of(primary) as cluster:
        yield cluster


@pytest.fixture
def pdb(primary: Cluster) -> Iterator[Conn]:
    with psycopg.connect(primary.dsn("app"), autocommit=True) as conn:
        yield conn


@pytest.fixture
def sdb(standby: Cluster) -> Iterator[Conn]:
    with psycopg.connect(standby.dsn("app"), autocommit=True) as conn:
        yield conn


def replayed(primary: Cluster, standby: Cluster) -> None:
    """Waits until the standby has replayed everything the primary has written so far."""
    with psycopg.connect(primary.dsn(), autocommit=True) as p:
        target = one(p, "SELECT pg_current_wal_lsn()")
    with psycopg.connect(standby.dsn(), autocommit=True) as s:
        wait_for(lambda: one(s, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)), 60)


def replay_lag_bytes(standby_conn: Conn, target: str) -> int:
    return int(one(standby_conn, "SELECT %s::pg_lsn - pg_last_wal_replay_lsn()", (target,)))


def set_on_standby(standby: Cluster, setting: str, value: str) -> None:
    """ALTER SYSTEM on the standby and reload; waits until new sessions see ``value``
    (as SHOW spells it)."""
    with psycopg.connect(standby.dsn(), autocommit=True) as s:
        s.execute(f"ALTER SYSTEM SET {setting} = '{value}'")
        s.execute("SELECT pg_reload_conf()")

    def seen() -> bool:
        with psycopg.connect(standby.dsn(), autocommit=True) as fresh:
            return bool(one(fresh, f"SHOW {setting}") == value)

    wait_for(seen, 30)


def lasting(d: pystatus.LiveStatus) -> dict[str, Any]:
    """A live_status row without the figures that follow the clock."""
    row = asdict(d)
    del row["seconds_since"]
    return row


@pytest.fixture(scope="module")
def fleet(primary: Cluster, standby: Cluster) -> datetime:
    """Three services with a history (an incident of billing's), replayed on the standby;
    returns a ``since`` for the answers."""
    with psycopg.connect(primary.dsn("app"), autocommit=True) as db:
        since = one(db, "SELECT now() - interval '1 hour'")
        for name in SERVICES:
            pystatus.record_heartbeat(db, name, "ok", None, since + timedelta(minutes=1))
        pystatus.record_heartbeat(db, "billing", "down", None, since + timedelta(minutes=10))
        pystatus.record_heartbeat(db, "billing", "ok", None, since + timedelta(minutes=20))
        pystatus.heartbeat(db, "api", "ok", "serving")
        pystatus.heartbeat_many(db, [("search", "degraded", "reindexing"), ("billing", "ok")])
    replayed(primary, standby)
    return since


def test_the_standby_is_a_hot_standby(sdb: Conn) -> None:
    assert one(sdb, "SELECT pg_is_in_recovery()") is True
    with pytest.raises(pystatus.PystatusError, match="read-only transaction"):
        pystatus.heartbeat(sdb, "api")


def test_the_answers_on_the_standby_are_the_primarys(pdb: Conn, sdb: Conn, fleet: datetime) -> None:
    until = one(pdb, "SELECT now()")
    assert [lasting(s) for s in pystatus.live_status(sdb)] == [
        lasting(s) for s in pystatus.live_status(pdb)
    ]
    assert [s.service_name for s in pystatus.live_status(sdb)] == SERVICES
    for service in (None, "billing"):
        assert pystatus.uptime(sdb, service, fleet, until) == pystatus.uptime(
            pdb, service, fleet, until
        )
        assert pystatus.incidents(sdb, service, fleet, until) == pystatus.incidents(
            pdb, service, fleet, until
        )
    assert "billing" in {i.service_name for i in pystatus.incidents(sdb, None, fleet, until)}


def test_the_dashboard_cli_and_exporter_answer_from_the_standby(
    standby: Cluster, fleet: datetime
) -> None:
    dsn = standby.dsn("app")
    with serving(create_app(dsn)) as url:
        assert [s["service_name"] for s in get_json(f"{url}/api/status")] == SERVICES
        assert [s["service_name"] for s in get_json(f"{url}/api/overview")] == SERVICES
        with urllib.request.urlopen(f"{url}/", timeout=30) as response:
            page = response.read().decode()
        assert all(name in page for name in SERVICES)

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["status", "--dsn", dsn, "--format", "json"]) == 0
    assert [s["service_name"] for s in json.loads(out.getvalue())] == SERVICES

    scraped = generate_latest(metrics.registry(dsn)).decode()
    assert "pystatus_scrape_ok 1.0" in scraped
    assert all(f'service="{name}"' in scraped for name in SERVICES)


def test_maintenance_and_the_alert_workers_writers_skip_on_the_standby(
    standby: Cluster, sdb: Conn, fleet: datetime
) -> None:
    assert one(sdb, "SELECT pystatus.sweep()") == 0
    assert one(sdb, "SELECT pystatus.alert_sweep()") == 0
    assert one(sdb, "SELECT pystatus.refresh_rollups()") == SKIPPED
    assert one(sdb, "SELECT pystatus.maintain()") == SKIPPED
    messages, next_check = sdb.execute("SELECT * FROM pystatus.evaluate_alerts()").fetchone()
    assert messages == 0 and next_check > one(sdb, "SELECT now()")
    # The alert worker claims on the primary: a claim here is refused as a write.
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        sdb.execute("SELECT * FROM pystatus.claim_alert_messages('replica')")

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["maintain", "--dsn", standby.dsn("app")]) == 0
    assert out.getvalue().splitlines() == [
        "sweep: 0",
        f"refresh_rollups: {json.dumps(SKIPPED)}",
        f"maintain: {json.dumps(SKIPPED)}",
    ]


def test_the_standby_answers_while_the_primary_ingests_and_drops_partitions(
    primary: Cluster, standby: Cluster, pdb: Conn, fleet: datetime
) -> None:
    read_errors: list[BaseException] = []
    reads = [0]
    done = threading.Event()

    def read() -> None:
        with psycopg.connect(standby.dsn("app"), autocommit=True) as conn:
            while not done.is_set():
                try:
                    assert {s.service_name for s in pystatus.live_status(conn)} >= set(SERVICES)
                    pystatus.uptime(conn, "billing", fleet)
                    reads[0] += 1
                except (psycopg.Error, AssertionError) as error:
                    read_errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        make_maintenance_due(pdb)
        expired = {
            p
            for (p,) in pdb.execute(
                "SELECT partition::text FROM pystatus.history_partitions"
                " WHERE NOT is_default AND ends < now() - interval '1 day'"
            )
        }
        assert expired
        dropped: set[str] = set()
        with heartbeats_flowing(primary.dsn("app")) as write_errors:
            # maintain() defers (lock_timeout) while heartbeats hold history: retry.
            def drops() -> bool:
                dropped.update(one(pdb, "SELECT pystatus.maintain()").get("dropped", []))
                return dropped >= expired

            wait_for(drops, 60)
            replayed(primary, standby)
            before = reads[0]
            wait_for(lambda: reads[0] > before + 10, 30)
        assert write_errors == []
    finally:
        done.set()
        reader.join()
    assert read_errors == [] and reads[0] > 0
    replayed(primary, standby)
    with psycopg.connect(standby.dsn("app"), autocommit=True) as sdb:
        left = {
            p for (p,) in sdb.execute("SELECT partition::text FROM pystatus.history_partitions")
        }
        assert not left & expired
        assert one(sdb, "SELECT count(DISTINCT service_name) FROM system_status") == one(
            pdb, "SELECT count(DISTINCT service_name) FROM system_status"
        )
    pdb.execute("SELECT pystatus.set_history_retention('60 days')")


# The settings, shown. Figures are printed (pytest -s) for docs/replicas.md; the
# assertions are about what happens, never about how long it takes.


def expired_partition(pdb: Conn, days_ago: int) -> str:
    """A partition on the primary that the next maintain() drops (retention one day)."""
    pdb.execute("SELECT pystatus.set_history_retention('1 day')")
    at = one(pdb, "SELECT now() - make_interval(days => %s)", (days_ago,))
    pdb.execute(
        "SELECT pystatus.create_history_partitions(%s, %s)", (at, at + timedelta(seconds=1))
    )
    return str(
        one(
            pdb,
            "SELECT partition::text FROM pystatus.history_partitions"
            " WHERE starts <= %s AND ends > %s AND NOT is_default",
            (at, at),
        )
    )


def drop_on_primary(pdb: Conn, partition: str) -> None:
    def dropped() -> bool:
        return partition in one(pdb, "SELECT pystatus.maintain()").get("dropped", [])

    wait_for(dropped, 30)
    pdb.execute("SELECT pystatus.set_history_retention('60 days')")


@contextlib.contextmanager
def reading_history(standby: Cluster) -> Iterator[Conn]:
    """A standby transaction that has read history through the partitioned parent,
    so it holds a lock on every partition until it ends."""
    conn = psycopg.connect(standby.dsn("app"), autocommit=True)
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SELECT count(*) FROM system_status_history")
        yield conn
    finally:
        # Once its statement is cancelled, the aborted transaction still holds
        # the lock replay waits for, and the standby may end the session too
        # before the ROLLBACK arrives.
        with contextlib.suppress(psycopg.OperationalError):
            conn.execute("ROLLBACK")
        conn.close()


def sleeping(standby: Cluster) -> None:
    with psycopg.connect(standby.dsn(), autocommit=True) as s:
        wait_for(
            lambda: (
                one(
                    s,
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'",
                )
                == 1
            )
        )


@pytest.mark.parametrize(("feedback", "days_ago"), [("off", 100), ("on", 160)])
def test_a_short_streaming_delay_cancels_a_standby_query_that_holds_a_dropped_partition(
    primary: Cluster, standby: Cluster, pdb: Conn, feedback: str, days_ago: int
) -> None:
    """hot_standby_feedback or not: it keeps rows a standby snapshot needs, not locks."""
    set_on_standby(standby, "max_standby_streaming_delay", "1s")
    set_on_standby(standby, "hot_standby_feedback", feedback)
    partition = expired_partition(pdb, days_ago)
    replayed(primary, standby)
    failure: list[BaseException] = []
    cancelled_at: list[float] = []
    with reading_history(standby) as conn:

        def long_report() -> None:
            try:
                conn.execute("SELECT pg_sleep(25)")
            except psycopg.Error as error:
                failure.append(error)
                cancelled_at.append(time.monotonic())

        report = threading.Thread(target=long_report)
        report.start()
        sleeping(standby)  # a statement running, not a transaction idle
        dropped_at = time.monotonic()
        drop_on_primary(pdb, partition)
        report.join()
        [error] = failure
        assert isinstance(error, psycopg.errors.SerializationFailure), error  # SQLSTATE 40001
        assert error.sqlstate == "40001"
        assert "conflict with recovery" in str(error)
        print(
            f"\nhot_standby_feedback {feedback}: cancelled {cancelled_at[0] - dropped_at:.1f} s"
            f" after the drop: {error.diag.message_primary} ({error.diag.message_detail})"
        )
    replayed(primary, standby)
    set_on_standby(standby, "hot_standby_feedback", "off")


def test_no_streaming_delay_limit_keeps_the_query_and_replay_waits(
    primary: Cluster, standby: Cluster, pdb: Conn
) -> None:
    set_on_standby(standby, "max_standby_streaming_delay", "-1")
    partition = expired_partition(pdb, 130)
    replayed(primary, standby)
    with psycopg.connect(standby.dsn(), autocommit=True) as watch:
        with reading_history(standby) as conn:
            counted = one(conn, "SELECT count(*) FROM system_status_history")
            drop_on_primary(pdb, partition)
            pystatus.heartbeat_many(pdb, [(name, "ok") for name in SERVICES])
            target = one(pdb, "SELECT pg_current_wal_lsn()")
            held = time.monotonic()
            time.sleep(3)  # a window in which a limited delay would have cancelled it
            lag = replay_lag_bytes(watch, target)
            assert lag > 0  # replay waits behind the drop
            assert one(conn, "SELECT count(*) FROM system_status_history") == counted
            print(
                f"\nafter {time.monotonic() - held:.1f} s the query still runs; "
                f"replay {lag} bytes behind, replay delay "
                f"{one(watch, 'SELECT now() - pg_last_xact_replay_timestamp()')}"
            )
            conn.execute("COMMIT")
        ended = time.monotonic()
        wait_for(lambda: replay_lag_bytes(watch, target) <= 0, 30)
        print(f"caught up {time.monotonic() - ended:.2f} s after the transaction ended")
    with psycopg.connect(standby.dsn("app"), autocommit=True) as sdb:
        assert one(sdb, "SELECT to_regclass(%s)", (partition,)) is None
    set_on_standby(standby, "max_standby_streaming_delay", "30s")


def vacuum_under_a_standby_snapshot(
    primary: Cluster, standby: Cluster, table: str, feedback: bool
) -> BaseException | None:
    """A standby query under an old snapshot while the primary deletes the rows it
    reads and vacuums them away: the error the query got, or None."""
    with psycopg.connect(primary.dsn(), autocommit=True) as p:
        p.execute(f"DROP TABLE IF EXISTS {table}")
        p.execute(f"CREATE TABLE {table} AS SELECT i FROM generate_series(1, 1000) AS i")
        p.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
        replayed(primary, standby)
        with psycopg.connect(standby.dsn(), autocommit=True) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            assert one(conn, f"SELECT count(*) FROM {table}") == 1000
            failure: list[BaseException] = []

            def long_report() -> None:
                try:
                    conn.execute("SELECT pg_sleep(4)")
                    conn.execute("COMMIT")
                except psycopg.Error as error:
                    failure.append(error)

            report = threading.Thread(target=long_report)
            report.start()
            sleeping(standby)
            if feedback:  # the primary keeps what the standby's oldest snapshot needs
                wait_for(lambda: one(p, "SELECT backend_xmin FROM pg_stat_replication") is not None)
            p.execute(f"DELETE FROM {table}")
            # No truncation: its lock would conflict too, and hide the snapshot conflict.
            p.execute(f"VACUUM (TRUNCATE false) {table}")
            report.join()
        p.execute(f"DROP TABLE {table}")
    return failure[0] if failure else None


def test_hot_standby_feedback_prevents_vacuum_conflicts_not_drop_conflicts(
    primary: Cluster, standby: Cluster
) -> None:
    set_on_standby(standby, "max_standby_streaming_delay", "1s")
    set_on_standby(standby, "wal_receiver_status_interval", "1s")
    try:
        set_on_standby(standby, "hot_standby_feedback", "off")
        error = vacuum_under_a_standby_snapshot(primary, standby, "vacuumed_off", feedback=False)
        assert isinstance(error, psycopg.errors.SerializationFailure), error
        print(f"\nfeedback off: {error.diag.message_primary} ({error.diag.message_detail})")

        set_on_standby(standby, "hot_standby_feedback", "on")
        with psycopg.connect(primary.dsn(), autocommit=True) as p:
            wait_for(lambda: one(p, "SELECT backend_xmin FROM pg_stat_replication") is not None)
        assert (
            vacuum_under_a_standby_snapshot(primary, standby, "vacuumed_on", feedback=True) is None
        )
        print("feedback on: the query ran to its end")
    finally:
        set_on_standby(standby, "hot_standby_feedback", "off")
        set_on_standby(standby, "max_standby_streaming_delay", "30s")
