"""The ``pystatus`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from pystatus import migrations
from pystatus.client import heartbeat
from pystatus.cluster import Cluster, ClusterError
from pystatus.connection import resolve_dsn
from pystatus.errors import PystatusError, translate_errors
from pystatus.output import FORMATS, write_rows
from pystatus.queries import QUERIES


def _connect(dsn: str | None) -> psycopg.Connection[Any]:
    with translate_errors():
        return psycopg.connect(resolve_dsn(dsn), autocommit=True)


def _fetch(
    dsn: str | None, name: str, params: dict[str, Any] | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Runs one named query on a connection of its own; returns column names and rows."""
    with _connect(dsn) as conn, translate_errors():
        cursor = conn.execute(QUERIES[name], params)
        if cursor.description is None:
            return [], []
        return [c.name for c in cursor.description], cursor.fetchall()


def _print_query(args: argparse.Namespace, name: str, params: dict[str, Any] | None = None) -> None:
    write_rows(*_fetch(args.dsn, name, params), args.format)


def _print_last(args: argparse.Namespace, name: str) -> None:
    """A query over the last --days days (or --since interval), by the server's clock."""
    last = args.since or f"{args.days} days"
    _print_query(args, name, {"service_name": args.service, "last": last})


def _print_setup_report(dsn: str | None) -> None:
    todos = []
    for item, value, todo in _fetch(dsn, "setup_report")[1]:
        print(f"  {item}: {value}")
        if todo:
            todos.append(todo)
    print("Left for the DBA:" if todos else "Nothing left to do.")
    for todo in todos:
        print(f"  - {todo}")


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = {
        "partition_interval": args.partition_interval,
        "retention": args.retention,
        "premake": args.premake,
        "legacy_time_zone": args.legacy_time_zone,
    }
    done = migrations.apply(args.dsn, settings, reapply=args.reapply)
    print(f"pystatus {migrations.version()}: {done}.")
    _print_setup_report(args.dsn)


def cmd_rollback(args: argparse.Namespace) -> None:
    count = None if args.all else args.count
    undone = migrations.rollback(args.dsn, count, {"legacy_time_zone": args.legacy_time_zone})
    print("Rolled back: " + ", ".join(undone) if undone else "Nothing to roll back.")
    if undone and not migrations.applied(args.dsn):
        print(
            "If pg_cron lives in another database, remove the job there too: "
            "pystatus schedule --cron-dsn ... --remove"
        )


def cmd_maintain(args: argparse.Namespace) -> None:
    # Each job in its own transaction, as pg_cron runs them.
    for query in ("sweep", "refresh_rollups", "maintain"):
        [(result,)] = _fetch(args.dsn, query)[1]
        print(f"{query}: {json.dumps(result)}")


def cmd_move_default_rows(args: argparse.Namespace) -> None:
    [(moved,)] = _fetch(args.dsn, "move_default_rows")[1]
    print(f"Moved {moved} rows out of the default partition.")


def cmd_schedule(args: argparse.Namespace) -> None:
    if args.cron_dsn is None:
        [(done,)] = _fetch(args.dsn, "schedule_maintenance_here")[1]
        if not done:
            raise PystatusError(
                "pg_cron is not installed in this database: give --cron-dsn for the database "
                "pg_cron lives in (cron.database_name), or run `pystatus maintain` from another "
                "scheduler"
            )
    for job_name, schedule, command, database in _fetch(args.dsn, "maintenance_jobs")[1]:
        params = {
            "job_name": job_name,
            "schedule": schedule,
            "command": command,
            "database": database,
        }
        if args.cron_dsn and args.remove:
            _fetch(args.cron_dsn, "unschedule_in_cron_database", params)
            print(f"Removed {job_name!r} from pg_cron.")
        else:
            if args.cron_dsn:
                _fetch(args.cron_dsn, "schedule_in_cron_database", params)
            print(f"Scheduled {job_name!r} ({schedule}) in database {database!r}: {command}")


def cmd_status(args: argparse.Namespace) -> None:
    columns, rows = _fetch(args.dsn, "live_status")
    shown = ["service_name", "effective_status", "last_heartbeat", "seconds_since", "current_task"]
    if args.format != "table":
        write_rows(columns, rows, args.format)
        return
    picked = [[row[columns.index(c)] for c in shown] for row in rows]
    for row in picked:
        row[3] = f"{row[3]:.0f}s ago"
    alarming = {"stale", "down"}
    write_rows(
        ["service", "status", "last heartbeat", "age", "task"],
        picked,
        "table",
        emphasize=lambda row: sys.stdout.isatty() and row[1] in alarming,
    )


