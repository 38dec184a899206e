"""Alerts against real receivers: events written with the status change, rules
with anti-flap and reminders, webhook (signed), email (aiosmtpd) and Apprise
deliveries, retries, and a worker that runs as pystatus_alerter."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import admin, alerts
from pystatus.errors import InvalidInput, InvalidServiceName
from pystatus.names import clean_text
from tests.helpers import one, wait_for
from tests.receivers import HttpReceiver, dripping_receiver, http_receiver, smtp_receiver

Conn = psycopg.Connection[Any]


@contextmanager
def running_worker(dsn: str, **options: Any) -> Iterator[alerts.Worker]:
    """``pystatus alerts run`` in a thread, stopped (and checked stopped) on leaving."""
    options.setdefault("poll_interval", 0.2)
    worker = alerts.Worker(dsn, **options)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(15)
        assert not thread.is_alive(), "the worker did not stop"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        yield running


@pytest.fixture
def hooked(db: Conn, receiver: HttpReceiver) -> HttpReceiver:
    """A webhook channel "ops" to the receiver, signed, and a rule for every service."""
    alerts.add_channel(db, "ops", "webhook", receiver.url, {"secret": "s3cret", "timeout": 2})
    alerts.add_rule(db, "*", "ops")
    return receiver


def events(db: Conn, service: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT from_status, to_status, cause FROM pystatus.status_events"
        " WHERE service_name = %s ORDER BY id",
        (service,),
    ).fetchall()


def deliver_all(db: Conn, worker_name: str = "test") -> list[alerts.Message]:
    """One worker round by hand: sweep, evaluate, then send what is due."""
    alerts.sweep(db)
    alerts.evaluate(db)
    sent = []
    for message in alerts.claim(db, worker_name, 100, timedelta(minutes=1)):
        alerts.finish(db, message, alerts.attempt(message, 5))
        sent.append(message)
    return sent


# --- Events -------------------------------------------------------------------


def test_a_status_change_is_an_event_and_a_repeated_status_is_not(db: Conn) -> None:
    for status in ("ok", "ok", "ok", "down", "down", "ok"):
        pystatus.heartbeat(db, "billing", status)
    assert events(db, "billing") == [
        (None, "ok", "reported"),
        ("ok", "down", "reported"),
        ("down", "ok", "reported"),
    ]


def test_a_batch_records_the_changes_of_its_rows_only(db: Conn) -> None:
    pystatus.heartbeat_many(db, [("a", "ok"), ("b", "ok"), ("c", "ok")])
    pystatus.heartbeat_many(db, [("a", "down"), ("b", "ok"), ("c", "degraded"), ("d", "ok")])
    pystatus.heartbeat_many(db, [("a", "down"), ("b", "ok"), ("c", "ok")])
    assert events(db, "a") == [(None, "ok", "reported"), ("ok", "down", "reported")]
    assert events(db, "b") == [(None, "ok", "reported")]
    assert events(db, "c") == [
        (None, "ok", "reported"),
        ("ok", "degraded", "reported"),
        ("degraded", "ok", "reported"),
    ]
    assert events(db, "d") == [(None, "ok", "reported")]


def test_sweeping_many_services_at_once_is_one_silence_event_each(db: Conn) -> None:
    pystatus.heartbeat_many(db, [("a", "ok"), ("b", "down"), ("c", "ok")])
    db.execute("UPDATE system_status SET last_heartbeat = now() - interval '10 minutes'")
    assert admin.sweep(db) == 3
    for service, before in (("a", "ok"), ("b", "down"), ("c", "ok")):
        assert events(db, service)[-1] == (before, "stale", "silence")
    # Each has its one stale history row, the sweeper's, dated at the deadline.
    assert db.execute(
        "SELECT service_name, count(*) FROM system_status_history WHERE status = 'stale'"
        " GROUP BY 1 ORDER BY 1"
    ).fetchall() == [("a", 1), ("b", 1), ("c", 1)]


def test_an_event_is_written_in_the_status_writes_transaction(db: Conn) -> None:
    pystatus.heartbeat(db, "billing", "ok")
    with db.transaction(force_rollback=True):
        pystatus.heartbeat(db, "billing", "down")
        assert len(events(db, "billing")) == 2
    assert events(db, "billing") == [(None, "ok", "reported")]


def test_staleness_is_an_event_dated_at_the_deadline(db: Conn) -> None:
    pystatus.heartbeat(db, "billing", "ok")
    db.execute("UPDATE system_status SET last_heartbeat = now() - interval '10 minutes'")
    assert admin.sweep(db) == 1
    at, deadline = db.execute(
        "SELECT e.at, s.last_heartbeat + interval '120 seconds' FROM pystatus.status_events AS e"
        " JOIN system_status AS s USING (service_name) WHERE e.cause = 'silence'"
    ).fetchone() or (None, None)
    assert at == deadline


def test_a_direct_writer_with_only_its_old_table_rights_writes_events(db: Conn, dsn: str) -> None:
    db.execute("CREATE ROLE legacy_writer LOGIN")
    db.execute("GRANT SELECT, INSERT, UPDATE ON system_status TO legacy_writer")
    try:
        with psycopg.connect(dsn + " user=legacy_writer", autocommit=True) as legacy:
            for status in ("ok", "down"):
                legacy.execute(
                    "INSERT INTO system_status (service_name, status, last_heartbeat)"
                    " VALUES ('legacy', %s, now()) ON CONFLICT (service_name) DO UPDATE"
                    " SET status = EXCLUDED.status, last_heartbeat = EXCLUDED.last_heartbeat",
                    (status,),
                )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                legacy.execute("SELECT * FROM pystatus.status_events")
        assert events(db, "legacy") == [(None, "ok", "reported"), ("ok", "down", "reported")]
    finally:
        db.execute("DROP OWNED BY legacy_writer")
        db.execute("DROP ROLE legacy_writer")


# --- Rules and messages ---------------------------------------------------------


def test_down_then_recovered_arrive_signed_with_one_key_each(
    db: Conn, hooked: HttpReceiver
) -> None:
    pystatus.heartbeat(db, "billing", "ok")
    assert deliver_all(db) == []
    pystatus.heartbeat(db, "billing", "down", "charging cards")
    pystatus.heartbeat(db, "billing", "down", "charging cards")
    deliver_all(db)
    pystatus.heartbeat(db, "billing", "ok")
    deliver_all(db)

    down, recovered = hooked.received
    assert (down.body["kind"], down.body["service"], down.body["status"]) == (
        "down",
        "billing",
        "down",
    )
    assert down.body["current_task"] == "charging cards"
    assert recovered.body["kind"] == "recovered" and recovered.body["status"] == "ok"
    assert recovered.body["down_since"] == down.body["down_since"]
    for request in (down, recovered):
        assert request.headers[alerts.SIGNATURE_HEADER] == alerts.signature("s3cret", request.raw)
        assert request.headers[alerts.IDEMPOTENCY_HEADER] == request.body["idempotency_key"]
    assert down.body["idempotency_key"] != recovered.body["idempotency_key"]
    assert [e.state for e in alerts.message_log(db, down_since(db))] == ["sent", "sent"]


def down_since(db: Conn) -> Any:
    return one(db, "SELECT now() - interval '1 hour'")


def test_a_silent_service_alerts_as_stale_without_any_new_write(
    db: Conn, dsn: str, hooked: HttpReceiver
) -> None:
    pystatus.heartbeat(db, "billing", "ok")
    pystatus.set_expectations(db, "billing", timedelta(seconds=1), timedelta(0))
    with running_worker(dsn):
        wait_for(lambda: len(hooked.bodies("down")) == 1)
        # The evaluation may pass the deadline after the round's sweep did not:
        # the alert goes out from the derived status, the next round marks the row.
        wait_for(lambda: one(db, "SELECT status FROM system_status") == "stale")
    (alert,) = hooked.bodies()
    assert alert["status"] == "stale"


def test_a_flap_shorter_than_down_for_sends_nothing(db: Conn, hooked: HttpReceiver) -> None:
    db.execute("UPDATE pystatus.alert_rules SET down_for = interval '1 hour'")
    pystatus.heartbeat(db, "billing", "down")
    pystatus.heartbeat(db, "billing", "ok")
    assert deliver_all(db) == []
    pystatus.heartbeat(db, "billing", "down")
    assert deliver_all(db) == []
    # Down for longer than down_for (the episode's start moved back an hour):
    db.execute("UPDATE pystatus.status_events SET at = at - interval '2 hours'")
    assert [m.body["kind"] for m in deliver_all(db)] == ["down"]


def test_down_reports_counts_consecutive_reports(db: Conn, hooked: HttpReceiver) -> None:
    db.execute("UPDATE pystatus.alert_rules SET down_reports = 3")
    pystatus.heartbeat(db, "billing", "down")
    pystatus.heartbeat(db, "billing", "down")
    assert deliver_all(db) == []
    pystatus.heartbeat(db, "billing", "ok")
    pystatus.heartbeat(db, "billing", "down")  # the count starts again
    pystatus.heartbeat(db, "billing", "down")
    assert deliver_all(db) == []
    pystatus.heartbeat(db, "billing", "down")
    assert [m.body["kind"] for m in deliver_all(db)] == ["down"]


def test_recovery_waits_for_up_for_and_a_relapse_keeps_the_alert_open(
    db: Conn, hooked: HttpReceiver
) -> None:
    db.execute("UPDATE pystatus.alert_rules SET up_for = interval '1 hour'")
    pystatus.heartbeat(db, "billing", "down")
    assert [m.body["kind"] for m in deliver_all(db)] == ["down"]
    pystatus.heartbeat(db, "billing", "ok")
    assert deliver_all(db) == []
    pystatus.heartbeat(db, "billing", "down")  # relapse: no second down message
    assert deliver_all(db) == []
    pystatus.heartbeat(db, "billing", "degraded")
    db.execute("UPDATE pystatus.status_events SET at = at - interval '2 hours'")
    (recovered,) = deliver_all(db)
    assert (recovered.body["kind"], recovered.body["status"]) == ("recovered", "degraded")


def test_reminders_while_still_down(db: Conn, hooked: HttpReceiver) -> None:
    db.execute("UPDATE pystatus.alert_rules SET remind_every = interval '1 hour'")
    pystatus.heartbeat(db, "billing", "down")
    deliver_all(db)
    assert deliver_all(db) == []
    for expected in (1, 2):
        db.execute(
            "UPDATE pystatus.alert_state SET alerted_at = alerted_at - interval '1 hour',"
            " reminded_at = reminded_at - interval '1 hour'"
        )
        (reminder,) = deliver_all(db)
        assert (reminder.body["kind"], reminder.body["reminder"]) == ("reminder", expected)


def test_a_planned_stop_never_alerts(db: Conn, hooked: HttpReceiver) -> None:
    pystatus.heartbeat(db, "billing", "ok")
    pystatus.heartbeat(db, "billing", "stopping")
    db.execute("UPDATE system_status SET last_heartbeat = now() - interval '1 hour'")
    assert deliver_all(db) == []
    assert one(db, "SELECT effective_status FROM pystatus.live_status") == "stopping"


def test_rules_match_patterns_and_each_channel_gets_its_own_message(
    db: Conn, receiver: HttpReceiver
) -> None:
    alerts.add_channel(db, "billing-team", "webhook", receiver.url + "/billing")
    alerts.add_channel(db, "everyone", "webhook", receiver.url + "/all")
    alerts.add_rule(db, "billing-*", "billing-team")
    alerts.add_rule(db, "*", "everyone")
    pystatus.heartbeat(db, "billing-api", "down")
    pystatus.heartbeat(db, "search", "down")
    deliver_all(db)
    got = sorted((r.path, r.body["service"]) for r in receiver.received)
    assert got == [
        ("/hook/all", "billing-api"),
        ("/hook/all", "search"),
        ("/hook/billing", "billing-api"),
    ]


# --- Maintenance windows and snoozes ---------------------------------------------


def test_down_inside_a_maintenance_window_is_maintenance_and_alerts_nothing(
    db: Conn, hooked: HttpReceiver
) -> None:
    pystatus.heartbeat(db, "indexer", "ok")
    since = one(db, "SELECT now()")
    alerts.add_maintenance(db, "index*", since, one(db, "SELECT now() + interval '1 hour'"))
    pystatus.heartbeat(db, "indexer", "down")
    assert deliver_all(db) == []
    status = one(db, "SELECT effective_status FROM pystatus.live_status")
    assert status == "maintenance"
    (uptime,) = pystatus.uptime(db, "indexer", since)
    assert uptime.down_seconds == 0 and uptime.maintenance_seconds > 0
    assert pystatus.incidents(db, "indexer", since) == []


def test_when_a_window_ends_on_a_down_service_the_alert_goes_out(
    db: Conn, hooked: HttpReceiver
) -> None:
    window = alerts.add_maintenance(
        db, "indexer", one(db, "SELECT now()"), one(db, "SELECT now() + interval '1 hour'")
    )
    pystatus.heartbeat(db, "indexer", "down")
    assert deliver_all(db) == []
    # The window ends (moved into the past): down again, and alerted.
    db.execute(
        "UPDATE pystatus.maintenance_windows SET starts = now() - interval '2 hours',"
        " ends = now() - interval '1 microsecond' WHERE id = %s",
        (window,),
    )
    db.execute("UPDATE pystatus.alerts_progress SET evaluated_until = now() - interval '3 hours'")
    assert [m.body["kind"] for m in deliver_all(db)] == ["down"]
    # The window began before the service went down (no edge there) and ended on it.
    assert events(db, "indexer")[-1] == ("maintenance", "down", "window ended")


def test_a_snooze_mutes_alerts_but_not_the_answers(db: Conn, hooked: HttpReceiver) -> None:
    alerts.snooze(db, "billing", timedelta(hours=2), "known issue")
    pystatus.heartbeat(db, "billing", "down")
    assert deliver_all(db) == []
    assert one(db, "SELECT effective_status FROM pystatus.live_status") == "down"
    db.execute("DELETE FROM pystatus.maintenance_windows")
    assert [m.body["kind"] for m in deliver_all(db)] == ["down"]


def test_a_window_written_without_an_offset_is_read_in_its_time_zone(db: Conn) -> None:
    db.execute("SET TimeZone = 'UTC'")
    window_id = alerts.add_maintenance(
        db, "indexer", "2026-07-01 02:00", "2026-07-01 03:00", time_zone="Asia/Tokyo"
    )
    starts = one(db, "SELECT starts FROM pystatus.maintenance_windows WHERE id = %s", (window_id,))
    assert starts == one(db, "SELECT timestamptz '2026-06-30 17:00+00'")  # 02:00 in Tokyo
    assert one(db, "SHOW TimeZone") == "UTC"  # the session's own zone is left as it was
    # An abbreviation is no zone for a wall clock: refused, not read in UTC.
    with pytest.raises(InvalidInput, match="invalid time zone 'CEST'"):
        alerts.add_maintenance(
            db, "indexer", "2026-07-03 02:00", "2026-07-03 03:00", time_zone="CEST"
        )
    with db.transaction():  # and inside a transaction of the caller's
        alerts.add_maintenance(
            db, "indexer", "2026-07-02 02:00", "2026-07-02 03:00", time_zone="Asia/Tokyo"
        )
        assert one(db, "SHOW TimeZone") == "UTC"


def test_a_weekly_window_keeps_its_wall_clock_time_across_daylight_saving(db: Conn) -> None:
    alerts.add_maintenance(
        db,
        "indexer",
        "2026-03-22 04:00 Europe/Berlin",
        "2026-03-22 05:00 Europe/Berlin",
        every="1 week",
        time_zone="Europe/Berlin",
    )
    db.execute("SET TimeZone = 'Europe/Berlin'")
    starts = [
        w.starts.strftime("%Y-%m-%d %H:%M %z")
        for w in alerts.windows(
            db,
            one(db, "SELECT '2026-03-20'::timestamptz"),
            one(db, "SELECT '2026-04-06'::timestamptz"),
        )
    ]
    # 2026-03-29 is the day clocks go forward (02:00 becomes 03:00) in Berlin.
    assert starts == ["2026-03-22 04:00 +0100", "2026-03-29 04:00 +0200", "2026-04-05 04:00 +0200"]


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"starts": "2026-01-02", "ends": "2026-01-01"}, "end after the start"),
        ({"starts": "2026-01-01", "ends": "infinity"}, "both finite"),
        ({"every": "10 minutes"}, "at least 1 hour"),
        ({"every": "1 month"}, "hours, days or weeks"),
        ({"every": "1 hour"}, "at least the window's length"),
        ({"time_zone": "Mars/Olympus"}, "invalid time zone"),
        ({"repeat_until": "2027-01-01"}, "only a recurring window"),
    ],
)
def test_bad_windows_are_refused_and_nothing_is_written(
    db: Conn, arguments: dict[str, Any], problem: str
) -> None:
    window: dict[str, Any] = {"starts": "2026-01-01 00:00", "ends": "2026-01-01 02:00"} | arguments
    with pytest.raises(InvalidInput, match=problem):
        alerts.add_maintenance(db, "indexer", **window)
    assert one(db, "SELECT count(*) FROM pystatus.maintenance_windows") == 0


def test_windows_take_the_same_service_patterns_as_rules(db: Conn) -> None:
    for pattern in ("", "bad\u200bname-*"):
        with pytest.raises(InvalidServiceName, match="invalid service pattern"):
            alerts.add_maintenance(db, pattern, "2026-01-01", "2026-01-02")
    assert alerts.add_maintenance(db, "billing-*", "2026-01-01", "2026-01-02") > 0


# --- Channels -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "target", "options", "problem"),
    [
        ("pager", "http://x", {}, "invalid channel kind"),
        ("webhook", "ftp://x/y", {}, "http:// or https:// URL"),
        ("email", "not an address", {}, "addresses"),
        ("apprise", "no scheme", {}, "Apprise URL"),
        ("webhook", "http://x", {"password": "p"}, "password"),
        ("webhook", "http://x", {"timeout": 0}, "invalid timeout"),
        ("webhook", "http://x", {"timeout": "10"}, "invalid timeout"),
        ("apprise", "json://x", {"timeout": 5}, "it takes group_threshold"),
        ("webhook", "http://x", {"group_threshold": 2.5}, "invalid group_threshold"),
        ("webhook", "http://x", {"group_threshold": -1}, "invalid group_threshold"),
    ],
)
def test_bad_channels_are_refused(
    db: Conn, kind: str, target: str, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem):
        alerts.add_channel(db, "ops", kind, target, options)
    assert alerts.channels(db) == []


def test_bad_rules_are_refused(db: Conn) -> None:
    alerts.add_channel(db, "ops", "webhook", "http://127.0.0.1:9/")
    with pytest.raises(InvalidInput, match="unknown channel"):
        alerts.add_rule(db, "*", "nowhere")
    with pytest.raises(InvalidServiceName):
        alerts.add_rule(db, "bad\u200bname", "ops")
    with pytest.raises(InvalidInput, match="remind_every"):
        alerts.add_rule(db, "*", "ops", remind_every=timedelta(seconds=5))
    assert alerts.rules(db) == []


def test_secrets_are_masked_in_lists_and_unreadable_by_the_reader(db: Conn, dsn: str) -> None:
    alerts.add_channel(
        db, "chat", "apprise", "slack://TokenA/TokenB/TokenC/#ops tgram://bot123:AAH/42"
    )
    alerts.add_channel(db, "hook", "webhook", "https://hooks.example.com/T0K3N", {"secret": "k"})
    listed = {c.name: c for c in alerts.channels(db)}
    assert listed["chat"].target == "slack://... tgram://..."
    assert listed["hook"].target == "https://hooks.example.com/..."
    assert listed["hook"].options == {"secret": "***"}
    db.execute("CREATE ROLE dash LOGIN IN ROLE pystatus_reader")
    try:
        with psycopg.connect(dsn + " user=dash", autocommit=True) as reader:
            for query in (
                "SELECT * FROM pystatus.alert_channels",
                "SELECT * FROM pystatus.alert_channel_list()",
                "SELECT * FROM pystatus.claim_alert_messages('x')",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    reader.execute(query)
    finally:
        db.execute("DROP ROLE dash")


# --- When a spell began, whatever events are missing ------------------------------------


def test_silence_not_yet_marked_counts_from_the_deadline_not_an_old_outage(
    db: Conn, hooked: HttpReceiver
) -> None:
    db.execute("UPDATE pystatus.alert_rules SET down_for = interval '1 hour'")
    pystatus.heartbeat(db, "billing", "down")  # an old outage, over
    pystatus.heartbeat(db, "billing", "ok")
    db.execute("UPDATE pystatus.status_events SET at = at - interval '7 days'")
    db.execute("UPDATE system_status SET last_heartbeat = now() - interval '3 minutes'")
    alerts.evaluate(db)  # no sweep: stale by the clock only
    assert one(db, "SELECT effective_status FROM pystatus.live_status") == "stale"
    assert one(db, "SELECT count(*) FROM pystatus.alert_messages") == 0


def test_a_window_that_ended_while_the_service_was_up_starts_no_outage(
    db: Conn, hooked: HttpReceiver
) -> None:
    db.execute("UPDATE pystatus.alert_rules SET down_for = interval '15 minutes'")
    pystatus.heartbeat(db, "billing", "ok")
    alerts.add_maintenance(
        db,
        "billing",
        one(db, "SELECT now() - interval '7 hours'"),
        one(db, "SELECT now() - interval '6 hours'"),
    )
    db.execute("UPDATE pystatus.alerts_progress SET evaluated_until = now() - interval '8 hours'")
    pystatus.heartbeat(db, "billing", "down")
    assert deliver_all(db) == []
    assert [e[2] for e in events(db, "billing")] == ["reported", "reported"]


def test_a_service_down_since_before_alerts_were_installed_alerts_after_down_for(
    db: Conn, hooked: HttpReceiver
) -> None:
    db.execute("UPDATE pystatus.alert_rules SET down_for = interval '5 minutes'")
    at = one(db, "SELECT now() - interval '10 minutes'")
    db.execute("SET pystatus.backfilling = 'on'")
    pystatus.record_heartbeat(db, "billing", "ok", None, at - timedelta(minutes=5))
    pystatus.record_heartbeat(db, "billing", "down", None, at)
    db.execute("RESET pystatus.backfilling")
    pystatus.heartbeat(db, "billing", "down")
    db.execute("DELETE FROM pystatus.status_events")  # as before migration 0003
    (alert,) = deliver_all(db)
    assert datetime.fromisoformat(alert.body["down_since"]) == at


def test_a_deleted_service_ends_its_open_alert(db: Conn, hooked: HttpReceiver) -> None:
    pystatus.heartbeat(db, "billing", "down")
    deliver_all(db)
    assert one(db, "SELECT count(*) FROM pystatus.alert_state") == 1
    db.execute("DELETE FROM system_status WHERE service_name = 'billing'")
    alerts.evaluate(db)
    assert one(db, "SELECT count(*) FROM pystatus.alert_state") == 0


def test_a_daily_window_on_the_day_clocks_go_forward_keeps_answers_working(db: Conn) -> None:
    pystatus.heartbeat(db, "indexer", "down")
    alerts.add_maintenance(
        db,
        "indexer",
        "2026-03-01 02:30 Europe/Berlin",
        "2026-03-01 03:00 Europe/Berlin",
        every="1 day",
        time_zone="Europe/Berlin",
    )
    since, until = (
        one(db, "SELECT '2026-03-28'::timestamptz"),
        one(db, "SELECT '2026-03-31'::timestamptz"),
    )
    lengths = {w.ends - w.starts for w in alerts.windows(db, since, until)}
    assert lengths == {timedelta(minutes=30)}
    db.execute("SELECT * FROM pystatus.segments(NULL, %s, %s)", (since, until)).fetchall()


# --- Delivery -------------------------------------------------------------------


def test_a_late_outcome_does_not_release_a_message_another_worker_holds(
    db: Conn, hooked: HttpReceiver
) -> None:
    pystatus.heartbeat(db, "billing", "down")
    alerts.evaluate(db)
    (first,) = alerts.claim(db, "one", 1, timedelta(minutes=1))
    db.execute("UPDATE pystatus.alert_messages SET claimed_until = now() - interval '1 second'")
    (second,) = alerts.claim(db, "two", 1, timedelta(minutes=1))
    assert alerts.finish(db, first, "timed out") == "pending"
    assert alerts.claim(db, "three", 1, timedelta(minutes=1)) == []  # still two's
    assert alerts.finish(db, second, None) == "sent"


def test_texts_from_receivers_and_writers_are_stored_and_sent_clean(
    db: Conn, hooked: HttpReceiver
) -> None:
    hooked.answers[:] = [500]
    hooked.reason = "\x1b]0;pwned\x07 Internal\x1b[2J Error"
    pystatus.heartbeat(db, "billing", "ok")
    # A task written while the copy trigger was off (as a restore does): the
    # alert still carries it clean.
    db.execute("SET session_replication_role = replica")
    db.execute(
        "UPDATE system_status SET status = 'down', current_task = 'charging\x1b[31m cards\r'"
    )
    db.execute("RESET session_replication_role")
    deliver_all(db)
    error = one(db, "SELECT error FROM pystatus.alert_attempts")
    assert error == "HTTP 500 ]0;pwned Internal [2J Error" == clean_text(error, 10_000)
    db.execute("UPDATE pystatus.alert_messages SET next_attempt_at = now()")
    deliver_all(db)
    (first, second) = hooked.bodies()
    assert first["current_task"] == second["current_task"] == "charging [31m cards"


def test_stored_errors_carry_no_urls() -> None:
    error = "HTTP 302 Found: redirected to https://hooks.example.com/T0K3N?key=s3cret, set it"
    assert alerts.without_secrets(error) == "HTTP 302 Found: redirected to https://... set it"


def test_two_workers_with_slow_sends_still_send_each_message_once(
    db: Conn, dsn: str, hooked: HttpReceiver
) -> None:
    hooked.hang[:] = [0.8] * 4  # each send takes most of the time a send may take
    options = {"lease": timedelta(seconds=4), "concurrency": 1, "batch": 4}
    with running_worker(dsn, name="one", **options), running_worker(dsn, name="two", **options):
        for n in range(4):
            pystatus.heartbeat(db, f"svc-{n}", "down")
        wait_for(
            lambda: (
                one(
                    db, "SELECT count(*) FILTER (WHERE state = 'sent') FROM pystatus.alert_messages"
                )
                == 4
            )
        )
    keys = [r.headers[alerts.IDEMPOTENCY_HEADER] for r in hooked.received]
    assert len(keys) == len(set(keys)) == 4


# --- Delivery (channels) -----------------------------------------------------------


def test_a_channel_answering_500_is_retried_with_backoff_until_it_takes_the_message(
    db: Conn, hooked: HttpReceiver
) -> None:
    hooked.answers[:] = [500, 503]
    pystatus.heartbeat(db, "billing", "down")
    deliver_all(db)
    due = one(db, "SELECT next_attempt_at - now() FROM pystatus.alert_messages")
    assert timedelta(seconds=4) < due <= timedelta(seconds=6)  # first backoff: 5 s
    db.execute("UPDATE pystatus.alert_messages SET next_attempt_at = now()")
    deliver_all(db)
    due = one(db, "SELECT next_attempt_at - now() FROM pystatus.alert_messages")
    assert timedelta(seconds=9) < due <= timedelta(seconds=11)  # then 10 s
    db.execute("UPDATE pystatus.alert_messages SET next_attempt_at = now()")
    deliver_all(db)
    outcomes = db.execute(
        "SELECT attempt, outcome, error FROM pystatus.alert_attempts ORDER BY attempt"
    ).fetchall()
    assert outcomes == [
        (1, "failed", "HTTP 500 Internal Server Error"),
        (2, "failed", "HTTP 503 Service Unavailable"),
        (3, "sent", None),
    ]
    keys = {r.headers[alerts.IDEMPOTENCY_HEADER] for r in hooked.received}
    assert len(hooked.received) == 3 and len(keys) == 1


def test_a_channel_that_times_out_is_a_failed_attempt(db: Conn, hooked: HttpReceiver) -> None:
    db.execute("UPDATE pystatus.alert_channels SET options = '{\"timeout\": 1}'")
    hooked.hang[:] = [3.0]
    pystatus.heartbeat(db, "billing", "down")
    deliver_all(db)
    error = one(db, "SELECT error FROM pystatus.alert_attempts")
    assert "timed out" in error
    assert one(db, "SELECT state FROM pystatus.alert_messages") == "pending"


def test_a_redirected_webhook_is_a_failed_attempt_not_a_lost_message(
    db: Conn, hooked: HttpReceiver
) -> None:
    hooked.answers[:] = [302]
    pystatus.heartbeat(db, "billing", "down")
    deliver_all(db)
    assert [r.path for r in hooked.received] == ["/hook"]  # not followed as a GET
    assert "redirected to" in one(db, "SELECT error FROM pystatus.alert_attempts")
    assert one(db, "SELECT state FROM pystatus.alert_messages") == "pending"


def test_check_turns_red_while_messages_wait_for_a_worker(db: Conn, hooked: HttpReceiver) -> None:
    def alerts_item() -> tuple[bool, str]:
        (item,) = [i for i in admin.check(db) if i.item == "alerts"]
        return item.ok, item.detail

    assert alerts_item() == (True, "every message delivered")
    pystatus.heartbeat(db, "billing", "down")
    alerts.evaluate(db)
    db.execute("UPDATE pystatus.alert_messages SET created_at = now() - interval '2 minutes'")
    ok, detail = alerts_item()
    assert not ok and "is `pystatus alerts run` running?" in detail
    deliver_all(db)
    assert alerts_item() == (True, "every message delivered")


def test_events_and_messages_expire_with_history(db: Conn, hooked: HttpReceiver) -> None:
    pystatus.heartbeat(db, "billing", "down")
    deliver_all(db)
    pystatus.heartbeat(db, "billing", "ok")
    db.execute(
        "UPDATE pystatus.status_events SET recorded_at = now() - interval '61 days'"
        " WHERE to_status = 'down'"
    )
    db.execute("UPDATE pystatus.alert_messages SET created_at = now() - interval '61 days'")
    admin.maintain(db)
    assert events(db, "billing") == [("down", "ok", "reported")]
    assert one(db, "SELECT count(*) FROM pystatus.alert_messages") == 0


def test_a_message_past_the_retry_period_is_failed(db: Conn, hooked: HttpReceiver) -> None:
    hooked.answers[:] = [500]
    pystatus.heartbeat(db, "billing", "down")
    alerts.evaluate(db)
    db.execute("UPDATE pystatus.alert_messages SET created_at = now() - interval '25 hours'")
    for message in alerts.claim(db, "test", 10, timedelta(minutes=1)):
        assert alerts.finish(db, message, alerts.attempt(message, 5)) == "failed"


def test_email_through_a_real_smtp_server(db: Conn) -> None:
    with smtp_receiver() as smtp:
        alerts.add_channel(
            db,
            "mail",
            "email",
            "ops@example.com, oncall@example.com",
            {"host": smtp.host, "port": smtp.port, "sender": "pystatus@example.com"},
        )
        alerts.add_rule(db, "billing", "mail")
        pystatus.heartbeat(db, "billing", "down")
        deliver_all(db)
        (email,) = smtp.messages
        key = one(db, "SELECT idempotency_key FROM pystatus.alert_messages")
        assert email["Message-ID"] == f"<{key}@pystatus>"
        assert email["Subject"].startswith("[pystatus] billing is down since")
        assert smtp.envelopes == [
            ("pystatus@example.com", ["ops@example.com", "oncall@example.com"])
        ]


def test_an_smtp_server_dripping_its_greeting_is_cut_at_the_deadline(db: Conn) -> None:
    with dripping_receiver(greeting=b"220 mail.example.com ESMTP " + b"." * 100 + b"\r\n") as slow:
        host, port = slow.url.split("/")[2].split(":")
        alerts.add_channel(
            db, "mail", "email", "ops@example.com", {"host": host, "port": int(port), "timeout": 2}
        )
        alerts.add_rule(db, "billing", "mail")
        pystatus.heartbeat(db, "billing", "down")
        deliver_all(db)
    assert one(db, "SELECT error FROM pystatus.alert_attempts") == (
        "timed out: no whole answer within 2 s"
    )


def test_email_with_smtp_auth_and_a_wrong_password(db: Conn) -> None:
    with smtp_receiver(login=("pystatus", "right")) as smtp:
        options = {
            "host": smtp.host,
            "port": smtp.port,
            "username": "pystatus",
            "password": "wrong",
        }
        alerts.add_channel(db, "mail", "email", "ops@example.com", options)
        alerts.add_rule(db, "billing", "mail")
        pystatus.heartbeat(db, "billing", "down")
        deliver_all(db)
        assert smtp.messages == []
        assert "SMTPAuthenticationError" in one(db, "SELECT error FROM pystatus.alert_attempts")
        alerts.add_channel(db, "mail", "email", "ops@example.com", options | {"password": "right"})
        db.execute("UPDATE pystatus.alert_messages SET next_attempt_at = now()")
        deliver_all(db)
        assert len(smtp.messages) == 1


def test_apprise_json_url_to_a_real_receiver(db: Conn, receiver: HttpReceiver) -> None:
    alerts.add_channel(db, "apprise", "apprise", receiver.url.replace("http://", "json://"))
    alerts.add_rule(db, "billing", "apprise")
    pystatus.heartbeat(db, "billing", "down")
    (message,) = deliver_all(db)
    (request,) = receiver.received
    assert request.body["title"].startswith("[pystatus] billing is down")
    assert str(message.idempotency_key) in request.body["message"]
    assert request.body["type"] == "failure"


def test_a_test_message_through_the_cli(db: Conn, dsn: str, receiver: HttpReceiver) -> None:
    from pystatus.cli import main

    alerts.add_channel(db, "ops", "webhook", receiver.url)
    assert main(["alerts", "test", "ops", "--dsn", dsn]) == 0
    assert [b["kind"] for b in receiver.bodies()] == ["test"]
    receiver.answers[:] = [500]
    assert main(["alerts", "test", "ops", "--dsn", dsn]) == 1
    assert [e.state for e in alerts.message_log(db, down_since(db))] == ["failed", "sent"]


# --- Workers ----------------------------------------------------------------------


def test_the_worker_runs_as_pystatus_alerter_with_nothing_else(
    db: Conn, dsn: str, hooked: HttpReceiver
) -> None:
    db.execute("CREATE ROLE alert_worker LOGIN IN ROLE pystatus_alerter")
    try:
        pystatus.heartbeat(db, "billing", "ok")
        pystatus.set_expectations(db, "billing", timedelta(seconds=1), timedelta(0))
        with running_worker(dsn + " user=alert_worker"):
            wait_for(lambda: len(hooked.bodies("down")) == 1)
            pystatus.heartbeat(db, "billing", "ok")
            wait_for(lambda: len(hooked.bodies("recovered")) == 1)
        with psycopg.connect(dsn + " user=alert_worker", autocommit=True) as worker:
            for query in (
                "SELECT * FROM pystatus.alert_channels",
                "UPDATE system_status SET status = 'stale'",
                "SELECT pystatus.heartbeat('billing')",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    worker.execute(query)
    finally:
        db.execute("DROP ROLE alert_worker")


def test_two_workers_send_each_message_once(db: Conn, dsn: str, hooked: HttpReceiver) -> None:
    db.execute("UPDATE pystatus.alert_channels SET options = options || '{\"group_threshold\": 0}'")
    with running_worker(dsn, name="one", batch=3), running_worker(dsn, name="two", batch=3):
        for n in range(30):
            pystatus.heartbeat(db, f"svc-{n}", "down")
        wait_for(lambda: len(hooked.received) >= 30)
        pystatus.heartbeat_many(db, [(f"svc-{n}", "ok") for n in range(30)])
        wait_for(lambda: len(hooked.received) >= 60)
    keys = [r.headers[alerts.IDEMPOTENCY_HEADER] for r in hooked.received]
    assert len(keys) == len(set(keys)) == 60
    workers = {w for (w,) in db.execute("SELECT DISTINCT worker FROM pystatus.alert_attempts")}
    assert workers <= {"one", "two"}


# --- The command line ---------------------------------------------------------------


def test_status_exit_code_follows_the_nagios_convention(
    db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pystatus.cli import main

    pystatus.heartbeat(db, "api", "ok")
    assert main(["status", "--exit-code", "--dsn", dsn]) == 0
    assert capsys.readouterr().out == "OK - 1 services\n"
    pystatus.heartbeat(db, "search", "degraded")
    assert main(["status", "--exit-code", "--dsn", dsn]) == 1
    assert capsys.readouterr().out == "WARNING - 2 services; 1 degraded: search\n"
    pystatus.heartbeat(db, "billing", "down")
    assert main(["status", "--exit-code", "--dsn", dsn]) == 2
    assert capsys.readouterr().out == (
        "CRITICAL - 3 services; 1 down or stale: billing; 1 degraded: search\n"
    )
    alerts.add_maintenance(
        db, "billing", one(db, "SELECT now()"), one(db, "SELECT now() + interval '1 hour'")
    )
    assert main(["status", "--exit-code", "--dsn", dsn]) == 1  # billing is in maintenance
    assert main(["status", "--exit-code", "--format", "json", "--dsn", dsn]) == 1


def test_channels_rules_windows_and_snoozes_from_the_cli(
    db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pystatus.cli import main

    def run(*args: str) -> int:
        return main([*args, "--dsn", dsn])

    assert (
        run(
            "alerts",
            "add-channel",
            "ops",
            "webhook",
            "https://hooks.example.com/x",
            "--option",
            "secret=s",
            "--option",
            "timeout=5",
        )
        == 0
    )
    assert alerts.channels(db)[0].options == {"secret": "***", "timeout": 5}
    assert (
        run("alerts", "add-rule", "billing-*", "ops", "--down-for", "2min", "--remind-every", "1h")
        == 0
    )
    (rule,) = alerts.rules(db)
    assert (rule.down_for, rule.remind_every) == (timedelta(minutes=2), timedelta(hours=1))
    assert run("alerts", "add-rule", "*", "nowhere") == 1
    assert "unknown channel 'nowhere'" in capsys.readouterr().err
    assert run("alerts", "rules", "--format", "json") == 0
    assert '"service_pattern": "billing-*"' in capsys.readouterr().out

    assert (
        run(
            "maintenance",
            "add",
            "indexer",
            "--from",
            "2030-01-06 02:00",
            "--until",
            "2030-01-06 04:00",
            "--every",
            "1 week",
            "--time-zone",
            "Europe/Berlin",
        )
        == 0
    )
    (window,) = alerts.windows(
        db, one(db, "SELECT '2030-01-06'::timestamptz"), one(db, "SELECT '2030-01-07'::timestamptz")
    )
    assert window.starts.isoformat() == "2030-01-06T01:00:00+00:00"  # 02:00 in Berlin
    assert run("snooze", "billing", "--for", "2h") == 0
    assert run("maintenance", "remove", str(window.window_id)) == 0
    assert run("maintenance", "remove", str(window.window_id)) == 1
    assert run("alerts", "remove-rule", str(rule.id)) == 0
    assert run("alerts", "remove-channel", "ops") == 0
    assert alerts.channels(db) == [] and alerts.rules(db) == []
