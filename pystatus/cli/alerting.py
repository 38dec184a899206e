"""Alerting: channels, rules, the delivery log, a test message and the worker."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pystatus import alerts, answers
from pystatus.cli.common import (
    PATTERN_HELP,
    Commands,
    connect,
    interval,
    log_to_stderr,
    on_stop_signals,
    require_current,
)
from pystatus.errors import PystatusError
from pystatus.output import echo, write_rows


def register(commands: Commands) -> None:
    group = commands.group("alerts", "alert channels, rules, the delivery log and the worker")

    run = group.command("run", cmd_run, "deliver alerts until SIGTERM (any number may run)")
    run.add_argument("--name", help="this worker's name in the delivery log (default host:pid)")
    run.add_argument("--poll-interval", type=float, default=1.0, help="seconds (default 1)")
    run.add_argument(
        "--lease",
        type=float,
        default=180.0,
        help="seconds a message is held while sending, after which another worker resends it "
        "(default 180)",
    )

    group.command("channels", cmd_channels, "the channels (secrets masked)", data=True)
    add_channel = group.command("add-channel", cmd_add_channel, "add or replace a channel")
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
    group.command(
        "remove-channel", cmd_remove_channel, "remove a channel and its rules"
    ).add_argument("name")

    group.command("rules", cmd_rules, "which services alert which channels", data=True)
    add_rule = group.command(
        "add-rule", cmd_add_rule, "alert a channel about services (replaces the same pair)"
    )
    add_rule.add_argument("service_pattern", metavar="pattern", help=PATTERN_HELP)
    add_rule.add_argument("channel")
    add_rule.add_argument(
        "--down-for", default="0", help="down at least this long first, e.g. 2min"
    )
    add_rule.add_argument("--down-reports", type=int, default=1, help="and this many down reports")
    add_rule.add_argument("--up-for", default="0", help="up this long before the recovery is sent")
    add_rule.add_argument("--remind-every", help="remind while still down, e.g. 1h")
    group.command("remove-rule", cmd_remove_rule, "remove a rule").add_argument("rule_id", type=int)

    log = group.command("log", cmd_log, "the messages and their delivery", data=True)
    log.add_argument("--since", type=interval, default="1 day", help="an interval (default 1 day)")
    group.command("test", cmd_test, "send a test message through a channel now").add_argument(
        "channel"
    )


def options(pairs: Sequence[str]) -> dict[str, Any]:
    """--option key=value pairs; values that read as JSON (numbers, true) are taken as such."""
    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PystatusError(f"invalid --option {pair!r}: write key=value")
        try:
            found[key] = json.loads(value)
        except ValueError:
            found[key] = value
    return found


def cmd_channels(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        write_rows(alerts.Channel, alerts.channels(conn), args.format)


def cmd_add_channel(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        alerts.add_channel(conn, args.name, args.kind, args.target, options(args.option))
    echo(f"Channel {args.name} ({args.kind}) saved.")


def cmd_remove_channel(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        if not alerts.remove_channel(conn, args.name):
            raise PystatusError(f"no channel {args.name!r}")
    echo(f"Channel {args.name} removed, with its rules.")


def cmd_rules(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        write_rows(alerts.Rule, alerts.rules(conn), args.format)


def cmd_add_rule(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
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


def cmd_remove_rule(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        if not alerts.remove_rule(conn, args.rule_id):
            raise PystatusError(f"no rule {args.rule_id}")
    echo(f"Rule {args.rule_id} removed.")


def cmd_log(args: argparse.Namespace) -> None:
    with connect(args.dsn) as conn:
        entries = alerts.message_log(conn, answers.ago(conn, args.since))
    write_rows(alerts.LogEntry, entries, args.format)


def cmd_test(args: argparse.Namespace) -> int:
    """A test message through the real channel, now, by this process (a running
    worker may take it first: then its outcome is in the log)."""
    with connect(args.dsn) as conn:
        outcome = alerts.send_test_now(conn, args.channel)
    if not outcome.attempted:
        echo(
            f"Test message {outcome.message_id} queued; a running worker is sending it "
            "(pystatus alerts log)."
        )
        return 0
    if outcome.error:
        echo(f"Test message {outcome.message_id} via {args.channel} failed: {outcome.error}")
        return 1
    echo(f"Test message {outcome.message_id} sent via {args.channel}.")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    require_current(args.dsn)
    log_to_stderr()
    worker = alerts.Worker(
        args.dsn,
        name=args.name,
        poll_interval=args.poll_interval,
        lease=timedelta(seconds=args.lease),
    )
    on_stop_signals(worker.stop)
    worker.run()
    echo(
        f"alert worker {worker.name} stopped: "
        f"{worker.delivered} sent, {worker.failed} failed attempts"
    )
    return 0
