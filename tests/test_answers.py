"""Answers from history, each case with exact expected numbers: uptime, incidents,
transitions, the sweeper, live status, trends and task durations. Every uptime
is checked twice: from raw history and from the rollups (after a refresh)."""

from __future__ import annotations

from dataclasses import astuple
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import admin, answers
from tests.helpers import one

Conn = psycopg.Connection[Any]
MIN = timedelta(minutes=1)


@pytest.fixture
def base(db: Conn) -> datetime:
    """A whole hour two days ago, by the server's clock."""
    return one(db, "SELECT date_trunc('hour', now()) - interval '2 days'")  # type: ignore[no-any-return]


def beats(db: Conn, service: str, status: str, start: datetime, minutes: range) -> None:
    """One heartbeat a minute, at start + each of minutes."""
    for m in minutes:
        pystatus.record_heartbeat(db, service, status, None, start + m * MIN)


def uptime(
    db: Conn, service: str | None, since: datetime, until: datetime
) -> list[tuple[Any, ...]]:
    """(service, up, down, maintenance, no data, uptime) from raw history and, after a refresh,
    from rollups: the two must agree."""
    query = (
        "SELECT service_name, up_seconds, down_seconds, maintenance_seconds, no_data_seconds,"
        " uptime FROM pystatus.{}(%s, %s, %s)"
    )
    raw = db.execute(query.format("uptime_raw"), (service, since, until)).fetchall()
    db.execute("SELECT pystatus.refresh_rollups()")
    rolled = db.execute(query.format("uptime"), (service, since, until)).fetchall()
    assert rolled == raw
    return [(r[0], *(float(v) for v in r[1:5]), r[5]) for r in raw]


def incidents(db: Conn, service: str, since: datetime, until: datetime) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT started, ended, duration, cause FROM pystatus.incidents(%s, %s, %s)",
        (service, since, until),
    ).fetchall()


def transitions(db: Conn, service: str, since: datetime, until: datetime) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT from_status, to_status, at FROM pystatus.transitions(%s, %s, %s)",
        (service, since, until),
    ).fetchall()


def test_steady_heartbeats_are_all_up(db: Conn, base: datetime) -> None:
    beats(db, "steady", "ok", base, range(61))
    assert uptime(db, "steady", base, base + 60 * MIN) == [("steady", 3600, 0, 0, 0, 1.0)]
    assert incidents(db, "steady", base, base + 60 * MIN) == []
    assert transitions(db, "steady", base, base + 60 * MIN) == [(None, "ok", base)]


def test_a_long_silence_is_down_from_its_deadline(db: Conn, base: datetime) -> None:
    beats(db, "librarian", "ok", base, range(11))  # last heartbeat at +10 min
    beats(db, "librarian", "ok", base, range(40, 61))  # back at +40
    # Deadline: +10 min + 60 s interval + 60 s grace = +12 min.
    assert uptime(db, "librarian", base, base + 60 * MIN) == [
        ("librarian", 32 * 60, 28 * 60, 0, 0, 32 / 60)
    ]
    assert incidents(db, "librarian", base, base + 60 * MIN) == [
        (base + 12 * MIN, base + 40 * MIN, 28 * MIN, "silence")
    ]
    assert transitions(db, "librarian", base, base + 60 * MIN) == [
        (None, "ok", base),
        ("ok", "stale", base + 12 * MIN),
        ("stale", "ok", base + 40 * MIN),
    ]


def test_flapping(db: Conn, base: datetime) -> None:
    for n in range(20):
        at = base + timedelta(seconds=30 * n)
        pystatus.record_heartbeat(db, "flappy", "ok" if n % 2 == 0 else "down", None, at)
    assert uptime(db, "flappy", base, base + 10 * MIN) == [("flappy", 300, 300, 0, 0, 0.5)]
    found = incidents(db, "flappy", base, base + 10 * MIN)
    assert len(found) == 10
    assert {(duration, cause) for _, _, duration, cause in found} == {
        (timedelta(seconds=30), "reported down")
    }
    assert len(transitions(db, "flappy", base, base + 10 * MIN)) == 20


def test_reported_down(db: Conn, base: datetime) -> None:
    beats(db, "mailer", "ok", base, range(5))
    beats(db, "mailer", "down", base, range(5, 15))
    beats(db, "mailer", "ok", base, range(15, 21))
    assert uptime(db, "mailer", base, base + 20 * MIN) == [("mailer", 600, 600, 0, 0, 0.5)]
    assert incidents(db, "mailer", base, base + 20 * MIN) == [
        (base + 5 * MIN, base + 15 * MIN, 10 * MIN, "reported down")
    ]


