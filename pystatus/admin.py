"""Operating an installation: maintenance, pg_cron jobs, health checks, the setup
report, per-service expectations and which login may heartbeat for which services.

pg_cron runs jobs only from the one database it is installed in
(``cron.database_name``). When that is another database, functions here take a
second connection, ``cron_conn``, to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from pystatus.connection import in_database
from pystatus.errors import PystatusError
from pystatus.queries import Conn, fetch_all, fetch_value


@dataclass(frozen=True)
class MaintenanceJob:
    job_name: str
    schedule: str  # cron syntax
    command: str
    database: str  # where the command runs


@dataclass(frozen=True)
class CheckItem:
    item: str
    ok: bool | None  # None: unknown (could not be read from here)
    detail: str


@dataclass(frozen=True)
class SetupItem:
    item: str
    value: str
    todo: str | None  # None: nothing left to do


@dataclass(frozen=True)
class PingToken:
    token_prefix: str  # ps_ and 8 characters: the token's name (the token itself is not kept)
    service_name: str
    note: str | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class ServiceLogin:
    login: str
    service_pattern: str  # * matches any characters


def sweep(conn: Conn) -> int:
    """Marks services silent past their deadline as stale; returns how many."""
    return int(fetch_value(conn, "sweep"))


def refresh_rollups(conn: Conn) -> dict[str, Any]:
    """Brings the hourly and daily rollups up to date; returns what was rolled up."""
    return fetch_value(conn, "refresh_rollups")  # type: ignore[no-any-return]


def maintain(conn: Conn) -> dict[str, Any]:
    """Premakes and drops history partitions; returns what was created and dropped."""
    return fetch_value(conn, "maintain")  # type: ignore[no-any-return]


def move_default_rows(conn: Conn) -> int:
    """Moves rows out of the default partition into partitions of their own; returns how many."""
    return int(fetch_value(conn, "move_default_rows"))


def maintenance_jobs(conn: Conn) -> list[MaintenanceJob]:
    """The pg_cron jobs that keep this database in shape."""
    return fetch_all(conn, MaintenanceJob, "maintenance_jobs")


def schedule(conn: Conn, cron_conn: Conn | None = None) -> list[MaintenanceJob]:
    """Schedules the maintenance jobs with pg_cron, in this database or, given ``cron_conn``,
    in pg_cron's database; returns them. Scheduling again updates the jobs."""
    jobs = maintenance_jobs(conn)
    if cron_conn is None:
        if not fetch_value(conn, "schedule_maintenance_here"):
            raise PystatusError(
                "pg_cron is not installed in this database: give --cron-dsn for the database "
                "pg_cron lives in (cron.database_name), or run `pystatus maintain` from another "
                "scheduler"
            )
    else:
        for job in jobs:
            fetch_value(cron_conn, "schedule_in_cron_database", asdict(job))
    return jobs


def unschedule_job(cron_conn: Conn, job: MaintenanceJob) -> int:
    """Removes one of another database's jobs from pg_cron's database (1, or 0 when
    it was not there): what uninstalling does once the jobs' names are known."""
    return int(fetch_value(cron_conn, "unschedule_in_cron_database", asdict(job)))


def maintenance_scheduler(conn: Conn) -> str:
    """Where maintenance is scheduled from: ``pg_cron in this database``, ``pg_cron in
    database X``, ``pg_cron in another database (...)`` when its name cannot be read,
    or ``none``."""
    return str(fetch_value(conn, "maintenance_scheduler"))


def unschedule(conn: Conn, cron_conn: Conn | None = None) -> int:
    """Removes the maintenance jobs from pg_cron, in this database or, given ``cron_conn``, in
    pg_cron's database; returns how many there were."""
    if cron_conn is None:
        return int(fetch_value(conn, "unschedule_maintenance_here"))
    return sum(unschedule_job(cron_conn, job) for job in maintenance_jobs(conn))


def check(conn: Conn, cron_conn: Conn | None = None) -> list[CheckItem]:
    """The installation's health, one item a row, ok False for each problem. Given
    ``cron_conn``, the jobs are looked for, with their last runs, in pg_cron's database."""
    items = fetch_all(conn, CheckItem, "check")
    if cron_conn is None:
        return items
    jobs = maintenance_jobs(conn)
    params = {"job_names": [job.job_name for job in jobs], "database": jobs[0].database}
    in_cron_database = fetch_all(cron_conn, CheckItem, "check_jobs_in_cron_database", params)
    return [i for i in items if i.item != "jobs"] + in_cron_database


