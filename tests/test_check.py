"""`pystatus check`: the installation's health, exit status 1 with a clear list
when anything is wrong."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import admin, cli
from pystatus.cluster import Cluster
from tests.helpers import one

Conn = psycopg.Connection[Any]


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, dict[str, Any]]]:
    code = cli.main(["check", *argv, "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    return code, {row["item"]: row for row in rows}


def test_a_healthy_installation(
    dsn: str, db: Conn, cron_db: Conn, capsys: pytest.CaptureFixture[str]
) -> None:
    admin.schedule(db, cron_db)  # in pg_cron's own database, "postgres"
    db.execute("SELECT pystatus.refresh_rollups()")
    code, items = check(capsys, "--dsn", dsn)
    assert code == 0, items
    database = db.info.dbname
    assert {
        "pg_partman",
        "partitions ahead",
        "default partition",
        "retention",
        "rollups",
        "sweeper",
        f"job pystatus-maintain:{database}",  # read in pg_cron's database, unasked
        f"job pystatus-sweep:{database}",
    } <= set(items)
    assert all(item["ok"] for item in items.values())


def test_jobs_that_are_not_scheduled_or_fail_in_pg_crons_database_are_red(
    dsn: str, db: Conn, cron_db: Conn, capsys: pytest.CaptureFixture[str]
) -> None:
    database = db.info.dbname
    code, items = check(capsys, "--dsn", dsn)
    assert code == 1
    assert items[f"job pystatus-sweep:{database}"]["detail"].startswith("not scheduled")

    admin.schedule(db, cron_db)
    # A run pg_cron could not even start (its login has no password for the
    # connection): pg_cron records it failed, with no end time.
    cron_db.execute(
        "INSERT INTO cron.job_run_details (jobid, runid, database, username, command, status,"
        " return_message) SELECT jobid, nextval('cron.runid_seq'), database, username, command,"
        " 'failed', 'connection failed' FROM cron.job WHERE jobname = %s",
        (f"pystatus-sweep:{database}",),
    )
    code, items = check(capsys, "--dsn", dsn)
    assert code == 1
    detail = items[f"job pystatus-sweep:{database}"]["detail"]
    assert detail.startswith("last run failed: connection failed") and ".pgpass" in detail
    assert all(item["detail"] for item in items.values())  # never an empty detail


def test_a_login_that_cannot_read_pg_crons_jobs_is_told_so(
    dsn: str, db: Conn, capsys: pytest.CaptureFixture[str]
) -> None:
    db.execute("CREATE ROLE check_reader LOGIN IN ROLE pystatus_reader")
    try:
        code, items = check(capsys, "--dsn", f"{dsn} user=check_reader")
        # Unknown, not failing: everything it could read is fine (exit 3, as
        # monitoring plugins say UNKNOWN), and it says how to read the rest.
        assert code == 3
        assert items["jobs"]["ok"] is None
        assert all(i["ok"] for name, i in items.items() if name != "jobs")
        assert "give --cron-dsn" in items["jobs"]["detail"]
    finally:
        db.execute("DROP ROLE check_reader")


def test_each_problem_is_reported(dsn: str, db: Conn, capsys: pytest.CaptureFixture[str]) -> None:
    for (name,) in db.execute(
        "SELECT partition::text FROM pystatus.history_partitions WHERE starts > now()"
    ).fetchall():
        db.execute(f"DROP TABLE {name}")
    db.execute(
        "DROP TABLE "
        + one(
            db,
            "SELECT partition::text FROM pystatus.history_partitions"
            " WHERE starts <= now() AND ends > now()",
        )
    )
    pystatus.heartbeat(db, "orphan")  # lands in the default partition
    now = one(db, "SELECT now()")
    db.execute("UPDATE pystatus.rollup_state SET rolled_until = now() - interval '1 day'")
    db.execute("SELECT pystatus.set_history_retention(NULL)")
    from datetime import timedelta

    pystatus.record_heartbeat(db, "silent", "ok", None, now - timedelta(minutes=20))

    code, items = check(capsys, "--dsn", dsn)
    assert code == 1
    failing = {name for name, item in items.items() if not item["ok"]}
    jobs = {f"job pystatus-{job}:{db.info.dbname}" for job in ("maintain", "sweep", "rollups")}
    assert failing == {
        "partitions ahead",
        "default partition",
        "retention",
        "rollups",
        "sweeper",
        *jobs,  # not scheduled in pg_cron's database
    }
    assert "move_default_rows" in items["default partition"]["detail"]
    assert "sweep job" in items["sweeper"]["detail"]


def test_jobs_in_the_cron_database(
    dsn: str, db: Conn, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    db.execute("SELECT pystatus.refresh_rollups()")
    with psycopg.connect(cluster.dsn(), autocommit=True) as cron:
        cron.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        code, items = check(capsys, "--dsn", dsn, "--cron-dsn", cluster.dsn())
        assert (
            code == 1 and "not scheduled" in items[f"job pystatus-sweep:{db.info.dbname}"]["detail"]
        )
        try:
            assert cli.main(["schedule", "--dsn", dsn, "--cron-dsn", cluster.dsn()]) == 0
            capsys.readouterr()
            code, items = check(capsys, "--dsn", dsn, "--cron-dsn", cluster.dsn())
            assert code == 0
            assert items[f"job pystatus-maintain:{db.info.dbname}"]["detail"] in {
                "scheduled, not run yet"
            } or items[f"job pystatus-maintain:{db.info.dbname}"]["detail"].startswith(
                "last run succeeded"
            )
        finally:
            cron.execute(
                "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'pystatus-%'"
            )


def test_pg_partman_missing_is_a_clear_error(
    empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check", "--dsn", empty_dsn]) == 1
    assert "pystatus: error:" in capsys.readouterr().err


def test_names_stored_before_the_naming_rule_changed_are_reported(
    db: Conn, capsys: pytest.CaptureFixture[str], dsn: str
) -> None:
    pystatus.heartbeat(db, "api")
    _, items = check(capsys, "--dsn", dsn)
    assert items["service names"]["ok"]
    # As if written under an earlier rule: the constraint is not re-checked.
    db.execute("ALTER TABLE system_status DROP CONSTRAINT system_status_service_name_valid")
    db.execute("UPDATE system_status SET service_name = E'api\\u200b'")
    db.execute(
        "ALTER TABLE system_status ADD CONSTRAINT system_status_service_name_valid"
        " CHECK (pystatus.is_valid_service_name(service_name)) NOT VALID"
    )
    code, items = check(capsys, "--dsn", dsn)
    assert code == 1 and not items["service names"]["ok"]
    assert (
        "invisible or direction-changing characters (it has U+200B)"
        in items["service names"]["detail"]
    )


def test_jobs_not_visible_from_here_are_unknown_not_failing(db: Conn) -> None:
    # pg_cron lives in "postgres": from this database alone the runs cannot be read.
    [jobs] = [i for i in admin.check(db) if i.item == "jobs"]
    assert jobs.ok is None
    assert jobs.detail.startswith("pg_cron in database postgres: unknown, their runs are not")
