"""What every command shares: the connection and its version guard, the
registration of commands beside their handlers, and the argument types."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import math
import re
import signal
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import psycopg

from pystatus import migrations
from pystatus.connection import resolve_dsn
from pystatus.errors import NotInstalled, PystatusError, translate_errors
from pystatus.output import FORMATS, TerminalSafeFormatter, echo
from pystatus.vocabulary import MAX_WINDOW_DAYS

Conn = psycopg.Connection[Any]
Handler = Callable[[argparse.Namespace], "int | None"]
PATTERN_HELP = "a service name; * for any characters"


class Commands:
    """Where each module of the CLI registers its commands, each with its options
    beside its handler: ``command`` for one, ``group`` for one with actions."""

    def __init__(self, subparsers: Any) -> None:
        self._subparsers = subparsers

    def command(
        self,
        name: str,
        handler: Handler,
        help: str,
        *,
        data: bool = False,
        dsn: bool = True,
        description: str | None = None,
    ) -> argparse.ArgumentParser:
        """A command (or a group's action) run by ``handler``, with ``--dsn`` unless it
        needs no database; with ``data``, its rows in ``--format``."""
        sub: argparse.ArgumentParser = self._subparsers.add_parser(
            name, help=help, description=description or help
        )
        sub.set_defaults(handler=handler)
        if dsn:
            sub.add_argument(
                "--dsn", help="libpq DSN or URL (default: $DATABASE_URL, then PG* variables)"
            )
        if data:
            sub.add_argument("--format", choices=FORMATS, default="table")
        return sub

    def group(self, name: str, help: str, *, dest: str = "action") -> Commands:
        """A command whose actions are commands of their own (``alerts add-rule``)."""
        parser = self._subparsers.add_parser(name, help=help, description=help)
        metavar = dest.upper()
        return Commands(parser.add_subparsers(dest=dest, required=True, metavar=metavar))


def connect(dsn: str | None, *, guard: bool = True) -> Conn:
    """A connection to pystatus's database; with ``guard``, refused (saying what to
    run) unless the database's pystatus is this one, or a newer one (a warning)."""
    with translate_errors():
        conn = psycopg.connect(resolve_dsn(dsn), autocommit=True)
        try:
            problem = migrations.version_problem(conn) if guard else None
        except BaseException:
            conn.close()
            raise
    if problem and problem.newer:
        echo(f"pystatus: warning: {problem}", file=sys.stderr)
    elif problem:
        conn.close()
        raise NotInstalled(problem)
    return conn


def version_problem(dsn: str | None) -> migrations.VersionProblem | None:
    """Whether this database's pystatus is this one, asked of the database (None when
    they match, or when the database cannot be asked: the caller's own error stands)."""
    try:
        with psycopg.connect(resolve_dsn(dsn), autocommit=True, connect_timeout=5) as conn:
            return migrations.version_problem(conn)
    except psycopg.Error:
        return None


def require_current(dsn: str | None) -> None:
    """A long-running command (dashboard, exporter, ingest, workers) starts only
    against the pystatus it was written for: else it says what to run. A database
    that is away is not refused here: the command waits for it as it always does."""
    problem = version_problem(dsn)
    if problem and problem.newer:
        # Upgraded first, as a rolling upgrade does: this one serves what it knows.
        logging.getLogger("pystatus").warning("%s", problem)
    elif problem:
        raise NotInstalled(problem)


@contextlib.contextmanager
def connect_with_cron(dsn: str | None, cron_dsn: str | None) -> Iterator[tuple[Conn, Conn | None]]:
    """This database, and pg_cron's database when --cron-dsn names another one."""
    with connect(dsn) as conn:
        if cron_dsn is None:
            yield conn, None
        else:
            with connect(cron_dsn, guard=False) as cron_conn:
                yield conn, cron_conn


def confirmed(question: str) -> bool:
    """A yes typed at a terminal; never yes without one (scripts say --yes)."""
    if not sys.stdin.isatty():
        return False
    return input(f"{question} Type yes to go on: ").strip() == "yes"


def extra(module: str, what: str, name: str = "dashboard") -> ModuleType:
    """``pystatus.<module>``, or an error naming the extra to install for ``what``."""
    try:
        return importlib.import_module(f"pystatus.{module}")
    except ImportError as exc:
        raise PystatusError(
            f"{what} needs the {name} extra: pip install 'pystatus[{name}]' ({exc})"
        ) from exc


def on_stop_signals(stop: Callable[[], None]) -> None:
    """SIGTERM (docker stop, systemd) and Ctrl-C call ``stop``: the long-running
    commands finish what is in hand, then exit 0."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop())


def log_to_stderr() -> None:
    """The long-running commands' log: their records quote what others sent (a
    receiver's error, a container's output, a ping's path)."""
    handler = logging.StreamHandler()
    handler.setFormatter(TerminalSafeFormatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def days(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {value!r}") from None
    if not 1 <= number <= MAX_WINDOW_DAYS:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_WINDOW_DAYS} days: {value}")
    return number


def interval(value: str) -> str:
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


def non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more: {value}")
    return number


def non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return number


def positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0.1 <= seconds <= 86_400:
        raise argparse.ArgumentTypeError(f"must be between 0.1 and 86400 seconds: {value}")
    return seconds