def cmd_history(args: argparse.Namespace) -> None:
    _print_query(args, "history", {"service_name": args.service, "since": args.since})


def cmd_transitions(args: argparse.Namespace) -> None:
    _print_last(args, "transitions_last")


def cmd_incidents(args: argparse.Namespace) -> None:
    _print_last(args, "incidents_last")


def cmd_uptime(args: argparse.Namespace) -> None:
    if args.month:
        params = {
            "service_name": args.service,
            "month": f"{args.month}-01",
            "time_zone": args.time_zone,
        }
        _print_query(args, "uptime_month", params)
    else:
        _print_last(args, "uptime_last")


def cmd_trend(args: argparse.Namespace) -> None:
    params = {"service_name": args.service, "recent": args.recent, "baseline": args.baseline}
    _print_query(args, "trend", params)


def cmd_tasks(args: argparse.Namespace) -> None:
    _print_last(args, "task_durations_last")


def cmd_expect(args: argparse.Namespace) -> None:
    params = {"service_name": args.service, "expected_interval": args.interval, "grace": args.grace}
    _fetch(args.dsn, "set_expectations", params)
    print(f"{args.service}: heartbeat every {args.interval}, stale after a further {args.grace}.")


def cmd_logins(args: argparse.Namespace) -> None:
    if args.allow:
        _fetch(args.dsn, "allow_service", dict(zip(("login", "service_pattern"), args.allow)))
    if args.disallow:
        params = dict(zip(("login", "service_pattern"), args.disallow))
        if not _fetch(args.dsn, "disallow_service", params)[1][0][0]:
            raise PystatusError(f"login {args.disallow[0]} had no allowance {args.disallow[1]!r}")
    write_rows(*_fetch(args.dsn, "service_logins"), args.format)


def cmd_check(args: argparse.Namespace) -> int:
    columns, rows = _fetch(args.dsn, "check")
    if args.cron_dsn:  # the jobs live in pg_cron's database: ask there
        jobs = _fetch(args.dsn, "maintenance_jobs")[1]
        params = {"job_names": [j[0] for j in jobs], "database": jobs[0][3]}
        rows = [r for r in rows if r[0] != "jobs"] + _fetch(
            args.cron_dsn, "check_jobs_in_cron_database", params
        )[1]
    write_rows(columns, rows, args.format, emphasize=lambda row: sys.stdout.isatty() and not row[1])
    return 0 if all(ok for _, ok, _ in rows) else 1


