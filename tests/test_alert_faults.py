"""The alert worker under faults: killed with -9 mid-delivery (the message is
sent again with the same idempotency key, nothing is lost), a database restart
(it reconnects and delivers), and SIGTERM (it stops cleanly, exit 0, within
seconds even while a send is stuck)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import alerts, migrations
from pystatus.cluster import Cluster
from tests.helpers import one, wait_for
from tests.receivers import HttpReceiver, dripping_receiver, http_receiver
from tests.test_alerts import running_worker

Conn = psycopg.Connection[Any]


@contextmanager
def worker_process(dsn: str, *options: str) -> Iterator[subprocess.Popen[str]]:
    """``pystatus alerts run`` as a process of its own; killed and reaped on leaving."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pystatus.cli", "alerts", "run", "--dsn", dsn, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.kill()
        process.communicate(timeout=15)


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        yield running


def test_a_worker_killed_mid_delivery_leaves_the_message_to_be_sent_again(
    db: Conn, dsn: str, receiver: HttpReceiver
) -> None:
    alerts.add_channel(db, "ops", "webhook", receiver.url, {"timeout": 30})
    alerts.add_rule(db, "*", "ops")
    receiver.hang[:] = [30.0]  # the first delivery never gets its answer
    with worker_process(dsn, "--name", "first", "--lease", "4", "--poll-interval", "0.2") as first:
        pystatus.heartbeat(db, "billing", "down")
        wait_for(lambda: len(receiver.received) == 1)
        first.kill()  # -9, mid-request
        first.wait(10)
    with running_worker(dsn, name="second", lease=timedelta(seconds=4)):
        wait_for(lambda: one(db, "SELECT state FROM pystatus.alert_messages") == "sent")
    sent_once, sent_again = receiver.received
    assert sent_once.raw == sent_again.raw  # the same message, the same key
    assert (
        sent_once.headers[alerts.IDEMPOTENCY_HEADER]
        == sent_again.headers[alerts.IDEMPOTENCY_HEADER]
    )
    attempts = db.execute(
        "SELECT attempt, worker, outcome FROM pystatus.alert_attempts ORDER BY attempt"
    ).fetchall()
    assert attempts == [(1, "first", None), (2, "second", "sent")]


def test_sigterm_stops_the_worker_cleanly(dsn: str) -> None:
    with worker_process(dsn, "--poll-interval", "0.2") as worker:
        wait_for(lambda: worker.poll() is None and _listening(dsn))
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=15)
        assert worker.returncode == 0, output
        assert "stopped: 0 sent" in output


def test_sigterm_stops_the_worker_within_seconds_while_a_send_is_stuck(db: Conn, dsn: str) -> None:
    with dripping_receiver() as slow:
        alerts.add_channel(db, "ops", "webhook", slow.url, {"timeout": 60})
        alerts.add_rule(db, "*", "ops")
        with worker_process(dsn, "--poll-interval", "0.2") as worker:
            pystatus.heartbeat(db, "billing", "down")
            wait_for(lambda: len(slow.connections) == 1)
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=10)  # the send had a minute left
            assert worker.returncode == 0, output
            assert "stopped: 0 sent, 1 failed attempts" in output
    assert db.execute("SELECT outcome, error FROM pystatus.alert_attempts").fetchall() == [
        ("failed", "cut short: the worker stopped")
    ]
    assert one(db, "SELECT state FROM pystatus.alert_messages") == "pending"  # retried later


def _listening(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return bool(
            one(
                conn,
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name LIKE 'pystatus alerts%'",
            )
        )


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster of its own, so restarting it disturbs no other test."""
    with Cluster.temporary(cron_database=None) as running:
        with psycopg.connect(running.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE app")
        migrations.apply(running.dsn("app"))
        yield running


def test_the_worker_survives_a_database_restart_and_delivers_after_it(
    own_cluster: Cluster, receiver: HttpReceiver
) -> None:
    dsn = own_cluster.dsn("app")
    with psycopg.connect(dsn, autocommit=True) as db:
        alerts.add_channel(db, "ops", "webhook", receiver.url)
        alerts.add_rule(db, "*", "ops")
    with running_worker(dsn) as worker:
        with psycopg.connect(dsn, autocommit=True) as db:
            pystatus.heartbeat(db, "billing", "down")
        wait_for(lambda: len(receiver.received) == 1)
        own_cluster.stop()
        own_cluster.start()
        with psycopg.connect(dsn, autocommit=True) as db:
            pystatus.heartbeat(db, "billing", "ok")
        wait_for(lambda: len(receiver.received) == 2, seconds=60)
        assert not worker.stopping
    assert [b["kind"] for b in receiver.bodies()] == ["down", "recovered"]
