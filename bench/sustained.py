"""`make bench-sustained`: pystatus under a fleet heartbeating at a steady rate, on a
private cluster where pg_cron runs pystatus's own jobs: every heartbeat timed at
the client, the dashboard's read every 5 s, how long a silent service waits to be
marked stale, how far the rollups trail, and what heartbeats feel while
maintenance creates and drops partitions.

    python -m bench.sustained                # 10,000 services every 10 s for 30 min; writes docs/benchmarks-sustained.md
    python -m bench.sustained --minutes 3    # the same fleet for 3 minutes (also writes the doc)
    python -m bench.sustained --quick        # 500 services every second for about a minute: checks the harness

The load is flat: heartbeat j is due at j × interval / services, for service
j mod services, and is sent by whichever of a few connections is free (its
latency is timed from sending to the result). A second process watches: the
dashboard's read, the silent services, lock waits, the partitions and the
rollups. pg_cron's jobs are held while the fleet is set up and start with the
load.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import platform
import queue
import resource
import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors

from pystatus import alerts, migrations
from pystatus.cluster import Cluster

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks-sustained.md"
DATABASE = "bench"

# History in daily partitions, kept a week while the fleet's older history is
# backfilled, then cut to two days just before the load: the first maintenance
# under load drops the five partitions that expired.
PARTITION_INTERVAL = "1 day"
RETENTION_WHILE_BACKFILLING = "7 days"
RETENTION = "2 days"

DASHBOARD_EVERY = 5.0  # seconds between two reads of live_status
ROLLUP_EVERY = 30.0  # seconds between two samples of rollup_state
SILENT_EVERY = 1.0  # seconds between two polls of the silent services
LOCKS_EVERY = 0.25  # seconds between two samples of pg_stat_activity
# pg_cron before 1.5 schedules by the minute only: a run that must contain one
# round of the jobs lasts until this long after a minute starts.
JOBS_SETTLE = 3.0

P99_TARGET_MS = 20.0
ROLLUP_LAG_TARGET_S = 120.0
SWEEPER_LAG_TARGET_S = 5.0

HEARTBEAT = "SELECT pystatus.heartbeat(%s::text, %s::text, %s::text, %s::float8)"
SERVICE_LOGIN = "bench_service"  # the fleet's login, a pystatus_writer
DASHBOARD_LOGIN = "bench_dashboard"  # the dashboard's login, a pystatus_reader


@dataclass(frozen=True)
class Plan:
    services: int = 10_000
    interval: float = 10.0  # seconds between two heartbeats of a service
    # Lateness forgiven before a service is stale, in intervals.
    grace_intervals: float = 1.0
    seconds: float = 30 * 60  # length of the load (at least)
    connections: int = 12
    silent: int = 20  # services that stop heartbeating at known moments
    backfilled: int = 50  # services given a week of older history through record_heartbeat()
    backfill_step: str = "1 hour"
    quick: bool = False
    # --quick asks pg_cron for every job each few seconds; pg_cron before 1.5
    # refuses, and the jobs keep their minute schedules.
    quick_schedule: str = "5 seconds"

    @property
    def rate(self) -> float:
        return self.services / self.interval

    @property
    def grace(self) -> float:
        return self.interval * self.grace_intervals


QUICK = Plan(
    services=500,
    interval=1.0,
    # The fleet is seeded a second or two before the load, whose first
    # heartbeat of each service comes up to an interval later: at 1 s, one
    # interval of grace would let the sweeper mark some of them.
    grace_intervals=3.0,
    seconds=45,
    connections=6,
    silent=20,
    backfilled=10,
    backfill_step="2 hours",
    quick=True,
)


def service_name(i: int) -> str:
    return f"svc-{i:05d}"


@dataclass(frozen=True)
class Job:
    """One of pystatus's pg_cron jobs, as scheduled for the load."""

    id: int
    name: str
    schedule: str
    command: str


@dataclass(frozen=True)
class JobRun:
    """One run of a job, from cron.job_run_details (times are Unix times)."""

    job: str
    status: str
    message: str
    started: float
    ended: float


# --- measurements --------------------------------------------------------------


@dataclass
class LoadResult:
    """What the heartbeating fleet saw, at the client."""

    sent: int = 0
    scheduled: int = 0
    latencies_ms: array[float] = field(default_factory=lambda: array("d"))
    behind_ms: array[float] = field(default_factory=lambda: array("d"))
    failures: Counter[str] = field(default_factory=Counter)
    # Slowest heartbeat sent in each second of the run (index: seconds since start).
    slowest_by_second: list[float] = field(default_factory=list)
    seconds: float = 0.0
    # How late the client's event loop woke from short sleeps: its own stalls,
    # which would show in every latency it timed meanwhile.
    loop_late_ms: array[float] = field(default_factory=lambda: array("d"))