def cmd_heartbeat(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        print(heartbeat(conn, args.service, args.status, args.task).isoformat())


def cmd_db(args: argparse.Namespace) -> None:
    cluster = Cluster(datadir=Path(args.datadir), port=args.port)
    try:
        if args.action == "start":
            cluster.start()
            print(f"PostgreSQL running in {args.datadir}\n  DATABASE_URL={cluster.url()}")
        else:
            cluster.stop()
            print("PostgreSQL stopped.")
    except ClusterError as exc:
        raise PystatusError(str(exc)) from exc


def cmd_dashboard(args: argparse.Namespace) -> None:
    try:
        from pystatus import dashboard
    except ImportError as exc:
        raise PystatusError(
            f"the dashboard needs its extra: pip install 'pystatus[dashboard]' ({exc})"
        ) from exc
    print(f"Dashboard on http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    dashboard.run(args.dsn, args.host, args.port)


def cmd_demo(args: argparse.Namespace) -> None:
    from pystatus import demo

    demo.run(args.dsn, args.port, args.duration)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pystatus", description="Service heartbeats with history in PostgreSQL."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Any, help: str, data: bool = False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        sub.add_argument(
            "--dsn", help="libpq DSN or URL (default: $DATABASE_URL, then PG* variables)"
        )
        if data:
            sub.add_argument("--format", choices=FORMATS, default="table")
        return sub

    migrate = command(
        "migrate",
        cmd_migrate,
        "install or upgrade pystatus in the database, all steps in one transaction",
    )
    migrate.add_argument(
        "--reapply",
        action="store_true",
        help="apply the definitions (functions, views, triggers, grants) even if unchanged",
    )
    migrate.add_argument("--partition-interval", help="history partition size (default: 1 month)")
    migrate.add_argument("--retention", help="how long history is kept (default: 60 days)")
    migrate.add_argument("--premake", help="partitions made ahead of now (default: 4)")
    migrate.add_argument(
        "--legacy-time-zone", help="time zone of an adopted table's TIMESTAMP values (default: UTC)"
    )

    rollback = command("rollback", cmd_rollback, "roll back the newest migration(s)")
    rollback.add_argument("--count", type=int, default=1)
    rollback.add_argument("--all", action="store_true")
    rollback.add_argument("--legacy-time-zone", help="zone to write TIMESTAMP values back in")

    command(
        "maintain",
        cmd_maintain,
        "all maintenance: mark silent services stale, roll up, premake and drop partitions",
    )
    command(
        "move-default-rows",
        cmd_move_default_rows,
        "move rows out of the default partition into their own partitions",
    )

    schedule = command("schedule", cmd_schedule, "schedule maintenance with pg_cron")
    schedule.add_argument("--cron-dsn", help="the database pg_cron lives in, when not this one")
    schedule.add_argument("--remove", action="store_true", help="remove the job (with --cron-dsn)")

    command("status", cmd_status, "live status of every service (stale in red)", data=True)

    def windowed(name: str, handler: Any, help: str, days: int, every: bool = True) -> None:
        sub = command(name, handler, help, data=True)
        if every:
            sub.add_argument("service", nargs="?", help="a service (default: every service)")
        else:
            sub.add_argument("service")
        sub.add_argument("--days", type=int, default=days, help=f"the last N days (default {days})")
        sub.add_argument("--since", help="the last interval instead, e.g. 12h or '90 minutes'")

    windowed("transitions", cmd_transitions, "every status change", 1)
    windowed("incidents", cmd_incidents, "when services went down, for how long, why", 7)
    uptime = command("uptime", cmd_uptime, "time-weighted uptime (README defines it)", data=True)
    uptime.add_argument("service", nargs="?", help="a service (default: every service)")
    window = uptime.add_mutually_exclusive_group()
    window.add_argument("--days", type=int, default=30, help="rolling window (default 30)")
    window.add_argument("--since", help="the last interval instead, e.g. 12h")
    window.add_argument("--month", help="a calendar month, YYYY-MM")
    uptime.add_argument("--time-zone", default="UTC", help="for --month (default UTC)")
    trend = command("trend", cmd_trend, "is the service getting slower?", data=True)
    trend.add_argument("service")
    trend.add_argument("--recent", default="1 day", help="recent window (default 1 day)")
    trend.add_argument("--baseline", default="7 days", help="baseline before it (default 7 days)")
    windowed("tasks", cmd_tasks, "how long each current_task lasted", 1, every=False)
    expect = command("expect", cmd_expect, "set a service's heartbeat interval and grace")
    expect.add_argument("service")
    expect.add_argument("--interval", required=True, help="expected interval, e.g. 60s or '5 min'")
    expect.add_argument("--grace", default="60 seconds", help="lateness forgiven (default 60s)")
    history = command("history", cmd_history, "one service's history", data=True)
    history.add_argument("service")
    history.add_argument("--since", default="7 days", help="an interval: 7d, 12h, '30 minutes'")

    check = command(
        "check", cmd_check, "health of the installation; exit 1 if anything is wrong", data=True
    )
    check.add_argument("--cron-dsn", help="the database pg_cron lives in, when not this one")

    logins = command("logins", cmd_logins, "which services each login may heartbeat for", data=True)
    change = logins.add_mutually_exclusive_group()
    change.add_argument(
        "--allow",
        nargs=2,
        metavar=("LOGIN", "PATTERN"),
        help="allow a service name, or a pattern with * (e.g. 'billing-*')",
    )
    change.add_argument("--disallow", nargs=2, metavar=("LOGIN", "PATTERN"))

    beat = command("heartbeat", cmd_heartbeat, "record one heartbeat (for scripts)")
    beat.add_argument("service")
    beat.add_argument("--status", default="ok")
    beat.add_argument("--task")

    board = command("dashboard", cmd_dashboard, "serve the read-only dashboard and JSON API")
    board.add_argument("--host", default="127.0.0.1")
    board.add_argument("--port", type=int, default=8000)

    demo = command("demo", cmd_demo, "run a local PostgreSQL with services heartbeating")
    demo.add_argument("--port", type=int, default=8000, help="the dashboard's port (default 8000)")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")

    db = commands.add_parser(
        "db", help="start or stop a local PostgreSQL with pg_partman and pg_cron"
    )
    db.set_defaults(handler=cmd_db)
    db.add_argument("action", choices=["start", "stop"])
    db.add_argument("--datadir", default="/tmp/pystatus-db/data")
    db.add_argument("--port", type=int, default=54329)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except PystatusError as exc:
        print(f"pystatus: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
