"""Property: uptime from rollups equals uptime from raw history, on random
histories with silences, flapping, maintenance, planned stops, out-of-order
backfills, month boundaries and maintenance windows (one-off or daily, added
before or after the hours were rolled up), for random windows."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pystatus
from pystatus import alerts, answers
from tests.helpers import one

Conn = psycopg.Connection[Any]
STATUSES = ["ok", "ok", "ok", "degraded", "down", "starting", "stopping", "maintenance"]

# One event: seconds since the previous one (short, or a long silence) and a status.
events = st.lists(
    st.tuples(
        st.one_of(st.integers(1, 120), st.integers(121, 3 * 3600)),
        st.sampled_from(STATUSES),
    ),
    min_size=1,
    max_size=40,
)
service_histories = st.lists(
    st.tuples(
        events,
        st.integers(10, 600),  # expected interval, seconds
        st.integers(0, 300),  # grace, seconds
    ),
    min_size=1,
    max_size=3,
)
# A maintenance window: start (seconds after the history starts), length, for
# every service or service-0 only, daily or once.
maintenance_windows = st.lists(
    st.tuples(st.integers(0, 3 * 86400), st.integers(60, 6 * 3600), st.booleans(), st.booleans()),
    max_size=3,
)


# pystatus.incidents() as it was before it read rollups: over the segments of
# every raw row in the window.
INCIDENTS_FROM_EVERY_ROW = """
    WITH marked AS (
        SELECT g.*, pystatus.status_category(g.status) = 'down' AS is_down,
               lag(pystatus.status_category(g.status) = 'down', 1, false)
                   OVER (PARTITION BY g.service_name ORDER BY g.starts) AS was_down
        FROM pystatus.segments(%(service)s, %(since)s, %(until)s) AS g
    ), numbered AS (
        SELECT m.*, count(*) FILTER (WHERE m.is_down AND NOT m.was_down)
                        OVER (PARTITION BY m.service_name ORDER BY m.starts) AS incident
        FROM marked AS m
    ), grouped AS (
        SELECT n.service_name, min(n.starts) AS started, max(n.ends) AS last_end,
               (array_agg(CASE WHEN n.status = 'stale' THEN 'silence' ELSE 'reported down' END
                          ORDER BY n.starts))[1] AS cause
        FROM numbered AS n WHERE n.is_down
        GROUP BY n.service_name, n.incident
    )
    SELECT g.service_name, g.started,
           CASE WHEN %(until)s >= now() AND g.last_end >= now() THEN NULL ELSE g.last_end END,
           g.last_end - g.started, g.cause
    FROM grouped AS g
    ORDER BY g.service_name, g.started