def cron_database(conn: Conn) -> str | None:
    """The other database pg_cron lives in, where this database's jobs run; None when
    pg_cron is here, absent, or its database cannot be read by this login."""
    name = fetch_value(conn, "cron_database")
    return None if name is None else str(name)


def setup_report(conn: Conn) -> list[SetupItem]:
    """What the installation looks like, and what is left for the DBA to do."""
    return fetch_all(conn, SetupItem, "setup_report")


def set_expectations(
    conn: Conn,
    service_name: str,
    expected_interval: timedelta | str,
    grace: timedelta | str = timedelta(seconds=60),
) -> None:
    """Sets how often a service heartbeats, and the lateness forgiven before it is stale."""
    params = {"service_name": service_name, "expected_interval": expected_interval, "grace": grace}
    fetch_value(conn, "set_expectations", params)


def allow_service(conn: Conn, login: str, service_pattern: str) -> None:
    """Lets ``login`` heartbeat for the services ``service_pattern`` matches (* any characters).

    While no login has an allowance, any login granted pystatus_writer may report any
    service; from the first allowance on, each login may report only the services its
    patterns match."""
    fetch_value(conn, "allow_service", {"login": login, "service_pattern": service_pattern})


def disallow_service(conn: Conn, login: str, service_pattern: str) -> bool:
    """Removes one allowance; True if there was one."""
    params = {"login": login, "service_pattern": service_pattern}
    return bool(fetch_value(conn, "disallow_service", params))


def service_logins(conn: Conn) -> list[ServiceLogin]:
    """Every allowance (empty: no login is restricted)."""
    return fetch_all(conn, ServiceLogin, "service_logins")


def history_rows(conn: Conn) -> int:
    """How many rows history holds, counted (a scan: for a prompt before dropping it;
    the planner's estimate said 0 of a table never analyzed)."""
    return int(fetch_value(conn, "history_rows"))


def add_ping_token(conn: Conn, service_name: str, note: str | None = None) -> str:
    """Makes a token for the HTTP ping endpoint; returns it (shown only this once)."""
    return str(fetch_value(conn, "add_ping_token", {"service_name": service_name, "note": note}))


def remove_ping_token(conn: Conn, token_prefix: str) -> str:
    """Revokes a ping token, named by its prefix or given whole; returns its service."""
    return str(fetch_value(conn, "remove_ping_token", {"token_prefix": token_prefix}))


def ping_tokens(conn: Conn) -> list[PingToken]:
    return fetch_all(conn, PingToken, "ping_token_list")


def cron_dsn_for_removal(conn: Conn, dsn: str | None, cron_dsn: str | None) -> str | None:
    """Where uninstalling must remove this database's pg_cron jobs: ``--cron-dsn``, or
    pg_cron's database with the same login; None when pg_cron lives here (the
    rollback removes them) or nowhere. Refuses, changing nothing, when the jobs
    are in a database this login cannot reach."""
    if cron_dsn is not None:
        return cron_dsn
    name = cron_database(conn)
    if name is None:
        if fetch_value(conn, "cron_database_hidden"):
            raise PystatusError(
                "pg_cron runs this database's jobs in another database, which this login cannot "
                "name: give --cron-dsn for pg_cron's database, so that they are removed too. "
                "Nothing was changed"
            )
        return None
    candidate = in_database(dsn, name)
    try:
        with psycopg.connect(candidate, connect_timeout=5) as cron:
            return candidate if fetch_value(cron, "pg_cron_here") else None  # none there yet
    except (psycopg.Error, PystatusError) as exc:
        raise PystatusError(
            f"pg_cron runs this database's jobs in database {name}, where this login cannot "
            f"remove them ({str(exc).strip()}): give --cron-dsn with a login that can. Nothing "
            "was changed"
        ) from exc


def check_where_pg_cron_lives(conn: Conn, dsn: str | None) -> list[CheckItem]:
    """The check, with the jobs' runs read where pg_cron lives (same login, its
    database): a job failing there every minute must not pass for healthy."""
    name = cron_database(conn)
    if name is None:
        return check(conn)
    try:
        with psycopg.connect(in_database(dsn, name), connect_timeout=5) as cron:
            cron.autocommit = True
            return check(conn, cron)
    except (psycopg.Error, PystatusError) as exc:
        unreadable = CheckItem(
            "jobs",
            None,  # unknown: not failing
            f"pg_cron lives in database {name}, where this login cannot read the jobs' runs "
            f"({str(exc).strip()}): give --cron-dsn with a login that can",
        )
        return [unreadable if item.item == "jobs" else item for item in check(conn)]