@dataclass
class WatchResult:
    """What the watching process saw (times are Unix times)."""

    dashboard_ms: list[float] = field(default_factory=list)
    dashboard_rows: int = 0
    dashboard_inside_ms: list[float] = field(default_factory=list)  # execution in the server
    dashboard_failures: list[str] = field(default_factory=list)
    # (time, seconds rolled_until trails the newest hour due, now() - rolled_until,
    # rolled_until as text)
    rollups: list[tuple[float, float, float, str]] = field(default_factory=list)
    # service -> (first seen stale, its deadline)
    stale_seen: dict[str, tuple[float, float]] = field(default_factory=dict)
    # service -> deadline, as last seen while not yet stale
    deadlines: dict[str, float] = field(default_factory=dict)
    lock_samples: int = 0
    lock_samples_waiting: int = 0
    most_waiting: int = 0
    most_waiting_at: float = 0.0
    # (waiting statement, wait event, blocking statement) -> samples
    waits: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    partition_changes: list[tuple[float, list[str], list[str]]] = field(default_factory=list)


@dataclass(frozen=True)
class DatabaseState:
    partitions: set[str]
    size: int  # bytes


@dataclass
class Observed:
    """Everything one run measured (times are Unix times)."""

    start: float
    load: LoadResult
    seen: WatchResult
    runs: list[JobRun]
    before: DatabaseState
    after: DatabaseState
    wal_bytes: float
    history_rows: int
    log_problems: list[str]
    server_cpu: float | None  # seconds
    client_cpu: float  # seconds


# --- the fleet -------------------------------------------------------------------


async def heartbeat_load(
    dsn: str,
    plan: Plan,
    start: float,
    end: float,
    stops: dict[int, float],
    on_start: Callable[[], None],
) -> LoadResult:
    """Sends the fleet's heartbeats from ``start`` to ``end`` (Unix times); a
    service in ``stops`` sends none due after that time. ``on_start`` runs once
    the first heartbeats are on their way."""
    loop = asyncio.get_running_loop()
    result = LoadResult()
    names = [service_name(i) for i in range(plan.services)]
    spacing = plan.interval / plan.services
    total = int((end - start) / spacing)
    result.slowest_by_second = [0.0] * (int(end - start) + 2)
    due_heartbeats: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    connections = [
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) for _ in range(plan.connections)
    ]
    # Both clocks read once: scheduling runs on the loop's monotonic clock.
    origin = loop.time() + (start - time.time())
    stop_at = {i: origin + (at - start) for i, at in stops.items()}

    async def schedule() -> None:
        due_next = 0
        while due_next < total:
            due_by = min(total, int((loop.time() - origin) / spacing) + 1)
            while due_next < due_by:
                i = due_next % plan.services
                due = origin + due_next * spacing
                if i not in stop_at or due < stop_at[i]:
                    due_heartbeats.put_nowait((i, due))
                    result.scheduled += 1
                due_next += 1
            # A few milliseconds' batch at a time: the load stays flat at that scale.
            await asyncio.sleep(max(0.002, origin + due_next * spacing - loop.time()))
        for _ in connections:
            due_heartbeats.put_nowait(None)

    async def send(conn: psycopg.AsyncConnection[Any]) -> None:
        while (item := await due_heartbeats.get()) is not None:
            i, due = item
            result.sent += 1
            sent = loop.time()
            try:
                cursor = await conn.execute(
                    HEARTBEAT, (names[i], "ok", "serving", float(5 + i % 50)), prepare=True
                )
                await cursor.fetchone()
            except Exception as exc:  # every exception is a failed heartbeat
                result.failures[f"{type(exc).__name__}: {str(exc).splitlines()[0]}"] += 1
                if conn.broken:
                    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
                continue
            latency = (loop.time() - sent) * 1000
            result.latencies_ms.append(latency)
            result.behind_ms.append((sent - due) * 1000)
            second = min(int(sent - origin), len(result.slowest_by_second) - 1)
            if latency > result.slowest_by_second[second]:
                result.slowest_by_second[second] = latency

    async def watch_loop() -> None:
        while loop.time() < origin + (end - start):
            asleep = loop.time()
            await asyncio.sleep(0.01)
            result.loop_late_ms.append((loop.time() - asleep - 0.01) * 1000)

    await asyncio.sleep(max(0.0, start - time.time()))
    running = asyncio.gather(schedule(), watch_loop(), *(send(conn) for conn in connections))
    await asyncio.sleep(0.1)
    on_start()
    await running
    result.seconds = time.time() - start
    for conn in connections:
        await conn.close()
    return result


# --- the watcher (a process of its own, so its reads never delay a heartbeat) ---------


def watch(
    dsn: str,
    dashboard_dsn: str,
    silent: dict[str, float],
    start: float,
    end: float,
    results: multiprocessing.Queue[dict[str, Any]],
) -> None:
    """Polls from ``start`` to ``end``; ``silent`` maps each silent service to the
    time it stops heartbeating."""
    seen = WatchResult()
    with (
        psycopg.connect(dsn, autocommit=True) as db,
        psycopg.connect(dashboard_dsn, autocommit=True) as dashboard,
    ):
        partitions = set(attached_partitions(db))
        next_dashboard = next_rollups = next_silent = start
        tick = start
        time.sleep(max(0.0, start - time.time()))
        while (now := time.time()) < end:
            if now >= next_dashboard:
                began = time.perf_counter()
                try:
                    rows = dashboard.execute("SELECT * FROM pystatus.live_status").fetchall()
                except psycopg.Error as exc:
                    seen.dashboard_failures.append(str(exc).splitlines()[0])
                else:
                    seen.dashboard_ms.append((time.perf_counter() - began) * 1000)
                    seen.dashboard_rows = len(rows)
                next_dashboard += DASHBOARD_EVERY
            if now >= next_rollups:
                seen.rollups.append(rollup_lag(db))
                seen.dashboard_inside_ms.append(
                    execution_ms(db, "SELECT * FROM pystatus.live_status")
                )
                next_rollups += ROLLUP_EVERY
            if now >= next_silent:
                watch_silent(db, silent, seen)
                current = set(attached_partitions(db))
                if current != partitions:
                    seen.partition_changes.append(
                        (now, sorted(current - partitions), sorted(partitions - current))
                    )
                    partitions = current
                next_silent += SILENT_EVERY
            sample_lock_waits(db, seen)
            tick += LOCKS_EVERY
            time.sleep(max(0.0, tick - time.time()))
        seen.rollups.append(rollup_lag(db))
    # Fields as they are (asdict() would rebuild the Counters from their items).
    results.put(dict(vars(seen)))


