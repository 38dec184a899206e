"""Alert storms: thousands of services silent at once (a network partition) all
alerted and recovered, summed up per channel or one message each; claims that
read what they take, in order per service, a few of a channel's messages at a
time; and a receiver that answers a byte a second, cut at the send's deadline
while another channel's alerts go on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import alerts
from tests.helpers import one, wait_for
from tests.receivers import HttpReceiver, dripping_receiver, http_receiver
from tests.test_alerts import running_worker

Conn = psycopg.Connection[Any]

STORM = 2000


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        yield running


def fall_silent(db: Conn, count: int, prefix: str = "svc-") -> list[str]:
    """``count`` services whose last heartbeat is long past their deadline, all at once."""
    db.execute(
        "INSERT INTO system_status (service_name, status, last_heartbeat)"
        " SELECT %s || i, 'ok', now() - interval '10 minutes' FROM generate_series(1, %s) AS i",
        (prefix, count),
    )
    return [f"{prefix}{i}" for i in range(1, count + 1)]


def sent(db: Conn) -> int:
    return int(one(db, "SELECT count(*) FROM pystatus.alert_messages WHERE state = 'sent'"))


# --- Storms -------------------------------------------------------------------


def test_a_storm_is_summed_up_per_channel_and_each_alert_is_kept(
    db: Conn, dsn: str, receiver: HttpReceiver
) -> None:
    alerts.add_channel(db, "ops", "webhook", receiver.url, {"secret": "s3cret"})
    alerts.add_rule(db, "*", "ops")
    services = fall_silent(db, STORM)
    with running_worker(dsn):
        wait_for(lambda: len(receiver.services("down")) == STORM, seconds=60)
        assert one(db, "SELECT count(*) FROM pystatus.alert_state") == STORM
        pystatus.heartbeat_many(db, [(name, "ok") for name in services])
        wait_for(lambda: len(receiver.services("recovered")) == STORM, seconds=60)
    assert sorted(receiver.services("down")) == sorted(services)
    assert sorted(receiver.services("recovered")) == sorted(services)
    assert one(db, "SELECT count(*) FROM pystatus.alert_state") == 0
    # Two summaries each way: a summary lists at most 1,000 services.
    downs = receiver.bodies("down")
    assert [len(b["services"]) for b in downs] == [1000, 1000]
    assert all(b["service"] is None for b in downs)
    assert downs[0]["text"].startswith("1000 services are down or stale: ")
    (entry, *_) = downs[0]["services"]
    assert (entry["status"], entry["rule"]["service_pattern"]) == ("stale", "*")
    for request in receiver.received:
        assert request.headers[alerts.SIGNATURE_HEADER] == alerts.signature("s3cret", request.raw)
    keys = {r.headers[alerts.IDEMPOTENCY_HEADER] for r in receiver.received}
    assert len(keys) == len(receiver.received) == 4
    log = alerts.message_log(db, one(db, "SELECT now() - interval '1 hour'"))
    assert {(e.service_name, e.state) for e in log} == {(None, "sent")}


def test_a_storm_one_message_each_is_delivered_once_by_two_workers(
    db: Conn, dsn: str, receiver: HttpReceiver
) -> None:
    alerts.add_channel(db, "ops", "webhook", receiver.url, {"group_threshold": 0})
    alerts.add_rule(db, "*", "ops")
    services = fall_silent(db, STORM)
    with running_worker(dsn, name="one"), running_worker(dsn, name="two"):
        wait_for(lambda: sent(db) == STORM, seconds=60)
    assert sorted(b["service"] for b in receiver.bodies("down")) == sorted(services)
    keys = {r.headers[alerts.IDEMPOTENCY_HEADER] for r in receiver.received}
    assert len(keys) == len(receiver.received) == STORM
    assert one(db, "SELECT count(*) FROM pystatus.alert_attempts") == STORM


def test_below_the_threshold_each_service_has_its_own_message(
    db: Conn, receiver: HttpReceiver
) -> None:
    alerts.add_channel(db, "ops", "webhook", receiver.url, {"group_threshold": 4})
    alerts.add_rule(db, "*", "ops")
    fall_silent(db, 3, "a-")
    alerts.sweep(db)
    alerts.evaluate(db)
    fall_silent(db, 4, "b-")
    alerts.sweep(db)
    alerts.evaluate(db)
    rows = db.execute(
        "SELECT service_name, services FROM pystatus.alert_messages ORDER BY id"
    ).fetchall()
    assert rows == [
        ("a-1", None),
        ("a-2", None),
        ("a-3", None),
        (None, ["b-1", "b-2", "b-3", "b-4"]),
    ]


# --- Claims -------------------------------------------------------------------


def claim(db: Conn, count: int = 10) -> list[alerts.Message]:
    return alerts.claim(db, "test", count, timedelta(minutes=1))


def about(messages: list[alerts.Message]) -> list[tuple[str, Any]]:
    return [(m.body["kind"], m.body["service"]) for m in messages]


def test_a_services_messages_go_in_order_behind_one_being_retried(
    db: Conn, receiver: HttpReceiver
) -> None:
    alerts.add_channel(db, "ops", "webhook", receiver.url)
    alerts.add_rule(db, "*", "ops")
    pystatus.heartbeat(db, "billing", "down")
    alerts.evaluate(db)
    (down,) = claim(db)
    assert alerts.finish(db, down, "HTTP 503 Service Unavailable") == "pending"  # backs off
    pystatus.heartbeat(db, "billing", "ok")
    pystatus.heartbeat(db, "search", "down")
    alerts.evaluate(db)
    assert about(claim(db)) == [("down", "search")]  # billing's recovery waits for its down
    db.execute(
        "UPDATE pystatus.alert_messages SET next_attempt_at = now() WHERE id = %s",
        (down.message_id,),
    )
    (again,) = claim(db)
    assert (again.message_id, again.attempt) == (down.message_id, 2)
    assert claim(db) == []  # still out
    alerts.finish(db, again, None)
    assert about(claim(db)) == [("recovered", "billing")]


def test_a_claim_takes_a_few_of_each_channels_messages_at_a_time(
    db: Conn, receiver: HttpReceiver
) -> None:
    for channel in ("ops", "chat"):
        alerts.add_channel(db, channel, "webhook", receiver.url, {"group_threshold": 0})
    alerts.add_rule(db, "ops-*", "ops")
    alerts.add_rule(db, "chat-*", "chat")
    fall_silent(db, 5, "ops-")
    fall_silent(db, 1, "chat-")
    alerts.sweep(db)
    alerts.evaluate(db)
    first = claim(db)
    per_channel = one(db, "SELECT pystatus._alert_sends_per_channel()")
    assert sorted(m.channel for m in first) == ["chat"] + ["ops"] * per_channel
    assert claim(db) == []  # ops's sends are all out; chat has nothing more
    alerts.finish(db, next(m for m in first if m.channel == "ops"), None)
    assert [m.channel for m in claim(db)] == ["ops"]
    # A worker that died holds its messages until their lease: then they are due again.
    db.execute(
        "UPDATE pystatus.alert_messages SET claimed_until = now() - interval '1 second'"
        " WHERE state = 'pending'"
    )
    assert sorted(m.channel for m in claim(db)) == ["chat"] + ["ops"] * per_channel


def test_a_services_message_waits_for_the_summary_that_names_it(
    db: Conn, receiver: HttpReceiver
) -> None:
    alerts.add_channel(db, "ops", "webhook", receiver.url, {"group_threshold": 3})
    alerts.add_rule(db, "*", "ops")
    fall_silent(db, 3)
    alerts.sweep(db)
    alerts.evaluate(db)
    (summary,) = claim(db)
    assert summary.body["services"][0]["service"] == "svc-1"
    pystatus.heartbeat(db, "svc-1", "ok")
    pystatus.heartbeat(db, "other", "down")
    alerts.evaluate(db)
    assert about(claim(db)) == [("down", "other")]  # svc-1's recovery waits
    alerts.finish(db, summary, None)
    assert about(claim(db)) == [("recovered", "svc-1")]


# --- A slow receiver ------------------------------------------------------------


def test_a_receiver_dripping_bytes_is_cut_at_the_deadline_and_holds_only_its_channel(
    db: Conn, dsn: str, receiver: HttpReceiver
) -> None:
    lease = timedelta(seconds=20)  # a send may take half of it: 10 s
    with dripping_receiver() as slow:
        alerts.add_channel(db, "slow", "webhook", slow.url, {"timeout": 60})
        alerts.add_channel(db, "fast", "webhook", receiver.url)
        alerts.add_rule(db, "slow-*", "slow")
        alerts.add_rule(db, "fast-*", "fast")
        with (
            running_worker(dsn, name="one", lease=lease),
            running_worker(dsn, name="two", lease=lease),
        ):
            pystatus.heartbeat(db, "slow-1", "down")
            wait_for(lambda: len(slow.connections) == 1)
            for n in range(3):
                pystatus.heartbeat(db, f"fast-{n}", "down")
            wait_for(lambda: len(receiver.bodies("down")) == 3)
            wait_for(
                lambda: (
                    one(
                        db,
                        "SELECT count(outcome) FROM pystatus.alert_attempts a"
                        " JOIN pystatus.alert_messages m ON m.id = a.message_id"
                        " WHERE m.channel = 'slow'",
                    )
                    == 1
                ),
                seconds=40,
            )
            connections_during_the_first_attempt = len(slow.connections)
        started, finished, outcome, error, held = (
            db.execute(
                "SELECT a.started_at, a.finished_at, a.outcome, a.error, a.started_at + %s"
                " FROM pystatus.alert_attempts AS a JOIN pystatus.alert_messages AS m"
                " ON m.id = a.message_id WHERE m.channel = 'slow' AND a.attempt = 1",
                (lease,),
            ).fetchone()
            or (None,) * 5
        )
    assert (outcome, error) == ("failed", "timed out: no whole answer within 10 s")
    assert finished < held  # cut before its lease ran out: no other worker took it meanwhile
    assert connections_during_the_first_attempt == 1
    fast_sent = db.execute(
        "SELECT max(sent_at) FROM pystatus.alert_messages WHERE channel = 'fast'"
    ).fetchone()
    assert fast_sent is not None and started < fast_sent[0] < finished
