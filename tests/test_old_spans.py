"""Hours rolled up before spans were kept (an install upgraded from 0.2.0) answer
as a fresh install's do, even once their raw history has expired: migrate
computes their spans from raw history while it still holds them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

import pystatus
from pystatus import answers, migrations
from tests.helpers import one
from tests.test_releases import RELEASES, install_release

Conn = psycopg.Connection[Any]
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def load(conn: Conn, start: datetime | None = None) -> datetime:
    """Two services over 12 hours from ``start`` (14 hours before this hour),
    ended by a planned stop: one reports down twice (edges inside hours), the
    other falls silent for 80 minutes. Rolled up."""
    if start is None:
        start = one(conn, "SELECT date_trunc('hour', now()) - interval '14 hours'")
    assert start is not None
    for minute in range(12 * 60):
        down = 137 <= minute < 170 or 400 <= minute < 405
        pystatus.record_heartbeat(
            conn, "api", "down" if down else "ok", None, start + minute * MINUTE
        )
        if not 250 <= minute < 330:
            pystatus.record_heartbeat(conn, "billing", "ok", None, start + minute * MINUTE)
    for service in ("api", "billing"):
        pystatus.record_heartbeat(conn, service, "stopping", None, start + 12 * HOUR)
    conn.execute("SELECT pystatus.refresh_rollups()")
    return start


def read(conn: Conn, start: datetime) -> tuple[list[Any], list[Any]]:
    """The fleet's incidents and uptime over a window with edges inside hours."""
    since, until = start + HOUR + 17 * MINUTE, start + 11 * HOUR + 43 * MINUTE
    return (
        answers.incidents(conn, None, since, until),
        answers.uptime(conn, None, since, until),
    )


def as_if_upgraded(conn: Conn, start: datetime) -> None:
    """The hours before the 10th as an upgrade from 0.2.0 leaves them: rolled up,
    without spans (0006_rollup_spans sets spans_from to where rollups stood)."""
    conn.execute("DELETE FROM pystatus.rollup_spans WHERE bucket < %s", [start + 10 * HOUR])
    conn.execute("UPDATE pystatus.rollup_state SET spans_from = %s", [start + 10 * HOUR])


def expire_raw(conn: Conn, start: datetime) -> None:
    conn.execute(
        "DELETE FROM system_status_history WHERE heartbeat_timestamp < %s", [start + 11 * HOUR]
    )


def test_old_hours_answer_as_fresh_ones_after_their_raw_history_expires(
    db: Conn, dsn: str, empty_dsn: str
) -> None:
    start = load(db)
    fresh = read(db, start)
    assert len(fresh[0]) == 3  # api's two, billing's silence
    spans = db.execute(
        "SELECT * FROM pystatus.rollup_spans ORDER BY service_name, bucket"
    ).fetchall()

    # The control, in a database of its own: left as upgraded, the old hours'
    # answers come from raw history, and go with it.
    migrations.apply(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as control:
        control_start = load(control, start)
        as_if_upgraded(control, control_start)
        assert read(control, control_start) == fresh  # raw still there
        expire_raw(control, control_start)
        lost = read(control, control_start)
        assert lost != fresh and len(lost[0]) < 3

    as_if_upgraded(db, start)
    assert migrations.finish_old_spans(dsn) == start + HOUR  # the first whole hour raw holds
    assert one(db, "SELECT spans_from FROM pystatus.rollup_state") == start + HOUR
    assert db.execute(
        "SELECT * FROM pystatus.rollup_spans ORDER BY service_name, bucket"
    ).fetchall() == [s for s in spans if s[1] >= start + HOUR]
    expire_raw(db, start)
    assert read(db, start) == fresh
    assert migrations.finish_old_spans(dsn) is None  # nothing left: raw is gone


def test_a_fresh_install_has_no_old_hours(db: Conn, dsn: str) -> None:
    assert one(db, "SELECT spans_from = '-infinity' FROM pystatus.rollup_state")
    assert migrations.finish_old_spans(dsn) is None


def test_an_upgraded_release_answers_as_a_fresh_install_fed_the_same_heartbeats(
    db: Conn, empty_dsn: str
) -> None:
    """0.2.0 rolls the history up (without spans); the upgrade computes them; after
    raw history expires both installs still give the same answers."""
    install_release(empty_dsn, RELEASES[0])
    with psycopg.connect(empty_dsn, autocommit=True) as old:
        start = load(old)
    done = migrations.apply(empty_dsn)
    assert done.spanned_from == start + HOUR
    assert "the spans of the hours rolled up before they were kept" in str(done)
    load(db, start)  # the same heartbeats, whenever the test runs
    with psycopg.connect(empty_dsn, autocommit=True) as upgraded:
        assert read(upgraded, start) == read(db, start)
        expire_raw(upgraded, start)
        expire_raw(db, start)
        assert read(upgraded, start) == read(db, start)
