"""The pystatus command, and the wheel it ships in."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import cli, migrations
from pystatus.cluster import Cluster
from pystatus.output import write_rows
from tests.helpers import MIGRATION_ORDER, one

Conn = psycopg.Connection[Any]
ROOT = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_in_each_format(db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    pystatus.heartbeat(db, "librarian", "ok", "indexing")
    pystatus.record_heartbeat(db, "scheduler", "ok", None, _ago(db, minutes=10))

    code, out, _ = run(capsys, "status", "--dsn", dsn)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["service", "status", "last", "heartbeat", "age", "expected", "task"]
    assert lines[2].split()[:2] == ["librarian", "ok"] and lines[2].split()[-1] == "indexing"
    assert lines[3].split()[:2] == ["scheduler", "stale"]  # silent for 10 minutes
    assert "10 min ago" in lines[3] and "every 1 min" in lines[3]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", lines[3])
    assert lines[-1] == "2 services: 1 stale, 1 ok; 1 needs attention."

    code, out, _ = run(capsys, "status", "--dsn", dsn, "--format", "json")
    records = json.loads(out)
    assert [(r["service_name"], r["effective_status"], r["reported_status"]) for r in records] == [
        ("librarian", "ok", "ok"),
        ("scheduler", "stale", "ok"),
    ]
    # Machine values: durations in seconds, times ISO 8601 with their offset.
    assert records[1]["expected_interval"] == 60.0 and records[1]["grace"] == 60.0
    assert datetime.fromisoformat(records[1]["last_heartbeat"]).utcoffset() is not None
    assert isinstance(records[1]["seconds_since"], float) and records[1]["seconds_since"] >= 600

    code, out, _ = run(capsys, "status", "--dsn", dsn, "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:2] == ["service_name", "effective_status"] and rows[2][:2] == [
        "scheduler",
        "stale",
    ]
    assert rows[2][rows[0].index("expected_interval")] == "60.0"
    assert datetime.fromisoformat(
        rows[2][rows[0].index("last_heartbeat")]
    ) == datetime.fromisoformat(records[1]["last_heartbeat"])


@dataclass(frozen=True)
class Line:
    service: str
    status: str


GREEN, RED = "\x1b[32m", "\x1b[31m"
ESCAPE_CODE = re.compile(r"\x1b\[[0-9;]*m")


def table() -> list[str]:
    out = io.StringIO()
    rows = [Line("a", "ok"), Line("b", "stale")]
    write_rows(Line, rows, "table", out)
    return out.getvalue().splitlines()


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output as rich sees a colour terminal (FORCE_COLOR), whatever runs the tests."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)


def test_statuses_are_coloured_on_a_terminal(terminal: None) -> None:
    lines = table()
    assert GREEN in lines[2] and ESCAPE_CODE.sub("", lines[2]).rstrip() == "a        ok"
    assert RED in lines[3] and ESCAPE_CODE.sub("", lines[3]).rstrip() == "b        stale"


def test_piped_tables_and_no_color_have_no_escape_codes(
    terminal: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert [ESCAPE_CODE.sub("", line).rstrip() for line in table()][2:] == [
        "a        ok",
        "b        stale",
    ]
    assert not any(GREEN in line or RED in line for line in table())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.delenv("FORCE_COLOR")
    assert table() == ["service  status", "─" * 15, "a        ok", "b        stale"]


def test_cells_are_text_not_markup() -> None:
    out = io.StringIO()
    write_rows(Line, [Line("[red]x[/red] :smile:", "ok")], "table", out)
    assert out.getvalue().splitlines()[2].split() == ["[red]x[/red]", ":smile:", "ok"]


# A task as rows written before the cleaning rule may hold it: clear the screen,
# retitle the window, reverse what follows, and a second line.
HOSTILE = "\x1b[2J\x1b]0;owned\x07\u202eksat\nfake row\tok"
SHOWN = "\\x1b[2J\\x1b]0;owned\\x07\\u202eksat\\x0afake row\\x09ok"


def _written_before_cleaning(db: Conn, service: str, task: str) -> None:
    """A status and a history row holding ``task`` raw: triggers off, as a superuser
    may still write, and as rows older than the cleaning rule are."""
    with db.transaction():
        db.execute("SET LOCAL session_replication_role = replica")
        db.execute(
            "INSERT INTO system_status (service_name, status, current_task, last_heartbeat)"
            " VALUES (%s, 'down', %s, now())",
            (service, task),
        )
        db.execute(
            "INSERT INTO system_status_history (heartbeat_timestamp, created_at, service_name,"
            " status, current_task) VALUES (now(), now(), %s, 'down', %s)",
            (service, task),
        )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_printed_texts_cannot_drive_the_terminal(
    db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _written_before_cleaning(db, "mailer", HOSTILE)
    for argv in (["status"], ["history", "mailer"], ["tasks", "mailer"]):
        code, out, _ = run(capsys, *argv, "--dsn", dsn)
        assert code == 0 and SHOWN in out and "\x1b" not in out and "\u202e" not in out, argv
        # One line a row: the task's line break does not start a row of its own.
        assert all(SHOWN in line for line in out.splitlines() if "fake row" in line), argv
    # JSON escapes on its own, and gives the text back exactly.
    code, out, _ = run(capsys, "status", "--dsn", dsn, "--format", "json")
    assert "\x1b" not in out and json.loads(out)[0]["current_task"] == HOSTILE
    # CSV keeps the exact text for a program; on a terminal it is escaped too.
    code, out, _ = run(capsys, "history", "mailer", "--dsn", dsn, "--format", "csv")
    [row] = csv.DictReader(io.StringIO(out))
    assert row["current_task"] == HOSTILE
    shown = Terminal()
    write_rows(Line, [Line("mailer", HOSTILE)], "csv", shown)
    assert shown.getvalue() == f"service,status\r\nmailer,{SHOWN}\r\n"
    # Texts set by people (a token's note) and quoted in errors are escaped alike.
    assert run(capsys, "tokens", "add", "mailer", "--note", HOSTILE, "--dsn", dsn)[0] == 0
    code, out, _ = run(capsys, "tokens", "list", "--dsn", dsn)
    assert SHOWN in out and "\x1b" not in out
    code, _, err = run(capsys, "heartbeat", "bad\x1b]0;owned\x07", "--dsn", dsn)
    assert code == 1 and "invalid service name 'bad\\x1b]0;owned\\x07'" in err
    assert "\x1b" not in err


def _ago(db: Conn, **delta: int) -> Any:
    return db.execute("SELECT now()").fetchone()[0] - timedelta(**delta)  # type: ignore[index]


def test_history_since(db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    now = pystatus.heartbeat(db, "librarian", "degraded")
    pystatus.record_heartbeat(
        db, "librarian", "ok", None, now.replace(microsecond=0) - timedelta(hours=3)
    )
    pystatus.record_heartbeat(db, "librarian", "down", None, now - timedelta(hours=30))

    code, out, _ = run(
        capsys, "history", "librarian", "--since", "1d", "--dsn", dsn, "--format", "json"
    )
    assert code == 0
    assert [r["status"] for r in json.loads(out)] == ["degraded", "ok"]  # newest first
    code, out, _ = run(
        capsys, "history", "librarian", "--since", "2 days", "--dsn", dsn, "--format", "json"
    )
    assert [r["status"] for r in json.loads(out)] == ["degraded", "ok", "down"]


def test_bad_since_is_a_clear_error(db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    pystatus.heartbeat(db, "librarian")  # a known service: the window is what is wrong
    code, _, err = run(capsys, "history", "librarian", "--since", "last tuesday", "--dsn", dsn)
    assert code == 1
    assert err.startswith("pystatus: error: invalid input syntax for type interval")


def test_heartbeat_command(db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "heartbeat", "cron-job", "--status", "maintenance", "--task", "backup", "--dsn", dsn
    )
    assert code == 0 and out.strip()
    assert db.execute("SELECT status, current_task FROM system_status").fetchone() == (
        "maintenance",
        "backup",
    )
    code, _, err = run(capsys, "heartbeat", "cron-job", "--status", "fine", "--dsn", dsn)
    assert code == 1 and "invalid status 'fine': must be one of ok, degraded" in err


def test_migrate_on_an_up_to_date_database_reports_and_changes_nothing(
    dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "migrate", "--dsn", dsn)
    assert code == 0
    assert out.startswith(f"pystatus {migrations.version()}: already up to date.")
    assert "pg_partman: 4." in out or "pg_partman: 5." in out
    assert "retention: 60 days" in out


def test_database_unavailable_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "--dsn", "host=127.0.0.1 port=1 connect_timeout=2")
    assert code == 1 and "pystatus: error: connection" in err


def test_not_installed_is_a_clear_error(empty_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "heartbeat", "x", "--dsn", empty_dsn)
    assert code == 1 and "pystatus is not installed in this database" in err


def test_dsn_from_database_url(
    db: Conn, dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    info = db.info
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"
    )
    assert run(capsys, "heartbeat", "from-env")[0] == 0
    assert db.execute("SELECT service_name FROM system_status").fetchone() == ("from-env",)


def test_the_wheel_carries_the_sql_and_migrates_outside_the_repository(
    tmp_path: Path, empty_dsn: str, cluster: Cluster
) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("pystatus-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pystatus/sql/migrations/0.2.0/0001_baseline.sql" in names
    assert "pystatus/sql/schema/30_write.sql" in names
    assert "pystatus/sql/queries.sql" in names
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)

    env = {**os.environ, "PYTHONPATH": str(unpacked), "DATABASE_URL": empty_dsn}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pystatus, pystatus.cli; print(pystatus.__file__);"
            " sys.exit(pystatus.cli.main(['migrate']))",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(unpacked))
    assert (
        "applied " + ", ".join(MIGRATION_ORDER) + ", the definitions of sql/schema/." in done.stdout
    )


def test_dsn_from_libpq_variables(
    db: Conn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    info = db.info
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for name, value in {
        "PGHOST": info.host,
        "PGPORT": str(info.port),
        "PGUSER": info.user,
        "PGDATABASE": info.dbname,
    }.items():
        monkeypatch.setenv(name, value)
    assert run(capsys, "heartbeat", "from-pg-vars")[0] == 0
    assert db.execute("SELECT service_name FROM system_status").fetchone() == ("from-pg-vars",)


def test_answer_commands(db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    now = _ago(db, minutes=0)
    for minute in range(30, 9, -1):  # up until 10 minutes ago, then silent
        at = now - timedelta(minutes=minute)
        pystatus.record_heartbeat(db, "librarian", "ok", "indexing", at, 12.5)

    code, out, _ = run(capsys, "incidents", "librarian", "--dsn", dsn, "--format", "json")
    [incident] = json.loads(out)
    assert (incident["cause"], incident["ended"]) == ("silence", None)

    code, out, _ = run(
        capsys, "transitions", "librarian", "--since", "1h", "--dsn", dsn, "--format", "json"
    )
    assert [t["to_status"] for t in json.loads(out)] == ["ok", "stale"]

    code, out, _ = run(capsys, "uptime", "--days", "1", "--dsn", dsn, "--format", "json")
    [report] = json.loads(out)
    assert report["service_name"] == "librarian" and float(report["up_seconds"]) == 22 * 60

    code, out, _ = run(
        capsys,
        "uptime",
        "librarian",
        "--month",
        now.strftime("%Y-%m"),
        "--dsn",
        dsn,
        "--format",
        "csv",
    )
    assert code == 0 and out.splitlines()[1].startswith("librarian,")

    code, out, _ = run(capsys, "trend", "librarian", "--dsn", dsn, "--format", "json")
    assert json.loads(out)[0]["verdict"] == "not enough data"

    code, out, _ = run(capsys, "tasks", "librarian", "--dsn", dsn, "--format", "json")
    assert [t["current_task"] for t in json.loads(out)] == ["indexing"]

    code, out, _ = run(capsys, "expect", "librarian", "--interval", "1 hour", "--dsn", dsn)
    assert code == 0 and "every 1 hour" in out
    code, out, _ = run(capsys, "status", "--dsn", dsn, "--format", "json")
    assert json.loads(out)[0]["effective_status"] == "ok"  # an hour's patience now

    code, _, err = run(capsys, "uptime", "--month", "2026-13", "--dsn", dsn)
    assert code == 1 and "pystatus: error:" in err
    code, _, err = run(capsys, "expect", "librarian", "--interval", "-5 minutes", "--dsn", dsn)
    assert code == 1 and "must be positive" in err


def test_maintain_runs_every_job(db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    pystatus.record_heartbeat(db, "silent", "ok", None, _ago(db, minutes=10))
    code, out, _ = run(capsys, "maintain", "--dsn", dsn)
    results = dict(line.split(": ", 1) for line in out.splitlines())
    assert code == 0 and list(results) == ["sweep", "refresh_rollups", "maintain"]
    assert json.loads(results["sweep"]) == 1 and "dropped" in json.loads(results["maintain"])


def test_since_and_days_are_read_by_the_server(
    db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = _ago(db, minutes=0)
    pystatus.record_heartbeat(db, "librarian", "maintenance", None, now - timedelta(hours=30))
    pystatus.record_heartbeat(db, "librarian", "ok", None, now - timedelta(hours=11))
    pystatus.record_heartbeat(
        db, "librarian", "stopping", None, now - timedelta(hours=11) + timedelta(minutes=1)
    )

    def changes(*window: str) -> list[str]:
        code, out, err = run(
            capsys, "transitions", "librarian", *window, "--dsn", dsn, "--format", "json"
        )
        assert code == 0, err
        return [t["to_status"] for t in json.loads(out)]

    assert changes("--since", "12h") == ["ok", "stopping"]
    # PostgreSQL's interval syntax, which only the server reads.
    assert changes("--since", "1 day 7 hours") == ["maintenance", "ok", "stopping"]
    assert changes("--since", "@ 10 hours 59 minutes 30 seconds") == ["stopping"]
    assert changes("--days", "1") == ["ok", "stopping"]
    assert changes("--days", "2") == ["maintenance", "ok", "stopping"]
    code, _, err = run(capsys, "incidents", "--since", "a fortnight", "--dsn", dsn)
    assert code == 1 and err.startswith("pystatus: error: invalid input syntax for type interval")


def test_rollback_that_removes_pystatus_asks_for_yes_and_prints_the_allowances(
    db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pystatus.heartbeat(db, "librarian")
    db.execute("CREATE ROLE billing_login LOGIN")
    try:
        pystatus.allow_service(db, "billing_login", "billing-*")
        code, _, err = run(capsys, "rollback", "--all", "--dsn", dsn)
        assert code == 1
        assert "login allowances are dropped" in err and "run again with --yes" in err
        # Counted, not the planner's estimate (0 for a table never analyzed).
        assert "This removes pystatus from the database: 1 history row and 1 login" in err
        assert one(db, "SELECT count(*) FROM system_status_history") == 1  # nothing changed

        code, out, err2 = run(capsys, "rollback", "--all", "--dsn", dsn, "--yes")
        assert code == 0, err2
        assert code == 0 and "Rolled back: " + ", ".join(MIGRATION_ORDER[::-1]) in out
        restore = [shlex.split(line) for line in out.splitlines() if "logins --allow" in line]
        assert restore == [["pystatus", "logins", "--allow", "billing_login", "billing-*"]]
        # What it printed restores them after a new install.
        assert run(capsys, "migrate", "--dsn", dsn)[0] == 0
        assert run(capsys, *restore[0][1:], "--dsn", dsn)[0] == 0
        assert [(a.login, a.service_pattern) for a in pystatus.service_logins(db)] == [
            ("billing_login", "billing-*")
        ]
    finally:
        db.execute("DROP OWNED BY billing_login")
        db.execute("DROP ROLE billing_login")


def test_tables_are_for_people_and_json_for_programs(
    db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = _ago(db, minutes=0)
    pystatus.set_expectations(db, "librarian", timedelta(days=1))  # no silence in between
    pystatus.record_heartbeat(db, "librarian", "ok", None, now - timedelta(hours=30), 150.0)
    pystatus.record_heartbeat(db, "librarian", "down", None, now - timedelta(hours=25))
    pystatus.record_heartbeat(db, "librarian", "ok", None, now - timedelta(hours=23, minutes=38))
    pystatus.heartbeat(db, "librarian", "ok")
    code, out, _ = run(capsys, "incidents", "librarian", "--dsn", dsn)
    assert code == 0 and "1 h 22 min" in out  # not "1:22:00"
    code, out, _ = run(capsys, "uptime", "librarian", "--days", "2", "--dsn", dsn)
    [row] = [line for line in out.splitlines() if line.startswith("librarian")]
    assert re.search(r" \d{2}\.\d{2} %", row) and "1 d 4 h 38 min" in row  # up time, in words
    code, out, _ = run(
        capsys, "uptime", "librarian", "--days", "2", "--dsn", dsn, "--format", "json"
    )
    [report] = json.loads(out)
    assert isinstance(report["up_seconds"], float) and 0 < report["uptime"] < 1
    assert report["down_seconds"] == pytest.approx(82 * 60, abs=1)


def test_windows_and_options_are_checked(
    db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pystatus.heartbeat(db, "librarian")
    refused = {
        ("uptime", "--days", "0"): "must be 1 to",
        ("uptime", "--days", "-3"): "must be 1 to",
        ("incidents", "--days", "x"): "not a whole number of days",
        ("uptime", "--since", "12", "hours"): "'12' has no unit",
        ("uptime", "--since", "-1 day"): "write it positive",
        ("transitions", "--since", ""): "an empty interval",
        ("heartbeat", "x", "--latency", "-1"): "must be a finite number, 0 or more",
        ("heartbeat", "x", "--latency", "nan"): "must be a finite number, 0 or more",
    }
    for argv, message in refused.items():
        with pytest.raises(SystemExit) as exit:
            cli.main([*argv, "--dsn", dsn])
        assert exit.value.code == 2, argv
        assert message in capsys.readouterr().err, argv
    for argv, message in {
        ("transitions", "--since", "0 seconds"): "must be a positive interval",
        ("uptime", "--since", "20 years"): "must be at most 3660 days",
        ("history", "librarian", "--since", "soon"): "invalid input syntax for type interval",
        ("trend", "librarian", "--recent", "0 days"): "--recent '0 days'",
    }.items():
        code, _, err = run(capsys, *argv, "--dsn", dsn)
        assert code == 1 and message in err, (argv, err)


def test_an_unknown_service_is_named_and_fails(
    db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pystatus.heartbeat(db, "librarian")
    for command in ("history", "incidents", "transitions", "uptime", "trend", "tasks"):
        code, out, err = run(capsys, command, "librarain", "--dsn", dsn)
        assert code == 1 and out == "", command
        assert err == "pystatus: error: no service named 'librarain' (did you mean 'librarian'?)\n"


def test_heartbeat_with_a_latency_and_the_version(
    db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(
            capsys,
            "heartbeat",
            "api",
            "--status",
            "degraded",
            "--latency",
            "12.5",
            "--task",
            "x",
            "--dsn",
            dsn,
        )[0]
        == 0
    )
    assert db.execute("SELECT status, current_task, latency_ms FROM system_status").fetchone() == (
        "degraded",
        "x",
        12.5,
    )
    with pytest.raises(SystemExit) as exit:
        cli.main(["--version"])
    assert exit.value.code == 0 and re.fullmatch(
        r"pystatus \d+\.\d+\.\d+(\.dev\d+)?\n", capsys.readouterr().out
    )
    with pytest.raises(SystemExit):
        cli.main(["heartbeat", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "one of ok, degraded, down, starting, stopping, maintenance" in help_text


def test_a_closed_pipe_ends_quietly(db: Conn, dsn: str) -> None:
    # More than a pipe holds (64 KiB), so the writer meets the closed pipe.
    pystatus.heartbeat_many(db, [(f"service-{n:04}", "ok", "x" * 100) for n in range(1000)])
    done = subprocess.run(
        f"{sys.executable} -m pystatus.cli status --dsn '{dsn}' | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == [
        "service",
        "status",
        "last",
        "heartbeat",
        "age",
        "expected",
        "task",
    ]
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("argv", "module", "extra"),
    [
        # An address no server can bind: were the import to succeed, the command
        # would fail at once rather than serve.
        (["exporter", "--host", "192.0.2.1"], "prometheus_client", "dashboard"),
        (["dashboard", "--host", "192.0.2.1"], "fastapi", "dashboard"),
        (["ingest", "--host", "192.0.2.1"], "psycopg_pool", "dashboard"),
        (["collect", "docker"], "docker", "docker"),
    ],
)
def test_a_missing_extra_is_named_without_a_traceback(
    argv: list[str],
    module: str,
    extra: str,
    dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: import fails
    # pystatus's modules that import it are imported afresh (and fail).
    for name in ("dashboard", "metrics", "ingest", "docker_collector"):
        monkeypatch.delitem(sys.modules, f"pystatus.{name}", raising=False)
        monkeypatch.delattr(pystatus, name, raising=False)
    for loaded in [m for m in sys.modules if m.startswith("pystatus.dashboard.")]:
        monkeypatch.delitem(sys.modules, loaded)
    code, _, err = run(capsys, *argv, "--dsn", dsn)
    assert code == 1
    assert f"pip install 'pystatus[{extra}]'" in err and "Traceback" not in err


def test_a_partial_rollback_says_what_must_follow_and_waits_for_consent(
    db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = migrations.applied(dsn)
    code, _, err = run(capsys, "rollback", "--dsn", dsn)
    assert code == 1
    assert f"rolling back {before[-1]} keeps this version's functions" in err
    assert "--older-migrate-next" in err and migrations.applied(dsn) == before
    code, out, _ = run(capsys, "rollback", "--dsn", dsn, "--older-migrate-next")
    assert (code, out) == (0, f"Rolled back: {before[-1]}\n")
    assert migrations.applied(dsn) == before[:-1]


def test_an_answer_costs_the_version_check_and_one_statement(
    db: Conn, dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window and the service are checked in the answer's own statement, and the
    version guard asks once: two statements, whatever is asked, unknown names included."""
    pystatus.heartbeat(db, "librarian")
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counted(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return execute(cursor, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    for argv in (
        ["uptime", "librarian"],
        ["uptime", "librarian", "--since", "12h"],
        ["incidents", "librarain"],
        ["trend", "librarian"],
    ):
        sent.clear()
        run(capsys, *argv, "--dsn", dsn)
        assert len(sent) == 2, (argv, sent)
        assert "installed_version()" in sent[0]