def test_a_maintenance_window_is_left_out_of_uptime_even_when_silent(
    db: Conn, base: datetime
) -> None:
    beats(db, "indexer", "ok", base, range(10))
    pystatus.record_heartbeat(db, "indexer", "maintenance", "upgrading", base + 10 * MIN)
    beats(db, "indexer", "ok", base, range(40, 61))  # silent during maintenance: not stale
    assert uptime(db, "indexer", base, base + 60 * MIN) == [("indexer", 1800, 0, 1800, 0, 1.0)]
    assert incidents(db, "indexer", base, base + 60 * MIN) == []


def test_a_planned_stop_is_no_data_not_an_outage(db: Conn, base: datetime) -> None:
    beats(db, "batch", "ok", base, range(10))
    pystatus.record_heartbeat(db, "batch", "stopping", None, base + 10 * MIN)
    assert uptime(db, "batch", base, base + 60 * MIN) == [("batch", 600, 0, 0, 3000, 1.0)]
    assert incidents(db, "batch", base, base + 60 * MIN) == []
    assert one(db, "SELECT pystatus.sweep()") == 0
    live = pystatus.live_status(db)[0]
    assert (live.effective_status, live.reported_status) == ("stopping", "stopping")


def test_a_restart(db: Conn, base: datetime) -> None:
    beats(db, "api", "ok", base, range(10))
    pystatus.record_heartbeat(db, "api", "stopping", None, base + 10 * MIN)
    pystatus.record_heartbeat(db, "api", "starting", None, base + 11 * MIN)
    beats(db, "api", "ok", base, range(12, 21))
    # stopping and starting are planned transitions: no data, neither up nor down.
    assert uptime(db, "api", base, base + 20 * MIN) == [("api", 1080, 0, 0, 120, 1.0)]
    assert [t[1] for t in transitions(db, "api", base, base + 20 * MIN)] == [
        "ok",
        "stopping",
        "starting",
        "ok",
    ]


def test_silence_across_a_month_and_partition_boundary(db: Conn) -> None:
    month = one(
        db, "SELECT date_trunc('month', now() - interval '1 day')"
    )  # 00:00 UTC, a partition bound
    beats(db, "night", "ok", month, range(-10, -4))  # last heartbeat 5 minutes before the month
    beats(db, "night", "ok", month, range(20, 31))
    assert uptime(db, "night", month - 10 * MIN, month + 30 * MIN) == [
        ("night", 17 * 60, 23 * 60, 0, 0, 17 / 40)
    ]
    assert incidents(db, "night", month - 10 * MIN, month + 30 * MIN) == [
        (month - 3 * MIN, month + 20 * MIN, 23 * MIN, "silence")
    ]
    # Split at the month: 3 minutes of the outage fall in the month before.
    previous = (month - timedelta(days=1)).date().replace(day=1)
    [before] = pystatus.uptime_month(db, "night", previous)
    assert (before.up_seconds, before.down_seconds) == (420, 180)
    # In Tokyo (UTC+9) the whole episode belongs to the month that began 9 hours earlier.
    [tokyo_before] = pystatus.uptime_month(db, "night", previous, "Asia/Tokyo")
    assert (tokyo_before.up_seconds, tokyo_before.down_seconds) == (0, 0)
    assert tokyo_before.until == month - timedelta(hours=9)


def test_a_service_that_never_heartbeated_has_no_data(db: Conn, base: datetime) -> None:
    assert uptime(db, "ghost", base, base + 60 * MIN) == [("ghost", 0, 0, 0, 3600, None)]
    assert incidents(db, "ghost", base, base + 60 * MIN) == []


def test_a_window_that_starts_before_the_first_heartbeat(db: Conn, base: datetime) -> None:
    beats(db, "late", "ok", base, range(30, 61))
    assert uptime(db, "late", base, base + 60 * MIN) == [("late", 1800, 0, 0, 1800, 1.0)]


