"""pystatus.admin: maintenance, pg_cron jobs here or in pg_cron's database, the
health check, the setup report and login allowances, as dataclasses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import admin
from pystatus.admin import CheckItem, MaintenanceJob
from tests.helpers import one, pystatus_jobs

Conn = psycopg.Connection[Any]


def test_maintenance_jobs(db: Conn) -> None:
    database = db.info.dbname
    assert sorted(admin.maintenance_jobs(db), key=lambda job: job.job_name) == [
        MaintenanceJob(
            f"pystatus-maintain:{database}", "7 * * * *", "SELECT pystatus.maintain()", database
        ),
        MaintenanceJob(
            f"pystatus-rollups:{database}",
            "* * * * *",
            "SELECT pystatus.refresh_rollups()",
            database,
        ),
        MaintenanceJob(
            f"pystatus-sweep:{database}", "* * * * *", "SELECT pystatus.sweep()", database
        ),
    ]


def test_each_maintenance_job_answers_what_it_did(db: Conn) -> None:
    silent_since = one(db, "SELECT now() - interval '10 minutes'")
    pystatus.record_heartbeat(db, "silent", "ok", None, silent_since)
    assert admin.sweep(db) == 1
    assert admin.sweep(db) == 0
    assert isinstance(admin.refresh_rollups(db), dict)
    assert {"created", "dropped"} <= set(admin.maintain(db))
    assert admin.move_default_rows(db) == 0


def test_schedule_in_pg_crons_database_and_unschedule(db: Conn, cron_db: Conn) -> None:
    jobs = admin.schedule(db, cron_db)
    assert pystatus_jobs(cron_db) == sorted(
        (job.job_name, job.schedule, job.command, job.database) for job in jobs
    )
    admin.schedule(db, cron_db)  # again: the jobs are updated, not added
    assert len(pystatus_jobs(cron_db)) == 3

    items = {item.item: item for item in admin.check(db, cron_db)}
    assert "jobs" not in items  # the jobs are looked for in pg_cron's database instead
    sweep = items[f"job pystatus-sweep:{db.info.dbname}"]
    # pg_cron may run it within the minute.
    assert sweep.ok and sweep.detail.startswith(("scheduled, not run yet", "last run succeeded"))

    assert admin.unschedule(db, cron_db) == 3
    assert pystatus_jobs(cron_db) == []
    assert admin.unschedule(db, cron_db) == 0


def test_schedule_here_without_pg_cron_says_what_to_do(db: Conn) -> None:
    with pytest.raises(pystatus.PystatusError, match="pg_cron is not installed in this database"):
        admin.schedule(db)
    assert admin.unschedule(db) == 0


def test_check_and_setup_report(db: Conn) -> None:
    admin.refresh_rollups(db)
    items = {item.item: item for item in admin.check(db)}
    assert all(isinstance(item, CheckItem) for item in items.values())
    assert all(item.ok for name, item in items.items() if name != "jobs")
    # pg_cron lives in "postgres": from here the jobs' runs cannot be seen, and
    # check says so rather than pass them (the CLI reads them there).
    assert not items["jobs"].ok and "--cron-dsn" in items["jobs"].detail
    report = {line.item: line for line in admin.setup_report(db)}
    assert report["maintenance scheduler"].value == "pg_cron in database postgres"
    assert report["maintenance scheduler"].todo is not None


def test_login_allowances(db: Conn) -> None:
    login = db.info.user
    assert admin.service_logins(db) == []
    pystatus.allow_service(db, login, "billing-*")
    assert pystatus.service_logins(db) == [pystatus.ServiceLogin(login, "billing-*")]
    assert pystatus.disallow_service(db, login, "billing-*") is True
    assert pystatus.disallow_service(db, login, "billing-*") is False


def test_set_expectations_takes_intervals_as_timedelta_or_text(db: Conn) -> None:
    pystatus.set_expectations(db, service_name="cron-job", expected_interval=timedelta(hours=1))
    admin.set_expectations(db, "nightly", "1 day", grace="2 hours")
    pystatus.heartbeat(db, "cron-job")
    pystatus.heartbeat(db, "nightly")
    expectations = {
        s.service_name: (s.expected_interval, s.grace) for s in pystatus.live_status(db)
    }
    assert expectations == {
        "cron-job": (timedelta(hours=1), timedelta(minutes=1)),
        "nightly": (timedelta(days=1), timedelta(hours=2)),
    }
