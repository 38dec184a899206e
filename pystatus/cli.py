"""The ``pystatus`` command."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import logging
import math
import os
import re
import shlex
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from pystatus import admin, alerts, answers, migrations
from pystatus.client import heartbeat
from pystatus.cluster import Cluster, ClusterError
from pystatus.connection import STATEMENT_TIMEOUT, resolve_dsn
from pystatus.errors import NotInstalled, PystatusError, translate_errors
from pystatus.output import (
    FORMATS,
    HEADER,
    TerminalSafeFormatter,
    age,
    duration,
    echo,
    write_rows,
)

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class StatusLine:
    """A service's live status as ``pystatus status`` shows it to a person."""

    service: str
    status: str
    last_heartbeat: datetime = field(metadata={HEADER: "last heartbeat"})
    age: str
    expected: str
    task: str | None


MAX_WINDOW_DAYS = 3660  # ten years: longer than any history or rollup is kept
STATUSES = ("ok", "degraded", "down", "starting", "stopping", "maintenance")


def _connect(dsn: str | None, *, guard: bool = True) -> Conn:
    """A connection to pystatus's database; with ``guard``, refused (saying what to
    run) unless the database's pystatus is this one, or a newer one (a warning)."""
    with translate_errors():
        conn = psycopg.connect(resolve_dsn(dsn), autocommit=True)
        problem = migrations.version_problem(conn) if guard else None
    if problem and problem.newer:
        echo(f"pystatus: warning: {problem}", file=sys.stderr)
    elif problem:
        conn.close()
        raise NotInstalled(problem)
    return conn


def _version_problem(dsn: str | None) -> migrations.VersionProblem | None:
    """Whether this database's pystatus is this one, asked of the database (None when
    they match, or when the database cannot be asked: the caller's own error stands)."""
    try:
        with psycopg.connect(resolve_dsn(dsn), autocommit=True, connect_timeout=5) as conn:
            return migrations.version_problem(conn)
    except psycopg.Error:
        return None


def _require_current(dsn: str | None) -> None:
    """A long-running command (dashboard, exporter, ingest, workers) starts only
    against the pystatus it was written for: else it says what to run. A database
    that is away is not refused here: the command waits for it as it always does."""
    problem = _version_problem(dsn)
    if problem and problem.newer:
        # Upgraded first, as a rolling upgrade does: this one serves what it knows.
        logging.getLogger("pystatus").warning("%s", problem)
    elif problem:
        raise NotInstalled(problem)


@contextlib.contextmanager
def _connect_with_cron(dsn: str | None, cron_dsn: str | None) -> Iterator[tuple[Conn, Conn | None]]:
    """This database, and pg_cron's database when --cron-dsn names another one."""
    with _connect(dsn) as conn:
        if cron_dsn is None:
            yield conn, None
        else:
            with _connect(cron_dsn, guard=False) as cron_conn:
                yield conn, cron_conn


def _since(conn: Conn, args: argparse.Namespace) -> datetime:
    """The start of the last --days days (or --since interval), by the server's clock."""
    if args.since:
        _check_window(conn, args.since, "--since")
    return answers.ago(conn, args.since or f"{args.days} days")


def _check_window(conn: Conn, interval: str, option: str) -> None:
    """PystatusError unless ``interval`` (read by the server) is positive and bounded."""
    with translate_errors():
        row = conn.execute(
            "SELECT %(i)s::interval > interval '0', %(i)s::interval <= %(max)s * interval '1 day'",
            {"i": interval, "max": MAX_WINDOW_DAYS},
        ).fetchone()
    if row is None or not row[0]:
        raise PystatusError(f"{option} {interval!r}: must be a positive interval, e.g. 12h")
    if not row[1]:
        raise PystatusError(f"{option} {interval!r}: must be at most {MAX_WINDOW_DAYS} days")


