"""Partitions: premade ahead, dropped after retention, bounds independent of the
session time zone, rows in the default partition detected and moved."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import migrations
from tests.helpers import one

Conn = psycopg.Connection[Any]


def partitions(db: Conn) -> list[tuple[str, datetime, datetime]]:
    return db.execute(
        "SELECT partition::text, starts, ends FROM pystatus.history_partitions"
        " WHERE NOT is_default ORDER BY starts"
    ).fetchall()


def month_start(at: datetime) -> datetime:
    """Start of the UTC calendar month holding ``at``: the lower bound of its partition."""
    return at.astimezone(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_end(at: datetime) -> datetime:
    """End of the UTC calendar month holding ``at``: the upper bound of its partition."""
    return (month_start(at) + timedelta(days=32)).replace(day=1)


def create_partitions_for(db: Conn, times: list[datetime]) -> None:
    for at in times:
        db.execute(
            "SELECT pystatus.create_history_partitions(%s, %s)", (at, at + timedelta(seconds=1))
        )


def test_partitions_are_premade_ahead_and_cover_the_retention_window(db: Conn) -> None:
    now = one(db, "SELECT now()")
    parts = partitions(db)
    assert parts[0][1] <= now - timedelta(days=60)
    assert parts[-1][2] >= now + timedelta(days=90)  # at least three whole months ahead
    # Contiguous: no gap where a write would fall into the default partition.
    assert all(a[2] == b[1] for a, b in itertools.pairwise(parts))


def test_partition_bounds_are_utc_months_whatever_the_session_time_zone(empty_dsn: str) -> None:
    kolkata = empty_dsn + " options='-c TimeZone=Asia/Kolkata'"  # UTC+05:30
    migrations.apply(kolkata)
    with psycopg.connect(kolkata, autocommit=True) as db:
        db.execute("SELECT pystatus.maintain()")
        for _, starts, ends in partitions(db):
            for bound in (starts, ends):
                utc = bound.astimezone(timezone.utc)
                assert (utc.day, utc.hour, utc.minute) == (1, 0, 0), bound


def test_retention_drops_exactly_the_partitions_wholly_older_than_60_days(db: Conn) -> None:
    now = one(db, "SELECT now()")
    ages = [20, 50, 70, 100, 130]
    times = [now - timedelta(days=days) for days in ages]
    create_partitions_for(db, times)
    for days, at in zip(ages, times):
        pystatus.record_heartbeat(db, f"aged-{days}", "ok", None, at)
    before = partitions(db)
    assert all(ends == month_end(starts) for _, starts, ends in before)

    result = one(db, "SELECT pystatus.maintain()")

    # The bound README states: a row's partition is dropped once the partition's
    # end is more than 60 days ago, so a row lives between 60 days and 60 days
    # plus one partition.
    expected_dropped = {p for p, _, ends in before if ends < now - timedelta(days=60)}
    assert set(result["dropped"]) == expected_dropped
    kept = {name for (name,) in db.execute("SELECT service_name FROM system_status_history")}
    assert kept == {
        f"aged-{d}" for d, at in zip(ages, times) if month_end(at) >= now - timedelta(days=60)
    }
    assert {"aged-20", "aged-50"} <= kept and not {"aged-100", "aged-130"} & kept
    # Dropped, not detached: the tables are gone.
    for name in result["dropped"]:
        assert one(db, "SELECT to_regclass(%s)", (name,)) is None


def test_a_row_is_kept_until_its_partition_ended_more_than_retention_ago(db: Conn) -> None:
    now = one(db, "SELECT now()")
    # The month holding "60 days ago" ends inside the window: its partition
    # stays, although its first rows are older than 60 days. The month before
    # it ended more than 60 days ago: its partition goes.
    edge_month = one(
        db,
        "SELECT date_trunc('month', (now() - interval '60 days') AT TIME ZONE 'UTC')"
        " AT TIME ZONE 'UTC'",
    )
    create_partitions_for(db, [edge_month - timedelta(seconds=1), edge_month])
    pystatus.record_heartbeat(db, "old-but-kept", "ok", None, edge_month)
    pystatus.record_heartbeat(db, "expired", "ok", None, edge_month - timedelta(seconds=1))
    one(db, "SELECT pystatus.maintain()")
    kept = {name for (name,) in db.execute("SELECT service_name FROM system_status_history")}
    assert "old-but-kept" in kept and "expired" not in kept
    assert now - edge_month > timedelta(days=60)


def test_retention_is_settable(db: Conn) -> None:
    db.execute("SELECT pystatus.set_history_retention('400 days')")
    assert one(db, "SELECT pystatus.history_retention()") == timedelta(days=400)
    with pytest.raises(psycopg.Error, match="must be positive"):
        db.execute("SELECT pystatus.set_history_retention('-1 day')")


def test_daily_partitions_give_a_tighter_bound(empty_dsn: str) -> None:
    migrations.apply(empty_dsn, {"partition_interval": "1 day", "retention": "3 days"})
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        parts = partitions(db)
        assert all(ends - starts == timedelta(days=1) for _, starts, ends in parts)
        now = one(db, "SELECT now()")
        create_partitions_for(db, [now - timedelta(days=d) for d in (2, 5, 9)])
        result = one(db, "SELECT pystatus.maintain()")
        assert result["dropped"]
        for _, _, ends in partitions(db):
            assert ends >= now - timedelta(days=3)


def test_a_heartbeat_where_no_partition_exists_is_kept_detected_and_moved(db: Conn) -> None:
    # Simulate maintenance that stopped long ago: no partition covers now.
    for name, starts, _ in partitions(db):
        if starts >= one(
            db, "SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        ):
            db.execute(f"DROP TABLE {name}")
    recorded = pystatus.heartbeat(db, "librarian")  # still succeeds

    assert one(db, "SELECT pystatus.history_default_rows()") == 1
    default = db.execute("SELECT default_table, count FROM partman.check_default()").fetchall()
    assert default == [("public.system_status_history_default", 1)]

    result = one(db, "SELECT pystatus.maintain()")  # the documented remedy, run by pg_cron
    assert result["moved_from_default"] == 1
    assert one(db, "SELECT pystatus.history_default_rows()") == 0
    where = db.execute(
        "SELECT tableoid::regclass::text, heartbeat_timestamp FROM system_status_history"
    )
    assert where.fetchall() == [
        ("system_status_history_p" + recorded.astimezone(timezone.utc).strftime("%Y_%m"), recorded)
    ]
    # ...and the months ahead exist again.
    assert partitions(db)[-1][2] >= recorded + timedelta(days=90)


def test_move_default_rows_alone_is_also_a_remedy(db: Conn) -> None:
    for name, starts, ends in partitions(db):
        if starts <= one(db, "SELECT now()") < ends:
            db.execute(f"DROP TABLE {name}")
    pystatus.heartbeat(db, "librarian")
    assert one(db, "SELECT pystatus.move_default_rows()") == 1
    assert one(db, "SELECT pystatus.history_default_rows()") == 0
    assert one(db, "SELECT count(*) FROM system_status_history") == 1


def test_maintenance_is_idempotent(db: Conn) -> None:
    one(db, "SELECT pystatus.maintain()")
    again = one(db, "SELECT pystatus.maintain()")
    assert again == {"created": [], "dropped": [], "moved_from_default": 0}