def receive(
    results: multiprocessing.Queue[dict[str, Any]], watcher: multiprocessing.process.BaseProcess
) -> dict[str, Any]:
    """The watcher's results, or an error as soon as it has died without them."""
    while True:
        try:
            return results.get(timeout=1)
        except queue.Empty:
            if not watcher.is_alive():
                raise RuntimeError("the watcher stopped without its results (see above)") from None


def run_alert_worker(dsn: str, end: float) -> None:
    """`pystatus alerts run` until ``end`` (in a process of its own, like the watcher)."""
    worker = alerts.Worker(dsn, name="bench")
    stopper = threading.Timer(max(0.0, end - time.time()), worker.stop)
    stopper.start()
    worker.run()
    stopper.cancel()


def partition_names(db: psycopg.Connection[Any]) -> list[str]:
    return [
        row[0]
        for row in db.execute(
            "SELECT partition::text FROM pystatus.history_partitions WHERE NOT is_default"
        )
    ]


def attached_partitions(db: psycopg.Connection[Any]) -> list[str]:
    """The partitions, from the catalog alone. history_partitions deparses each
    bound with pg_get_expr(), which answers NULL for a table dropped since the
    query's snapshot: read during maintenance, it can show the dropped
    partitions gone before the new ones appear."""
    return [
        row[0]
        for row in db.execute(
            "SELECT c.relname::text FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'public.system_status_history'::regclass"
            " AND c.relname <> 'system_status_history_default'"
        )
    ]