def test_a_window_opening_mid_state_carries_the_state_in(db: Conn, base: datetime) -> None:
    beats(db, "mid", "down", base, range(0, 31))
    assert uptime(db, "mid", base + 10 * MIN, base + 20 * MIN) == [("mid", 0, 600, 0, 0, 0.0)]
    assert transitions(db, "mid", base + 10 * MIN, base + 20 * MIN) == []  # no change inside
    assert incidents(db, "mid", base + 10 * MIN, base + 20 * MIN) == [
        (base + 10 * MIN, base + 20 * MIN, 10 * MIN, "reported down")  # clipped to the window
    ]
    beats(db, "mid", "ok", base, range(15, 16))
    assert transitions(db, "mid", base + 15 * MIN, base + 16 * MIN) == [
        ("down", "ok", base + 15 * MIN)  # a change right at the window's start counts
    ]


def test_fleet_uptime_lists_every_service(db: Conn, base: datetime) -> None:
    beats(db, "a", "ok", base, range(61))
    beats(db, "b", "down", base, range(61))
    assert uptime(db, None, base, base + 60 * MIN) == [
        ("a", 3600, 0, 0, 0, 1.0),
        ("b", 0, 3600, 0, 0, 0.0),
    ]


def test_expectations_change_when_silence_counts(db: Conn, base: datetime) -> None:
    beats(db, "slow-cron", "ok", base, range(0, 61, 5))  # every 5 minutes
    assert uptime(db, "slow-cron", base, base + 60 * MIN)[0][2] == 36 * 60  # 3 min late each time
    pystatus.set_expectations(db, "slow-cron", timedelta(minutes=5), timedelta(minutes=1))
    assert uptime(db, "slow-cron", base, base + 60 * MIN) == [("slow-cron", 3600, 0, 0, 0, 1.0)]
    with pytest.raises(pystatus.InvalidSetting, match="expected_interval"):
        pystatus.set_expectations(db, "slow-cron", timedelta(0))
    with pytest.raises(pystatus.InvalidServiceName):
        pystatus.set_expectations(db, " bad", timedelta(minutes=1))


def test_open_incident_has_no_end(db: Conn) -> None:
    now = one(db, "SELECT now()")
    pystatus.record_heartbeat(db, "dead", "ok", None, now - 10 * MIN)
    [(started, ended, duration, cause)] = incidents(db, "dead", now - 60 * MIN, now + MIN)
    assert (started, ended, cause) == (now - 8 * MIN, None, "silence")
    assert duration >= 8 * MIN


# --- live status and the sweeper -------------------------------------------------


def test_live_status_shows_a_silent_service_as_stale(db: Conn) -> None:
    now = one(db, "SELECT now()")
    pystatus.heartbeat(db, "alive")
    pystatus.record_heartbeat(db, "silent", "ok", "working", now - 3 * MIN)
    live = {s.service_name: s for s in pystatus.live_status(db)}
    assert live["alive"].effective_status == "ok"
    assert live["silent"].effective_status == "stale"
    assert live["silent"].reported_status == "ok"
    assert live["silent"].stale_after == now - MIN
    assert live["silent"].seconds_since >= 180
    pystatus.set_expectations(db, "silent", timedelta(minutes=5))
    assert pystatus.live_status(db)[1].effective_status == "ok"


def test_sweeper_records_the_outage_at_the_deadline_once(db: Conn) -> None:
    now = one(db, "SELECT now()")
    last = now - 10 * MIN
    pystatus.record_heartbeat(db, "silent", "ok", "working", last)
    assert one(db, "SELECT pystatus.sweep()") == 1
    assert db.execute("SELECT status, last_heartbeat FROM system_status").fetchone() == (
        "stale",
        last,
    )
    history = db.execute(
        "SELECT status, heartbeat_timestamp FROM system_status_history ORDER BY heartbeat_timestamp"
    ).fetchall()
    assert history == [("ok", last), ("stale", last + 2 * MIN)]
    assert one(db, "SELECT pystatus.sweep()") == 0  # idempotent
    before = db.execute("SELECT * FROM pystatus.uptime_raw('silent', %s)", (last,)).fetchone()

    pystatus.heartbeat(db, "silent")  # the next heartbeat ends it
    assert one(db, "SELECT status FROM system_status") == "ok"
    assert one(db, "SELECT count(*) FROM system_status_history") == 3
    # The explicit stale row says what the silence rule derived anyway.
    db.execute("DELETE FROM system_status_history WHERE status = 'stale'")
    after = db.execute(
        "SELECT * FROM pystatus.uptime_raw('silent', %s, %s)", (last, before[2])
    ).fetchone()  # type: ignore[index]
    assert after[3:7] == before[3:7]  # type: ignore[index]


