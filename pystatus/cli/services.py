"""What the team says about services: expectations, logins, tokens, maintenance,
snoozes, and a heartbeat from a script."""

from __future__ import annotations

import argparse
from datetime import timedelta

from pystatus import admin, alerts, answers
from pystatus.cli.common import PATTERN_HELP, Commands, connect, days, non_negative_float
from pystatus.client import heartbeat
from pystatus.errors import PystatusError
from pystatus.output import FORMATS, echo, write_rows
from pystatus.vocabulary import DEFAULT_GRACE, REPORTED


def register(commands: Commands) -> None:
    expect = commands.command("expect", cmd_expect, "set a service's heartbeat interval and grace")
    expect.add_argument("service_name", metavar="service")
    expect.add_argument("--interval", required=True, help="expected interval, e.g. 60s or '5 min'")
    grace = f"{DEFAULT_GRACE.total_seconds():g} seconds"
    expect.add_argument("--grace", default=grace, help=f"lateness forgiven (default {grace})")

    logins = commands.command(
        "logins", cmd_logins, "which services each login may heartbeat for", data=True
    )
    change = logins.add_mutually_exclusive_group()
    change.add_argument(
        "--allow",
        nargs=2,
        metavar=("LOGIN", "PATTERN"),
        help="allow a service name, or a pattern with * (e.g. 'billing-*')",
    )
    change.add_argument("--disallow", nargs=2, metavar=("LOGIN", "PATTERN"))

    beat = commands.command("heartbeat", cmd_heartbeat, "record one heartbeat (for scripts)")
    beat.add_argument("service_name", metavar="service")
    beat.add_argument(
        "--status",
        default="ok",
        metavar="STATUS",
        # Checked by the database, whose error names the rule, as for any caller.
        help=f"default ok; one of {', '.join(REPORTED)}",
    )
    beat.add_argument("--current-task", "--task", help="what the service is doing now")
    beat.add_argument(
        "--latency",
        type=non_negative_float,
        metavar="MS",
        help="a measure in milliseconds (a request's time, a job's run), for `trend`",
    )

    maintenance = commands.group("maintenance", "plan maintenance windows")
    add = maintenance.command(
        "add",
        cmd_maintenance_add,
        "plan a window: down time inside counts as maintenance, alerts are muted",
    )
    add.add_argument("service_pattern", metavar="pattern", help=PATTERN_HELP)
    add.add_argument("--from", dest="starts", required=True, help="start, e.g. '2026-12-06 02:00'")
    add.add_argument("--until", dest="ends", required=True, help="end, e.g. '2026-12-06 04:00'")
    add.add_argument("--every", help="repeat, e.g. '1 week' or '1 day'")
    add.add_argument("--time-zone", default="UTC", help="of --from/--until and the repeats")
    add.add_argument("--repeat-until", help="last repeat starts before this")
    add.add_argument("--reason")
    listed = maintenance.command(
        "list", cmd_maintenance_list, "the windows and snoozes of the coming days"
    )
    listed.add_argument("--days", type=days, default=7, help="how far ahead (default 7)")
    listed.add_argument("--format", choices=FORMATS, default="table")
    maintenance.command(
        "remove", cmd_maintenance_remove, "remove a window (all its repeats)"
    ).add_argument("window_id", type=int, metavar="id")

    snooze = commands.command("snooze", cmd_snooze, "mute a service's alerts for a while")
    snooze.add_argument("service_pattern", metavar="pattern", help=PATTERN_HELP)
    snooze.add_argument("--for", dest="duration", required=True, help="e.g. 2h or '30 minutes'")
    snooze.add_argument("--reason")

    tokens = commands.group("tokens", "secret tokens for the HTTP ping endpoint")
    add_token = tokens.command(
        "add", cmd_tokens_add, "make a token for a service and print its ping URLs"
    )
    add_token.add_argument("service_name", metavar="service")
    add_token.add_argument("--note", help="what the token is for, e.g. the script using it")
    add_token.add_argument(
        "--url",
        default="http://127.0.0.1:8020",
        help="where pystatus ingest listens, for the printed URLs",
    )
    tokens.command("list", cmd_tokens_list, "the tokens, by prefix", data=True)
    tokens.command("remove", cmd_tokens_remove, "revoke a token").add_argument(
        "token_prefix", metavar="prefix", help="ps_ and 8 characters, as listed"
    )


def cmd_expect(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        admin.set_expectations(conn, args.service_name, args.interval, args.grace)
    echo(
        f"{args.service_name}: heartbeat every {args.interval}, stale after a further {args.grace}."
    )


def cmd_logins(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        if args.allow:
            admin.allow_service(conn, *args.allow)
        if args.disallow and not admin.disallow_service(conn, *args.disallow):
            raise PystatusError(f"login {args.disallow[0]} had no allowance {args.disallow[1]!r}")
        write_rows(admin.ServiceLogin, admin.service_logins(conn), args.format)


def cmd_heartbeat(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        recorded_at = heartbeat(
            conn, args.service_name, args.status, args.current_task, args.latency
        )
    echo(recorded_at.isoformat())


def cmd_maintenance_add(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        # Times without an offset are read in --time-zone, as the window repeats there.
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


def cmd_maintenance_list(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        since = answers.ago(conn, "0 seconds")
        planned = alerts.windows(conn, since, since + timedelta(days=args.days))
    write_rows(alerts.Window, planned, args.format)


def cmd_maintenance_remove(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        if not alerts.remove_maintenance(conn, args.window_id):
            raise PystatusError(f"no maintenance window {args.window_id}")
    echo(f"Maintenance window {args.window_id} removed.")


def cmd_snooze(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        window_id = alerts.snooze(conn, args.service_pattern, args.duration, args.reason)
    echo(f"Alerts of {args.service_pattern} muted for {args.duration} (snooze {window_id}).")


def cmd_tokens_add(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        token = admin.add_ping_token(conn, args.service_name, args.note)
    url = f"{args.url.rstrip('/')}/ping/{token}"
    echo(f"Ping token for {args.service_name} (shown only now; keep it secret):\n{token}\n")
    echo(f"  curl -fsS -m 10 --retry 3 {url}            # ok")
    echo(f"  curl -fsS -m 10 --retry 3 {url}/start      # a run begins")
    echo(f"  curl -fsS -m 10 --retry 3 {url}/$?         # a run ended: its exit code")


def cmd_tokens_list(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        write_rows(admin.PingToken, admin.ping_tokens(conn), args.format)


def cmd_tokens_remove(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        service = admin.remove_ping_token(conn, args.token_prefix)
    echo(f"Ping token {args.token_prefix[:11]} of {service} revoked.")
