"""An upgrade under load: each frozen release with migrations still to run, loaded with history, upgraded to
this version while services heartbeat under ``statement_timeout = 1s``; and
once more with a service's transaction held open on its row for the first
seconds of the upgrade (migrate gives way, then goes on).

    python -m bench.upgrade                    # 500 services, 25 days (18 M rows)
    python -m bench.upgrade --services 50 --days 2

Prints how long migrate took (its transaction, and the indexes built after it),
the heartbeats sent meanwhile, the failed ones and the longest.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import psycopg

from bench.run import bench_cluster
from pystatus import migrations

WRITERS = 4


def install(dsn: str, release: Path, services: int, days: int) -> float:
    """The release as it was, with ``days`` of one-minute history; the load's seconds."""
    from tests.test_releases import install_release

    install_release(dsn, release)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO system_status (service_name, status, last_heartbeat, updated_at)"
            " SELECT 'svc-' || s, 'ok', now(), now() FROM generate_series(1, %s) AS s",
            [services],
        )
        conn.execute(
            "INSERT INTO system_status_history (service_name, status, heartbeat_timestamp)"
            " SELECT 'svc-' || s, CASE WHEN m %% 997 = s %% 997 THEN 'down' ELSE 'ok' END,"
            "        now() - %s * interval '1 day' + m * interval '1 minute'"
            " FROM generate_series(1, %s) AS s, generate_series(0, %s * 1440 - 1) AS m",
            [days, services, days],
        )
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def upgrade(dsn: str, hold_open: float) -> None:
    stop = threading.Event()
    waits: list[float] = []
    failed: list[str] = []

    def writer(service: str) -> None:
        with psycopg.connect(dsn, autocommit=True, options="-c statement_timeout=1s") as conn:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    conn.execute("SELECT pystatus.heartbeat(%s, 'ok')", [service])
                except psycopg.Error as exc:
                    failed.append(type(exc).__name__)
                waits.append(time.perf_counter() - started)
                stop.wait(0.02)

    holding = threading.Event()

    def blocker() -> None:
        with psycopg.connect(dsn) as conn, psycopg.connect(dsn, autocommit=True) as watch:
            conn.execute("SELECT pystatus.heartbeat('svc-1', 'ok')")
            holding.set()  # its row lock, and system_status's, held from here
            # At least hold_open seconds, and until migrate has given way once
            # (its lock request seen, then gone): whatever the machine's speed.
            started, seen = time.monotonic(), False
            while True:
                waiting = watch.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    " AND relation = 'public.system_status'::regclass"
                ).fetchone()
                seen = seen or bool(waiting and waiting[0])
                gave_way = seen and waiting == (0,)
                held = time.monotonic() - started
                if (gave_way and held >= hold_open) or held > 120:  # an upgrade that never waits
                    break
                time.sleep(0.05)
            conn.rollback()

    threads = [threading.Thread(target=writer, args=(f"svc-{i}",)) for i in range(2, 2 + WRITERS)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    if hold_open:
        threading.Thread(target=blocker).start()
        if not holding.wait(60):
            raise RuntimeError("the open transaction did not start")
    started = time.perf_counter()
    done = migrations.apply(dsn)
    took = time.perf_counter() - started
    time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join()
    print(
        f"  migrate {took:.1f} s ({done.attempts} attempt(s), {len(done.indexed)} partition(s)"
        f" indexed after); {len(waits):,} heartbeats by {WRITERS} services, {len(failed)} failed,"
        f" the longest {max(waits) * 1000:.0f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--days", type=int, default=25)
    parser.add_argument(
        "--hold-open", type=float, default=5.0, help="seconds the service's transaction stays open"
    )
    args = parser.parse_args()
    from tests.test_releases import WITH_MIGRATIONS_PENDING

    with bench_cluster() as cluster:
        for number, release in enumerate(WITH_MIGRATIONS_PENDING):
            for hold_open in (0.0, args.hold_open):
                name = f"upgrade_{number}_{int(hold_open)}"
                with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
                    admin.execute(f"CREATE DATABASE {name}")
                dsn = cluster.dsn(name)
                loaded = install(dsn, release, args.services, args.days)
                rows = args.services * args.days * 1440
                held = f", a service's transaction open for {hold_open:g} s" if hold_open else ""
                print(f"{release.stem}, {rows:,} history rows (loaded in {loaded:.0f} s){held}:")
                upgrade(dsn, hold_open)
                with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
                    admin.execute(f"DROP DATABASE {name}")


if __name__ == "__main__":
    main()