def test_sweeper_leaves_planned_silence_alone(db: Conn) -> None:
    now = one(db, "SELECT now()")
    pystatus.record_heartbeat(db, "stopped", "stopping", None, now - 30 * MIN)
    pystatus.record_heartbeat(db, "upgrading", "maintenance", None, now - 30 * MIN)
    pystatus.record_heartbeat(db, "on-time", "ok", None, now - 30 * MIN)
    pystatus.set_expectations(db, "on-time", timedelta(hours=1))
    assert one(db, "SELECT pystatus.sweep()") == 0


def test_sweeper_skips_a_service_whose_heartbeat_is_in_flight(db: Conn, dsn: str) -> None:
    now = one(db, "SELECT now()")
    pystatus.record_heartbeat(db, "busy", "ok", None, now - 10 * MIN)
    with psycopg.connect(dsn) as writer:
        pystatus.heartbeat(writer, "busy")  # row locked, not yet committed
        # The sweeper skips the row the heartbeat holds instead of waiting for it
        # (and keeping the rows it marked locked meanwhile): bounded, so that a
        # sweep that waited fails the test.
        db.execute("SET statement_timeout = '10s'")
        assert one(db, "SELECT pystatus.sweep()") == 0
        writer.commit()
    assert one(db, "SELECT pystatus.sweep()") == 0  # it has spoken: not silent
    assert one(db, "SELECT status FROM system_status") == "ok"


# --- trends and tasks ---------------------------------------------------------------


def latency_history(db: Conn, service: str, baseline_ms: float, recent_ms: float) -> None:
    now = one(db, "SELECT now()")
    for hour in range(1, 24 * 8):  # hourly over 8 days
        at = now - timedelta(hours=hour)
        latency = recent_ms if hour < 24 else baseline_ms
        pystatus.record_heartbeat(db, service, "ok", None, at, latency + hour % 3)


@pytest.mark.parametrize(
    ("baseline_ms", "recent_ms", "verdict"),
    [(100, 150, "slower"), (100, 104, "steady"), (100, 50, "faster")],
)
def test_trend_compares_recent_latency_with_a_baseline(
    db: Conn, baseline_ms: float, recent_ms: float, verdict: str
) -> None:
    latency_history(db, "api", baseline_ms, recent_ms)
    result = pystatus.trend(db, "api")
    assert result.verdict == verdict
    assert result.recent_samples == 23 and result.baseline_samples == 168
    assert result.baseline_p50 == baseline_ms + 1
    assert result.p50_change == pytest.approx((recent_ms + 1) / (baseline_ms + 1) - 1)


def test_trend_needs_samples(db: Conn) -> None:
    pystatus.heartbeat(db, "quiet")
    assert pystatus.trend(db, "quiet").verdict == "not enough data"


def test_latency_must_be_a_finite_non_negative_number(db: Conn) -> None:
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(pystatus.InvalidMeasure, match="latency_ms"):
            pystatus.heartbeat(db, "api", latency_ms=bad)
    assert one(db, "SELECT count(*) FROM system_status") == 0


def test_task_durations(db: Conn, base: datetime) -> None:
    for minute, task in [
        (0, "import"),
        (1, "import"),
        (2, "import"),
        (3, "index"),
        (5, "index"),
        (6, None),
        (8, "import"),
    ]:
        pystatus.record_heartbeat(db, "worker", "ok", task, base + minute * MIN)
    runs = pystatus.task_durations(db, "worker", base, base + 10 * MIN)
    assert [(r.current_task, r.started - base, r.duration) for r in runs] == [
        ("import", timedelta(0), 3 * MIN),
        ("index", 3 * MIN, 3 * MIN),
        ("import", 8 * MIN, 2 * MIN),  # still running at the window's end
    ]
    assert runs[-1].ended is None


def test_rollups_hold_heartbeat_counts_and_latency(db: Conn, base: datetime) -> None:
    for minute in range(60):
        pystatus.record_heartbeat(db, "api", "ok", None, base + minute * MIN, float(minute))
    db.execute("SELECT pystatus.refresh_rollups()")
    row = db.execute(
        "SELECT heartbeats, latency_count, latency_avg, latency_p50, latency_max"
        " FROM pystatus.rollup_hourly WHERE service_name = 'api' AND bucket = %s",
        (base,),
    ).fetchone()
    assert row == (60, 60, 29.5, 29.5, 59.0)
    daily = one(
        db,
        "SELECT heartbeats FROM pystatus.rollup_daily WHERE service_name = 'api' AND bucket = %s",
        (base.replace(hour=0),),
    )
    assert daily == 60


