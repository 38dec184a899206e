"""`make bench`: pystatus's claims measured side by side with their baselines, in
one run, on a private cluster (the same helper as the tests). Every figure is
reported with the baseline it must beat, as a ratio: this machine is shared and
noisy, and only ratios measured together are stable.

    python -m bench.run            # full sizes, writes docs/benchmarks.md
    python -m bench.run --quick    # tiny sizes: checks the harness (part of make test)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg

import pystatus
from pystatus import migrations
from pystatus.cluster import Cluster, free_port

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"


@dataclass
class Sizes:
    runs: int = 3  # repetitions of each timed figure (median and range reported)
    seconds: int = 10  # pgbench duration
    clients: tuple[int, ...] = (1, 4, 16)
    services: int = 100  # services heartbeating in the write scenarios
    batch: int = 500  # heartbeats per heartbeat_many call
    python_calls: int = 5000
    dashboard_services: tuple[int, ...] = (100, 1000, 10000)
    fleet: int = 1000  # services in the history scenarios
    days: int = 30  # days of 60-s heartbeats for them
    retention_rows_days: int = 7  # days of history in the month dropped by retention
    alert_queue: tuple[int, ...] = (100, 1000, 10000)  # pending messages a claim is timed at
    alert_storm: int = 10000  # services silent at once, drained to a webhook


QUICK = Sizes(
    runs=1,
    seconds=1,
    clients=(1, 4),
    services=10,
    batch=20,
    python_calls=200,
    dashboard_services=(10, 100),
    fleet=10,
    days=2,
    retention_rows_days=1,
    alert_queue=(10, 100),
    alert_storm=50,
)


@dataclass
class Results:
    rows: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # scenario, figure, value, target
    notes: list[str] = field(default_factory=list)

    def add(self, scenario: str, figure: str, value: str, target: str = "") -> None:
        self.rows.append((scenario, figure, value, target))
        print(f"  {figure}: {value}" + (f"  [{target}]" if target else ""), flush=True)


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    """Median (min–max) of several runs."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def without_events(definition: str) -> str:
    """The copy trigger's definition without its recording of status events (each
    path's block, from its "-- status events" comment to "-- end of status events")."""
    stripped, found = re.subn(
        r"\n\s*-- status events.*?-- end of status events", "", definition, flags=re.DOTALL
    )
    if found != 2 or "pystatus.status_events" in stripped:
        raise RuntimeError("the copy trigger's event recording was not found where expected")
    return stripped


