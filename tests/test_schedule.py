"""Maintenance scheduling in the three installations: pg_cron in this database,
pg_cron in another database, no pg_cron at all."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import cli, migrations
from pystatus.cluster import Cluster
from tests.helpers import MIGRATION_ORDER, one, pystatus_jobs

Conn = psycopg.Connection[Any]
MAINTAIN = "SELECT pystatus.maintain()"
SWEEP = "SELECT pystatus.sweep()"
ROLLUPS = "SELECT pystatus.refresh_rollups()"


def expected_jobs(database: str) -> list[tuple[str, str, str, str]]:
    return [
        (f"pystatus-maintain:{database}", "7 * * * *", MAINTAIN, database),
        (f"pystatus-rollups:{database}", "* * * * *", ROLLUPS, database),
        (f"pystatus-sweep:{database}", "* * * * *", SWEEP, database),
    ]


def report(dsn: str) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(dsn) as db:
        rows = db.execute("SELECT item, value, todo FROM pystatus.setup_report()").fetchall()
    return {item: (value, todo) for item, value, todo in rows}


def make_a_hole(db: Conn) -> str:
    """Drops next month's partition, which maintenance must create again."""
    name: str = one(
        db,
        "SELECT partition::text FROM pystatus.history_partitions"
        " WHERE starts > now() ORDER BY starts LIMIT 1",
    )
    db.execute(f"DROP TABLE {name}")
    return name


def test_pg_cron_in_this_database_the_migration_schedules_the_job(
    cron_db: Conn, cluster: Cluster
) -> None:
    dsn = cluster.dsn("postgres")
    try:
        migrations.apply(dsn)
        assert pystatus_jobs(cron_db) == expected_jobs("postgres")
        health = {
            item: (ok, detail)
            for item, ok, detail in cron_db.execute("SELECT * FROM pystatus.check()")
        }
        assert health["job pystatus-sweep:postgres"][0] is True
        assert health["job pystatus-rollups:postgres"][1] in {"scheduled, not run yet"} or health[
            "job pystatus-rollups:postgres"
        ][1].startswith("last run succeeded")
        value, todo = report(dsn)["maintenance scheduler"]
        assert value.startswith("pg_cron in this database: jobs scheduled") and todo is None
        # The maintenance job's command really performs maintenance.
        hole = make_a_hole(cron_db)
        cron_db.execute(pystatus_jobs(cron_db)[0][2])
        assert one(cron_db, "SELECT to_regclass(%s)", (hole,)) is not None
        # A job lost by hand is scheduled again when the definitions are applied
        # again; rolling the installation back takes every job with it.
        cron_db.execute("SELECT cron.unschedule('pystatus-sweep:postgres')")
        migrations.apply(dsn, reapply=True)
        assert pystatus_jobs(cron_db) == expected_jobs("postgres")
        rolled_back = migrations.rollback(dsn, count=None)
        assert rolled_back == MIGRATION_ORDER[::-1]
        assert pystatus_jobs(cron_db) == []
    finally:
        migrations.rollback(dsn, count=None)
        cron_db.execute(
            "DROP TABLE IF EXISTS system_status, _yoyo_log, _yoyo_migration,"
            " _yoyo_version, yoyo_lock"
        )
        cron_db.execute("DROP EXTENSION IF EXISTS pg_partman; DROP SCHEMA IF EXISTS partman")


