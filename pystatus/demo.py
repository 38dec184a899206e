"""`pystatus demo`: a private PostgreSQL with pg_partman and pg_cron, migrated,
30 days of history for eight services, live services heartbeating through the
real client (one of them crashes a minute in and goes stale), a cron-style job
that reports over HTTP to the ping endpoint, as a script with curl would, the
alert worker with a local webhook receiver that prints each alert, and the
dashboard on http://127.0.0.1:8000 (with Prometheus metrics at /metrics).
Ctrl-C stops everything it started."""

from __future__ import annotations

import importlib.resources
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from datetime import timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from pystatus import admin, alerts, answers, migrations
from pystatus.client import Heartbeat
from pystatus.cluster import Cluster
from pystatus.errors import DatabaseUnavailable, PystatusError

SERVICES = ["librarian", "scheduler", "mailer", "indexer", "api", "billing", "search", "reports"]
LIVE = [s for s in SERVICES if s != "mailer"]  # mailer died yesterday and stays dead
CRASHES = "billing"  # stops heartbeating (no final status) a minute into the demo
CRASH_AFTER = 60.0
PINGED = "nightly-backup"  # a job that reports over HTTP, as a cron script with curl would
PING_EVERY = 30.0  # seconds between its runs
PING_RUN = 3.0  # seconds each run lasts


@contextmanager
def _database(dsn: str | None) -> Iterator[tuple[str, Cluster | None]]:
    if dsn:
        yield dsn, None
        return
    with Cluster.temporary() as cluster:
        with psycopg.connect(cluster.dsn(), autocommit=True) as postgres:
            postgres.execute("CREATE DATABASE pystatus_demo")
        print(f"PostgreSQL running: {cluster.url('pystatus_demo')}")
        print(f"  to use the CLI against it: export DATABASE_URL={cluster.url('pystatus_demo')}")
        yield cluster.dsn("pystatus_demo"), cluster


def prepare(dsn: str, cluster: Cluster | None) -> None:
    """Migrates, loads the demo history into an empty database, schedules the jobs."""
    print(f"Migrated: {migrations.apply(dsn)}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not answers.live_status(conn):
            for service_name in SERVICES:
                admin.set_expectations(
                    conn, service_name, timedelta(minutes=1), timedelta(seconds=15)
                )
            history = importlib.resources.files("pystatus") / "sql" / "demo" / "history.sql"
            conn.execute(history.read_text())
            print("Loaded 30 days of history for " + ", ".join(SERVICES))
            _plan_quiet_times(conn)
        if cluster is not None:  # pg_cron lives in the cluster's "postgres" database
            with psycopg.connect(cluster.dsn(), autocommit=True) as cron_conn:
                cron_conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
                jobs = admin.schedule(conn, cron_conn)
            print("pg_cron runs: " + ", ".join(job.command for job in jobs))


def _plan_quiet_times(conn: psycopg.Connection[Any]) -> None:
    """One of each kind of quiet time: a recurring maintenance window (search is
    silent in it every night: maintenance, not down time) and a snooze (scheduler
    flaps; its alerts are muted for a while). indexer shows the third way: it
    reports status maintenance itself."""
    midnight = (
        answers.server_now(conn)
        .astimezone(timezone.utc)
        .replace(hour=0, minute=0, second=0, microsecond=0)
    )
    first = midnight - timedelta(days=31) + timedelta(hours=1)
    alerts.add_maintenance(
        conn,
        "search",
        first,
        first + timedelta(minutes=45),  # past the silence, whatever the seconds
        every=timedelta(days=1),
        reason="nightly index rebuild",
    )
    alerts.snooze(conn, "scheduler", timedelta(hours=2), reason="flapping; being looked at")
    print(
        "Maintenance: search every night 01:00-01:45 UTC (a window), indexer on Sundays"
        " 02:00-04:00 (it says so); scheduler's alerts snoozed for 2 h"
    )


def _logins(dsn: str) -> tuple[str, str, str, str]:
    """In its own cluster, the demo's services heartbeat as a pystatus_writer login,
    its dashboard reads as a pystatus_reader login, its alert worker runs as a
    pystatus_alerter login and its ping endpoint as a second writer, as in production."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE demo_service LOGIN IN ROLE pystatus_writer")
        conn.execute("CREATE ROLE demo_dashboard LOGIN IN ROLE pystatus_reader")
        conn.execute("CREATE ROLE demo_alerter LOGIN IN ROLE pystatus_alerter")
        conn.execute("CREATE ROLE demo_ingest LOGIN IN ROLE pystatus_writer")
    print("Services heartbeat as demo_service (pystatus_writer),")
    print("the dashboard reads as demo_dashboard (pystatus_reader),")
    print("alerts are sent by demo_alerter (pystatus_alerter),")
    print("HTTP pings are recorded as demo_ingest (pystatus_writer)")
    return (
        make_conninfo(dsn, user="demo_service"),
        make_conninfo(dsn, user="demo_dashboard"),
        make_conninfo(dsn, user="demo_alerter"),
        make_conninfo(dsn, user="demo_ingest"),
    )


# Alerts and pings are printed from their threads while the main thread prints
# too: each line whole (print writes the text and its newline apart, and two
# threads' lines could run together, "Dashboard:" in the middle of an alert's).
_PRINTING = threading.Lock()


def _say(line: str) -> None:
    with _PRINTING:
        print(line, flush=True)


class _PrintAlerts(BaseHTTPRequestHandler):
    """The demo's webhook receiver: prints what the alert worker sends."""

    def do_POST(self) -> None:
        body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _say(f"ALERT via webhook: {body.get('text')}  (key {body.get('idempotency_key')})")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _alerting(dsn: str, worker_dsn: str) -> Iterator[None]:
    """A webhook receiver on 127.0.0.1 that prints, a channel to it, a rule for
    every service, and the alert worker."""
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _PrintAlerts)
    url = f"http://127.0.0.1:{receiver.server_port}/alerts"
    with psycopg.connect(dsn, autocommit=True) as conn:
        alerts.add_channel(conn, "demo-webhook", "webhook", url, {"secret": "demo"})
        alerts.add_rule(conn, "*", "demo-webhook")
    worker = alerts.Worker(worker_dsn, name="demo")
    threads = [
        threading.Thread(target=receiver.serve_forever, daemon=True),
        threading.Thread(target=worker.run, daemon=True),
    ]
    for thread in threads:
        thread.start()
    print(f"Alerts: every service -> webhook {url} (printed here)")
    try:
        yield
    finally:
        worker.stop()
        receiver.shutdown()
        for thread in threads:
            thread.join(10)
        receiver.server_close()


