"""The ``pystatus`` command: one module per group of commands, each registering
its commands' options beside their handlers (``register``); ``main`` runs one."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pystatus import migrations
from pystatus.cli import alerting, install, operate, read, servers, services
from pystatus.cli.common import Commands, version_problem
from pystatus.errors import NotInstalled, PystatusError
from pystatus.output import echo

GROUPS = (install, operate, read, services, alerting, servers)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="pystatus", description="Service heartbeats with history in PostgreSQL."
    )
    top.add_argument("--version", action="version", version=f"pystatus {migrations.version()}")
    commands = Commands(top.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    for group in GROUPS:
        group.register(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except NotInstalled as exc:
        # A missing function, table or column: say what to run, when the cause is
        # that the database's pystatus is not this one.
        explain = getattr(args, "explains_version", True) and hasattr(args, "dsn")
        problem = version_problem(args.dsn) if explain else None
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
