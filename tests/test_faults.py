"""Faults against a real server: a crashed postmaster loses no acknowledged
heartbeat, replicas of one service heartbeat side by side, and partition
maintenance runs while heartbeats arrive, all without errors."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import migrations
from pystatus.client import CONNECT_OPTIONS
from pystatus.cluster import Cluster
from tests.helpers import one

Conn = psycopg.Connection[Any]


@pytest.fixture
def crash_cluster() -> Iterator[Cluster]:
    with Cluster.temporary(cron_database=None) as running:
        with psycopg.connect(running.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE app")
        migrations.apply(running.dsn("app"))
        yield running


def postgres_pids(datadir: Path) -> list[int]:
    """The postmaster and its children (read from /proc, as we may not own them)."""
    postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(postmaster):
            children.append(int(status.parent.name))
    return [postmaster, *children]


def test_kill_9_during_16_client_ingest_loses_no_acknowledged_heartbeat(
    crash_cluster: Cluster,
) -> None:
    dsn = crash_cluster.dsn("app")
    acknowledged: list[tuple[str, datetime]] = []
    lock = threading.Lock()
    go = threading.Event()

    def client(n: int) -> None:
        service = f"client-{n}"
        with psycopg.connect(dsn, **CONNECT_OPTIONS) as conn:
            go.wait()
            try:
                while True:
                    at = pystatus.heartbeat(conn, service)  # returns once committed
                    with lock:
                        acknowledged.append((service, at))
            except pystatus.PystatusError:
                return  # the server is gone

    clients = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for thread in clients:
        thread.start()
    go.set()
    time.sleep(2)
    for pid in postgres_pids(crash_cluster.datadir):  # the postmaster first, then its children
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for thread in clients:
        thread.join(60)
    assert acknowledged, "no heartbeat was acknowledged before the crash"
    deadline = time.monotonic() + 60
    while crash_cluster.is_running():  # pg_ctl sees the killed postmaster gone
        assert time.monotonic() < deadline
        time.sleep(0.2)
    crash_cluster.start()  # crash recovery

    with psycopg.connect(dsn) as conn:
        stored = set(
            conn.execute("SELECT service_name, heartbeat_timestamp FROM system_status_history")
        )
        missing = [beat for beat in acknowledged if beat not in stored]
        assert missing == []
        orphans = one(
            conn,
            "SELECT count(*) FROM system_status AS s WHERE NOT EXISTS (SELECT"
            " FROM system_status_history AS h WHERE h.service_name = s.service_name"
            " AND h.heartbeat_timestamp = s.last_heartbeat)",
        )
        assert orphans == 0


def test_two_replicas_of_one_service_heartbeat_side_by_side(dsn: str, db: Conn) -> None:
    errors: list[BaseException] = []

    def replica() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for _ in range(200):
                    pystatus.heartbeat(conn, "api", "ok", "serving")
        except BaseException as error:  # collected, not raised in the thread
            errors.append(error)

    replicas = [threading.Thread(target=replica) for _ in range(2)]
    for thread in replicas:
        thread.start()
    for thread in replicas:
        thread.join(120)
    assert errors == []
    assert one(db, "SELECT count(*) FROM system_status_history WHERE service_name = 'api'") == 400
    # The current row holds the newest of the 400.
    assert one(db, "SELECT last_heartbeat FROM system_status") == one(
        db, "SELECT max(heartbeat_timestamp) FROM system_status_history"
    )


def test_partition_maintenance_while_heartbeats_arrive(dsn: str, db: Conn) -> None:
    stop = threading.Event()
    done: list[int] = []
    errors: list[BaseException] = []

    def steady() -> None:
        sent = 0
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                while not stop.is_set():
                    pystatus.heartbeat(conn, f"svc-{sent % 20}")
                    sent += 1
                    time.sleep(0.002)
        except BaseException as error:
            errors.append(error)
        done.append(sent)

    writer = threading.Thread(target=steady)
    writer.start()
    try:
        for _ in range(5):  # drop the premade partitions, have maintenance make them again
            future = db.execute(
                "SELECT partition::text FROM pystatus.history_partitions WHERE starts > now()"
            ).fetchall()
            for (name,) in future:
                db.execute(f"DROP TABLE {name}")
            result = one(db, "SELECT pystatus.maintain()")
            assert len(result["created"]) >= len(future)
    finally:
        stop.set()
        writer.join(60)
    assert errors == []
    assert done[0] > 0
    assert one(db, "SELECT count(*) FROM system_status_history") == done[0]
