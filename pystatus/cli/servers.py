"""The long-running servers: dashboard, exporter, ping endpoint, Docker collector."""

from __future__ import annotations

import argparse
import threading

from pystatus.cli.common import (
    Commands,
    extra,
    log_to_stderr,
    non_negative_int,
    on_stop_signals,
    positive_seconds,
    require_current,
)
from pystatus.connection import STATEMENT_TIMEOUT
from pystatus.output import echo


def register(commands: Commands) -> None:
    board = commands.command(
        "dashboard", cmd_dashboard, "serve the read-only dashboard and JSON API"
    )
    board.add_argument("--host", default="127.0.0.1")
    board.add_argument("--port", type=int, default=8000)
    board.add_argument(
        "--statement-timeout",
        type=positive_seconds,
        default=STATEMENT_TIMEOUT,
        help="seconds a request's query may run before it is cancelled and answered 503 "
        f"(default {STATEMENT_TIMEOUT:g})",
    )

    exporter = commands.command(
        "exporter", cmd_exporter, "serve Prometheus metrics (as a reader login)"
    )
    exporter.add_argument("--host", default="127.0.0.1")
    exporter.add_argument("--port", type=int, default=9187, help="default 9187")

    ingest = commands.command(
        "ingest", cmd_ingest, "serve the HTTP ping endpoint (as a writer login)"
    )
    ingest.add_argument("--host", default="127.0.0.1")
    ingest.add_argument("--port", type=int, default=8020, help="default 8020")
    ingest.add_argument(
        "--rate-limit",
        type=non_negative_int,
        default=60,
        metavar="N",
        help="pings a minute per token, in bursts up to N (default 60; 0: no limit)",
    )
    ingest.add_argument(
        "--max-body",
        type=non_negative_int,
        default=10_000,
        metavar="BYTES",
        help="largest POST body accepted (default 10000)",
    )

    collect = commands.group("collect", "record other systems' health as heartbeats", dest="source")
    docker = collect.command(
        "docker",
        cmd_collect_docker,
        "Docker containers' state and health (as a writer login)",
        description="Docker containers' state and health, as heartbeats (as a writer login)",
    )
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
        type=positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds between full snapshots (default 10); events are recorded at once",
    )


def cmd_dashboard(args: argparse.Namespace) -> None:
    dashboard = extra("dashboard", "the dashboard")
    require_current(args.dsn)
    echo(f"Dashboard on http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    dashboard.run(args.dsn, args.host, args.port, args.statement_timeout)


def cmd_exporter(args: argparse.Namespace) -> None:
    metrics = extra("metrics", "the exporter")
    require_current(args.dsn)
    stop = threading.Event()
    on_stop_signals(stop.set)
    echo(f"Prometheus metrics on http://{args.host}:{args.port}/metrics", flush=True)
    metrics.serve(args.dsn, args.host, args.port, stop)


def cmd_ingest(args: argparse.Namespace) -> None:
    ingest = extra("ingest", "the ping endpoint")
    require_current(args.dsn)
    log_to_stderr()
    echo(
        f"Ping endpoint on http://{args.host}:{args.port}/ping/<token> (Ctrl-C to stop)", flush=True
    )
    ingest.run(args.dsn, args.host, args.port, args.rate_limit, args.max_body)


def cmd_collect_docker(args: argparse.Namespace) -> None:
    docker_collector = extra("docker_collector", "the Docker collector", "docker")
    require_current(args.dsn)
    log_to_stderr()
    stop = threading.Event()
    on_stop_signals(stop.set)
    echo(
        f"Recording the containers of {args.socket} as heartbeats every {args.interval:g} s"
        " (Ctrl-C to stop)",
        flush=True,
    )
    docker_collector.run_collector(
        args.dsn, args.socket, args.label, args.interval, args.label_only, stop
    )