def execution_ms(db: psycopg.Connection[Any], query: str) -> float:
    """The server's own time for a query (EXPLAIN ANALYZE), without sending its rows."""
    plan = db.execute(f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {query}").fetchone()
    assert plan is not None
    return float(plan[0][0]["Execution Time"])


def rollup_lag(db: psycopg.Connection[Any]) -> tuple[float, float, float, str]:
    """How long the oldest hour not yet rolled up has been due (an hour is due
    _rollup_delay() after it ends; 0 while none is), and how far rolled_until
    trails now(). Not the hours between rolled_until and the newest boundary:
    that jumps from 0 to 3,600 s the moment an hour falls due, however soon
    the job then rolls it up."""
    row = db.execute(
        "SELECT extract(epoch FROM greatest(interval '0',"
        " now() - (rolled_until + interval '1 hour' + pystatus._rollup_delay())))::float8,"
        " extract(epoch FROM now() - rolled_until)::float8,"
        " to_char(rolled_until AT TIME ZONE 'UTC', 'HH24:MI') FROM pystatus.rollup_state"
    ).fetchone()
    assert row is not None
    return time.time(), row[0], row[1], row[2]


def watch_silent(db: psycopg.Connection[Any], silent: dict[str, float], seen: WatchResult) -> None:
    """Notes when each silent service (once past its last heartbeat) is first seen stale."""
    now = time.time()
    waiting = [name for name, stop in silent.items() if stop <= now and name not in seen.stale_seen]
    if not waiting:
        return
    for name, status, deadline, at in db.execute(
        "SELECT service_name, reported_status, extract(epoch FROM stale_after)::float8,"
        " extract(epoch FROM clock_timestamp())::float8"
        " FROM pystatus.live_status WHERE service_name = ANY(%s)",
        (waiting,),
    ):
        if status == "stale":
            seen.stale_seen[name] = (at, deadline)
        else:
            seen.deadlines[name] = deadline


def sample_lock_waits(db: psycopg.Connection[Any], seen: WatchResult) -> None:
    rows = db.execute(
        "SELECT w.pid, left(w.query, 70), w.wait_event, coalesce(left(b.query, 70), '')"
        " FROM pg_stat_activity AS w"
        " LEFT JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid) ON true"
        " LEFT JOIN pg_stat_activity AS b ON b.pid = blocker.pid"
        " WHERE w.wait_event_type = 'Lock' AND w.datname = current_database()"
    ).fetchall()
    seen.lock_samples += 1
    if not rows:
        return
    seen.lock_samples_waiting += 1
    waiting = len({row[0] for row in rows})
    if waiting > seen.most_waiting:
        seen.most_waiting, seen.most_waiting_at = waiting, time.time()
    for _, statement, event, blocker in rows:
        seen.waits[(statement, event, blocker)] += 1


# --- the server ------------------------------------------------------------------


def server_cpu_seconds(cluster: Cluster) -> float | None:
    """CPU time of the postmaster and all its processes so far, those that have
    exited included (the postmaster reaps them); None where /proc cannot tell."""
    try:
        postmaster = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
        ticks = 0

        def fields(pid: int | str) -> list[str]:
            # After the command name in brackets: state, ppid, ... utime is the 12th.
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

        own = fields(postmaster)
        ticks += sum(int(value) for value in own[11:15])  # utime, stime, cutime, cstime
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                child = fields(entry.name)
            except OSError:
                continue
            if int(child[1]) == postmaster:
                ticks += int(child[11]) + int(child[12])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the watcher, once joined
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


@dataclass
class Results:
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # figure, value, target
    notes: list[str] = field(default_factory=list)

    def add(self, figure: str, value: str, target: str = "") -> None:
        self.rows.append((figure, value, target))


class Sustained:
    def __init__(self, cluster: Cluster, plan: Plan) -> None:
        self.cluster, self.plan = cluster, plan
        self.dsn = cluster.dsn(DATABASE)
        self._db: psycopg.Connection[Any] | None = None
        self.jobs: list[Job] = []
        self.silent: dict[str, float] = {}
        self.seeded_at = 0.0
        self.load_average = (0.0, 0.0, 0.0)
        self.results = Results()

    @property
    def db(self) -> psycopg.Connection[Any]:
        if self._db is None or self._db.closed:
            self._db = psycopg.connect(self.dsn, autocommit=True)
        return self._db

    def value(self, query: str, params: Any = None) -> Any:
        row = self.db.execute(query, params).fetchone()
        assert row is not None
        return row[0]

    # --- set-up -------------------------------------------------------------------

    def setup(self) -> None:
        plan = self.plan
        with psycopg.connect(self.cluster.dsn(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        migrations.apply(
            self.dsn,
            {"partition_interval": PARTITION_INTERVAL, "retention": RETENTION_WHILE_BACKFILLING},
        )
        if not self.value("SELECT pystatus.schedule_maintenance()"):
            raise RuntimeError("pg_cron is not available in the bench database")
        self.hold_jobs()  # until the load starts: no job runs on a half-built fleet
        self.db.execute(f"CREATE ROLE {SERVICE_LOGIN} LOGIN IN ROLE pystatus_writer")
        self.db.execute(f"CREATE ROLE {DASHBOARD_LOGIN} LOGIN IN ROLE pystatus_reader")
        names = [service_name(i) for i in range(plan.services)]
        self.db.execute(
            "SELECT count(pystatus.set_expectations(name, %s * interval '1 second',"
            " %s * interval '1 second')) FROM unnest(%s::text[]) AS name",
            (plan.interval, plan.grace, names),
        )
        # Older history, imported as an installation would: it fills the
        # partitions that expire. Its late rows mark the services' rollups for
        # recomputing, done here as the minute job would have long before.
        self.db.execute(
            "SELECT count(pystatus.record_heartbeat(name, 'ok', NULL, at, 20))"
            " FROM unnest(%s::text[]) AS name, generate_series(now() - %s::interval"
            " + interval '1 minute', now() - interval '10 minutes', %s::interval) AS at",
            (names[: plan.backfilled], RETENTION_WHILE_BACKFILLING, plan.backfill_step),
        )
        self.db.execute("SELECT pystatus.refresh_rollups()")
        self.db.execute("SELECT pystatus.set_history_retention(%s)", (RETENTION,))
        # As when a day passes and the premake horizon moves on: maintenance
        # must make the newest partition again.
        newest = self.value(
            "SELECT partition::text FROM pystatus.history_partitions WHERE NOT is_default"
            " ORDER BY starts DESC LIMIT 1"
        )
        self.db.execute(f"DROP TABLE {newest}")
        self.seed()
        # Statistics as a running installation has them (the fleet is seeded
        # again just before the load).
        self.db.execute("ANALYZE")

    def seed(self) -> None:
        """Every service's heartbeat before the load: the load's first heartbeat
        of each comes within an interval, so none of them is ever late."""
        self.seeded_at = time.time()
        self.db.execute(
            "SELECT pystatus.heartbeat_many(%s::text[], array_fill('ok'::text, ARRAY[%s]))",
            ([service_name(i) for i in range(self.plan.services)], self.plan.services),
        )

    def schedule_jobs(self) -> bool:
        """Schedules pystatus's pg_cron jobs for the load, still held: maintenance
        every minute rather than hourly, and with --quick every job each few
        seconds where pg_cron can. Returns whether any job runs by the minute."""
        by_minute = False
        self.jobs = []
        for job_id, name, schedule, command in self.db.execute(
            "SELECT jobid, jobname, schedule, command FROM cron.job WHERE jobname LIKE %s"
            " ORDER BY jobname",
            ("pystatus-%",),
        ).fetchall():
            maintenance = "pystatus.maintain()" in command
            wanted = schedule
            if self.plan.quick:
                wanted = self.plan.quick_schedule
            elif maintenance:
                wanted = "* * * * *"
            try:
                self.db.execute("SELECT cron.alter_job(%s, schedule := %s)", (job_id, wanted))
            except psycopg.errors.InvalidParameterValue:  # pg_cron before 1.5: minutes only
                wanted = "* * * * *" if maintenance else schedule
                self.db.execute("SELECT cron.alter_job(%s, schedule := %s)", (job_id, wanted))
            by_minute = by_minute or not wanted.endswith("seconds")
            self.jobs.append(Job(job_id, name, wanted, command))
        return by_minute

    def hold_jobs(self, held: bool = True) -> None:
        self.db.execute(
            "SELECT cron.alter_job(jobid, active := %s) FROM cron.job WHERE jobname LIKE %s",
            (not held, "pystatus-%"),
        )

    def release_jobs(self) -> None:
        self.hold_jobs(False)

    def timeline(self, by_minute: bool) -> tuple[float, float, float]:
        """The load's start and end, and the last minute at which pg_cron's jobs
        start inside it (Unix times). With jobs by the minute, the run covers at
        least one minute's start, late enough that silent services can miss
        their deadline before it."""
        lead = self.lead()
        start = time.time() + 1.5  # time for the watcher and the connections to start
        if by_minute:
            first_minute = math.ceil(start / 60) * 60
            if first_minute - start < lead:
                first_minute += 60
            end = max(start + self.plan.seconds, first_minute + JOBS_SETTLE)
            last_minute = math.floor((end - JOBS_SETTLE) / 60) * 60.0
        else:
            end = start + self.plan.seconds
            last_minute = end - JOBS_SETTLE
        return start, end, last_minute

    def lead(self) -> float:
        """From a service's stop to its deadline, at most, and time for a sweep."""
        return self.plan.interval + self.plan.grace + 0.5

    def silent_services(self, start: float, last_sweep: float) -> dict[int, float]:
        """The services that stop, spread over the fleet, and when: evenly between
        one interval into the run and the last moment from which their deadline
        still passes before the last round of jobs."""
        plan = self.plan
        count = max(1, min(plan.silent, plan.services // 10))
        latest = max(0.0, last_sweep - start - self.lead())
        earliest = min(plan.interval, latest)
        stops = {}
        for k in range(count):
            at = earliest + (latest - earliest) * k / max(1, count - 1)
            stops[(k * plan.services) // count + plan.services // (2 * count)] = start + at
        return stops

    # --- the run --------------------------------------------------------------------

    def run(self) -> Observed:
        plan = self.plan
        before = self.database_state()
        wal_before = self.value("SELECT pg_current_wal_lsn()")
        by_minute = self.schedule_jobs()
        self.seed()
        log_offset = self.cluster.logfile.stat().st_size  # after pg_cron's refusals, if any
        start, end, last_sweep = self.timeline(by_minute)
        stops = self.silent_services(start, last_sweep)
        self.silent = {service_name(i): at for i, at in stops.items()}
        print(
            f"Load: {plan.services:,} services every {plan.interval:g} s"
            f" ({plan.rate:,.0f} heartbeats/s) for {end - start:.0f} s, {plan.connections}"
            f" connections; jobs: {', '.join(f'{job.name} {job.schedule}' for job in self.jobs)}",
            flush=True,
        )
        self.load_average = os.getloadavg()
        server_before, client_before = server_cpu_seconds(self.cluster), client_cpu_seconds()
        context = multiprocessing.get_context("spawn")
        watched: multiprocessing.Queue[dict[str, Any]] = context.Queue()
        watcher = context.Process(
            target=watch,
            args=(self.dsn, f"{self.dsn} user={DASHBOARD_LOGIN}", self.silent, start, end, watched),
        )
        watcher.start()
        # The alert worker, as a deployment runs it: it sweeps before each round
        # (every second), so silent services are marked within seconds of their
        # deadline rather than at the next minute's pg_cron sweep.
        alert_worker = context.Process(target=run_alert_worker, args=(self.dsn, end))
        alert_worker.start()
        load = asyncio.run(
            heartbeat_load(
                f"{self.dsn} user={SERVICE_LOGIN}", plan, start, end, stops, self.release_jobs
            )
        )
        seen = WatchResult(**receive(watched, watcher))
        watcher.join(30)
        alert_worker.join(30)
        server_after, client_after = server_cpu_seconds(self.cluster), client_cpu_seconds()
        self.hold_jobs()
        runs = self.finished_runs(start, end)
        with self.cluster.logfile.open() as log:
            log.seek(log_offset)
            problems = [
                line.rstrip()
                for line in log
                if any(f" {level}: " in line for level in ("ERROR", "FATAL", "PANIC", "WARNING"))
            ]
        return Observed(
            start=start,
            load=load,
            seen=seen,
            runs=runs,
            before=before,
            after=self.database_state(),
            wal_bytes=float(self.value("SELECT pg_current_wal_lsn() - %s::pg_lsn", (wal_before,))),
            history_rows=self.value(
                "SELECT count(*) FROM system_status_history"
                " WHERE heartbeat_timestamp >= to_timestamp(%s)",
                (self.seeded_at,),
            ),
            log_problems=problems,
            server_cpu=None
            if server_before is None or server_after is None
            else server_after - server_before,
            client_cpu=client_after - client_before,
        )

    def database_state(self) -> DatabaseState:
        return DatabaseState(
            partitions=set(partition_names(self.db)),
            size=self.value("SELECT pg_database_size(current_database())"),
        )

    def finished_runs(self, start: float, end: float) -> list[JobRun]:
        """pg_cron's runs of pystatus's jobs that started during the load, once the
        last of them has finished (or five minutes have passed)."""
        query = (
            "SELECT j.jobname, d.status, coalesce(d.return_message, ''),"
            " extract(epoch FROM d.start_time)::float8,"
            " extract(epoch FROM coalesce(d.end_time, clock_timestamp()))::float8"
            " FROM cron.job_run_details AS d JOIN cron.job AS j ON j.jobid = d.jobid"
            " WHERE j.jobname LIKE %s AND d.start_time BETWEEN to_timestamp(%s) AND to_timestamp(%s)"
            " ORDER BY d.start_time"
        )
        deadline = time.monotonic() + 300
        while True:
            runs = [JobRun(*row) for row in self.db.execute(query, ("pystatus-%", start, end))]
            if all(run.status in ("succeeded", "failed") for run in runs):
                return runs
            if time.monotonic() > deadline:
                return runs  # reported as unfinished
            time.sleep(0.5)

    # --- the report -----------------------------------------------------------------

    def report(self, observed: Observed) -> None:
        self.report_heartbeats(observed.load)
        self.report_watched(observed.seen, observed.load, observed.start)
        self.report_maintenance(observed)
        self.report_costs(observed)
        self.add_notes()

    def report_heartbeats(self, load: LoadResult) -> None:
        add = self.results.add
        failed = sum(load.failures.values())
        add(
            "heartbeats sent",
            f"{load.sent:,} ({load.scheduled:,} scheduled, {len(self.silent)} services"
            " falling silent)",
        )
        add(
            "heartbeats failed",
            f"{failed:,}"
            + "".join(f"; {count:,}× {message}" for message, count in load.failures.most_common(3)),
            f"0: {verdict(failed == 0)}",
        )
        add(
            "achieved rate (heartbeats/s)",
            f"{load.sent / load.seconds:,.0f} over {load.seconds:,.0f} s",
            f"the schedule's {load.scheduled / load.seconds:,.0f}/s",
        )
        latencies = sorted(load.latencies_ms)
        p99 = quantile(latencies, 0.99)
        add(
            "heartbeat latency p50 / p95 / p99 / max (ms)",
            " / ".join(f"{quantile(latencies, q):,.1f}" for q in (0.5, 0.95, 0.99, 1.0)),
            f"p99 < {P99_TARGET_MS:g} ms: {verdict(p99 < P99_TARGET_MS)}",
        )
        behind = sorted(load.behind_ms)
        # Timed from when each heartbeat was due, the wait for a connection counts too.
        from_due = sorted(b + lat for b, lat in zip(load.behind_ms, load.latencies_ms))
        late = sorted(load.loop_late_ms)
        add(
            "heartbeats sent behind schedule p99 / max (ms)",
            f"{quantile(behind, 0.99):,.1f} / {quantile(behind, 1.0):,.1f} (from due to"
            f" answered: p99 {quantile(from_due, 0.99):,.1f}, max {quantile(from_due, 1.0):,.1f};"
            f" the client's event loop late by p99 {quantile(late, 0.99):,.1f},"
            f" max {quantile(late, 1.0):,.1f})",
            "diagnostic: whether the client kept up",
        )

    def report_watched(self, seen: WatchResult, load: LoadResult, start: float) -> None:
        add = self.results.add
        reads = sorted(seen.dashboard_ms)
        inside = sorted(seen.dashboard_inside_ms)
        add(
            f"dashboard read, all of live_status ({seen.dashboard_rows:,} rows) p50 / p99 (ms)",
            f"{quantile(reads, 0.5):,.1f} / {quantile(reads, 0.99):,.1f}"
            f" (max {quantile(reads, 1.0):,.1f}; {len(reads)} reads, every"
            f" {DASHBOARD_EVERY:g} s; {len(seen.dashboard_failures)} failed; executing in the"
            f" server: median {quantile(inside, 0.5):,.1f} of {len(inside)})",
        )
        lag = max((sample[1] for sample in seen.rollups), default=math.nan)
        trailing_now = max((sample[2] for sample in seen.rollups), default=math.nan)
        rolled = [sample[3] for sample in seen.rollups] or ["?"]
        add(
            "rollup lag, max (s)",
            f"{lag:,.0f} (rolled_until {rolled[0]} → {rolled[-1]} UTC, at most"
            f" {trailing_now / 60:,.0f} min behind now(); {len(seen.rollups)} samples)",
            f"< {ROLLUP_LAG_TARGET_S / 60:g} min: {verdict(lag < ROLLUP_LAG_TARGET_S)}",
        )
        lags = sorted(at - deadline for at, deadline in seen.stale_seen.values())
        end = start + load.seconds
        never_marked = [
            deadline
            for name, deadline in seen.deadlines.items()
            if name not in seen.stale_seen and deadline < end
        ]
        # A service never marked waited at least until the end of the run.
        worst = max([*lags, *(end - deadline for deadline in never_marked)], default=math.nan)
        add(
            "sweeper lag, max (s)",
            f"{worst:,.1f} (median {quantile(lags, 0.5):,.1f}; {len(seen.stale_seen)} of"
            f" {len(self.silent)} silent services marked stale"
            + (f", {len(never_marked)} past their deadline never marked" if never_marked else "")
            + ")",
            f"< {SWEEPER_LAG_TARGET_S:g} s: {verdict(worst < SWEEPER_LAG_TARGET_S)}",
        )
        wrongly = self.value(
            "SELECT count(DISTINCT service_name) FROM system_status_history"
            " WHERE status = 'stale' AND heartbeat_timestamp >= to_timestamp(%s)"
            " AND service_name <> ALL(%s)",
            (self.seeded_at, list(self.silent)),
        )
        add("heartbeating services marked stale", f"{wrongly:,}", f"0: {verdict(wrongly == 0)}")
        waits = "; ".join(
            f"{count}× {waiting!r} waiting ({event}) on {blocker!r}"
            for (waiting, event, blocker), count in seen.waits.most_common(3)
        )
        add(
            f"lock waits (pg_stat_activity every {LOCKS_EVERY:g} s)",
            f"{seen.lock_samples_waiting} of {seen.lock_samples} samples, at most"
            f" {seen.most_waiting} backends"
            + (f" (+{time_of(seen.most_waiting_at, start)})" if seen.most_waiting else "")
            + (f"; {waits}" if waits else ""),
            "diagnostic",
        )

    def report_maintenance(self, observed: Observed) -> None:
        add, start = self.results.add, observed.start
        created = sorted(observed.after.partitions - observed.before.partitions)
        dropped = sorted(observed.before.partitions - observed.after.partitions)
        add(
            "partitions created / dropped during the run",
            f"{len(created)} / {len(dropped)}"
            + (
                f" (created {', '.join(created)}; dropped {', '.join(dropped)})"
                if created or dropped
                else ""
            )
            + "".join(
                f"; +{time_of(at, start)}: {len(new)} created, {len(gone)} dropped"
                for at, new, gone in observed.seen.partition_changes
            ),
            f"≥ 1 / ≥ 1, as arranged: {verdict(bool(created) and bool(dropped))}",
        )
        runs = observed.runs
        failed = [run for run in runs if run.status == "failed"]
        unfinished = [run for run in runs if run.status not in ("succeeded", "failed")]
        add(
            "pg_cron runs: total, failed",
            f"{len(runs)} runs, {len(failed)} failed"
            + (f", {len(unfinished)} unfinished" if unfinished else "")
            + "".join(
                f"; {run.job} at +{time_of(run.started, start)}: {run.message}"
                for run in failed[:3]
            ),
            f"0 failed: {verdict(not failed and not unfinished)}",
        )
        add(
            "pg_cron runs per job: count, longest (s), worst heartbeat sent meanwhile (ms)",
            "; ".join(self.job_summary(runs, observed.load, start)) or "none",
            "diagnostic: what each job costs heartbeats",
        )

    def job_summary(self, runs: list[JobRun], load: LoadResult, start: float) -> list[str]:
        summary = []
        for job in self.jobs:
            mine = [run for run in runs if run.job == job.name]
            if not mine:
                summary.append(f"{job.name} ({job.schedule}): 0")
                continue
            longest = max(run.ended - run.started for run in mine)
            worst = 0.0
            for run in mine:
                first = max(0, int(run.started - start))
                last = min(len(load.slowest_by_second) - 1, int(run.ended - start))
                worst = max([worst, *load.slowest_by_second[first : last + 1]])
            summary.append(
                f"{job.name} ({job.schedule}): {len(mine)}, {longest:,.1f} s, {worst:,.0f} ms"
            )
        return summary

    def report_costs(self, observed: Observed) -> None:
        add, seconds = self.results.add, observed.load.seconds
        before, after = observed.before.size, observed.after.size
        add(
            "database size, start → end",
            f"{before / 1e6:,.1f} MB → {after / 1e6:,.1f} MB ({(after - before) / 1e6:+,.1f} MB"
            f" for {observed.history_rows:,} history rows, partitions dropped included;"
            f" {observed.wal_bytes / 1e6:,.0f} MB of WAL)",
        )
        cores = os.cpu_count() or 1
        server = (
            f"server {observed.server_cpu:,.0f} s"
            f" ({100 * observed.server_cpu / seconds / cores:,.0f} % of {cores} cores)"
            if observed.server_cpu is not None
            else "server: not measurable here"
        )
        add(
            "CPU time: server, load generator and watcher (s)",
            f"{server}; clients {observed.client_cpu:,.0f} s"
            f" ({100 * observed.client_cpu / seconds / cores:,.0f} %)",
            "diagnostic: the clients share the machine",
        )
        add(
            "server log: errors and warnings during the run",
            f"{len(observed.log_problems)}"
            + "".join(f"; {line}" for line in observed.log_problems[:3]),
            "diagnostic",
        )

    def add_notes(self) -> None:
        plan = self.plan
        self.results.notes += [
            "Heartbeats: `pystatus.heartbeat(name, 'ok', 'serving', latency)` as a pystatus_writer"
            f" login, prepared, on {plan.connections} connections from one asyncio process;"
            f" heartbeat j is due at j × {plan.interval:g} s / {plan.services:,}, so the load is"
            " flat, and each is timed from sending to its result. Behind schedule: how long a"
            " heartbeat waited for a free connection.",
            f"Dashboard: `SELECT * FROM pystatus.live_status` every {DASHBOARD_EVERY:g} s as a"
            " pystatus_reader login, from a second process that also watches the rest; its"
            f" execution in the server (EXPLAIN ANALYZE) every {ROLLUP_EVERY:g} s.",
            "Rollup lag: how long the oldest hour not yet rolled up has been due"
            " (`now() - (rolled_until + 1 hour + pystatus._rollup_delay())`: an hour is due 5"
            f" minutes after it ends, and rolled up by the minute job), sampled every"
            f" {ROLLUP_EVERY:g} s; 0 means up to date, and it is only put to the test when the"
            " run passes 5 minutes past an hour. By design `now() - rolled_until` itself runs"
            " up to 65 min.",
            "Sweeper lag: from a silent service's deadline (`stale_after`: last heartbeat +"
            f" {plan.interval:g} s expected interval + {plan.grace:g} s grace) until a poll every"
            f" {SILENT_EVERY:g} s first sees it stale in system_status. The alert worker"
            " (`pystatus alerts run`, as the owner here) sweeps before each round, every second;"
            " pystatus's pg_cron sweep, once a minute, is the fallback when no worker runs.",
            f"Partitions: history in daily partitions kept {RETENTION_WHILE_BACKFILLING}, retention"
            f" cut to {RETENTION} just before the load; {plan.backfilled} services have a week of"
            f" history imported through `record_heartbeat()` (one every {plan.backfill_step},"
            " rolled up before the load), which the expired partitions hold; the newest premade"
            " partition was dropped, as when the premake horizon moves on. The maintenance job"
            " runs every minute during the load.",
        ]

    # --- the document ---------------------------------------------------------------

    def markdown(self, command: str, elapsed: float) -> str:
        db = self.db
        version = self.value("SELECT version()")
        extensions = dict(
            db.execute(
                "SELECT extname, extversion FROM pg_extension WHERE extname IN ('pg_partman', 'pg_cron')"
            ).fetchall()
        )
        settings = self.value(
            "SELECT string_agg(name || ' = ' || setting || coalesce(unit, ''), ', ' ORDER BY name)"
            " FROM pg_settings WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync',"
            " 'work_mem', 'max_wal_size', 'wal_level', 'max_connections', 'autovacuum',"
            " 'cron.database_name')"
        )
        plan = self.plan
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            f"## {plan.services:,} services every {plan.interval:g} s,"
            f" {plan.seconds / 60:g} min ({when})",
            "",
            f"- Command: `{command}` ({elapsed:,.0f} s with set-up).",
            f"- Machine: {machine()}; the load generator and the watcher run on it too; load"
            f" average as the load started {' / '.join(f'{v:.2f}' for v in self.load_average)}"
            " (1, 5, 15 min; other work on the machine included).",
            f"- PostgreSQL: {version}; pg_partman {extensions.get('pg_partman')};"
            f" pg_cron {extensions.get('pg_cron')} in the pystatus database; a private cluster"
            " started by `pystatus.cluster` with default settings except the port.",
            f"- Settings: {settings}.",
            f"- Plan: {plan}.",
            "- Jobs during the load: "
            + ", ".join(f"`{job.name}` `{job.schedule}` `{job.command}`" for job in self.jobs)
            + ".",
            "",
            "| figure | value | target |",
            "| --- | --- | --- |",
            *(f"| {a} | {b} | {c} |" for a, b, c in self.results.rows),
            "",
            *(f"- {note}" for note in self.results.notes),
            "",
        ]
        return "\n".join(lines)


def time_of(at: float, start: float) -> str:
    return f"{at - start:,.1f} s"


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB memory, {platform.platform()}"


def write_doc(section: str) -> None:
    DOC.write_text(
        "# Sustained load\n\n"
        "Produced by `python -m bench.sustained` (`make bench-sustained`); this file is rewritten"
        " by each full-size run (`--quick` writes nothing). A fleet heartbeats at a steady rate"
        " for the length of the run while pystatus's pg_cron jobs run, partition maintenance"
        " among them; every figure is measured during that load, on this machine.\n\n" + section
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="500 services every second for about a minute"
    )
    parser.add_argument("--minutes", type=float, help="length of the load (default: 30)")
    parser.add_argument("--services", type=int, help="services heartbeating (default: 10,000)")
    parser.add_argument(
        "--interval", type=float, help="seconds between a service's heartbeats (default: 10)"
    )
    parser.add_argument(
        "--connections", type=int, help="connections the heartbeats share (default: 12)"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    if args.minutes is not None:
        plan = replace(plan, seconds=args.minutes * 60)
    if args.services is not None:
        plan = replace(plan, services=args.services)
    if args.interval is not None:
        plan = replace(plan, interval=args.interval)
    if args.connections is not None:
        plan = replace(plan, connections=args.connections)
    command = "python -m bench.sustained " + " ".join(sys.argv[1:])
    started = time.time()
    with Cluster.temporary(cron_database=DATABASE) as cluster:
        bench = Sustained(cluster, plan)
        print("Setting up the fleet", flush=True)
        bench.setup()
        bench.report(bench.run())
        section = bench.markdown(command.strip(), time.time() - started)
    print(section)
    if not plan.quick:
        write_doc(section)
        print(f"Wrote {DOC}")


if __name__ == "__main__":
    main()