class Bench:
    def __init__(self, cluster: Cluster, sizes: Sizes) -> None:
        self.cluster, self.sizes = cluster, sizes
        self.dsn = cluster.dsn("bench")
        self.results = Results()
        self.live_status_ms: dict[int, float] = {}
        self.answer_ms: dict[str, float] = {}
        self.bytes_per_row = float("nan")
        self.scripts = Path(tempfile.mkdtemp(prefix="pystatus-bench-"))
        self._db: psycopg.Connection[Any] | None = None

    def conn(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True)

    def _db_or_open(self) -> psycopg.Connection[Any]:
        """The harness's own connection, opened once."""
        if self._db is None or self._db.closed:
            self._db = self.conn()
        return self._db

    def sql(self, query: str, params: Any = None) -> Any:
        """Runs a statement on the harness's own connection (opened once, so timings exclude it)."""
        cursor = self._db_or_open().execute(query, params)
        return cursor.fetchall() if cursor.description else None

    def pgbench(
        self, script: str, clients: int, seconds: int, *extra: str, dsn: str | None = None
    ) -> dict[str, float]:
        path = self.scripts / f"s{abs(hash(script))}.sql"
        path.write_text(script)
        command = [
            str(self.cluster.bindir / "pgbench"),
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(seconds),
            "-f",
            str(path),
            *extra,
            dsn or self.dsn,
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        failed = re.search(r"number of failed transactions: (\d+)", out)
        return {
            "tps": float(re.search(r"tps = ([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "latency_ms": float(re.search(r"latency average = ([\d.]+) ms", out).group(1)),  # type: ignore[union-attr]
            "failed": float(failed.group(1)) if failed else 0.0,
        }

    def timed(
        self, action: Callable[[], Any], runs: int | None = None, warm_up: bool = True
    ) -> list[float]:
        """Wall-clock milliseconds of ``action``, run ``runs`` times (after one warm-up run)."""
        if warm_up:
            action()
        times = []
        for _ in range(runs or max(self.sizes.runs, 3)):
            start = time.perf_counter()
            action()
            times.append((time.perf_counter() - start) * 1000)
        return times

    # --- set-up ---------------------------------------------------------------

    def setup(self) -> None:
        self._db = None
        with psycopg.connect(self.cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench")
        migrations.apply(self.dsn)
        self.sql(BASELINE_TABLES)
        # Services' logins: a writer, and a writer restricted to its services by
        # allowances (99 for other logins beside its own, as in a fleet).
        self.sql("CREATE ROLE bench_writer LOGIN IN ROLE pystatus_writer")
        self.sql("CREATE ROLE bench_restricted LOGIN IN ROLE pystatus_writer")
        self.writer_dsn = f"{self.dsn} user=bench_writer"
        self.restricted_dsn = f"{self.dsn} user=bench_restricted"

    def restrict_logins(self, on: bool) -> None:
        self.sql("DELETE FROM pystatus.service_logins")
        if on:
            self.sql(
                "INSERT INTO pystatus.service_logins (login, service_pattern) "
                "SELECT 'other_' || i, 'other-' || i || '-*' FROM generate_series(1, 99) AS i "
                "UNION ALL SELECT 'bench_restricted', 'svc-*'"
            )

    def reset_writes(self) -> None:
        self.sql(
            "TRUNCATE system_status, system_status_history, bench.bare_status, bench.one_status,"
            " bench.one_history, bench.option1_history, bench.empty_trigger_status,"
            " bench.least_status, bench.least_history"
        )

    # --- scenarios ------------------------------------------------------------

    def single_row_heartbeats(self) -> None:
        print("1. Single-row heartbeats", flush=True)
        s = self.sizes
        pick = f"\\set n random(1, {s.services})\n"
        variants = {
            "bare upsert, no history": pick + BARE,
            "one statement: upsert + history insert": pick + ONE_STATEMENT,
            "pystatus.heartbeat() (trigger path)": pick
            + "SELECT pystatus.heartbeat('svc-' || :n, 'ok');\n",
            "plain upsert on system_status (trigger, no API function)": pick
            + BARE.replace("bench.bare_status", "public.system_status"),
            "bare upsert + do-nothing statement triggers": pick
            + BARE.replace("bench.bare_status", "bench.empty_trigger_status"),
            "bare upsert + the least copy trigger (no checks)": pick
            + BARE.replace("bench.bare_status", "bench.least_status"),
            "seed Option 1: insert-only history": pick + OPTION1,
            "pystatus.heartbeat() as a pystatus_writer login": pick
            + "SELECT pystatus.heartbeat('svc-' || :n, 'ok');\n",
            "pystatus.heartbeat() as a login restricted to its services": pick
            + "SELECT pystatus.heartbeat('svc-' || :n, 'ok');\n",
        }
        logins = {
            "pystatus.heartbeat() as a pystatus_writer login": self.writer_dsn,
            "pystatus.heartbeat() as a login restricted to its services": self.restricted_dsn,
        }
        self.sql("SELECT pg_stat_reset()")
        size_before = self.sql("SELECT pg_relation_size('system_status')")[0][0]
        for clients in s.clients:
            tps: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(s.runs):  # interleaved, so drift hits every variant alike
                for name, script in variants.items():
                    restricted = name.endswith("restricted to its services")
                    if restricted:
                        self.restrict_logins(True)
                    dsn = logins.get(name)
                    tps[name].append(self.pgbench(script, clients, s.seconds, dsn=dsn)["tps"])
                    if restricted:
                        self.restrict_logins(False)
            for name, values in tps.items():
                self.results.add(
                    "1. single-row heartbeats", f"{name}, {clients} clients (tps)", spread(values)
                )
            trigger = statistics.median(tps["pystatus.heartbeat() (trigger path)"])
            one = statistics.median(tps["one statement: upsert + history insert"])
            bare = statistics.median(tps["bare upsert, no history"])
            self.results.add(
                "1. single-row heartbeats",
                f"trigger path / one statement, {clients} clients",
                f"{trigger / one:.2f}×",
                f"≥ 0.95×: {verdict(trigger / one >= 0.95)}",
            )
            self.results.add(
                "1. single-row heartbeats",
                f"trigger path / bare upsert, {clients} clients",
                f"{trigger / bare:.2f}×",
                f"≥ 0.80×: {verdict(trigger / bare >= 0.80)}",
            )
            for name, label in (
                ("pystatus.heartbeat() as a pystatus_writer login", "a writer login"),
                (
                    "pystatus.heartbeat() as a login restricted to its services",
                    "a restricted login",
                ),
            ):
                self.results.add(
                    "1. single-row heartbeats",
                    f"{label} / the owner, {clients} clients",
                    f"{statistics.median(tps[name]) / trigger:.2f}×",
                    "diagnostic: what roles and allowances cost",
                )
            plain = statistics.median(
                tps["plain upsert on system_status (trigger, no API function)"]
            )
            self.results.add(
                "1. single-row heartbeats",
                f"the trigger alone / one statement, {clients} clients",
                f"{plain / one:.2f}×",
                "diagnostic: the trigger without the API function",
            )
            empty = statistics.median(tps["bare upsert + do-nothing statement triggers"])
            least = statistics.median(tps["bare upsert + the least copy trigger (no checks)"])
            self.results.add(
                "1. single-row heartbeats",
                f"do-nothing triggers / bare upsert, {clients} clients",
                f"{empty / bare:.2f}×",
                "diagnostic: what firing a statement trigger costs",
            )
            self.results.add(
                "1. single-row heartbeats",
                f"the least copy trigger / one statement, {clients} clients",
                f"{least / one:.2f}×",
                "diagnostic: the most any copy trigger can reach",
            )
            self.results.add(
                "1. single-row heartbeats",
                f"trigger path / the least copy trigger, {clients} clients",
                f"{trigger / least:.2f}×",
                "diagnostic: what pystatus's checks and API cost",
            )
        hot = self.sql(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'system_status'"
            " AND schemaname = 'public'"
        )[0]
        size_after = self.sql("SELECT pg_relation_size('system_status')")[0][0]
        share = hot[1] / hot[0] if hot[0] else 0.0
        self.results.add(
            "8. HOT updates",
            "share of system_status updates that were HOT",
            f"{share:.2%} of {hot[0]:,}",
            f"≥ 99%: {verdict(share >= 0.99)}",
        )
        self.results.add(
            "8. HOT updates",
            "system_status size before / after all the runs",
            f"{size_before:,} / {size_after:,} bytes ({s.services} services)",
        )

    def batched_heartbeats(self) -> None:
        print("2. Batched heartbeats", flush=True)
        s = self.sizes
        # Each client its own services, as collectors of a fleet send them; and
        # both the same ones, where each call waits for the other's row locks.
        own = (
            f"SELECT pystatus.heartbeat_many(array(SELECT 'svc-' || (:client_id * {s.batch} + i)"
            f" FROM generate_series(0, {s.batch - 1}) AS i), array_fill('ok'::text, ARRAY[{s.batch}]));\n"
        )
        names = ",".join(f"svc-{i}" for i in range(s.batch))
        same = (
            f"SELECT pystatus.heartbeat_many('{{{names}}}'::text[], "
            f"array_fill('ok'::text, ARRAY[{s.batch}]));\n"
        )
        # The baseline: the same rows upserted by one plain statement, no
        # history. The target is a rate, and this machine's rates swing
        # threefold between runs; the ratio to this shows what moved.
        bare = (
            "INSERT INTO bench.bare_status AS s (service_name, status, last_heartbeat, updated_at)"
            f" SELECT 'svc-' || (:client_id * {s.batch} + i), 'ok', clock_timestamp(), clock_timestamp()"
            f" FROM generate_series(0, {s.batch - 1}) AS i"
            " ON CONFLICT (service_name) DO UPDATE SET status = EXCLUDED.status,"
            " last_heartbeat = EXCLUDED.last_heartbeat, updated_at = EXCLUDED.updated_at;\n"
        )
        rates: dict[str, list[float]] = {"own": [], "same": [], "bare": []}
        for _ in range(s.runs):  # interleaved
            for name, script in (("own", own), ("same", same), ("bare", bare)):
                rates[name].append(self.pgbench(script, 2, s.seconds)["tps"] * s.batch)
        best = statistics.median(rates["own"])
        self.results.add(
            "2. batched heartbeats",
            f"heartbeat_many, {s.batch} per call, 2 clients each with its own services (heartbeats/s)",
            spread(rates["own"]),
            f"≥ 60,000/s: {verdict(best >= 60000)}",
        )
        self.results.add(
            "2. batched heartbeats",
            f"… 2 clients sending the same {s.batch} services (heartbeats/s)",
            spread(rates["same"]),
        )
        self.results.add(
            "2. batched heartbeats",
            f"baseline: {s.batch} rows a statement upserted into a bare table, no history (rows/s)",
            f"{spread(rates['bare'])} — heartbeat_many at "
            f"{best / statistics.median(rates['bare']):.2f}× of it",
            "diagnostic: the machine's speed in this run",
        )

    def python_overhead(self) -> None:
        print("3. Python client overhead", flush=True)
        s = self.sizes
        with self.conn() as conn:
            raw = "SELECT pystatus.heartbeat(%s::text, %s::text, %s::text, %s::float8)"

            def client() -> None:
                for i in range(s.python_calls):
                    pystatus.heartbeat(conn, f"svc-{i % s.services}")

            def direct() -> None:
                for i in range(s.python_calls):
                    conn.execute(raw, (f"svc-{i % s.services}", "ok", None, None)).fetchone()

            ratios = []
            for _ in range(max(s.runs, 3)):
                ratios.append(
                    statistics.median(self.timed(client, 1))
                    / statistics.median(self.timed(direct, 1))
                )
        self.results.add(
            "3. Python client",
            f"pystatus.heartbeat / raw execute, {s.python_calls} calls",
            spread(ratios, "{:.3f}×"),
            f"≤ 1.1×: {verdict(statistics.median(ratios) <= 1.1)}",
        )

    def scaling_curve(self) -> None:
        """Cost per heartbeat and per answer at 100, 1,000 and 10,000 services, and
        storage after 60 days of each (60-s heartbeats, the bytes per row measured)."""
        print("11. Scaling curve", flush=True)
        s = self.sizes
        for n in s.dashboard_services:
            self.reset_writes()
            self.sql(
                f"SELECT pystatus.heartbeat_many(array_agg('svc-' || i), array_fill('ok'::text, ARRAY[{n}]))"
                f" FROM generate_series(1, {n}) AS i"
            )
            script = f"\\set n random(1, {n})\nSELECT pystatus.heartbeat('svc-' || :n, 'ok');\n"
            runs = [self.pgbench(script, 4, s.seconds) for _ in range(s.runs)]
            tps = statistics.median(run["tps"] for run in runs)
            latency = statistics.median(run["latency_ms"] for run in runs)
            rows = n * 60 * 24 * 60
            stored = rows * self.bytes_per_row / 1e9
            live = self.live_status_ms.get(n)
            self.results.add(
                "11. scaling curve",
                f"{n:,} services: heartbeats at 4 clients (tps; ms each)",
                f"{tps:,.0f}; {latency:.2f}",
            )
            self.results.add(
                "11. scaling curve",
                f"{n:,} services: live_status in the database (ms)",
                "not measured" if live is None else f"{live:.2f}",
            )
            self.results.add(
                "11. scaling curve",
                f"{n:,} services: history after 60 days of 60-s heartbeats",
                f"{rows:,} rows, {stored:,.1f} GB",
            )
        for name, ms in self.answer_ms.items():
            self.results.add(
                "11. scaling curve",
                f"{name}, {s.days} days (ms): the same at any fleet size (one service's rows)",
                f"{ms:,.1f}",
            )

    def dashboard_read(self) -> None:
        print("4. Dashboard read", flush=True)
        for n in self.sizes.dashboard_services:
            self.reset_writes()
            self.sql(
                f"SELECT pystatus.heartbeat_many(array_agg('svc-' || i), array_fill('ok'::text, ARRAY[{n}]))"
                f" FROM generate_series(1, {n}) AS i"
            )
            self.sql(
                f"INSERT INTO bench.option1_history (service_name, status, heartbeat_timestamp)"
                f" SELECT 'svc-' || i, 'ok', now() - m * interval '1 minute'"
                f" FROM generate_series(1, {n}) AS i, generate_series(0, 59) AS m; ANALYZE bench.option1_history"
            )
            live = self.pgbench("SELECT * FROM pystatus.live_status;\n", 1, self.sizes.seconds)[
                "latency_ms"
            ]
            seed = self.pgbench(OPTION1_CURRENT, 1, self.sizes.seconds)["latency_ms"]
            inside = [self.execution_ms("SELECT * FROM pystatus.live_status") for _ in range(5)]
            self.live_status_ms[n] = statistics.median(inside)
            self.results.add(
                "4. dashboard read",
                f"live_status, {n:,} services, in the database (ms)",
                spread(inside, "{:.2f}"),
                f"< 5 ms at 10,000: {verdict(statistics.median(inside) < 5)}" if n >= 10000 else "",
            )
            self.results.add(
                "4. dashboard read",
                f"live_status, {n:,} services, at a pgbench client, all rows sent (ms)",
                f"{live:.2f}",
            )
            self.results.add(
                "4. dashboard read",
                f"seed Option 1 DISTINCT ON over {n * 60:,} rows, at the client (ms)",
                f"{seed:.2f} ({seed / live:.1f}× slower)",
            )

    def execution_ms(self, query: str) -> float:
        """Server-side execution time of a query (EXPLAIN ANALYZE), without the transfer."""
        plan = self.sql(f"EXPLAIN (ANALYZE, TIMING OFF) {query}")
        return float(re.search(r"Execution Time: ([\d.]+) ms", plan[-1][0]).group(1))  # type: ignore[union-attr]

    def history_answers(self) -> None:
        s = self.sizes
        rows = s.fleet * s.days * 1440
        print(f"5. Uptime and incidents over {rows:,} rows", flush=True)
        self.reset_writes()
        self.sql("TRUNCATE pystatus.rollup_hourly, pystatus.rollup_daily, pystatus.rollup_dirty")
        self.sql(
            f"INSERT INTO system_status (service_name, status, last_heartbeat)"
            f" SELECT 'svc-' || i, 'ok', now() FROM generate_series(1, {s.fleet}) AS i"
        )
        self.sql(
            "ALTER TABLE system_status_history DISABLE TRIGGER system_status_history_late_rows"
        )
        self.sql(
            f"SELECT pystatus.create_history_partitions(now() - interval '{s.days + 1} days', now())"
        )
        load = time.perf_counter()
        # A day per transaction; every 997th minute down, for incidents. In time
        # order, as heartbeats arrive: each page holds a moment of every service.
        for day in range(s.days):
            self.sql(
                f"INSERT INTO system_status_history (heartbeat_timestamp, service_name, status, latency_ms)"
                f" SELECT now() - interval '{s.days} days' + ({day} * 1440 + m) * interval '1 minute',"
                f" 'svc-' || i, CASE WHEN (m + i) % 997 = 0 THEN 'down' ELSE 'ok' END, 20 + (m * i) % 50"
                f" FROM generate_series(0, 1439) AS m, generate_series(1, {s.fleet}) AS i ORDER BY m, i"
            )
        self.sql("ALTER TABLE system_status_history ENABLE TRIGGER system_status_history_late_rows")
        self.results.notes.append(
            f"Loading {rows:,} history rows took {time.perf_counter() - load:,.0f} s."
        )
        # A month of history written over a month has been vacuumed as it went;
        # loaded at once, autovacuum would work through it during the timings
        # below (minutes of both cores): vacuumed here, as it would have been.
        vacuum = time.perf_counter()
        self.sql("VACUUM (ANALYZE) system_status_history")
        self.results.notes.append(
            f"Vacuuming them took {time.perf_counter() - vacuum:,.0f} s (before the timings)."
        )
        self.sql(
            f"UPDATE pystatus.rollup_state SET rolled_until = date_trunc('hour', now() - interval '{s.days + 1} days')"
        )
        start = time.perf_counter()
        self.sql("SELECT pystatus.refresh_rollups()")
        self.results.add(
            "5. uptime",
            f"rolling up {s.days} days for {s.fleet:,} services (s)",
            f"{time.perf_counter() - start:,.1f}",
        )
        window = f"now() - interval '{s.days} days'"
        # pg_cron refreshes the rollups every minute; this cluster has no pg_cron,
        # and loading took minutes: refresh them as the job would have.
        self.sql("SELECT pystatus.refresh_rollups()")
        # Rollups written over a month are vacuumed and analyzed as they grow;
        # written at once, they are here, as history was (unvacuumed, every
        # answer read each row's heap page: 1.5 times slower).
        self.sql(
            "VACUUM (ANALYZE) pystatus.rollup_hourly, pystatus.rollup_daily,"
            " pystatus.rollup_spans, pystatus.rollup_current"
        )
        rolled_by_name: dict[str, list[float]] = {}
        queries = {
            "one service": f"SELECT * FROM pystatus.uptime{{}}('svc-1', {window})",
            "fleet": f"SELECT * FROM pystatus.uptime{{}}(NULL, {window})",
        }
        for name, query in queries.items():
            rolled = self.timed(lambda q=query: self.sql(q.format("")))
            rolled_by_name[name] = rolled
            # Once, cold: the raw computation over the whole history is the slow baseline.
            raw = self.timed(lambda q=query: self.sql(q.format("_raw")), 1, warm_up=False)
            speedup = statistics.median(raw) / statistics.median(rolled)
            target = "< 3 ms" if name == "one service" else "< 50 ms"
            limit = 3 if name == "one service" else 50
            self.results.add(
                "5. uptime",
                f"{name}, {s.days} days, from rollups (ms)",
                spread(rolled, "{:,.1f}"),
                f"{target}: {verdict(statistics.median(rolled) < limit)}",
            )
            self.results.add(
                "5. uptime",
                f"{name}, {s.days} days, from raw history (ms)",
                f"{spread(raw, '{:,.0f}')} — rollups {speedup:,.0f}× faster",
                f"≥ 100× (fleet): {verdict(speedup >= 100)}" if name == "fleet" else "",
            )
        self.sql("SELECT pystatus.refresh_rollups()")
        self.dashboard_api()
        self.sql("SELECT pystatus.refresh_rollups()")
        incidents = self.timed(
            lambda: self.sql(f"SELECT * FROM pystatus.incidents('svc-1', {window})")
        )
        self.results.add(
            "5. uptime",
            f"incidents of one service, {s.days} days (ms)",
            spread(incidents, "{:,.1f}"),
            f"< 10 ms: {verdict(statistics.median(incidents) < 10)}",
        )
        self.answer_ms = {
            "one service's uptime": statistics.median(rolled_by_name["one service"]),
            "one service's incidents": statistics.median(incidents),
        }
        size = self.sql(
            "SELECT sum(pg_total_relation_size(partition)), sum(pg_relation_size(partition))"
            " FROM pystatus.history_partitions"
        )[0]
        count = self.sql("SELECT count(*) FROM system_status_history")[0][0]
        per_row = size[0] / count
        self.bytes_per_row = float(per_row)
        self.results.add(
            "7. storage",
            "bytes per history row, indexes included",
            f"{per_row:.0f} (heap {size[1] / count:.0f})",
            f"≤ 90: {verdict(per_row <= 90)}",
        )
        self.healthchecks_side_by_side()

    def healthchecks_side_by_side(self) -> None:
        """Healthchecks' database work beside pystatus's, in the same cluster, interleaved.

        Its schema (the columns and indexes of `api_check`, `api_ping` and
        `api_flip` that pinging and downtime reports use) and its statements, as
        its Django models issue them: a ping looks its check up by code, locks
        and updates it, reads it back and inserts the ping; "how long was it
        down" reads the check's flips since the window's start and walks them
        back from its current status in Python. Check 1's flips are svc-1's
        changes of status, so the two answers must agree.
        """
        s = self.sizes
        print("12. Side by side with Healthchecks", flush=True)
        self.sql(HEALTHCHECKS_TABLES)
        self.sql(
            f"INSERT INTO hc.api_check (id, code, created, timeout, grace, status)"
            f" SELECT i, md5('check-' || i)::uuid, now() - interval '{s.days + 1} days',"
            f" interval '1 minute', interval '1 minute', 'up' FROM generate_series(1, {s.fleet}) AS i"
        )
        # Check 1's flips are svc-1's changes of status as pystatus.transitions()
        # reads them from history, silence past the deadline included (which
        # Healthchecks records as a flip to down when a check is late); the
        # other checks' flips are the history's down minutes (a minute m of a
        # day with (m + i) % 997 = 0), there for the table's size.
        self.sql(
            f"INSERT INTO hc.api_flip (owner_id, created, processed, old_status, new_status)"
            f" SELECT 1, t.at, t.at, f.hc, n.hc"
            f" FROM pystatus.transitions('svc-1', now() - interval '{s.days + 1} days', now()) AS t"
            f" CROSS JOIN LATERAL (SELECT CASE WHEN t.from_status IN ('down', 'stale') THEN 'down'"
            f"                                 ELSE 'up' END AS hc) AS f"
            f" CROSS JOIN LATERAL (SELECT CASE WHEN t.to_status IN ('down', 'stale') THEN 'down'"
            f"                                 ELSE 'up' END AS hc) AS n"
            f" WHERE t.from_status IS NOT NULL AND f.hc <> n.hc ORDER BY t.at"
        )
        self.sql(
            "UPDATE hc.api_check SET status = coalesce((SELECT new_status FROM hc.api_flip"
            " WHERE owner_id = 1 ORDER BY created DESC LIMIT 1), 'up') WHERE id = 1"
        )
        self.sql(
            f"INSERT INTO hc.api_flip (owner_id, created, processed, old_status, new_status)"
            f" SELECT i, at, at, CASE k WHEN 0 THEN 'up' ELSE 'down' END, CASE k WHEN 0 THEN 'down' ELSE 'up' END"
            f" FROM (SELECT min(heartbeat_timestamp) AS start FROM system_status_history) AS h,"
            f" generate_series(2, {s.fleet}) AS i, generate_series(0, {s.days - 1}) AS d,"
            f" LATERAL (SELECT (997 - i % 997) % 997 AS m UNION ALL SELECT (997 - i % 997) % 997 + 997) AS m,"
            f" generate_series(0, 1) AS k,"
            f" LATERAL (SELECT h.start + (d * 1440 + m.m + k) * interval '1 minute' AS at) AS t"
            f" WHERE m.m < 1440 ORDER BY at"
        )
        self.sql("VACUUM (ANALYZE) hc.api_check, hc.api_flip")
        flips = self.sql("SELECT count(*) FROM hc.api_flip WHERE owner_id = 1")[0][0]
        window = timedelta(days=s.days)
        since_sql = f"now() - interval '{s.days} days'"

        def healthchecks_downtime() -> float:
            """Seconds down over the window, as Check.downtimes_by_boundary() computes them."""
            db = self._db_or_open()
            check = db.execute(
                "SELECT * FROM hc.api_check WHERE code = %s LIMIT 21", (CHECK_ONE,)
            ).fetchone()
            assert check is not None
            until = datetime.now(timezone.utc)  # Django's timezone.now(): no round trip
            since = until - window
            events = db.execute(
                "SELECT created, old_status FROM hc.api_flip WHERE owner_id = %s AND created > %s",
                (check[0], since),
            ).fetchall()
            down, moment, status = 0.0, until, check[-1]
            for created, old_status in sorted(events, reverse=True):
                if status == "down":
                    down += (moment - created).total_seconds()
                moment, status = created, old_status
            if status == "down":
                down += (moment - since).total_seconds()
            return down

        def pystatus_downtime() -> float:
            row = self.sql(f"SELECT down_seconds FROM pystatus.uptime('svc-1', {since_sql})")
            return float(row[0][0])

        client: dict[str, list[float]] = {"healthchecks": [], "pystatus": []}
        for _ in range(max(s.runs, 3) * 3):  # alternated, so drift hits both alike
            for name, answer in (
                ("healthchecks", healthchecks_downtime),
                ("pystatus", pystatus_downtime),
            ):
                client[name] += self.timed(answer, 1, warm_up=False)
        database = {
            "healthchecks": self.execution_ms(
                f"SELECT created, old_status FROM hc.api_flip WHERE owner_id = 1"
                f" AND created > {since_sql}"
            ),
            "pystatus": self.execution_ms(f"SELECT * FROM pystatus.uptime('svc-1', {since_sql})"),
        }
        theirs, ours = healthchecks_downtime(), pystatus_downtime()
        hc_ms, ours_ms = (statistics.median(client[n]) for n in ("healthchecks", "pystatus"))
        self.results.add(
            "12. Healthchecks",
            f"one check's downtime over {s.days} days at the client (ms), Healthchecks:"
            f" its {flips} flips walked in Python",
            f"{spread(client['healthchecks'], '{:,.2f}')}; {database['healthchecks']:.2f} in the database",
        )
        self.results.add(
            "12. Healthchecks",
            f"one service's downtime over {s.days} days at the client (ms), pystatus.uptime()",
            f"{spread(client['pystatus'], '{:,.2f}')}; {database['pystatus']:.2f} in the database",
            f"pystatus / Healthchecks {ours_ms / hc_ms:.2f}× (diagnostic)",
        )
        self.results.add(
            "12. Healthchecks",
            "the two answers (s down)",
            f"Healthchecks {theirs:,.0f}, pystatus {ours:,.0f}",
            f"agree within a minute: {verdict(abs(theirs - ours) <= 60)}",
        )
        # A ping's database work, prepared statements, each client its checks at random.
        pick = f"\\set n random(1, {min(s.services, s.fleet)})\n"
        ping = pick + HEALTHCHECKS_PING
        beat = pick + "SELECT pystatus.heartbeat('svc-' || :n, 'ok');\n"
        for clients in s.clients[1:2] or s.clients:
            tps: dict[str, list[float]] = {"healthchecks": [], "pystatus": []}
            for _ in range(s.runs):
                for name, script in (("healthchecks", ping), ("pystatus", beat)):
                    tps[name].append(self.pgbench(script, clients, s.seconds)["tps"])
            ratio = statistics.median(tps["healthchecks"]) / statistics.median(tps["pystatus"])
            self.results.add(
                "12. Healthchecks",
                f"a ping's database work, {clients} clients (tps): Healthchecks (5 statements"
                f" in a transaction) / pystatus.heartbeat()",
                f"{spread(tps['healthchecks'])} / {spread(tps['pystatus'])}: {ratio:.2f}×",
                f"pystatus ahead (< 1×): {verdict(ratio < 1)}",
            )

    def dashboard_api(self) -> None:
        """Each JSON response the dashboard page needs, over the fleet's history."""
        import urllib.request

        import uvicorn

        from pystatus.cluster import free_port
        from pystatus.dashboard import create_app

        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(self.dsn), port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            base = f"http://127.0.0.1:{port}/api"
            for path in [
                "/status",
                "/overview",
                "/incidents",
                "/uptime?days=30",
                "/services/svc-1/uptime",
                "/services/svc-1/days?days=90",
                "/services/svc-1/incidents?days=30",
                "/services/svc-1/transitions?days=1",
                "/services/svc-1/latency?days=7",
            ]:

                def fetch(url: str = base + path) -> None:
                    with urllib.request.urlopen(url) as response:
                        response.read()

                times = self.timed(fetch)
                ok = statistics.median(times) < 50
                self.results.add(
                    "4. dashboard API",
                    f"GET /api{path}, {self.sizes.fleet:,} services (ms)",
                    spread(times, "{:,.1f}"),
                    f"< 50 ms: {verdict(ok)}",
                )
        finally:
            server.should_exit = True
            thread.join(30)

    def alerts(self) -> None:
        print("7. Alerts", flush=True)
        s = self.sizes
        # The heartbeat path as installed, against the same path with the copy
        # trigger's event recording cut out, interleaved: a heartbeat repeating
        # its status. (Instruction counts are the finer measure:
        # bench/instructions.py with without_events() as its setup.)
        script = (
            f"\\set n random(1, {s.services})\nSELECT pystatus.heartbeat('svc-' || :n, 'ok');\n"
        )
        installed = self.sql(
            "SELECT pg_get_functiondef('pystatus._copy_status_to_history'::regproc)"
        )[0][0]
        self.reset_writes()
        self.sql("SELECT pystatus.add_alert_channel('bench', 'webhook', 'http://127.0.0.1:9/')")
        self.sql("SELECT pystatus.add_alert_rule('*', 'bench')")
        clients = 4
        tps: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(max(s.runs, 3)):
            for with_events in (True, False):
                self.sql(installed if with_events else without_events(installed))
                tps[with_events].append(self.pgbench(script, clients, s.seconds)["tps"])
        self.sql(installed)
        ratio = statistics.median(tps[True]) / statistics.median(tps[False])
        self.results.add(
            "7. alerts",
            f"heartbeat, status unchanged, alerting installed / not, {clients} clients",
            f"{ratio:.2f}× ({spread(tps[True])} / {spread(tps[False])} tps)",
            f"≥ 0.98×: {verdict(ratio >= 0.98)}",
        )
        self.sql("DELETE FROM pystatus.alert_channels")
        self.alert_latency()

    def alert_latency(self) -> None:
        """From each silent service's deadline to its alert reaching a webhook."""
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from pystatus import alerts

        arrived: dict[str, float] = {}

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import json

                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                arrived.setdefault(body["service"], time.time())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        services = 20
        server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.reset_writes()
        self.sql(
            "SELECT pystatus.add_alert_channel('bench', 'webhook', %s)",
            (f"http://127.0.0.1:{server.server_port}/",),
        )
        self.sql("SELECT pystatus.add_alert_rule('late-*', 'bench')")
        worker = alerts.Worker(self.dsn)  # default settings: a 5 s poll
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            with self.conn() as conn:
                for n in range(services):  # deadlines spread over a few seconds
                    pystatus.set_expectations(
                        conn, f"late-{n}", timedelta(seconds=2 + n % 7 * 0.7), timedelta(0)
                    )
                    pystatus.heartbeat(conn, f"late-{n}", "ok")
                    time.sleep(0.13)
            deadline = time.monotonic() + 60
            while len(arrived) < services and time.monotonic() < deadline:
                time.sleep(0.1)
            deadlines = dict(
                self.sql(
                    "SELECT service_name, extract(epoch FROM stale_after)::float8"
                    " FROM pystatus.live_status WHERE service_name LIKE 'late-%'"
                )
            )
        finally:
            worker.stop()
            thread.join(15)
            server.shutdown()
        late = [arrived[name] - deadlines[name] for name in arrived]
        self.results.add(
            "7. alerts",
            f"a silent service's alert, after its deadline, {services} services (s)",
            f"median {statistics.median(late):.2f}, max {max(late):.2f}"
            f" ({len(arrived)} of {services} arrived)",
            f"max < 5 s: {verdict(len(arrived) == services and max(late) < 5)}",
        )

    def alert_storm(self) -> None:
        """Claiming as the queue grows, evaluating a storm, and a storm drained to a
        fast receiver by `pystatus alerts run` (a process of its own)."""
        print("13. Alert storms", flush=True)
        s = self.sizes
        self.sql(
            "SELECT pystatus.add_alert_channel('storm-a', 'webhook', 'http://127.0.0.1:9/', '{\"group_threshold\": 0}')"
        )
        self.sql(
            "SELECT pystatus.add_alert_channel('storm-b', 'webhook', 'http://127.0.0.1:9/', '{\"group_threshold\": 0}')"
        )
        self.sql("SELECT pystatus.add_alert_rule('a-*', 'storm-a')")
        self.sql("SELECT pystatus.add_alert_rule('b-*', 'storm-b')")
        claim_ms: dict[int, float] = {}
        db = self._db_or_open()

        def claim_four() -> None:
            with db.transaction(force_rollback=True):
                claimed = db.execute(
                    "SELECT * FROM pystatus.claim_alert_messages('bench', 4, interval '1 minute')"
                ).fetchall()
                assert len(claimed) == 4, claimed

        for pending in s.alert_queue:
            self._reset_alerts()
            # Half the services on each channel: a claim takes 2 of a channel's at a time.
            self.sql(
                "INSERT INTO system_status (service_name, status, last_heartbeat)"
                " SELECT chr(97 + i %% 2) || '-' || i, 'ok', now() - interval '10 minutes'"
                " FROM generate_series(1, %s) AS i",
                (pending,),
            )
            self.sql("SELECT pystatus.alert_sweep()")
            start = time.perf_counter()
            self.sql("SELECT * FROM pystatus.evaluate_alerts()")
            evaluate_ms = (time.perf_counter() - start) * 1000
            self.sql("VACUUM ANALYZE pystatus.alert_messages")
            times = self.timed(claim_four, runs=max(s.runs, 5))
            claim_ms[pending] = statistics.median(times)
            self.results.add(
                "13. alert storms",
                f"evaluate_alerts(), {pending:,} services newly stale, queued one message each (ms)",
                f"{evaluate_ms:,.0f}",
            )
            self.results.add(
                "13. alert storms",
                f"claim_alert_messages(), 4 at a time, {pending:,} pending (ms)",
                spread(times, "{:,.2f}"),
            )
        smallest, largest = min(s.alert_queue), max(s.alert_queue)
        ratio = claim_ms[largest] / claim_ms[smallest]
        self.results.add(
            "13. alert storms",
            f"a claim at {largest:,} pending / at {smallest:,}",
            f"{ratio:.2f}×",
            f"≤ 2× (O(batch), not O(queue)): {verdict(ratio <= 2)}",
        )
        self._reset_alerts()
        self.sql("DELETE FROM pystatus.alert_channels WHERE name LIKE 'storm-%'")
        for summed_up in (True, False):
            self._storm_drain(s.alert_storm, summed_up)

    def _reset_alerts(self) -> None:
        self.reset_writes()
        self.sql(
            "TRUNCATE pystatus.alert_messages, pystatus.alert_attempts, pystatus.alert_state,"
            " pystatus.status_events"
        )

    def _storm_drain(self, services: int, summed_up: bool) -> None:
        """``services`` silent at once, their deadline in common: from it until the
        last alert reaches a webhook on 127.0.0.1; then all back at once, until the
        last recovery."""
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        arrived: dict[tuple[str, str], float] = {}

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                now = time.time()
                for entry in body.get("services") or [body]:
                    arrived.setdefault((body["kind"], entry["service"]), now)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._reset_alerts()
        options = "{}" if summed_up else '{"group_threshold": 0}'
        self.sql(
            "SELECT pystatus.add_alert_channel('storm', 'webhook', %s, %s)",
            (f"http://127.0.0.1:{server.server_port}/", options),
        )
        self.sql("SELECT pystatus.add_alert_rule('storm-*', 'storm')")
        worker = subprocess.Popen(
            [sys.executable, "-m", "pystatus.cli", "alerts", "run", "--dsn", self.dsn],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        how = "summed up (default)" if summed_up else "one message each"
        try:
            limit = time.monotonic() + 30
            while not self.sql(
                "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'pystatus alerts%'"
            ):
                if time.monotonic() > limit:
                    raise RuntimeError("the alert worker did not connect")
                time.sleep(0.1)
            # Their deadline (last heartbeat + 60 s + 60 s) 2 s from now, all the same.
            self.sql(
                "INSERT INTO system_status (service_name, status, last_heartbeat)"
                " SELECT 'storm-' || i, 'ok', now() - interval '118 seconds'"
                " FROM generate_series(1, %s) AS i",
                (services,),
            )
            deadline = self.sql(
                "SELECT extract(epoch FROM max(stale_after))::float8 FROM pystatus.live_status"
            )[0][0]
            down = self._wait_for_arrivals(arrived, "down", services)
            back = time.time()
            with self.conn() as conn:
                pystatus.heartbeat_many(
                    conn, [(f"storm-{i}", "ok") for i in range(1, services + 1)]
                )
            recovered = self._wait_for_arrivals(arrived, "recovered", services)
            messages = self.sql("SELECT count(*) FROM pystatus.alert_messages")[0][0]
        finally:
            worker.terminate()
            worker.wait(30)
            server.shutdown()
            server.server_close()
        last_down = max(down) - deadline if len(down) == services else float("inf")
        self.results.add(
            "13. alert storms",
            f"{services:,} services silent at once, {how}: after their deadline, the first"
            " alert, the last (s)",
            f"{min(down, default=float('nan')) - deadline:.2f}, {last_down:.2f}"
            f" ({len(down):,} of {services:,} arrived, {messages:,} messages both ways)",
            f"last < 60 s: {verdict(last_down < 60)}",
        )
        self.results.add(
            "13. alert storms",
            f"the same {services:,} back at once, {how}: the last recovery (s)",
            f"{max(recovered, default=float('inf')) - back:.2f}"
            f" ({len(recovered):,} of {services:,} arrived)",
        )
        self.sql("DELETE FROM pystatus.alert_channels WHERE name = 'storm'")
        self._reset_alerts()

    @staticmethod
    def _wait_for_arrivals(
        arrived: dict[tuple[str, str], float], kind: str, services: int, seconds: float = 180
    ) -> list[float]:
        limit = time.monotonic() + seconds
        while time.monotonic() < limit:
            times = [t for (k, _), t in list(arrived.items()) if k == kind]
            if len(times) >= services:
                return times
            time.sleep(0.1)
        return [t for (k, _), t in list(arrived.items()) if k == kind]

    def metrics_scrape(self) -> None:
        n = max(self.sizes.dashboard_services)
        print(f"8. Prometheus scrape, {n:,} services", flush=True)
        self.reset_writes()
        self.sql("TRUNCATE pystatus.rollup_hourly, pystatus.rollup_daily")
        self.sql(
            f"SELECT pystatus.heartbeat_many(array_agg('svc-' || i), array_fill('ok'::text, ARRAY[{n}]))"
            f" FROM generate_series(1, {n}) AS i"
        )
        # Rollups as a month of history leaves them: 24 hours and 30 days a service
        # (the hours with their running totals: what the earlier ones add up to).
        for table, unit, count, totals in (
            (
                "rollup_hourly",
                "hour",
                24,
                ", (24 - k)::bigint * 3500000000, (24 - k)::bigint * 100000000, 0",
            ),
            ("rollup_daily", "day", 30, ""),
        ):
            self.sql(
                f"INSERT INTO pystatus.{table} SELECT 'svc-' || i,"
                f" date_trunc('{unit}', (SELECT rolled_until FROM pystatus.rollup_state))"
                f" - k * interval '1 {unit}', 3500000000, 100000000, 0, 60, 60, 12, 11, 20, 30"
                f"{totals} FROM generate_series(1, {n}) AS i, generate_series(1, {count}) AS k"
            )
        # Statistics as autovacuum keeps them (system_status was just refilled).
        self.sql(
            "ANALYZE system_status; ANALYZE pystatus.rollup_hourly; ANALYZE pystatus.rollup_daily"
        )
        windows = self.timed(lambda: self.sql("SELECT pystatus._refresh_uptime_windows()"), runs=3)
        self.results.add(
            "8. Prometheus scrape",
            f"uptime windows recomputed by refresh_rollups(), {n:,} services (ms)",
            spread(windows, "{:.0f}"),
            "diagnostic: once per rolled-up hour, not per scrape",
        )
        self.sql("ANALYZE pystatus.uptime_windows")
        samples = self.sql("SELECT count(*) FROM pystatus.metrics()")[0][0]
        inside = [self.execution_ms("SELECT * FROM pystatus.metrics()") for _ in range(5)]
        self.results.add(
            "8. Prometheus scrape",
            f"pystatus.metrics(), {n:,} services, {samples:,} samples, in the database (ms)",
            spread(inside, "{:.1f}"),
            f"< 100 ms: {verdict(statistics.median(inside) < 100)}" if n >= 10000 else "",
        )

    def ping_endpoint(self) -> None:
        """HTTP pings through `pystatus ingest` against pystatus.heartbeat() from Python,
        both as writer logins, one after the other in this run."""
        import http.client

        print("9. HTTP ping endpoint", flush=True)
        s = self.sizes
        calls = s.python_calls
        self.reset_writes()
        self.sql("DROP ROLE IF EXISTS bench_ingest")
        self.sql("CREATE ROLE bench_ingest LOGIN IN ROLE pystatus_writer")
        self.sql("DELETE FROM pystatus.ping_tokens")
        tokens = [
            self.sql("SELECT pystatus.add_ping_token(%s)", (f"svc-{i}",))[0][0]
            for i in range(s.services)
        ]
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pystatus.cli",
                "ingest",
                "--port",
                str(port),
                "--rate-limit",
                "0",
                "--dsn",
                f"{self.dsn} user=bench_ingest",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    probe.request("GET", "/healthz")
                    if probe.getresponse().status == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "pystatus ingest did not start"
                time.sleep(0.1)

            def pings(count: int, offset: int = 0) -> list[float]:
                link = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                latencies = []
                for i in range(count):
                    start = time.perf_counter()
                    link.request("GET", f"/ping/{tokens[(i + offset) % len(tokens)]}")
                    answer = link.getresponse()
                    answer.read()
                    assert answer.status == 200, answer.status
                    latencies.append((time.perf_counter() - start) * 1000)
                link.close()
                return latencies

            def beats(count: int) -> list[float]:
                with psycopg.connect(self.writer_dsn, autocommit=True) as conn:
                    latencies = []
                    for i in range(count):
                        start = time.perf_counter()
                        pystatus.heartbeat(conn, f"svc-{i % s.services}")
                        latencies.append((time.perf_counter() - start) * 1000)
                return latencies

            pings(min(calls, 200))  # warm up: the pool's connections, prepared statements
            beats(min(calls, 200))
            ping_rates, beat_rates, ping_ms, beat_ms = [], [], [], []
            for _ in range(max(s.runs, 3)):
                for action, rates, all_ms in (
                    (pings, ping_rates, ping_ms),
                    (beats, beat_rates, beat_ms),
                ):
                    start = time.perf_counter()
                    latencies = action(calls)
                    rates.append(calls / (time.perf_counter() - start))
                    all_ms.extend(latencies)
            clients = 4
            threaded: list[float] = []
            for _ in range(max(s.runs, 3)):
                workers = [
                    threading.Thread(target=pings, args=(calls // clients, k * 7))
                    for k in range(clients)
                ]
                start = time.perf_counter()
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
                threaded.append(clients * (calls // clients) / (time.perf_counter() - start))
        finally:
            server.terminate()
            server.wait(30)

        # The SQL alone: ping() (token lookup, then heartbeat()) against heartbeat().
        self.sql("CREATE TABLE IF NOT EXISTS bench.ping_tokens (n int PRIMARY KEY, token text)")
        self.sql("TRUNCATE bench.ping_tokens")
        with self.conn() as conn:
            conn.cursor().executemany(
                "INSERT INTO bench.ping_tokens VALUES (%s, %s)", list(enumerate(tokens, 1))
            )
        self.sql("GRANT USAGE ON SCHEMA bench TO bench_ingest")
        self.sql("GRANT SELECT ON bench.ping_tokens TO bench_ingest")
        pick = f"\\set n random(1, {s.services})\n"
        sql_rates: dict[str, list[float]] = {"ping": [], "heartbeat": []}
        for _ in range(max(s.runs, 3)):
            sql_rates["ping"].append(
                self.pgbench(
                    pick
                    + "SELECT pystatus.ping((SELECT token FROM bench.ping_tokens WHERE n = :n));\n",
                    1,
                    s.seconds,
                    dsn=f"{self.dsn} user=bench_ingest",
                )["tps"]
            )
            sql_rates["heartbeat"].append(
                self.pgbench(
                    pick + "SELECT pystatus.heartbeat('svc-' || (:n - 1));\n",
                    1,
                    s.seconds,
                    dsn=self.writer_dsn,
                )["tps"]
            )
        self.results.add(
            "9. HTTP pings",
            "in SQL, 1 pgbench client: pystatus.ping(token) / pystatus.heartbeat(name)",
            f"{statistics.median(sql_rates['ping']) / statistics.median(sql_rates['heartbeat']):.2f}×"
            f" ({spread(sql_rates['ping'])} / {spread(sql_rates['heartbeat'])} tps)",
            "diagnostic: the token lookup",
        )

        def quantile(values: list[float], q: float) -> float:
            return sorted(values)[min(len(values) - 1, int(q * len(values)))]

        ratio = statistics.median(ping_rates) / statistics.median(beat_rates)
        self.results.add(
            "9. HTTP pings",
            f"pystatus ingest, 1 keep-alive client, {calls} pings (pings/s)",
            spread(ping_rates),
        )
        self.results.add(
            "9. HTTP pings",
            f"pystatus.heartbeat() from Python, 1 connection, {calls} calls (calls/s)",
            spread(beat_rates),
        )
        self.results.add(
            "9. HTTP pings",
            "ping / direct heartbeat, 1 client (rate ratio)",
            f"{ratio:.2f}×",
            "diagnostic: an HTTP hop and a token lookup",
        )
        self.results.add(
            "9. HTTP pings",
            "latency p50 / p99: ping vs direct heartbeat (ms)",
            f"{quantile(ping_ms, 0.5):.2f} / {quantile(ping_ms, 0.99):.2f} vs"
            f" {quantile(beat_ms, 0.5):.2f} / {quantile(beat_ms, 0.99):.2f}",
            f"ping p50 < 5 ms: {verdict(quantile(ping_ms, 0.5) < 5)}",
        )
        self.results.add(
            "9. HTTP pings",
            f"pystatus ingest, {clients} keep-alive clients (pings/s)",
            spread(threaded),
        )

    def docker_collector(self) -> None:
        """CPU of `pystatus collect docker` for 100 containers, 50 with a health check,
        measured as the CPU time of its process over a minute."""
        import resource

        from tests.dockerd import IMAGE, Dockerd, import_busybox_image

        print("10. Docker collector", flush=True)
        count = 100 if self.sizes.services >= 100 else 10
        watched = 60 if self.sizes.services >= 100 else 5  # seconds
        interval = 10
        daemon = Dockerd.temporary()
        try:
            daemon.start()
            client = daemon.client()
            import_busybox_image(client)
            health = {
                "test": ["CMD-SHELL", "true"],
                "interval": 30 * 1_000_000_000,
                "start_period": 1_000_000_000,
            }
            for i in range(count):
                client.containers.run(
                    IMAGE,
                    ["sleep", "100000"],
                    name=f"bench-{i}",
                    detach=True,
                    init=True,
                    network_mode="none",
                    **({"healthcheck": health} if i % 2 else {}),
                )
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            collector = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pystatus.cli",
                    "collect",
                    "docker",
                    "--socket",
                    daemon.url,
                    "--interval",
                    str(interval),
                    "--dsn",
                    self.writer_dsn,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(3)  # started, first snapshot sent
            with open(f"/proc/{collector.pid}/stat") as stat:
                start_ticks = sum(int(v) for v in stat.read().rsplit(")", 1)[1].split()[11:13])
            time.sleep(watched)
            with open(f"/proc/{collector.pid}/stat") as stat:
                end_ticks = sum(int(v) for v in stat.read().rsplit(")", 1)[1].split()[11:13])
            collector.terminate()
            collector.wait(30)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            started_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            recorded = self.sql(
                "SELECT count(*) FROM system_status WHERE service_name LIKE 'bench-%'"
            )[0][0]
            client.close()
        finally:
            daemon.remove()
        steady = (end_ticks - start_ticks) / os.sysconf("SC_CLK_TCK")
        self.results.add(
            "10. Docker collector",
            f"CPU of the collector, {count} containers, snapshot every {interval} s"
            " (% of one core, steady state)",
            f"{100 * steady / watched:.2f} % ({steady:.2f} s CPU in {watched} s;"
            f" {recorded} of {count} recorded)",
            "diagnostic: per 100 containers",
        )
        self.results.add(
            "10. Docker collector",
            "CPU of the collector's whole life, start-up (Python, imports) included (s)",
            f"{started_cpu:.2f}",
        )

    def retention(self) -> None:
        print("6. Retention", flush=True)
        s = self.sizes
        rows_sql = (
            f"INSERT INTO system_status_history (heartbeat_timestamp, service_name, status)"
            f" SELECT {{month}} + m * interval '1 minute', 'svc-' || i, 'ok'"
            f" FROM generate_series(1, {s.fleet}) AS i, generate_series(0, {s.retention_rows_days * 1440 - 1}) AS m"
        )
        months = {
            "drop": "date_trunc('month', now() - interval '100 days')",
            "delete": "date_trunc('month', now() - interval '130 days')",
        }
        self.sql(
            "ALTER TABLE system_status_history DISABLE TRIGGER system_status_history_late_rows"
        )
        for month in months.values():
            self.sql(
                f"SELECT pystatus.create_history_partitions({month}, {month} + interval '1 day')"
            )
            self.sql(rows_sql.format(month=month))
        self.sql("ALTER TABLE system_status_history ENABLE TRIGGER system_status_history_late_rows")
        rows = s.fleet * s.retention_rows_days * 1440

        def wal_and_ms(statement: str) -> tuple[float, float]:
            with self.conn() as conn:
                before = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]  # type: ignore[index]
                start = time.perf_counter()
                conn.execute(statement)
                elapsed = (time.perf_counter() - start) * 1000
                wal = conn.execute(
                    "SELECT pg_current_wal_insert_lsn() - %s::pg_lsn", (before,)
                ).fetchone()[0]  # type: ignore[index]
                return elapsed, float(wal)

        deleted = wal_and_ms(
            f"DELETE FROM system_status_history WHERE heartbeat_timestamp >= {months['delete']}"
            f" AND heartbeat_timestamp < {months['delete']} + interval '1 month'"
        )
        # Heartbeats at a steady rate while maintenance drops the expired partitions.
        load: dict[str, float] = {}
        flowing = threading.Thread(
            target=lambda: load.update(
                self.pgbench(
                    f"\\set n random(1, {s.services})\nSELECT pystatus.heartbeat('svc-' || :n);\n",
                    4,
                    max(s.seconds, 4),
                    "-R",
                    "400",
                )
            )
        )
        flowing.start()
        time.sleep(1)
        dropped = wal_and_ms("SELECT pystatus.maintain()")
        flowing.join()
        self.results.add(
            "6. retention",
            f"DELETE of {rows:,} expired rows: time, WAL",
            f"{deleted[0]:,.0f} ms, {deleted[1] / 1e6:,.1f} MB",
        )
        self.results.add(
            "6. retention",
            f"drop of the expired partitions ({rows:,} rows): time, WAL",
            f"{dropped[0]:,.0f} ms, {dropped[1] / 1e6:,.3f} MB"
            f" ({deleted[1] / max(dropped[1], 1):,.0f}× less WAL)",
        )
        self.results.add(
            "6. retention",
            "heartbeats during maintenance (400/s target rate): done, failed",
            f"{load['tps']:,.0f}/s, {load['failed']:.0f} failed",
            f"zero errors: {verdict(load['failed'] == 0)}",
        )


# --- baselines, in a schema of their own --------------------------------------

BASELINE_TABLES = """
CREATE SCHEMA bench;
CREATE TABLE bench.bare_status (LIKE public.system_status INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
                                PRIMARY KEY (service_name)) WITH (fillfactor = 50);
CREATE TABLE bench.one_status (LIKE bench.bare_status INCLUDING ALL) WITH (fillfactor = 50);
CREATE TABLE bench.one_history (LIKE public.system_status_history INCLUDING DEFAULTS INCLUDING IDENTITY)
    PARTITION BY RANGE (heartbeat_timestamp);
CREATE TABLE bench.one_history_now PARTITION OF bench.one_history
    FOR VALUES FROM (date_trunc('month', now() - interval '1 month')) TO (date_trunc('month', now() + interval '2 months'));
CREATE TABLE bench.one_history_default PARTITION OF bench.one_history DEFAULT;
CREATE INDEX ON bench.one_history (service_name, heartbeat_timestamp DESC);
-- What any AFTER trigger costs, whatever it does: the same upsert into tables
-- with statement triggers like pystatus's, one that does nothing and one that
-- only copies the rows (no checks). The second is the fastest a trigger can
-- copy history; pystatus's trigger path is measured against both.
CREATE FUNCTION bench.do_nothing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE FUNCTION bench.copy_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.least_history (heartbeat_timestamp, service_name, status, current_task)
    SELECT n.last_heartbeat, n.service_name, n.status, n.current_task FROM new_rows AS n;
    RETURN NULL;
END $$;
CREATE TABLE bench.empty_trigger_status (LIKE bench.bare_status INCLUDING ALL) WITH (fillfactor = 50);
CREATE TABLE bench.least_status (LIKE bench.bare_status INCLUDING ALL) WITH (fillfactor = 50);
CREATE TABLE bench.least_history (LIKE bench.one_history INCLUDING DEFAULTS INCLUDING IDENTITY)
    PARTITION BY RANGE (heartbeat_timestamp);
CREATE TABLE bench.least_history_now PARTITION OF bench.least_history
    FOR VALUES FROM (date_trunc('month', now() - interval '1 month')) TO (date_trunc('month', now() + interval '2 months'));
CREATE TABLE bench.least_history_default PARTITION OF bench.least_history DEFAULT;
CREATE INDEX ON bench.least_history (service_name, heartbeat_timestamp DESC);
CREATE TRIGGER on_insert AFTER INSERT ON bench.empty_trigger_status REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench.do_nothing();
CREATE TRIGGER on_update AFTER UPDATE ON bench.empty_trigger_status
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bench.do_nothing();
CREATE TRIGGER on_insert AFTER INSERT ON bench.least_status REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench.copy_only();
CREATE TRIGGER on_update AFTER UPDATE ON bench.least_status
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bench.copy_only();
-- The seed's Option 1: one insert-only table, current status by DISTINCT ON.
CREATE TABLE bench.option1_history (
    id serial PRIMARY KEY, service_name varchar(64) NOT NULL, status varchar(16) NOT NULL,
    current_task text, heartbeat_timestamp timestamptz NOT NULL, created_at timestamptz DEFAULT now());
CREATE INDEX ON bench.option1_history (service_name, heartbeat_timestamp DESC);
"""
BARE = """INSERT INTO bench.bare_status AS s (service_name, status, current_task, last_heartbeat, updated_at)
VALUES ('svc-' || :n, 'ok', NULL, clock_timestamp(), clock_timestamp())
ON CONFLICT (service_name) DO UPDATE SET status = EXCLUDED.status, current_task = EXCLUDED.current_task,
    last_heartbeat = EXCLUDED.last_heartbeat, updated_at = EXCLUDED.updated_at;
"""
ONE_STATEMENT = """WITH up AS (
    INSERT INTO bench.one_status AS s (service_name, status, current_task, last_heartbeat, updated_at)
    VALUES ('svc-' || :n, 'ok', NULL, clock_timestamp(), clock_timestamp())
    ON CONFLICT (service_name) DO UPDATE SET status = EXCLUDED.status, current_task = EXCLUDED.current_task,
        last_heartbeat = EXCLUDED.last_heartbeat, updated_at = EXCLUDED.updated_at
    RETURNING service_name, status, current_task, last_heartbeat)
INSERT INTO bench.one_history (heartbeat_timestamp, service_name, status, current_task)
SELECT last_heartbeat, service_name, status, current_task FROM up;
"""
OPTION1 = """INSERT INTO bench.option1_history (service_name, status, current_task, heartbeat_timestamp)
VALUES ('svc-' || :n, 'ok', NULL, clock_timestamp());
"""
# Healthchecks' tables as its Django models create them, with the columns a
# ping and a downtime report touch (hc/api/models.py: Check, Ping, Flip).
HEALTHCHECKS_TABLES = """
CREATE SCHEMA hc;
CREATE TABLE hc.api_check (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, code uuid NOT NULL UNIQUE,
    name varchar(100) NOT NULL DEFAULT '', slug varchar(100) NOT NULL DEFAULT '',
    tags varchar(500) NOT NULL DEFAULT '', "desc" text NOT NULL DEFAULT '',
    project_id integer NOT NULL DEFAULT 1, created timestamptz NOT NULL,
    kind varchar(10) NOT NULL DEFAULT 'simple', timeout interval NOT NULL, grace interval NOT NULL,
    schedule varchar(100) NOT NULL DEFAULT '* * * * *', tz varchar(36) NOT NULL DEFAULT 'UTC',
    methods varchar(30) NOT NULL DEFAULT '', manual_resume boolean NOT NULL DEFAULT false,
    n_pings integer NOT NULL DEFAULT 0, last_ping timestamptz, last_start timestamptz,
    last_start_rid uuid, last_duration interval, has_confirmation_link boolean NOT NULL DEFAULT false,
    alert_after timestamptz, status varchar(6) NOT NULL DEFAULT 'new');
CREATE INDEX ON hc.api_check (project_id);
CREATE INDEX ON hc.api_check (project_id, slug);
CREATE INDEX ON hc.api_check (alert_after) WHERE status <> 'down';
CREATE TABLE hc.api_ping (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n integer,
    owner_id integer NOT NULL REFERENCES hc.api_check (id) DEFERRABLE INITIALLY DEFERRED,
    created timestamptz NOT NULL, kind varchar(6), scheme varchar(10) NOT NULL,
    remote_addr inet, method varchar(10) NOT NULL, ua varchar(200) NOT NULL, body text,
    body_raw bytea, object_size integer, exitstatus smallint, rid uuid);
CREATE INDEX ON hc.api_ping (owner_id);
CREATE TABLE hc.api_flip (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    owner_id integer NOT NULL REFERENCES hc.api_check (id) DEFERRABLE INITIALLY DEFERRED,
    created timestamptz NOT NULL, processed timestamptz,
    old_status varchar(8) NOT NULL, new_status varchar(8) NOT NULL);
CREATE INDEX ON hc.api_flip (owner_id);
CREATE INDEX ON hc.api_flip (processed) WHERE processed IS NULL;
"""
# Check 1's code, as the table was filled: md5('check-1')::uuid.
CHECK_ONE = str(uuid.UUID(hashlib.md5(b"check-1").hexdigest()))
# One successful ping of a check that is up: Check.objects.get(code=...), then in
# Check.ping()'s transaction the row lock, save() (every column; n_pings by an
# F() expression), refresh_from_db() and the Ping's insert.
HEALTHCHECKS_PING = """SELECT * FROM hc.api_check WHERE code = md5('check-' || :n)::uuid LIMIT 21;
BEGIN;
SELECT * FROM hc.api_check WHERE id = :n LIMIT 21 FOR UPDATE;
UPDATE hc.api_check SET name = '', slug = '', tags = '', "desc" = '', project_id = 1, kind = 'simple',
    timeout = interval '1 minute', grace = interval '1 minute', schedule = '* * * * *', tz = 'UTC',
    methods = '', manual_resume = false, last_ping = now(), last_start = NULL, last_start_rid = NULL,
    last_duration = NULL, has_confirmation_link = false, alert_after = now() + interval '2 minutes',
    n_pings = hc.api_check.n_pings + 1, status = 'up'
WHERE id = :n;
SELECT * FROM hc.api_check WHERE id = :n LIMIT 21;
INSERT INTO hc.api_ping (n, owner_id, created, kind, scheme, remote_addr, method, ua, body, body_raw,
    object_size, exitstatus, rid)
VALUES (1, :n, now(), NULL, 'http', '127.0.0.1', 'GET', 'curl/8.5.0', NULL, ''::bytea, NULL, NULL, NULL)
RETURNING id;
COMMIT;
"""
OPTION1_CURRENT = """SELECT DISTINCT ON (service_name) * FROM bench.option1_history
ORDER BY service_name, heartbeat_timestamp DESC;
"""


@contextmanager
def bench_cluster() -> Iterator[Cluster]:
    with Cluster.temporary(cron_database=None) as cluster:
        yield cluster


def machine() -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return [f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB memory, {platform.platform()}"]


def write_doc(bench: Bench, sizes: Sizes, command: str, started: float) -> None:
    versions = bench.sql(
        "SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = 'pg_partman')"
    )[0]
    settings = bench.sql(
        "SELECT string_agg(name || ' = ' || setting || coalesce(unit, ''), ', ' ORDER BY name)"
        " FROM pg_settings WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync',"
        " 'work_mem', 'max_wal_size', 'wal_level')"
    )[0][0]
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` (`make bench`) in {time.time() - started:,.0f} s; this file is rewritten by each run.",
        "",
        "- Machine: "
        + machine()[0]
        + "; shared and noisy, so every claim is a ratio against a baseline"
        " measured in the same run, variants interleaved.",
        f"- PostgreSQL: {versions[0]}; pg_partman {versions[1]}; a private cluster started by"
        " `pystatus.cluster` with default settings except the port.",
        f"- Settings: {settings}.",
        f"- Sizes: {sizes}.",
        "- pgbench: `pgbench -n -M prepared -c C -j min(C,2) -T seconds -f script` with the scripts in"
        " `bench/run.py`; medians of the runs, ranges in brackets.",
        "",
        "| scenario | figure | value | target |",
        "| --- | --- | --- | --- |",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in bench.results.rows),
        "",
        *(f"- {note}" for note in bench.results.notes),
        "",
    ]
    extra = DOC.with_name("benchmarks-notes.md")
    if extra.exists():
        lines += ["", extra.read_text()]
    DOC.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness works")
    parser.add_argument("--output", action="store_true", help="write docs/benchmarks.md")
    parser.add_argument(
        "--only", metavar="SCENARIO", help="run one scenario (a method of Bench, e.g. alerts)"
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    started = time.time()
    with bench_cluster() as cluster:
        bench = Bench(cluster, sizes)
        bench.setup()
        scenarios = (
            bench.single_row_heartbeats,
            bench.batched_heartbeats,
            bench.python_overhead,
            bench.dashboard_read,
            bench.history_answers,
            bench.scaling_curve,
            bench.retention,
            bench.alerts,
            bench.alert_storm,
            bench.metrics_scrape,
            bench.ping_endpoint,
            bench.docker_collector,
        )
        for scenario in scenarios:
            if args.only is None or scenario.__name__ == args.only:
                scenario()
        if args.output and args.only is None:
            write_doc(
                bench, sizes, "python -m bench.run" + (" --quick" if args.quick else ""), started
            )
            print(f"Wrote {DOC}")
        shutil.rmtree(bench.scripts, ignore_errors=True)


if __name__ == "__main__":
    main()