def _known(conn: Conn, service_name: str | None) -> None:
    """PystatusError naming the service, and any close names, unless it has reported."""
    if service_name is None:
        return
    with translate_errors():
        names = [r[0] for r in conn.execute("SELECT service_name FROM system_status")]
    if service_name not in names:
        close = difflib.get_close_matches(service_name, names, n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise PystatusError(f"no service named {service_name!r}{hint}")


def _print_setup_report(conn: Conn) -> None:
    report = admin.setup_report(conn)
    for line in report:
        echo(f"  {line.item}: {line.value}")
    todos = [line.todo for line in report if line.todo]
    echo("Left for the DBA:" if todos else "Nothing left to do.")
    for todo in todos:
        echo(f"  - {todo}")


def _print_plan(plan: migrations.Plan) -> int:
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
        return _print_plan(migrations.plan(args.dsn, args.cron_dsn))
    with _connect(args.dsn, guard=False) as conn:
        adopted = migrations.adoption(conn, args.legacy_time_zone)
    done = migrations.apply(args.dsn, settings, reapply=args.reapply)
    echo(f"pystatus {migrations.version()}: {done}.")
    if adopted:
        echo(f"  {adopted[0].upper()}{adopted[1:]}.")
    with _connect(args.dsn) as conn:
        _print_setup_report(conn)
    return 0


def _confirmed(question: str) -> bool:
    """A yes typed at a terminal; never yes without one (scripts say --yes)."""
    if not sys.stdin.isatty():
        return False
    return input(f"{question} Type yes to go on: ").strip() == "yes"


def _in_database(dsn: str | None, name: str) -> str:
    """The same login's DSN for another database of the server (pg_cron's)."""
    return make_conninfo(resolve_dsn(dsn), dbname=name)


def _cron_dsn_for_removal(conn: Conn, dsn: str | None, cron_dsn: str | None) -> str | None:
    """Where uninstalling must remove this database's pg_cron jobs: ``--cron-dsn``, or
    pg_cron's database with the same login; None when pg_cron lives here (the
    rollback removes them) or nowhere. Refuses, changing nothing, when the jobs
    are in a database this login cannot reach."""
    if cron_dsn is not None:
        return cron_dsn
    name = admin.cron_database(conn)
    if name is None:
        if admin.maintenance_scheduler(conn).startswith("pg_cron in another database"):
            raise PystatusError(
                "pg_cron runs this database's jobs in another database, which this login cannot "
                "name: give --cron-dsn for pg_cron's database, so that they are removed too. "
                "Nothing was changed"
            )
        return None
    candidate = _in_database(dsn, name)
    try:
        with psycopg.connect(candidate, connect_timeout=5) as cron:
            has_jobs = cron.execute("SELECT to_regclass('cron.job') IS NOT NULL").fetchone()
            return candidate if has_jobs and has_jobs[0] else None  # no pg_cron there yet
    except psycopg.Error as exc:
        raise PystatusError(
            f"pg_cron runs this database's jobs in database {name}, where this login cannot "
            f"remove them ({str(exc).strip()}): give --cron-dsn with a login that can. Nothing "
            "was changed"
        ) from exc


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
        with _connect(args.dsn, guard=False) as conn:
            allowances = admin.service_logins(conn)
            rows = admin.history_rows(conn)
            jobs = admin.maintenance_jobs(conn)
            cron_dsn = _cron_dsn_for_removal(conn, args.dsn, args.cron_dsn)
        what = (
            f"This removes pystatus from the database: {rows:,} history row"
            f"{'' if rows == 1 else 's'} and "
            f"{len(allowances)} login allowances are dropped (system_status stays)."
        )
        if not (args.yes or _confirmed(what)):
            raise PystatusError(f"{what} Nothing was changed: run again with --yes to go on")
    undone = migrations.rollback(args.dsn, count, {"legacy_time_zone": args.legacy_time_zone})
    echo("Rolled back: " + ", ".join(undone) if undone else "Nothing to roll back.")
    if undone and cron_dsn is not None:
        # pystatus is gone from this database: its jobs in pg_cron's go too, or
        # pg_cron would run them every minute, failing, forever.
        try:
            with _connect(cron_dsn, guard=False) as cron_conn:
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


def cmd_maintain(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:  # autocommit: each job in its own transaction, as pg_cron
        for job in (admin.sweep, admin.refresh_rollups, admin.maintain):
            echo(f"{job.__name__}: {json.dumps(job(conn))}")


def cmd_move_default_rows(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        moved = admin.move_default_rows(conn)
    echo(f"Moved {moved} rows out of the default partition.")


def cmd_schedule(args: argparse.Namespace) -> None:
    with _connect_with_cron(args.dsn, args.cron_dsn) as (conn, cron_conn):
        if args.remove:
            removed = admin.unschedule(conn, cron_conn)
            echo(f"Removed {removed} maintenance jobs from pg_cron.")
            return
        for job in admin.schedule(conn, cron_conn):
            echo(
                f"Scheduled {job.job_name!r} ({job.schedule}) in database {job.database!r}: "
                f"{job.command}"
            )


# Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL.
EXIT_OK, EXIT_DEGRADED, EXIT_DOWN = 0, 1, 2


def status_exit_code(services: Sequence[answers.LiveStatus]) -> tuple[int, str]:
    """The exit code and one-line summary of ``status --exit-code``: 2 when any
    service is down or stale, 1 when any is degraded, else 0."""
    down = [s.service_name for s in services if s.effective_status in ("down", "stale")]
    degraded = [s.service_name for s in services if s.effective_status == "degraded"]
    if down:
        code, word = EXIT_DOWN, "CRITICAL"
    elif degraded:
        code, word = EXIT_DEGRADED, "WARNING"
    else:
        code, word = EXIT_OK, "OK"
    parts = [f"{len(services)} services"]
    if down:
        parts.append(f"{len(down)} down or stale: {', '.join(down)}")
    if degraded:
        parts.append(f"{len(degraded)} degraded: {', '.join(degraded)}")
    return code, f"{word} - " + "; ".join(parts)


def cmd_status(args: argparse.Namespace) -> int:
    with _connect(args.dsn) as conn:
        services = answers.live_status(conn)
    code, summary = status_exit_code(services)
    if args.exit_code and args.format == "table":
        echo(summary)
        return code
    if args.format != "table":
        write_rows(answers.LiveStatus, services, args.format)
        return code if args.exit_code else 0
    lines = [
        StatusLine(
            s.service_name,
            s.effective_status,
            s.last_heartbeat,
            age(s.seconds_since),
            f"every {duration(s.expected_interval.total_seconds())}",
            s.current_task,
        )
        for s in services
    ]
    write_rows(StatusLine, lines, "table")
    echo(fleet_summary(services))
    return 0


def fleet_summary(services: Sequence[answers.LiveStatus]) -> str:
    """One line: how many services, how many in each status, how many need attention."""
    if not services:
        return "No services yet: none has sent a heartbeat."
    counts = Counter(s.effective_status for s in services)
    by_status = ", ".join(f"{counts[status]} {status}" for status in sorted(counts, key=_severity))
    attention = sum(counts[status] for status in ("down", "stale", "degraded"))
    noun = "service" if len(services) == 1 else "services"
    need = f"{attention} need{'s' if attention == 1 else ''} attention" if attention else "all well"
    return f"{len(services)} {noun}: {by_status}; {need}."


def _severity(status: str) -> int:
    order = ("down", "stale", "degraded", "maintenance", "starting", "stopping", "ok")
    return order.index(status) if status in order else len(order)


def cmd_history(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        _check_window(conn, args.since, "--since")
        _known(conn, args.service_name)
        entries = answers.history(conn, args.service_name, answers.ago(conn, args.since))
    write_rows(answers.HistoryEntry, entries, args.format)


def cmd_transitions(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        since = _since(conn, args)
        _known(conn, args.service_name)
        changes = answers.transitions(conn, args.service_name, since)
    write_rows(answers.Transition, changes, args.format)


def cmd_incidents(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        since = _since(conn, args)
        _known(conn, args.service_name)
        incidents = answers.incidents(conn, args.service_name, since)
    write_rows(answers.Incident, incidents, args.format)


def cmd_uptime(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        since = None if args.month else _since(conn, args)
        _known(conn, args.service_name)
        if since is None:  # --month YYYY-MM: the server reads the date, as it reads --since
            month = f"{args.month}-01"
            reports = answers.uptime_month(conn, args.service_name, month, args.time_zone)
        else:
            reports = answers.uptime(conn, args.service_name, since)
    write_rows(answers.Uptime, reports, args.format)


def cmd_trend(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        _check_window(conn, args.recent, "--recent")
        _check_window(conn, args.baseline, "--baseline")
        _known(conn, args.service_name)
        trend = answers.trend(conn, args.service_name, args.recent, args.baseline)
    write_rows(answers.Trend, [trend], args.format)


def cmd_tasks(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        since = _since(conn, args)
        _known(conn, args.service_name)
        runs = answers.task_durations(conn, args.service_name, since)
    write_rows(answers.TaskRun, runs, args.format)


def cmd_expect(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        admin.set_expectations(conn, args.service_name, args.interval, args.grace)
    echo(
        f"{args.service_name}: heartbeat every {args.interval}, stale after a further {args.grace}."
    )


def cmd_logins(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        if args.allow:
            admin.allow_service(conn, *args.allow)
        if args.disallow and not admin.disallow_service(conn, *args.disallow):
            raise PystatusError(f"login {args.disallow[0]} had no allowance {args.disallow[1]!r}")
        write_rows(admin.ServiceLogin, admin.service_logins(conn), args.format)


def _check_following_pg_cron(conn: Conn, dsn: str | None) -> list[admin.CheckItem]:
    """The check, with the jobs' runs read where pg_cron lives (same login, its
    database): a job failing there every minute must not pass for healthy."""
    name = admin.cron_database(conn)
    if name is None:
        return admin.check(conn)
    try:
        with psycopg.connect(_in_database(dsn, name), connect_timeout=5) as cron:
            cron.autocommit = True
            return admin.check(conn, cron)
    except (psycopg.Error, PystatusError) as exc:
        unreadable = admin.CheckItem(
            "jobs",
            None,  # unknown: not failing
            f"pg_cron lives in database {name}, where this login cannot read the jobs' runs "
            f"({str(exc).strip()}): give --cron-dsn with a login that can",
        )
        return [unreadable if item.item == "jobs" else item for item in admin.check(conn)]


def cmd_check(args: argparse.Namespace) -> int:
    with _connect_with_cron(args.dsn, args.cron_dsn) as (conn, cron_conn):
        if cron_conn is None:
            items = _check_following_pg_cron(conn, args.dsn)
        else:
            items = admin.check(conn, cron_conn)
    write_rows(admin.CheckItem, items, args.format, emphasize=lambda item: item.ok is False)
    # As monitoring plugins do: 1 when something fails, 3 when all that could be
    # read is fine but something could not be (the jobs' runs, elsewhere).
    if any(item.ok is False for item in items):
        return 1
    return 3 if any(item.ok is None for item in items) else 0


def cmd_heartbeat(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        recorded_at = heartbeat(
            conn, args.service_name, args.status, args.current_task, args.latency
        )
    echo(recorded_at.isoformat())


def _options(pairs: Sequence[str]) -> dict[str, Any]:
    """--option key=value pairs; values that read as JSON (numbers, true) are taken as such."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PystatusError(f"invalid --option {pair!r}: write key=value")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def cmd_alerts(args: argparse.Namespace) -> int:
    if args.action == "run":
        return _run_alert_worker(args)
    with _connect(args.dsn) as conn:
        if args.action == "channels":
            write_rows(alerts.Channel, alerts.channels(conn), args.format)
        elif args.action == "add-channel":
            alerts.add_channel(conn, args.name, args.kind, args.target, _options(args.option))
            echo(f"Channel {args.name} ({args.kind}) saved.")
        elif args.action == "remove-channel":
            if not alerts.remove_channel(conn, args.name):
                raise PystatusError(f"no channel {args.name!r}")
            echo(f"Channel {args.name} removed, with its rules.")
        elif args.action == "rules":
            write_rows(alerts.Rule, alerts.rules(conn), args.format)
        elif args.action == "add-rule":
            rule_id = alerts.add_rule(
                conn,
                args.service_pattern,
                args.channel,
                down_for=args.down_for,
                down_reports=args.down_reports,
                up_for=args.up_for,
                remind_every=args.remind_every,
            )
            echo(f"Rule {rule_id}: {args.service_pattern} -> {args.channel}.")
        elif args.action == "remove-rule":
            if not alerts.remove_rule(conn, args.rule_id):
                raise PystatusError(f"no rule {args.rule_id}")
            echo(f"Rule {args.rule_id} removed.")
        elif args.action == "log":
            write_rows(
                alerts.LogEntry,
                alerts.message_log(conn, answers.ago(conn, args.since)),
                args.format,
            )
        elif args.action == "test":
            return _send_test_alert(conn, args.channel)
    return 0


def _send_test_alert(conn: Conn, channel: str) -> int:
    """A test message through the real channel, now, by this process (a running
    worker may take it first: then its outcome is read from the log)."""
    message_id = alerts.send_test(conn, channel)
    name, lease = f"pystatus alerts test ({channel})", timedelta(minutes=1)
    for message in alerts.claim(conn, name, 1, lease, message_id=message_id):
        error = alerts.attempt(message, lease.total_seconds() / 2)
        alerts.finish(conn, message, error)
        if error:
            echo(f"Test message {message_id} via {channel} failed: {error}")
            return 1
        echo(f"Test message {message_id} sent via {channel}.")
        return 0
    echo(f"Test message {message_id} queued; a running worker is sending it (pystatus alerts log).")
    return 0


def _on_stop_signals(stop: Callable[[], None]) -> None:
    """SIGTERM (docker stop, systemd) and Ctrl-C call ``stop``: the long-running
    commands finish what is in hand, then exit 0."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop())


def _log_to_stderr() -> None:
    """The long-running commands' log: their records quote what others sent (a
    receiver's error, a container's output, a ping's path)."""
    handler = logging.StreamHandler()
    handler.setFormatter(TerminalSafeFormatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def _run_alert_worker(args: argparse.Namespace) -> int:
    _require_current(args.dsn)
    _log_to_stderr()
    worker = alerts.Worker(
        args.dsn,
        name=args.name,
        poll_interval=args.poll_interval,
        lease=timedelta(seconds=args.lease),
    )
    _on_stop_signals(worker.stop)
    worker.run()
    echo(
        f"alert worker {worker.name} stopped: "
        f"{worker.delivered} sent, {worker.failed} failed attempts"
    )
    return 0


def cmd_maintenance(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        if args.action == "add":
            # Times without an offset are read in --time-zone, as the window repeats there.
            with translate_errors():
                conn.execute("SELECT set_config('TimeZone', %s, false)", (args.time_zone,))
            window_id = alerts.add_maintenance(
                conn,
                args.service_pattern,
                args.starts,
                args.ends,
                every=args.every,
                time_zone=args.time_zone,
                repeat_until=args.repeat_until,
                reason=args.reason,
            )
            echo(f"Maintenance window {window_id} planned for {args.service_pattern}.")
        elif args.action == "remove":
            if not alerts.remove_maintenance(conn, args.window_id):
                raise PystatusError(f"no maintenance window {args.window_id}")
            echo(f"Maintenance window {args.window_id} removed.")
        else:
            since = answers.ago(conn, "0 seconds")
            write_rows(
                alerts.Window,
                alerts.windows(conn, since, since + timedelta(days=args.days)),
                args.format,
            )


def cmd_snooze(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        window_id = alerts.snooze(conn, args.service_pattern, args.duration, args.reason)
    echo(f"Alerts of {args.service_pattern} muted for {args.duration} (snooze {window_id}).")


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


def cmd_tokens(args: argparse.Namespace) -> None:
    with _connect(args.dsn) as conn:
        if args.action == "add":
            token = admin.add_ping_token(conn, args.service_name, args.note)
            url = f"{args.url.rstrip('/')}/ping/{token}"
            echo(f"Ping token for {args.service_name} (shown only now; keep it secret):\n{token}\n")
            echo(f"  curl -fsS -m 10 --retry 3 {url}            # ok")
            echo(f"  curl -fsS -m 10 --retry 3 {url}/start      # a run begins")
            echo(f"  curl -fsS -m 10 --retry 3 {url}/$?         # a run ended: its exit code")
        elif args.action == "remove":
            service = admin.remove_ping_token(conn, args.token_prefix)
            echo(f"Ping token {args.token_prefix[:11]} of {service} revoked.")
        else:
            write_rows(admin.PingToken, admin.ping_tokens(conn), args.format)


def cmd_ingest(args: argparse.Namespace) -> None:
    try:
        from pystatus import ingest
    except ImportError as exc:
        raise PystatusError(
            "the ping endpoint needs the dashboard extra: "
            f"pip install 'pystatus[dashboard]' ({exc})"
        ) from exc
    _require_current(args.dsn)
    _log_to_stderr()
    echo(
        f"Ping endpoint on http://{args.host}:{args.port}/ping/<token> (Ctrl-C to stop)", flush=True
    )
    ingest.run(args.dsn, args.host, args.port, args.rate_limit, args.max_body)


def cmd_collect_docker(args: argparse.Namespace) -> None:
    try:
        from pystatus import docker_collector
    except ImportError as exc:
        raise PystatusError(
            f"the Docker collector needs its extra: pip install 'pystatus[docker]' ({exc})"
        ) from exc
    _require_current(args.dsn)
    _log_to_stderr()
    stop = threading.Event()
    _on_stop_signals(stop.set)
    echo(
        f"Recording the containers of {args.socket} as heartbeats every {args.interval:g} s"
        " (Ctrl-C to stop)",
        flush=True,
    )
    docker_collector.run_collector(
        args.dsn, args.socket, args.label, args.interval, args.label_only, stop
    )


def cmd_exporter(args: argparse.Namespace) -> None:
    try:
        from pystatus import metrics
    except ImportError as exc:
        raise PystatusError(
            f"the exporter needs the dashboard extra: pip install 'pystatus[dashboard]' ({exc})"
        ) from exc
    _require_current(args.dsn)
    stop = threading.Event()
    _on_stop_signals(stop.set)
    echo(f"Prometheus metrics on http://{args.host}:{args.port}/metrics", flush=True)
    metrics.serve(args.dsn, args.host, args.port, stop)


def cmd_dashboard(args: argparse.Namespace) -> None:
    try:
        from pystatus import dashboard
    except ImportError as exc:
        raise PystatusError(
            f"the dashboard needs its extra: pip install 'pystatus[dashboard]' ({exc})"
        ) from exc
    _require_current(args.dsn)
    echo(f"Dashboard on http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    dashboard.run(args.dsn, args.host, args.port, args.statement_timeout)


def cmd_demo(args: argparse.Namespace) -> None:
    from pystatus import demo

    demo.run(args.dsn, args.port, args.duration)


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {value!r}") from None
    if not 1 <= days <= MAX_WINDOW_DAYS:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_WINDOW_DAYS} days: {value}")
    return days


def _interval(value: str) -> str:
    """An interval for the server to read, refused early when it cannot be one: a bare
    number (``--since 12 hours`` unquoted leaves ``12``, which PostgreSQL reads as
    seconds) or a negative one."""
    text = value.strip()
    if not text:
        raise argparse.ArgumentTypeError("an empty interval: write e.g. 12h or '90 minutes'")
    if re.fullmatch(r"[+-]?\d+(\.\d*)?", text):
        raise argparse.ArgumentTypeError(
            f"{value!r} has no unit: write e.g. {text}h or '{text} hours' (quoted)"
        )
    if text.startswith("-"):
        raise argparse.ArgumentTypeError(f"{value!r}: a window reaches back, write it positive")
    return text


def _non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more: {value}")
    return number


def _non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return number


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0.1 <= seconds <= 86_400:
        raise argparse.ArgumentTypeError(f"must be between 0.1 and 86400 seconds: {value}")
    return seconds


def _add_dsn(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn", help="libpq DSN or URL (default: $DATABASE_URL, then PG* variables)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pystatus", description="Service heartbeats with history in PostgreSQL."
    )
    parser.add_argument("--version", action="version", version=f"pystatus {migrations.version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Any, help: str, data: bool = False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        _add_dsn(sub)
        if data:
            sub.add_argument("--format", choices=FORMATS, default="table")
        return sub

    migrate = command(
        "migrate",
        cmd_migrate,
        "install or upgrade pystatus in the database, all steps in one transaction",
    )
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

    rollback = command("rollback", cmd_rollback, "roll back the newest migration(s)")
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
    schedule.add_argument("--remove", action="store_true", help="remove the jobs instead")

    status = command("status", cmd_status, "live status of every service (stale in red)", data=True)
    status.add_argument(
        "--exit-code",
        action="store_true",
        help="print a one-line summary; exit 0 all up, 1 some degraded, 2 some down or stale",
    )

    def windowed(name: str, handler: Any, help: str, days: int, every: bool = True) -> None:
        sub = command(name, handler, help, data=True)
        if every:
            sub.add_argument(
                "service_name", nargs="?", metavar="service", help="default: every service"
            )
        else:
            sub.add_argument("service_name", metavar="service")
        sub.add_argument(
            "--days", type=_days, default=days, help=f"the last N days (default {days})"
        )
        sub.add_argument(
            "--since", type=_interval, help="the last interval instead, e.g. 12h or '90 minutes'"
        )

    windowed("transitions", cmd_transitions, "every status change", 1)
    windowed("incidents", cmd_incidents, "when services went down, for how long, why", 7)
    uptime = command("uptime", cmd_uptime, "time-weighted uptime (README defines it)", data=True)
    uptime.add_argument("service_name", nargs="?", metavar="service", help="default: every service")
    window = uptime.add_mutually_exclusive_group()
    window.add_argument("--days", type=_days, default=30, help="rolling window (default 30)")
    window.add_argument("--since", type=_interval, help="the last interval instead, e.g. 12h")
    window.add_argument("--month", help="a calendar month, YYYY-MM")
    uptime.add_argument("--time-zone", default="UTC", help="for --month (default UTC)")
    trend = command("trend", cmd_trend, "is the service getting slower?", data=True)
    trend.add_argument("service_name", metavar="service")
    trend.add_argument(
        "--recent", type=_interval, default="1 day", help="recent window (default 1 day)"
    )
    trend.add_argument(
        "--baseline", type=_interval, default="7 days", help="baseline before it (default 7 days)"
    )
    windowed("tasks", cmd_tasks, "how long each current_task lasted", 1, every=False)
    expect = command("expect", cmd_expect, "set a service's heartbeat interval and grace")
    expect.add_argument("service_name", metavar="service")
    expect.add_argument("--interval", required=True, help="expected interval, e.g. 60s or '5 min'")
    expect.add_argument("--grace", default="60 seconds", help="lateness forgiven (default 60s)")
    history = command("history", cmd_history, "one service's history", data=True)
    history.add_argument("service_name", metavar="service")
    history.add_argument(
        "--since", type=_interval, default="7 days", help="an interval: 7d, 12h, '30 minutes'"
    )

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
    beat.add_argument("service_name", metavar="service")
    beat.add_argument(
        "--status",
        default="ok",
        metavar="STATUS",
        # Checked by the database, whose error names the rule, as for any caller.
        help=f"default ok; one of {', '.join(STATUSES)}",
    )
    beat.add_argument("--current-task", "--task", help="what the service is doing now")
    beat.add_argument(
        "--latency",
        type=_non_negative_float,
        metavar="MS",
        help="a measure in milliseconds (a request's time, a job's run), for `trend`",
    )

    alerting = commands.add_parser(
        "alerts", help="alert channels, rules, the delivery log and the worker"
    )
    actions = alerting.add_subparsers(dest="action", required=True, metavar="ACTION")

    def alert_action(name: str, help: str, data: bool = False) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=cmd_alerts)
        _add_dsn(sub)
        if data:
            sub.add_argument("--format", choices=FORMATS, default="table")
        return sub

    run = alert_action("run", "deliver alerts until SIGTERM (any number may run)")
    run.add_argument("--name", help="this worker's name in the delivery log (default host:pid)")
    run.add_argument("--poll-interval", type=float, default=1.0, help="seconds (default 1)")
    run.add_argument(
        "--lease",
        type=float,
        default=180.0,
        help="seconds a message is held while sending, after which another worker resends it "
        "(default 180)",
    )
    alert_action("channels", "the channels (secrets masked)", data=True)
    add_channel = alert_action("add-channel", "add or replace a channel")
    add_channel.add_argument("name")
    add_channel.add_argument("kind", choices=["webhook", "email", "apprise"])
    add_channel.add_argument("target", help="webhook: URL; email: addresses; apprise: URL(s)")
    add_channel.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="webhook: secret, timeout; email: host, port, starttls, ssl, username, password, "
        "sender, timeout; apprise: timeout",
    )
    alert_action("remove-channel", "remove a channel and its rules").add_argument("name")
    alert_action("rules", "which services alert which channels", data=True)
    add_rule = alert_action("add-rule", "alert a channel about services (replaces the same pair)")
    add_rule.add_argument(
        "service_pattern", metavar="pattern", help="a service name; * for any characters"
    )
    add_rule.add_argument("channel")
    add_rule.add_argument(
        "--down-for", default="0", help="down at least this long first, e.g. 2min"
    )
    add_rule.add_argument("--down-reports", type=int, default=1, help="and this many down reports")
    add_rule.add_argument("--up-for", default="0", help="up this long before the recovery is sent")
    add_rule.add_argument("--remind-every", help="remind while still down, e.g. 1h")
    alert_action("remove-rule", "remove a rule").add_argument("rule_id", type=int)
    alert_log = alert_action("log", "the messages and their delivery", data=True)
    alert_log.add_argument(
        "--since", type=_interval, default="1 day", help="an interval (default 1 day)"
    )
    alert_action("test", "send a test message through a channel now").add_argument("channel")

    maintenance = commands.add_parser("maintenance", help="plan maintenance windows")
    maintenance_actions = maintenance.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help in (
        ("add", "plan a window: down time inside counts as maintenance, alerts are muted"),
        ("list", "the windows and snoozes of the coming days"),
        ("remove", "remove a window (all its repeats)"),
    ):
        sub = maintenance_actions.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=cmd_maintenance)
        _add_dsn(sub)
        if name == "add":
            sub.add_argument(
                "service_pattern", metavar="pattern", help="a service name; * for any characters"
            )
            sub.add_argument(
                "--from", dest="starts", required=True, help="start, e.g. '2026-12-06 02:00'"
            )
            sub.add_argument(
                "--until", dest="ends", required=True, help="end, e.g. '2026-12-06 04:00'"
            )
            sub.add_argument("--every", help="repeat, e.g. '1 week' or '1 day'")
            sub.add_argument("--time-zone", default="UTC", help="of --from/--until and the repeats")
            sub.add_argument("--repeat-until", help="last repeat starts before this")
            sub.add_argument("--reason")
        elif name == "list":
            sub.add_argument("--days", type=_days, default=7, help="how far ahead (default 7)")
            sub.add_argument("--format", choices=FORMATS, default="table")
        else:
            sub.add_argument("window_id", type=int, metavar="id")

    snooze = command("snooze", cmd_snooze, "mute a service's alerts for a while")
    snooze.add_argument(
        "service_pattern", metavar="pattern", help="a service name; * for any characters"
    )
    snooze.add_argument("--for", dest="duration", required=True, help="e.g. 2h or '30 minutes'")
    snooze.add_argument("--reason")

    exporter = command("exporter", cmd_exporter, "serve Prometheus metrics (as a reader login)")
    exporter.add_argument("--host", default="127.0.0.1")
    exporter.add_argument("--port", type=int, default=9187, help="default 9187")

    ingest = command("ingest", cmd_ingest, "serve the HTTP ping endpoint (as a writer login)")
    ingest.add_argument("--host", default="127.0.0.1")
    ingest.add_argument("--port", type=int, default=8020, help="default 8020")
    ingest.add_argument(
        "--rate-limit",
        type=_non_negative_int,
        default=60,
        metavar="N",
        help="pings a minute per token, in bursts up to N (default 60; 0: no limit)",
    )
    ingest.add_argument(
        "--max-body",
        type=_non_negative_int,
        default=10_000,
        metavar="BYTES",
        help="largest POST body accepted (default 10000)",
    )

    collect = commands.add_parser("collect", help="record other systems' health as heartbeats")
    sources = collect.add_subparsers(dest="source", required=True, metavar="SOURCE")
    docker = sources.add_parser(
        "docker",
        help="Docker containers' state and health (as a writer login)",
        description="Docker containers' state and health, as heartbeats (as a writer login)",
    )
    docker.set_defaults(handler=cmd_collect_docker)
    _add_dsn(docker)
    docker.add_argument(
        "--socket",
        default="unix:///var/run/docker.sock",
        help="the Docker Engine API (default unix:///var/run/docker.sock; tcp://host:2375 too)",
    )
    docker.add_argument(
        "--label",
        default="pystatus.service",
        help="the container label naming its service (default pystatus.service); "
        "without it, the container's name",
    )
    docker.add_argument(
        "--label-only", action="store_true", help="only containers that carry the label"
    )
    docker.add_argument(
        "--interval",
        type=_positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds between full snapshots (default 10); events are recorded at once",
    )

    tokens = commands.add_parser("tokens", help="secret tokens for the HTTP ping endpoint")
    tokens_actions = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help in (
        ("add", "make a token for a service and print its ping URLs"),
        ("list", "the tokens, by prefix"),
        ("remove", "revoke a token"),
    ):
        sub = tokens_actions.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=cmd_tokens)
        _add_dsn(sub)
        if name == "add":
            sub.add_argument("service_name", metavar="service")
            sub.add_argument("--note", help="what the token is for, e.g. the script using it")
            sub.add_argument(
                "--url",
                default="http://127.0.0.1:8020",
                help="where pystatus ingest listens, for the printed URLs",
            )
        elif name == "list":
            sub.add_argument("--format", choices=FORMATS, default="table")
        else:
            sub.add_argument(
                "token_prefix", metavar="prefix", help="ps_ and 8 characters, as listed"
            )

    board = command("dashboard", cmd_dashboard, "serve the read-only dashboard and JSON API")
    board.add_argument("--host", default="127.0.0.1")
    board.add_argument("--port", type=int, default=8000)
    board.add_argument(
        "--statement-timeout",
        type=_positive_seconds,
        default=STATEMENT_TIMEOUT,
        help="seconds a request's query may run before it is cancelled and answered 503 "
        f"(default {STATEMENT_TIMEOUT:g})",
    )

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


def _dsn_problem(args: argparse.Namespace) -> str | None:
    if not hasattr(args, "dsn"):
        return None
    return _version_problem(args.dsn)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except NotInstalled as exc:
        # A missing function, table or column: say what to run, when the cause is
        # that the database's pystatus is not this one.
        problem = None if args.handler in (cmd_migrate, cmd_rollback) else _dsn_problem(args)
        echo(f"pystatus: error: {problem or exc}", file=sys.stderr)
        if problem and problem != str(exc):
            echo(f"  ({exc})", file=sys.stderr)
        return 1
    except PystatusError as exc:
        echo(f"pystatus: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader left (`pystatus history x | head`): nothing more to say. Python
        # would print a traceback at exit while flushing stdout; point it at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
