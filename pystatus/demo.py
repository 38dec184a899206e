"""`pystatus demo`: a private PostgreSQL with pg_partman and pg_cron, migrated,
with simulated services heartbeating through the real client, and the current
status printed every 5 seconds, as a dashboard polling system_status would."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from pystatus import migrations
from pystatus.client import Heartbeat
from pystatus.cluster import Cluster
from pystatus.output import write_rows
from pystatus.queries import QUERIES

SERVICES = {
    "librarian": ["ok"],
    "scheduler": ["ok", "ok", "ok", "degraded"],
    "mailer": ["ok", "down", "ok"],
    "indexer": ["starting", "ok", "ok", "maintenance"],
}
TASKS = ["idle", "syncing", "reindexing", "sending batch", None]


@contextmanager
def _database(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    with Cluster.temporary() as cluster:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE pystatus_demo")
        print(f"PostgreSQL running: {cluster.url('pystatus_demo')}")
        yield cluster.dsn("pystatus_demo")


def _simulate(beat: Heartbeat, stop: threading.Event, rng: random.Random) -> None:
    while not stop.wait(rng.uniform(2, 6)):
        beat.status = rng.choice(SERVICES[beat.service])
        beat.task = rng.choice(TASKS)


def run(dsn: str | None = None, duration: float | None = None, refresh: float = 5) -> None:
    """Runs until Ctrl-C (or ``duration`` seconds), then stops everything it started."""
    with _database(dsn) as url:
        applied = migrations.apply(url)
        print("Migrated: " + (", ".join(applied) or "already up to date"))
        rng = random.Random(7)
        stop = threading.Event()
        beats = [Heartbeat(url, name, interval=2) for name in SERVICES]
        workers = [
            threading.Thread(target=_simulate, args=(b, stop, rng), daemon=True) for b in beats
        ]
        started = time.monotonic()
        try:
            for beat, worker in zip(beats, workers):
                beat.start()
                worker.start()
            with psycopg.connect(url, autocommit=True) as conn:
                while duration is None or time.monotonic() - started < duration:
                    if time.monotonic() - started > 20:
                        beats[
                            -1
                        ].stop()  # one service stops mid-demo: its last status is "stopping"
                    cursor: Any = conn.execute(QUERIES["live_status"])
                    rows = [row[:6] for row in cursor.fetchall()]
                    columns = [c.name for c in cursor.description][:6]
                    print(f"\n{time.strftime('%H:%M:%S')}  pystatus.live_status (Ctrl-C to stop)")
                    write_rows(columns, rows, "table")
                    time.sleep(refresh)
        except KeyboardInterrupt:
            print("\nStopping.")
        finally:
            stop.set()
            for beat in beats:
                beat.stop()
            print("Demo stopped.")