@contextmanager
def _pinging(dsn: str, ingest_dsn: str) -> Iterator[None]:
    """The ping endpoint on a free port, a token for the job, and the job: every
    PING_EVERY seconds a run that pings /start, works, and pings its exit code."""
    import uvicorn

    from pystatus import ingest

    with psycopg.connect(dsn, autocommit=True) as conn:
        token = admin.add_ping_token(conn, PINGED, note="the demo's job")
        admin.set_expectations(conn, PINGED, timedelta(seconds=PING_EVERY), timedelta(seconds=15))
    # Bound here and handed to the server: a port only looked up (free_port()) could
    # be taken meanwhile, by the dashboard that starts next among others.
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = int(listening.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            ingest.create_app(ingest_dsn),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
        )
    )
    url = f"http://127.0.0.1:{port}/ping/{token}"
    stop = threading.Event()

    def ping(path: str = "") -> None:
        try:
            urllib.request.urlopen(url + path, timeout=10).close()
        except (urllib.error.URLError, OSError) as exc:
            _say(f"{PINGED}: ping not recorded ({exc})")

    def job() -> None:
        while not server.started and not stop.wait(0.1):
            pass
        while not stop.is_set():
            ping("/start")
            if stop.wait(PING_RUN):
                break
            ping("/0")  # the exit code of a run that succeeded
            stop.wait(PING_EVERY - PING_RUN)

    threads = [
        threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True),
        threading.Thread(target=job),
    ]
    for thread in threads:
        thread.start()
    print(f"HTTP pings: {PINGED} runs every {PING_EVERY:.0f} s and reports to {url}")
    print(f"  try: curl {url}/fail")
    try:
        yield
    finally:
        stop.set()
        server.should_exit = True
        for thread in threads:
            thread.join(10)
        listening.close()


def _refresh_rollups(dsn: str) -> None:
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            admin.refresh_rollups(conn)
    except (psycopg.OperationalError, DatabaseUnavailable):
        pass  # the demo is stopping; pg_cron would have done it within a minute anyway


def _bind(port: int) -> socket.socket:
    """The dashboard's port, bound before anything starts (a clear error if it is
    taken, rather than the dashboard failing later) and held until it serves: no
    other server of the demo can take it meanwhile."""
    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind(("127.0.0.1", port))
    except OSError as exc:
        listening.close()
        raise PystatusError(
            f"port {port} is in use ({exc.strerror}): run the demo on another one, e.g. "
            f"`make demo DEMO_ARGS='--port {port + 1}'` or `pystatus demo --port {port + 1}`"
        ) from None
    return listening


def run(dsn: str | None = None, port: int = 8000, duration: float | None = None) -> None:
    """Runs until Ctrl-C (or ``duration`` seconds), then stops everything it started."""
    import uvicorn

    from pystatus.dashboard import create_app

    listening = _bind(port)
    with closing(listening), _database(dsn) as (url, cluster):
        prepare(url, cluster)
        logins = _logins(url) if cluster is not None else (url, url, url, url)
        writer, reader, alerter, ingest_login = logins
        beats = {
            name: Heartbeat(writer, name, interval=10, current_task="serving") for name in LIVE
        }
        beats["api"].latency_ms = 165.0  # still getting slower
        crash = threading.Timer(CRASH_AFTER, beats[CRASHES].stop)
        beats[CRASHES].final_status = None  # a crash says nothing
        server = uvicorn.Server(
            uvicorn.Config(create_app(reader), host="127.0.0.1", port=port, log_level="warning")
        )
        stopper = threading.Timer(duration or 0, lambda: setattr(server, "should_exit", True))
        stack = ExitStack()
        try:
            stack.enter_context(_alerting(url, alerter))
            stack.enter_context(_pinging(url, ingest_login))
            for beat in beats.values():
                beat.start()
            crash.start()
            # Roll the month up now rather than at pg_cron's next minute.
            threading.Thread(target=_refresh_rollups, args=(url,), daemon=True).start()
            if duration:
                stopper.start()
            _say(f"Dashboard: http://127.0.0.1:{port}/")
            _say(f"Prometheus metrics: http://127.0.0.1:{port}/metrics")
            _say(f"({CRASHES} crashes after {CRASH_AFTER:.0f} s; Ctrl-C to stop)")
            server.run(sockets=[listening])
        except KeyboardInterrupt:
            pass  # Ctrl-C before the server took over the signal: stop all the same
        finally:
            crash.cancel()
            stopper.cancel()
            for beat in beats.values():
                beat.stop()
            stack.close()
            print("Demo stopped.")
