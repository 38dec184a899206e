"""Running an installation: maintenance, its schedule, the health check, a local server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pystatus import admin
from pystatus.cli.common import Commands, connect, connect_with_cron
from pystatus.cluster import Cluster, ClusterError
from pystatus.errors import PystatusError
from pystatus.output import echo, write_rows


def register(commands: Commands) -> None:
    commands.command(
        "maintain",
        cmd_maintain,
        "all maintenance: mark silent services stale, roll up, premake and drop partitions",
    )
    commands.command(
        "move-default-rows",
        cmd_move_default_rows,
        "move rows out of the default partition into their own partitions",
    )

    schedule = commands.command("schedule", cmd_schedule, "schedule maintenance with pg_cron")
    schedule.add_argument("--cron-dsn", help="the database pg_cron lives in, when not this one")
    schedule.add_argument("--remove", action="store_true", help="remove the jobs instead")

    check = commands.command(
        "check", cmd_check, "health of the installation; exit 1 if anything is wrong", data=True
    )
    check.add_argument("--cron-dsn", help="the database pg_cron lives in, when not this one")

    demo = commands.command("demo", cmd_demo, "run a local PostgreSQL with services heartbeating")
    demo.add_argument("--port", type=int, default=8000, help="the dashboard's port (default 8000)")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")

    db = commands.command(
        "db", cmd_db, "start or stop a local PostgreSQL with pg_partman and pg_cron", dsn=False
    )
    db.add_argument("action", choices=["start", "stop"])
    db.add_argument("--datadir", default="/tmp/pystatus-db/data")
    db.add_argument("--port", type=int, default=54329)


def cmd_maintain(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:  # autocommit: each job in its own transaction, as pg_cron
        for job in (admin.sweep, admin.refresh_rollups, admin.maintain):
            echo(f"{job.__name__}: {json.dumps(job(conn))}")


def cmd_move_default_rows(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        moved = admin.move_default_rows(conn)
    echo(f"Moved {moved} rows out of the default partition.")


def cmd_schedule(args: argparse.Namespace) -> None:
    with connect_with_cron(args.dsn, args.cron_dsn) as (conn, cron_conn):
        if args.remove:
            removed = admin.unschedule(conn, cron_conn)
            echo(f"Removed {removed} maintenance jobs from pg_cron.")
            return
        for job in admin.schedule(conn, cron_conn):
            echo(
                f"Scheduled {job.job_name!r} ({job.schedule}) in database {job.database!r}: "
                f"{job.command}"
            )


def cmd_check(args: argparse.Namespace) -> int:
    with connect_with_cron(args.dsn, args.cron_dsn) as (conn, cron_conn):
        if cron_conn is None:
            items = admin.check_where_pg_cron_lives(conn, args.dsn)
        else:
            items = admin.check(conn, cron_conn)
    write_rows(admin.CheckItem, items, args.format, emphasize=lambda item: item.ok is False)
    # As monitoring plugins do: 1 when something fails, 3 when all that could be
    # read is fine but something could not be (the jobs' runs, elsewhere).
    if any(item.ok is False for item in items):
        return 1
    return 3 if any(item.ok is None for item in items) else 0


def cmd_demo(args: argparse.Namespace) -> None:
    from pystatus import demo

    demo.run(args.dsn, args.port, args.duration)


def cmd_db(args: argparse.Namespace) -> None:
    cluster = Cluster(datadir=Path(args.datadir), port=args.port)
    try:
        if args.action == "start":
            cluster.start()
            echo(f"PostgreSQL running in {args.datadir}\n  DATABASE_URL={cluster.url()}")
        else:
            cluster.stop()
            echo("PostgreSQL stopped.")
    except ClusterError as exc:
        raise PystatusError(str(exc)) from exc
