"""Answers from history, as dataclasses: live status, history, transitions,
incidents, uptime, trends, task durations and the dashboard's daily and hourly
series. Each function is one call into the SQL function of the same name; the
definitions live there (and in docs/answers.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pystatus.queries import Conn, fetch_all, fetch_one, fetch_value


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
    maintenance_until: datetime | None  # inside a maintenance window until then


@dataclass(frozen=True)
class HistoryEntry:
    heartbeat_timestamp: datetime
    status: str
    current_task: str | None


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
    current_task: str
    started: datetime
    ended: datetime | None  # None: still running
    duration: timedelta


@dataclass(frozen=True)
class DayUptime:
    day: date
    up_seconds: Decimal
    down_seconds: Decimal
    maintenance_seconds: Decimal
    no_data_seconds: Decimal
    uptime: float | None


@dataclass(frozen=True)
class LatencyPoint:
    hour: datetime
    samples: int
    p50: float | None
    p95: float | None
    max: float | None


def server_now(conn: Conn) -> datetime:
    """now() by the server's clock: windows are measured by the clock that stamps heartbeats."""
    return fetch_value(conn, "server_now")  # type: ignore[no-any-return]


def ago(conn: Conn, interval: str) -> datetime:
    """now() minus ``interval`` (PostgreSQL syntax: '7 days', '12h', '1 day 2 hours'), by the
    server's clock and in its session time zone."""
    return fetch_value(conn, "ago", {"interval": interval})  # type: ignore[no-any-return]


# Where a window starts: a time, or how far back from the server's now, written as
# PostgreSQL reads intervals ("12h", "7 days") or as a timedelta.
Since = datetime | timedelta | str


def _window(
    service_name: str | None,
    since: Since,
    until: datetime | None,
    known: bool = False,
    label: str = "window",
) -> dict[str, Any]:
    """The parameters of a windowed answer. A window that is not a time is checked by
    the server (positive, at most ten years; an error names it by ``label``); with
    ``known``, so is the service, which must have reported (the error names close
    ones). Both in the answer's own statement."""
    window = None if isinstance(since, datetime) else str(since)
    return {
        "service_name": service_name,
        "since": since if window is None else None,
        "window": window,
        "label": label,
        "until": until,  # None: now
        "known": known,
    }


def live_status(conn: Conn, limit: int | None = None, offset: int = 0) -> list[LiveStatus]:
    """Every service's live status by name, or ``limit`` of them after ``offset``."""
    return fetch_all(conn, LiveStatus, "live_status", {"max_rows": limit, "skip_rows": offset})


def history(
    conn: Conn,
    service_name: str,
    since: Since,
    until: datetime | None = None,
    *,
    known: bool = False,
    label: str = "window",
) -> list[HistoryEntry]:
    """One service's heartbeats in a window, newest first."""
    params = _window(service_name, since, until, known, label)
    return fetch_all(conn, HistoryEntry, "history", params)


def transitions(
    conn: Conn,
    service_name: str | None,
    since: Since,
    until: datetime | None = None,
    *,
    known: bool = False,
    label: str = "window",
) -> list[Transition]:
    params = _window(service_name, since, until, known, label)
    return fetch_all(conn, Transition, "transitions", params)


def incidents(
    conn: Conn,
    service_name: str | None,
    since: Since,
    until: datetime | None = None,
    *,
    known: bool = False,
    label: str = "window",
) -> list[Incident]:
    params = _window(service_name, since, until, known, label)
    return fetch_all(conn, Incident, "incidents", params)


def uptime(
    conn: Conn,
    service_name: str | None,
    since: Since,
    until: datetime | None = None,
    *,
    known: bool = False,
    label: str = "window",
) -> list[Uptime]:
    params = _window(service_name, since, until, known, label)
    return fetch_all(conn, Uptime, "uptime", params)


def uptime_month(
    conn: Conn,
    service_name: str | None,
    month: date | str,
    time_zone: str = "UTC",
    *,
    known: bool = False,
) -> list[Uptime]:
    """Uptime over the calendar month that starts on ``month`` (its first day), in a time zone."""
    params = {"service_name": service_name, "month": month, "time_zone": time_zone, "known": known}
    return fetch_all(conn, Uptime, "uptime_month", params)


def trend(
    conn: Conn,
    service_name: str,
    recent: timedelta | str = timedelta(days=1),
    baseline: timedelta | str = timedelta(days=7),
    *,
    known: bool = False,
    labels: tuple[str, str] = ("recent window", "baseline window"),
) -> Trend:
    """Latency over ``recent`` against the ``baseline`` before it (each checked by the
    server, and named by ``labels`` in its error)."""
    params = {
        "service_name": service_name,
        "recent": recent,
        "baseline": baseline,
        "recent_label": labels[0],
        "baseline_label": labels[1],
        "known": known,
    }
    return fetch_one(conn, Trend, "trend", params)


def task_durations(
    conn: Conn,
    service_name: str,
    since: Since,
    until: datetime | None = None,
    *,
    known: bool = False,
    label: str = "window",
) -> list[TaskRun]:
    params = _window(service_name, since, until, known, label)
    return fetch_all(conn, TaskRun, "task_durations", params)


def daily_uptime(conn: Conn, service_name: str, days: int = 30) -> list[DayUptime]:
    """One service's uptime per UTC day over the last ``days`` days."""
    params = {"service_name": service_name, "days": days}
    return fetch_all(conn, DayUptime, "daily_uptime", params)


def latency_hourly(
    conn: Conn, service_name: str, since: datetime, until: datetime | None = None
) -> list[LatencyPoint]:
    """One service's latency per hour: samples, p50, p95 and max."""
    return fetch_all(conn, LatencyPoint, "latency_hourly", _window(service_name, since, until))


@dataclass(frozen=True)
class ServiceOverview(LiveStatus):
    """A service as the dashboard lists it (SQL: pystatus.service_overview()): its live
    status, then the rolled-up figures the dashboard shows beside it."""

    needs_attention: bool  # degraded, down or stale
    uptime_24h: float | None  # over the last 24 rolled-up hours
    observed_24h_seconds: float  # the up and down time that figure rests on
    uptime_30d: float | None  # over the last 30 whole rolled-up days
    observed_30d_seconds: float
    hours_until: datetime  # the end of the 24 hours of uptime_24h and hourly_uptime
    hourly_uptime: list[float | None]  # oldest first; None: no data


def service_overview(
    conn: Conn,
    limit: int | None = None,
    offset: int = 0,
    attention_only: bool = False,
    service_name: str | None = None,
) -> list[ServiceOverview]:
    """Services by name as the dashboard lists them: all, or ``limit`` after ``offset``;
    only those needing attention, or only ``service_name``."""
    params = {
        "max_rows": limit,
        "skip_rows": offset,
        "attention_only": attention_only,
        "service_name": service_name,
    }
    return fetch_all(conn, ServiceOverview, "service_overview", params)


@dataclass(frozen=True)
class StatusCount:
    """How many services are in one effective status (SQL: pystatus.fleet_counts())."""

    effective_status: str
    needs_attention: bool
    services: int


def fleet_counts(conn: Conn) -> list[StatusCount]:
    return fetch_all(conn, StatusCount, "fleet_counts")


def recent_incidents(conn: Conn, days: int = 7) -> list[Incident]:
    """Every service's incidents over the last ``days`` days, newest first."""
    return fetch_all(conn, Incident, "recent_incidents", {"days": days})


def service_exists(conn: Conn, service_name: str) -> bool:
    return fetch_value(conn, "service_exists", {"service_name": service_name})  # type: ignore[no-any-return]
