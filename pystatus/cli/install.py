"""Putting pystatus in a database and taking it out: migrate, rollback."""

from __future__ import annotations

import argparse
import shlex
import sys

import psycopg

from pystatus import admin, migrations
from pystatus.cli.common import Commands, Conn, confirmed, connect
from pystatus.errors import PystatusError
from pystatus.output import echo


def register(commands: Commands) -> None:
    migrate = commands.command(
        "migrate",
        cmd_migrate,
        "install or upgrade pystatus in the database, all steps in one transaction",
    )
    # Its own errors name what is missing: not "run pystatus migrate".
    migrate.set_defaults(explains_version=False)
    migrate.add_argument(
        "--plan",
        action="store_true",
        help="change nothing: print what a superuser must run first; exit 1 if anything",
    )
    migrate.add_argument(
        "--cron-dsn", help="with --plan: pg_cron's database, when not found from this one"
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

    rollback = commands.command("rollback", cmd_rollback, "roll back the newest migration(s)")
    rollback.set_defaults(explains_version=False)
    rollback.add_argument("--count", type=int, default=1)
    rollback.add_argument("--all", action="store_true")
    rollback.add_argument(
        "--yes", action="store_true", help="go on when this removes pystatus and its history"
    )
    rollback.add_argument("--legacy-time-zone", help="zone to write TIMESTAMP values back in")
    rollback.add_argument(
        "--older-migrate-next",
        action="store_true",
        help="roll back some migrations, knowing that the older version's `pystatus migrate` "
        "must run next to apply its definitions",
    )
    rollback.add_argument(
        "--cron-dsn",
        help="pg_cron's database, when it is another one: removing pystatus removes its jobs there",
    )


def print_setup_report(conn: Conn) -> None:
    report = admin.setup_report(conn)
    for line in report:
        echo(f"  {line.item}: {line.value}")
    todos = [line.todo for line in report if line.todo]
    echo("Left for the DBA:" if todos else "Nothing left to do.")
    for todo in todos:
        echo(f"  - {todo}")


def print_plan(plan: migrations.Plan) -> int:
    echo(f"Installing pystatus as {plan.role} in database {plan.database}.")
    missing = [item for item in plan.items if not item.ok]
    for database in dict.fromkeys(item.database for item in missing):
        echo(f"\nFirst, a superuser runs in database {database}:")
        for item in missing:
            if item.database == database:
                echo(f"  -- {item.item}\n  {item.statement}")
    if not missing:
        echo("\nThis role can do everything itself.")
    echo(f"\nThen, as {plan.role}:")
    echo("  pystatus migrate")
    if plan.cron_database and plan.cron_database != plan.database:
        echo(f'  pystatus schedule --cron-dsn "dbname={plan.cron_database} ..."')
    echo("  GRANT pystatus_writer TO <the logins of services>;")
    echo("  GRANT pystatus_reader TO <the logins of dashboards and monitoring>;")
    echo("  GRANT pystatus_alerter TO <the login of the alert worker>;  -- if you use alerts")
    for note in plan.notes:
        echo(f"\nNote: {note}")
    return 0 if plan.ready else 1


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = {
        "partition_interval": args.partition_interval,
        "retention": args.retention,
        "premake": args.premake,
        "legacy_time_zone": args.legacy_time_zone,
    }
    if args.plan:
        return print_plan(migrations.plan(args.dsn, args.cron_dsn))
    with connect(args.dsn, guard=False) as conn:
        adopted = migrations.adoption(conn, args.legacy_time_zone)
    done = migrations.apply(args.dsn, settings, reapply=args.reapply)
    echo(f"pystatus {migrations.version()}: {done}.")
    if adopted:
        echo(f"  {adopted[0].upper()}{adopted[1:]}.")
    with connect(args.dsn) as conn:
        print_setup_report(conn)
    return 0


def cmd_rollback(args: argparse.Namespace) -> None:
    count = None if args.all else args.count
    jobs: list[admin.MaintenanceJob] = []
    cron_dsn: str | None = None
    applied = migrations.applied(args.dsn)
    allowances: list[admin.ServiceLogin] = []
    if applied and count is not None and 0 < count < len(applied) and not args.older_migrate_next:
        # The definitions stay this version's, and they need the tables the
        # rolled-back migrations made: the database works again only once the
        # older version's migrate has applied its own.
        named = ", ".join(reversed(applied[-count:]))
        raise PystatusError(
            f"rolling back {named} keeps this version's functions, which need what those "
            "migrations made: answers and heartbeats may fail until the older version of "
            "pystatus runs `pystatus migrate` (which applies its own definitions). Nothing was "
            "changed: to go on, run again with --older-migrate-next and then the older "
            "version's `pystatus migrate`; or remove pystatus with --all"
        )
    if applied and (count is None or count >= len(applied)):
        # Rolling back the first migration removes pystatus, history included:
        # never without a yes. The login allowances go too; they are printed
        # below, so that a re-install can restore them (without them every
        # writer login may report any service).
        with connect(args.dsn, guard=False) as conn:
            allowances = admin.service_logins(conn)
            rows = admin.history_rows(conn)
            jobs = admin.maintenance_jobs(conn)
            cron_dsn = admin.cron_dsn_for_removal(conn, args.dsn, args.cron_dsn)
        what = (
            f"This removes pystatus from the database: {rows:,} history row"
            f"{'' if rows == 1 else 's'} and "
            f"{len(allowances)} login allowances are dropped (system_status stays)."
        )
        if not (args.yes or confirmed(what)):
            raise PystatusError(f"{what} Nothing was changed: run again with --yes to go on")
    undone = migrations.rollback(args.dsn, count, {"legacy_time_zone": args.legacy_time_zone})
    echo("Rolled back: " + ", ".join(undone) if undone else "Nothing to roll back.")
    if undone and cron_dsn is not None:
        # pystatus is gone from this database: its jobs in pg_cron's go too, or
        # pg_cron would run them every minute, failing, forever.
        try:
            with connect(cron_dsn, guard=False) as cron_conn:
                removed = sum(admin.unschedule_job(cron_conn, job) for job in jobs)
                where = cron_conn.info.dbname
            echo(f"Removed {removed} maintenance jobs from pg_cron in database {where}.")
        except (PystatusError, psycopg.Error) as exc:
            names = ", ".join(job.job_name for job in jobs)
            echo(
                f"pystatus: warning: its pg_cron jobs ({names}) could not be removed ({exc}): "
                "remove them there with SELECT cron.unschedule(name)",
                file=sys.stderr,
            )
    if undone and allowances:
        echo("Removed these login allowances; after `pystatus migrate`, restore them with:")
        for allowance in allowances:
            pattern = shlex.quote(allowance.service_pattern)
            echo(f"  pystatus logins --allow {shlex.quote(allowance.login)} {pattern}")