def test_rollups_outlive_raw_history(db: Conn, base: datetime) -> None:
    beats(db, "old", "ok", base, range(61))
    db.execute("SELECT pystatus.refresh_rollups()")
    db.execute("TRUNCATE system_status_history")  # as if retention had dropped it
    [report] = pystatus.uptime(db, "old", base, base + 60 * MIN)
    assert (report.up_seconds, report.uptime) == (Decimal(3600), 1.0)


def test_uptime_month_in_python_and_bad_windows(db: Conn) -> None:
    [report] = pystatus.uptime_month(db, "nobody", date(2026, 2, 1))
    assert report.until - report.since <= timedelta(days=28)
    with pytest.raises(pystatus.InvalidInput):
        pystatus.uptime_month(db, "nobody", date(2026, 2, 1), "Mars/Olympus")


def test_backfills_count_before_the_next_refresh(db: Conn) -> None:
    db.execute("SELECT pystatus.refresh_rollups()")
    now = one(db, "SELECT now()")
    db.execute("UPDATE pystatus.rollup_state SET rolled_until = date_trunc('hour', now())")
    beats(db, "late", "ok", now - 3 * 60 * MIN, range(0, 61))  # rolled-up hours, not refreshed yet
    [report] = pystatus.uptime(db, "late", now - 4 * 60 * MIN, now - 60 * MIN)
    assert report.up_seconds == 3600 + 120  # 61 heartbeats, the last one good for 2 more minutes
    days = db.execute("SELECT sum(up_seconds) FROM pystatus.daily_uptime('late', 2)").fetchone()
    assert days == (Decimal(3720),)


# --- the Python wrappers ------------------------------------------------------------


def test_history_newest_first(db: Conn, base: datetime) -> None:
    pystatus.record_heartbeat(db, "worker", "ok", "import", base)
    pystatus.record_heartbeat(db, "worker", "degraded", None, base + MIN, 12.5)
    pystatus.record_heartbeat(db, "other", "ok", None, base)
    assert pystatus.history(db, service_name="worker", since=base) == [
        pystatus.HistoryEntry(base + MIN, "degraded", None),
        pystatus.HistoryEntry(base, "ok", "import"),
    ]
    assert pystatus.history(db, "worker", base, until=base + MIN) == [
        pystatus.HistoryEntry(base, "ok", "import")
    ]


def test_daily_uptime_and_latency_hourly_are_the_sql_functions_rows(
    db: Conn, base: datetime
) -> None:
    for minute in range(0, 120, 10):
        pystatus.record_heartbeat(db, "api", "ok", None, base + minute * MIN, float(minute))
    days = pystatus.daily_uptime(db, service_name="api", days=3)
    sql = db.execute("SELECT * FROM pystatus.daily_uptime('api', 3)").fetchall()
    # Today's figures grow by the second: compare the finished days, and today's date.
    assert [astuple(d) for d in days[:-1]] == sql[:-1] and days[-1].day == sql[-1][0]
    assert len(days) == 3 and isinstance(days[0], pystatus.DayUptime)
    admin.refresh_rollups(db)  # the hourly figures come from the rollups
    hours = pystatus.latency_hourly(db, "api", base, base + 60 * MIN)
    assert hours == [pystatus.LatencyPoint(base, 6, 25.0, 47.5, 50.0)]
    assert len(pystatus.latency_hourly(db, "api", base)) == 2


@pytest.mark.parametrize(
    ("interval", "delta"),
    [("1h", timedelta(hours=1)), ("1 day 2 hours", timedelta(hours=26)), ("@ 90 mins", 90 * MIN)],
)
def test_ago_is_by_the_servers_clock(db: Conn, interval: str, delta: timedelta) -> None:
    before = answers.server_now(db)
    at = answers.ago(db, interval)
    after = answers.server_now(db)
    assert before - delta <= at <= after - delta


def test_ago_refuses_what_is_not_an_interval(db: Conn) -> None:
    with pytest.raises(pystatus.InvalidInput, match="interval"):
        answers.ago(db, "a while")