"""


def reset(db: Conn, rolled_until: datetime) -> None:
    db.execute(
        "TRUNCATE system_status, system_status_history, pystatus.rollup_hourly,"
        " pystatus.rollup_daily, pystatus.rollup_spans, pystatus.rollup_current,"
        " pystatus.rollup_dirty, pystatus.service_expectations, pystatus.maintenance_windows"
    )
    db.execute(
        "UPDATE pystatus.rollup_state SET rolled_until = %(at)s, spans_from = %(at)s,"
        " current_from = %(at)s, current_until = %(at)s",
        {"at": rolled_until},
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    histories=service_histories,
    start_at_month_boundary=st.booleans(),
    rolled_from_the_start=st.booleans(),
    shuffle_seed=st.integers(0, 2**16),
    windows=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=4),
    maintenance=maintenance_windows,
    maintenance_planned_late=st.booleans(),
    spans_kept_from=st.none() | st.floats(0, 1),
)
def test_rollups_equal_raw_history(
    db: Conn,
    histories: list[tuple[list[tuple[int, str]], int, int]],
    start_at_month_boundary: bool,
    rolled_from_the_start: bool,
    shuffle_seed: int,
    windows: list[tuple[float, float]],
    maintenance: list[tuple[int, int, bool, bool]],
    maintenance_planned_late: bool,
    spans_kept_from: float | None,
) -> None:
    now = one(db, "SELECT now()")
    if start_at_month_boundary:  # history straddles the start of a month (and a partition)
        start = one(db, "SELECT date_trunc('month', now() - interval '1 day')") - timedelta(hours=2)
    else:
        start = one(db, "SELECT date_trunc('hour', now()) - interval '3 days'")
    start += timedelta(seconds=17)  # off the hour, so buckets split segments
    # Rollups either start before this history (rolled as hours pass) or after it
    # (the history arrives as backfills and marks them dirty).
    reset(db, start - timedelta(hours=1) if rolled_from_the_start else now)

    rows = []
    for n, (history, interval, grace) in enumerate(histories):
        service = f"service-{n}"
        pystatus.set_expectations(
            db, service, timedelta(seconds=interval), timedelta(seconds=grace)
        )
        at = start
        for gap, status in history:
            at += timedelta(seconds=gap)
            rows.append((service, status, at))
    rows = [r for r in rows if r[2] < now]
    random.Random(shuffle_seed).shuffle(rows)  # out-of-order backfills

    def plan_maintenance() -> None:
        for offset, length, everyone, daily in maintenance:
            begins = start + timedelta(seconds=offset)
            alerts.add_maintenance(
                db,
                "service-*" if everyone else "service-0",
                begins,
                begins + timedelta(seconds=length),
                every="1 day" if daily else None,
            )

    if not maintenance_planned_late:
        plan_maintenance()
    for service, status, at in rows:
        pystatus.record_heartbeat(db, service, status, None, at)
    db.execute("SELECT pystatus.refresh_rollups()")
    if maintenance_planned_late:  # after the hours were rolled up: they are recomputed
        plan_maintenance()
        db.execute("SELECT pystatus.refresh_rollups()")
    if spans_kept_from is not None:
        # As after an upgrade: hours rolled up before it have no spans.
        kept_from = one(
            db,
            "SELECT date_bin('1 hour', %s::timestamptz, pystatus._bucket_origin())",
            (start + (now - start) * spans_kept_from,),
        )
        db.execute("DELETE FROM pystatus.rollup_spans WHERE bucket < %s", (kept_from,))
        db.execute("UPDATE pystatus.rollup_state SET spans_from = %s", (kept_from,))

    # Recomputed from late rows or not, each hour's running totals follow on.
    assert one(db, RUNNING_TOTALS_THAT_DIFFER) == 0
    # Windows up to now and past it: the current hour's rollup is read too.
    span = (now + timedelta(minutes=10)) - (start - timedelta(hours=1))
    # One transaction: the same now() for every answer compared.
    with db.transaction():
        for a, b in [*windows, (windows[0][0], 1.0)]:  # and one to past now
            since = start - timedelta(hours=1) + span * min(a, b)
            until = start - timedelta(hours=1) + span * max(a, b)
            for service in [None, "service-0"]:
                query = "SELECT * FROM pystatus.{}(%s, %s, %s)"
                raw = db.execute(query.format("uptime_raw"), (service, since, until)).fetchall()
                rolled = db.execute(query.format("uptime"), (service, since, until)).fetchall()
                assert rolled == raw, (since, until)
                # Incidents read the rollups' spans, and raw rows only where rollups
                # hold none: the same as from every raw row of the window.
                guided = db.execute(query.format("incidents"), (service, since, until)).fetchall()
                every_row = db.execute(
                    INCIDENTS_FROM_EVERY_ROW, {"service": service, "since": since, "until": until}
                ).fetchall()
                assert guided == every_row, (since, until)


def test_rollups_of_expired_history_are_never_rewritten(db: Conn) -> None:
    start = one(db, "SELECT date_trunc('day', now()) - interval '4 days'")
    for minute in range(0, 4 * 24 * 60, 10):
        pystatus.record_heartbeat(db, "api", "ok", None, start + timedelta(minutes=minute))
    reset_rolled = "UPDATE pystatus.rollup_state SET rolled_until = %s"
    db.execute(reset_rolled, (start,))
    db.execute("SELECT pystatus.refresh_rollups()")
    rollups = "SELECT * FROM pystatus.rollup_{} WHERE service_name = 'api' ORDER BY bucket"
    before = {kind: db.execute(rollups.format(kind)).fetchall() for kind in ("hourly", "daily")}
    assert len(before["daily"]) >= 3

    # The first two days of raw history expire (as when retention drops their
    # partition); then the same expectations are set again, which recomputes.
    db.execute(
        "DELETE FROM system_status_history WHERE heartbeat_timestamp < %s",
        (start + timedelta(days=2, minutes=5),),
    )
    pystatus.set_expectations(db, "api", timedelta(seconds=60), timedelta(seconds=60))
    db.execute("SELECT pystatus.refresh_rollups()")
    after = {kind: db.execute(rollups.format(kind)).fetchall() for kind in ("hourly", "daily")}
    assert after == before

    # A change that matters is applied where raw history remains, and only there.
    pystatus.set_expectations(db, "api", timedelta(seconds=30), timedelta(seconds=0))
    db.execute("SELECT pystatus.refresh_rollups()")
    changed = db.execute(rollups.format("hourly")).fetchall()
    kept_until = start + timedelta(days=2, hours=1)
    assert [r for r in changed if r[1] < kept_until] == [
        r for r in before["hourly"] if r[1] < kept_until
    ]
    assert [r for r in changed if r[1] >= kept_until] != [
        r for r in before["hourly"] if r[1] >= kept_until
    ]


CURRENT = (
    "SELECT service_name, up_us, down_us, maintenance_us, down, silent, last_at, last_status"
    " FROM pystatus.rollup_current"
)
COMPARED = (
    "SELECT * FROM pystatus.{}(%s, now() - interval '150 minutes', now() + interval '1 hour')"
)


def current_hour_history(db: Conn) -> tuple[datetime, datetime]:
    """Two services heartbeating through the last three hours, one going down and
    silent in the last hour; rollups refreshed. Returns what rollup_current holds."""
    reset(db, one(db, "SELECT date_trunc('hour', now() - interval '4 hours')"))
    now = one(db, "SELECT now()")
    for minute in range(180, 0, -1):
        at = now - timedelta(minutes=minute)
        pystatus.record_heartbeat(db, "api", "ok", None, at)
        if minute > 40 or minute < 20:  # twenty minutes of silence
            pystatus.record_heartbeat(db, "worker", "down" if minute < 50 else "ok", None, at)
    # In the first minute of an hour's rollup the current hour holds nothing yet.
    while True:
        db.execute("SELECT pystatus.refresh_rollups()")
        held = db.execute(
            "SELECT current_from, current_until FROM pystatus.rollup_state"
        ).fetchone()
        if held[1] > held[0]:
            return held  # type: ignore[no-any-return]
        time.sleep(5)


RUNNING_TOTALS_THAT_DIFFER = """
    SELECT count(*) FROM (
        SELECT h.up_us_before, h.down_us_before, h.maintenance_us_before,
               coalesce(sum(h.up_us) OVER earlier, 0) AS up_us,
               coalesce(sum(h.down_us) OVER earlier, 0) AS down_us,
               coalesce(sum(h.maintenance_us) OVER earlier, 0) AS maintenance_us
        FROM pystatus.rollup_hourly AS h
        WINDOW earlier AS (PARTITION BY h.service_name ORDER BY h.bucket
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ) AS t
    WHERE (t.up_us_before, t.down_us_before, t.maintenance_us_before)
          <> (t.up_us, t.down_us, t.maintenance_us)
"""


def assert_answers_equal_raw_history(db: Conn) -> None:
    with db.transaction():  # one now() for both
        since, until = db.execute(
            "SELECT now() - interval '150 minutes', now() + interval '1 hour'"
        ).fetchone()
        for service in (None, "api", "worker"):
            rolled = db.execute(COMPARED.format("uptime"), (service,)).fetchall()
            assert rolled == db.execute(COMPARED.format("uptime_raw"), (service,)).fetchall()
            incidents = db.execute(COMPARED.format("incidents"), (service,)).fetchall()
            every_row = {"service": service, "since": since, "until": until}
            assert incidents == db.execute(INCIDENTS_FROM_EVERY_ROW, every_row).fetchall()
        # The fleet's raw rows are read by time, one service's through its own
        # index: the fleet's answer is each service's.
        # Each hour's running totals are what the service's earlier hours add up to.
        assert one(db, RUNNING_TOTALS_THAT_DIFFER) == 0
        raw = COMPARED.format("uptime_raw")
        fleet = db.execute(raw, (None,)).fetchall()
        each = [db.execute(raw, (service,)).fetchall() for service in ("api", "worker")]
        assert fleet == each[0] + each[1] and len(fleet) == 2


def test_the_current_hour_rolled_up_minute_by_minute_equals_it_at_once(db: Conn) -> None:
    current_from, current_until = current_hour_history(db)
    at_once = db.execute(CURRENT + " ORDER BY 1").fetchall()
    assert [row[0] for row in at_once] == ["api", "worker"]
    # Each keeps its newest row, where the answers' raw reading after it starts.
    newest = (
        "SELECT heartbeat_timestamp, status FROM system_status_history"
        " WHERE service_name = %s AND heartbeat_timestamp < %s"
        " ORDER BY heartbeat_timestamp DESC LIMIT 1"
    )
    for row in at_once:
        assert row[6:] == db.execute(newest, (row[0], current_until)).fetchone()
    coverage = (
        "SELECT current_to"
        " FROM pystatus._rollup_coverage(NULL, now() - interval '150 minutes', now())"
    )
    assert one(db, coverage) == current_until  # the answers read it
    assert_answers_equal_raw_history(db)

    db.execute("TRUNCATE pystatus.rollup_current")
    step = current_from
    while step < current_until:  # as refreshes a few minutes apart build it
        until = min(step + timedelta(minutes=7), current_until)
        db.execute("SELECT pystatus._roll_up_current(NULL, %s, %s)", (step, until))
        step = until
    assert db.execute(CURRENT + " ORDER BY 1").fetchall() == at_once


def test_a_late_row_in_the_current_hour_counts_from_the_next_refresh(db: Conn) -> None:
    current_from, current_until = current_hour_history(db)
    before = db.execute(CURRENT + " WHERE service_name = 'api'").fetchone()
    assert before[2] == 0  # api was never down

    late = current_from + (current_until - current_from) / 2
    pystatus.record_heartbeat(db, "api", "down", None, late)
    assert_answers_equal_raw_history(db)  # raw history until the refresh
    db.execute("SELECT pystatus.refresh_rollups()")
    after = db.execute(CURRENT + " WHERE service_name = 'api'").fetchone()
    assert after[2] > 0 and after[1] < before[1]
    # Recomputed alone, it keeps its newest row, as the fleet's refresh does.
    newest = db.execute(
        "SELECT heartbeat_timestamp, status FROM system_status_history"
        " WHERE service_name = 'api'"
        " AND heartbeat_timestamp < (SELECT current_until FROM pystatus.rollup_state)"
        " ORDER BY heartbeat_timestamp DESC LIMIT 1"
    ).fetchone()
    assert after[6:] == newest
    assert_answers_equal_raw_history(db)
    assert one(db, "SELECT count(*) FROM pystatus.rollup_dirty") == 0


def test_recent_incidents_read_one_by_one_or_the_whole_fleet_alike(db: Conn) -> None:
    reset(db, one(db, "SELECT date_trunc('hour', now() - interval '4 hours')"))
    record = (
        "SELECT pystatus.record_heartbeat('svc-' || i,"
        " CASE WHEN i < %s AND m BETWEEN 30 AND 35 THEN 'down' ELSE 'ok' END,"
        " NULL, now() - m * interval '1 minute')"
        " FROM generate_series(0, 39) AS i, generate_series(1, 180) AS m"
    )
    since = one(db, "SELECT now() - interval '1 day'")
    every = (
        "SELECT service_name, started, ended, duration, cause"
        " FROM pystatus.incidents(NULL, %s) ORDER BY started DESC, service_name"
    )
    for down in (1, 10):  # one service of 40 down: read alone; ten: the fleet at once
        db.execute(record, (down,))
        db.execute("SELECT pystatus.refresh_rollups()")
        with db.transaction():
            recent = db.execute("SELECT * FROM pystatus.recent_incidents(%s)", (since,)).fetchall()
            assert recent == db.execute(every, (since,)).fetchall()
        assert len({row[0] for row in recent}) == down


def test_each_services_row_in_force_is_carried_into_the_next_hour(db: Conn) -> None:
    reset(db, one(db, "SELECT date_trunc('hour', now() - interval '4 hours')"))
    now = one(db, "SELECT now()")
    for minute in range(180, 0, -1):
        pystatus.record_heartbeat(db, "api", "ok", None, now - timedelta(minutes=minute))
    # A worker that reported once (a job run now and then), silent since
    # (stale), and a service no longer in system_status.
    pystatus.record_heartbeat(db, "worker", "ok", None, now - timedelta(minutes=150))
    pystatus.record_heartbeat(db, "gone", "ok", None, now - timedelta(minutes=100))
    # A service silent since the oldest partition, which retention drops.
    oldest, oldest_starts = db.execute(
        "SELECT partition::text, starts FROM pystatus.history_partitions"
        " WHERE NOT is_default ORDER BY starts LIMIT 1"
    ).fetchone()
    pystatus.record_heartbeat(db, "ancient", "ok", None, oldest_starts + timedelta(hours=1))
    db.execute("SELECT pystatus.refresh_rollups()")
    rolled_until = one(db, "SELECT rolled_until FROM pystatus.rollup_state")
    # As things stood a few minutes before that hour was rolled up: the hour
    # before rolled up to its last minutes, every service's row in force kept.
    hour, near_its_end = rolled_until - timedelta(hours=1), rolled_until - timedelta(minutes=3)
    db.execute("TRUNCATE pystatus.rollup_current")
    db.execute(
        "UPDATE pystatus.rollup_state SET rolled_until = %(hour)s, current_from = %(hour)s,"
        " current_until = %(until)s",
        {"hour": hour, "until": near_its_end},
    )
    db.execute("SELECT pystatus._roll_up_current(NULL, %s, %s)", (hour, near_its_end))
    kept = dict(db.execute("SELECT service_name, last_at FROM pystatus.rollup_current").fetchall())
    assert kept["worker"] == now - timedelta(minutes=150) and kept["gone"] and kept["ancient"]
    db.execute("DELETE FROM system_status WHERE service_name = 'gone'")
    db.execute(f"DROP TABLE {oldest}")

    newest = (
        "SELECT heartbeat_timestamp, status FROM system_status_history"
        " WHERE service_name = %s AND heartbeat_timestamp < %s"
        " ORDER BY heartbeat_timestamp DESC LIMIT 1"
    )
    # The new hour starts (as refresh_rollups() starts it once the hour before
    # is rolled up): nothing in it yet, and each service in system_status with
    # a row in history keeps its row in force there, though worker wrote none
    # for hours; gone and ancient keep none (answers must equal raw history,
    # which has none).
    db.execute("SELECT pystatus._start_current_hour(%s)", (rolled_until,))
    started = db.execute(CURRENT + " ORDER BY 1").fetchall()
    assert [row[0] for row in started] == ["api", "worker"]
    for row in started:
        assert row[1:4] == (0, 0, 0) and not row[4] and not row[5]
        assert row[6:] == db.execute(newest, (row[0], rolled_until)).fetchone()

    # Extended from there (and the hour before rolled up) by the next refresh.
    db.execute("SELECT pystatus.refresh_rollups()")
    current_from, current_until = db.execute(
        "SELECT current_from, current_until FROM pystatus.rollup_state"
    ).fetchone()
    assert current_from == rolled_until == one(db, "SELECT rolled_until FROM pystatus.rollup_state")
    carried = db.execute(CURRENT + " ORDER BY 1").fetchall()
    assert [row[0] for row in carried] == ["api", "worker"]
    for row in carried:
        assert row[6:] == db.execute(newest, (row[0], current_until)).fetchone()
    # Its sums start from the new hour: as rolled up at once from there.
    db.execute("TRUNCATE pystatus.rollup_current")
    if current_until > current_from:
        db.execute("SELECT pystatus._roll_up_current(NULL, %s, %s)", (current_from, current_until))
        assert db.execute(CURRENT + " ORDER BY 1").fetchall() == carried
    else:  # the first minute of the hour: nothing rolled up yet
        assert all(row[1:4] == (0, 0, 0) and not row[4] and not row[5] for row in carried)
    # The answers read the rows carried as raw history would. (Gone's and
    # ancient's hours, rolled up before, keep what history said then.)
    for table in ("system_status", "pystatus.rollup_hourly", "pystatus.rollup_spans"):
        db.execute(f"DELETE FROM {table} WHERE service_name IN ('gone', 'ancient')")
    assert_answers_equal_raw_history(db)


def test_the_overviews_strip_is_each_hours_uptime_in_its_place(db: Conn) -> None:
    reset(db, one(db, "SELECT date_trunc('hour', now() - interval '40 hours')"))
    # api: from ten hours ago, down for half an hour; batch: one
    # heartbeat 30 hours ago, silent (stale) since.
    db.execute(
        "SELECT pystatus.record_heartbeat('api',"
        " CASE WHEN m BETWEEN 200 AND 230 THEN 'down' ELSE 'ok' END, NULL,"
        " now() - m * interval '1 minute') FROM generate_series(600, 1, -2) AS m"
    )
    db.execute("SELECT pystatus.record_heartbeat('batch', 'ok', NULL, now() - interval '30 hours')")
    db.execute("SELECT pystatus.refresh_rollups()")
    strips = {s.service_name: s for s in answers.service_overview(db)}
    for name, overview in strips.items():
        hours = [overview.hours_until - timedelta(hours=24 - h) for h in range(24)]
        expected = [
            one(
                db,
                "SELECT uptime FROM pystatus.uptime(%s, %s, %s)",
                (name, h, h + timedelta(hours=1)),
            )
            for h in hours
        ]
        assert overview.hourly_uptime == expected, name
    assert strips["api"].hourly_uptime[:12] == [None] * 12  # before its first heartbeat
    assert 0 < min(u for u in strips["api"].hourly_uptime if u is not None) < 1
    assert strips["batch"].hourly_uptime == [0.0] * 24