def test_pg_cron_in_another_database_a_command_registers_the_job_there(
    cron_db: Conn, db: Conn, dsn: str, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    database = db.info.dbname
    value, todo = report(dsn)["maintenance scheduler"]
    assert value == "pg_cron in database postgres"
    assert todo is not None and "pystatus schedule --cron-dsn" in todo

    assert cli.main(["schedule", "--dsn", dsn, "--cron-dsn", cluster.dsn("postgres")]) == 0
    assert pystatus_jobs(cron_db) == expected_jobs(database)
    # Registering again updates the jobs rather than adding more.
    assert cli.main(["schedule", "--dsn", dsn, "--cron-dsn", cluster.dsn("postgres")]) == 0
    assert len(pystatus_jobs(cron_db)) == 3

    # The command, run in the job's database, performs maintenance.
    hole = make_a_hole(db)
    db.execute(pystatus_jobs(cron_db)[0][2])
    assert one(db, "SELECT to_regclass(%s)", (hole,)) is not None

    assert (
        cli.main(["schedule", "--dsn", dsn, "--cron-dsn", cluster.dsn("postgres"), "--remove"]) == 0
    )
    assert pystatus_jobs(cron_db) == []
    assert "Removed" in capsys.readouterr().out


def test_schedule_without_cron_dsn_explains_what_to_do(
    db: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["schedule", "--dsn", dsn]) == 1
    assert "give --cron-dsn" in capsys.readouterr().err


@pytest.mark.slow
def test_pg_cron_really_runs_the_jobs(cron_db: Conn, db: Conn, dsn: str) -> None:
    hole = make_a_hole(db)
    # A service silent for ten minutes: the sweep job must mark it stale.
    pystatus.record_heartbeat(
        db, "silent", "ok", None, one(db, "SELECT now() - interval '10 minutes'")
    )
    database = db.info.dbname
    job_ids = [
        one(
            cron_db,
            "SELECT cron.schedule_in_database(%s, '* * * * *', %s, %s)",
            (f"pystatus-test-{n}", command, database),
        )
        for n, command in enumerate([MAINTAIN, SWEEP, ROLLUPS])
    ]
    deadline = time.monotonic() + 150
    runs: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline and len(runs) < 3:
        time.sleep(2)
        runs = cron_db.execute(
            "SELECT DISTINCT ON (jobid) jobid, status, return_message FROM cron.job_run_details"
            " WHERE jobid = ANY(%s) AND status IN ('succeeded', 'failed') ORDER BY jobid, runid",
            (job_ids,),
        ).fetchall()
    assert len(runs) == 3, f"pg_cron did not run the jobs within 150 s: {runs}"
    assert all(status == "succeeded" for _, status, _ in runs), runs
    assert one(db, "SELECT to_regclass(%s)", (hole,)) is not None
    assert one(db, "SELECT status FROM system_status WHERE service_name = 'silent'") == "stale"


@pytest.fixture(scope="module")
def plain_cluster() -> Iterator[Cluster]:
    """A server without pg_cron, as many existing servers are."""
    with Cluster.temporary(cron_database=None) as running:
        with psycopg.connect(running.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE app")
        yield running


def test_without_pg_cron_the_migration_says_to_run_pystatus_maintain(
    plain_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = plain_cluster.dsn("app")
    assert cli.main(["migrate", "--dsn", dsn]) == 0
    out = capsys.readouterr().out
    assert "maintenance scheduler: none" in out
    assert "Left for the DBA:" in out and "run `pystatus maintain`" in out

    with psycopg.connect(dsn, autocommit=True) as db:
        hole = make_a_hole(db)
        assert cli.main(["maintain", "--dsn", dsn]) == 0
        assert hole in capsys.readouterr().out
        assert one(db, "SELECT to_regclass(%s)", (hole,)) is not None


def test_uninstalling_removes_the_jobs_where_pg_cron_lives(
    dsn: str, db: Conn, cron_db: Conn, capsys: pytest.CaptureFixture[str]
) -> None:
    """pg_cron in "postgres", pystatus in the test's database: `rollback --all`
    finds pg_cron's database with the same login and removes the jobs there."""
    assert cli.main(["schedule", "--dsn", dsn, "--cron-dsn", cron_db.info.dsn]) == 0
    database = db.info.dbname
    mine = [j for j in pystatus_jobs(cron_db) if j[3] == database]
    assert mine
    assert cli.main(["rollback", "--all", "--yes", "--dsn", dsn]) == 0
    assert (
        f"Removed {len(mine)} maintenance jobs from pg_cron in database postgres."
        in capsys.readouterr().out
    )
    assert [j for j in pystatus_jobs(cron_db) if j[3] == database] == []
