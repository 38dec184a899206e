"""Every command against a database whose pystatus is not this one (not installed,
an older release, a newer one) says what to run, instead of a missing column or
function; the long-running ones do not start. As the owner and as a reader."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from pystatus import cli, migrations
from pystatus.cli.common import require_current
from tests.helpers import as_login, user
from tests.test_releases import RELEASES, install_release

Conn = psycopg.Connection[Any]
MINE = migrations.version()
# The newest release older than this version: what an upgrade starts from.
OLDER = [r for r in RELEASES if migrations._release(r.stem) < migrations._release(MINE)][-1]

# A command of each kind: the answers, the writes, the installation's health,
# alerts, allowances, maintenance windows, tokens.
COMMANDS = [
    ["status"],
    ["uptime", "librarian", "--since", "1 day"],
    ["incidents", "librarian"],
    ["heartbeat", "librarian"],
    ["check"],
    ["alerts", "channels"],
    ["logins"],
    ["maintenance", "list"],
    ["tokens", "list"],
]
# Those that run until stopped: each must refuse to start.
SERVERS = [
    ["dashboard", "--port", "0"],
    ["exporter", "--port", "0"],
    ["ingest", "--port", "0"],
    ["alerts", "run"],
    ["collect", "docker", "--socket", "unix:///nonexistent/docker.sock"],
]


def run(capsys: pytest.CaptureFixture[str], argv: list[str], dsn: str) -> tuple[int, str]:
    code = cli.main([*argv, "--dsn", dsn])
    return code, capsys.readouterr().err


@pytest.fixture
def old_release(empty_dsn: str) -> str:
    install_release(empty_dsn, OLDER)
    return empty_dsn


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a[:2]) for a in COMMANDS])
def test_each_command_on_an_older_release_says_to_migrate(
    argv: list[str], old_release: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(capsys, argv, old_release)
    assert code == 1
    first = err.splitlines()[0]
    assert first == (
        f"pystatus: error: this database is at pystatus {OLDER.stem}, older than this"
        f" pystatus {MINE}: its owner runs `pystatus migrate` (`pystatus migrate --plan` says"
        " what it needs)"
    ), err


@pytest.mark.parametrize("argv", SERVERS, ids=[" ".join(a[:2]) for a in SERVERS])
def test_a_server_does_not_start_on_an_older_release(argv: list[str], old_release: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pystatus.cli", *argv, "--dsn", old_release],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done
    assert "older than this pystatus" in done.stderr and "pystatus migrate" in done.stderr


def test_a_reader_is_told_too(
    old_release: str, login: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    reader = as_login(old_release, user(login("pystatus_reader")))
    code, err = run(capsys, ["status"], reader)
    assert code == 1 and "older than this pystatus" in err and "pystatus migrate" in err


def test_a_database_without_pystatus(empty_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, ["status"], empty_dsn)
    assert code == 1
    assert "pystatus is not installed in this database" in err
    assert "`pystatus migrate --plan`" in err


def test_a_newer_database_asks_for_a_newer_client(
    db: Conn, dsn: str, login: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert migrations.version_problem(db) is None  # as migrated by this version
    db.execute(
        "INSERT INTO pystatus.definitions_applied (version, sources_sha256, applied_at)"
        " VALUES ('99.1.0', 'other', now() + interval '1 second')"
    )
    problem = migrations.version_problem(db)
    assert problem == (
        f"this database is at pystatus 99.1.0, newer than this pystatus {MINE}: upgrade this"
        " client (pip install 'pystatus>=99.1.0')"
    )
    with psycopg.connect(login("pystatus_writer")) as writer:
        assert migrations.version_problem(writer) == problem
    # A newer database is read as this version knows it (a rolling upgrade
    # migrates the database first), with a warning.
    code, err = run(capsys, ["status"], dsn)
    assert (code, err.splitlines()[0]) == (0, f"pystatus: warning: {problem}")
    require_current(dsn)  # the servers start


def test_the_same_version_with_other_definitions(db: Conn) -> None:
    db.execute(
        "INSERT INTO pystatus.definitions_applied (version, sources_sha256, applied_at)"
        " VALUES (%s, 'other', now() + interval '1 second')",
        [MINE],
    )
    assert migrations.version_problem(db) == (
        f"this database is at pystatus {MINE} and this pystatus is {MINE}, with other"
        " definitions: its owner runs `pystatus migrate`"
    )
