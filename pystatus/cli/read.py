"""The answers, for people and scripts: status, history, transitions, incidents,
uptime, trend, tasks."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pystatus import answers
from pystatus.cli.common import (
    Commands,
    Handler,
    connect,
    days,
    interval,
)
from pystatus.output import HEADER, age, duration, echo, write_rows
from pystatus.vocabulary import DOWN, NEEDS_ATTENTION, severity

# Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL.
EXIT_OK, EXIT_DEGRADED, EXIT_DOWN = 0, 1, 2


@dataclass(frozen=True)
class StatusLine:
    """A service's live status as ``pystatus status`` shows it to a person."""

    service: str
    status: str
    last_heartbeat: datetime = field(metadata={HEADER: "last heartbeat"})
    age: str
    expected: str
    task: str | None


def register(commands: Commands) -> None:
    status = commands.command(
        "status", cmd_status, "live status of every service (stale in red)", data=True
    )
    status.add_argument(
        "--exit-code",
        action="store_true",
        help="print a one-line summary; exit 0 all up, 1 some degraded, 2 some down or stale",
    )

    def windowed(name: str, handler: Handler, help: str, default: int, every: bool = True) -> None:
        sub = commands.command(name, handler, help, data=True)
        if every:
            sub.add_argument(
                "service_name", nargs="?", metavar="service", help="default: every service"
            )
        else:
            sub.add_argument("service_name", metavar="service")
        sub.add_argument(
            "--days", type=days, default=default, help=f"the last N days (default {default})"
        )
        sub.add_argument(
            "--since", type=interval, help="the last interval instead, e.g. 12h or '90 minutes'"
        )

    windowed("transitions", cmd_transitions, "every status change", 1)
    windowed("incidents", cmd_incidents, "when services went down, for how long, why", 7)
    uptime = commands.command(
        "uptime", cmd_uptime, "time-weighted uptime (README defines it)", data=True
    )
    uptime.add_argument("service_name", nargs="?", metavar="service", help="default: every service")
    window = uptime.add_mutually_exclusive_group()
    window.add_argument("--days", type=days, default=30, help="rolling window (default 30)")
    window.add_argument("--since", type=interval, help="the last interval instead, e.g. 12h")
    window.add_argument("--month", help="a calendar month, YYYY-MM")
    uptime.add_argument("--time-zone", default="UTC", help="for --month (default UTC)")
    trend = commands.command("trend", cmd_trend, "is the service getting slower?", data=True)
    trend.add_argument("service_name", metavar="service")
    trend.add_argument(
        "--recent", type=interval, default="1 day", help="recent window (default 1 day)"
    )
    trend.add_argument(
        "--baseline", type=interval, default="7 days", help="baseline before it (default 7 days)"
    )
    windowed("tasks", cmd_tasks, "how long each current_task lasted", 1, every=False)
    history = commands.command("history", cmd_history, "one service's history", data=True)
    history.add_argument("service_name", metavar="service")
    history.add_argument(
        "--since", type=interval, default="7 days", help="an interval: 7d, 12h, '30 minutes'"
    )


def window(args: argparse.Namespace) -> tuple[str, str]:
    """The window asked for, as the server reads it, and what to call it in an error."""
    return (args.since, "--since") if args.since else (f"{args.days} days", "--days")


def status_exit_code(services: Sequence[answers.LiveStatus]) -> tuple[int, str]:
    """The exit code and one-line summary of ``status --exit-code``: 2 when any
    service is down or stale, 1 when any is degraded, else 0."""
    down = [s.service_name for s in services if s.effective_status in DOWN]
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
    with connect(args.dsn) as conn:
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
    by_status = ", ".join(f"{counts[status]} {status}" for status in sorted(counts, key=severity))
    attention = sum(counts[status] for status in NEEDS_ATTENTION)
    noun = "service" if len(services) == 1 else "services"
    need = f"{attention} need{'s' if attention == 1 else ''} attention" if attention else "all well"
    return f"{len(services)} {noun}: {by_status}; {need}."


# Each answer is one statement: the server checks the window and the service there.
def cmd_history(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        entries = answers.history(conn, args.service_name, args.since, known=True, label="--since")
    write_rows(answers.HistoryEntry, entries, args.format)


def cmd_transitions(args: argparse.Namespace) -> None:
    span, label = window(args)
    with connect(args.dsn) as conn:
        changes = answers.transitions(conn, args.service_name, span, known=True, label=label)
    write_rows(answers.Transition, changes, args.format)


def cmd_incidents(args: argparse.Namespace) -> None:
    span, label = window(args)
    with connect(args.dsn) as conn:
        incidents = answers.incidents(conn, args.service_name, span, known=True, label=label)
    write_rows(answers.Incident, incidents, args.format)


def cmd_uptime(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        if args.month:  # --month YYYY-MM: the server reads the date, as it reads --since
            reports = answers.uptime_month(
                conn, args.service_name, f"{args.month}-01", args.time_zone, known=True
            )
        else:
            span, label = window(args)
            reports = answers.uptime(conn, args.service_name, span, known=True, label=label)
    write_rows(answers.Uptime, reports, args.format)


def cmd_trend(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        trend = answers.trend(
            conn,
            args.service_name,
            args.recent,
            args.baseline,
            known=True,
            labels=("--recent", "--baseline"),
        )
    write_rows(answers.Trend, [trend], args.format)


def cmd_tasks(args: argparse.Namespace) -> None:
    span, label = window(args)
    with connect(args.dsn) as conn:
        runs = answers.task_durations(conn, args.service_name, span, known=True, label=label)
    write_rows(answers.TaskRun, runs, args.format)
