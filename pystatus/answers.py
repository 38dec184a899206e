"""Answers from history, as dataclasses: live status, transitions, incidents,
uptime, trends and task durations. Each function is one call into the SQL
function of the same name; the definitions live there (and in README)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from psycopg.rows import class_row

from pystatus.errors import translate_errors
from pystatus.queries import QUERIES

Conn = psycopg.Connection[Any]
Row = TypeVar("Row")


@dataclass(frozen=True)
class LiveStatus:
    service_name: str
    effective_status: str
    reported_status: str
    last_heartbeat: datetime
    seconds_since: float
    current_task: str | None
    latency_ms: float | None
    expected_interval: timedelta
    grace: timedelta
    stale_after: datetime


@dataclass(frozen=True)
class Transition:
    service_name: str
    from_status: str | None
    to_status: str
    at: datetime


@dataclass(frozen=True)
class Incident:
    service_name: str
    started: datetime
    ended: datetime | None  # None: still down
    duration: timedelta
    cause: str  # "reported down" or "silence"


@dataclass(frozen=True)
class Uptime:
    service_name: str
    since: datetime
    until: datetime
    up_seconds: Decimal
    down_seconds: Decimal
    maintenance_seconds: Decimal
    no_data_seconds: Decimal
    uptime: float | None  # up / (up + down)


@dataclass(frozen=True)
class Trend:
    service_name: str
    recent_samples: int
    recent_p50: float | None
    recent_p95: float | None
    baseline_samples: int
    baseline_p50: float | None
    baseline_p95: float | None
    p50_change: float | None
    p95_change: float | None
    verdict: str  # slower, faster, steady, not enough data


@dataclass(frozen=True)
class TaskRun:
    service_name: str
    task: str
    started: datetime
    ended: datetime | None  # None: still running
    duration: timedelta


def _rows(conn: Conn, row_type: type[Row], query: str, params: dict[str, Any]) -> list[Row]:
    with translate_errors(), conn.cursor(row_factory=class_row(row_type)) as cursor:
        return cursor.execute(QUERIES[query], params).fetchall()


def _window(service: str | None, since: datetime, until: datetime | None) -> dict[str, Any]:
    return {"service_name": service, "since": since, "until": until}  # until None: now, server time


def live_status(conn: Conn) -> list[LiveStatus]:
    return _rows(conn, LiveStatus, "live_status", {})


def set_expectations(
    conn: Conn, service: str, expected_interval: timedelta, grace: timedelta = timedelta(seconds=60)
) -> None:
    params = {"service_name": service, "expected_interval": expected_interval, "grace": grace}
    with translate_errors():
        conn.execute(QUERIES["set_expectations"], params)


def transitions(
    conn: Conn, service: str | None, since: datetime, until: datetime | None = None
) -> list[Transition]:
    return _rows(conn, Transition, "transitions", _window(service, since, until))


def incidents(
    conn: Conn, service: str | None, since: datetime, until: datetime | None = None
) -> list[Incident]:
    return _rows(conn, Incident, "incidents", _window(service, since, until))


def uptime(
    conn: Conn, service: str | None, since: datetime, until: datetime | None = None
) -> list[Uptime]:
    return _rows(conn, Uptime, "uptime", _window(service, since, until))


def uptime_month(
    conn: Conn, service: str | None, month: date, time_zone: str = "UTC"
) -> list[Uptime]:
    params = {"service_name": service, "month": month, "time_zone": time_zone}
    return _rows(conn, Uptime, "uptime_month", params)


def trend(
    conn: Conn,
    service: str,
    recent: timedelta = timedelta(days=1),
    baseline: timedelta = timedelta(days=7),
) -> Trend:
    params = {"service_name": service, "recent": recent, "baseline": baseline}
    return _rows(conn, Trend, "trend", params)[0]


def task_durations(
    conn: Conn, service: str, since: datetime, until: datetime | None = None
) -> list[TaskRun]:
    return _rows(conn, TaskRun, "task_durations", _window(service, since, until))
