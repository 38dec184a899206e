"""The dashboard: a read-only web page and JSON API over pystatus's answers.

Install with ``pip install pystatus[dashboard]`` and run ``pystatus dashboard``.
Every figure comes from the same Python wrappers (and SQL functions) as the
CLI, and the JSON API writes them as the CLI's ``--format json`` does
(``pystatus.output.jsonable``). The connections are read-only sessions and no
endpoint writes. Every page is rendered on the server and works without
JavaScript; app.js only refreshes the fleet table (with the server's HTML).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
import orjson
import psycopg
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import ConnectionPool

from pystatus import answers, metrics
from pystatus.connection import (
    CONNECT_TIMEOUT,
    POOL_OPTIONS,
    STATEMENT_TIMEOUT,
    resolve_dsn,
    statement_timeout_option,
)
from pystatus.errors import InvalidInput, PystatusError, translate_errors
from pystatus.output import jsonable
from pystatus.output import rough_duration as duration

Days = Annotated[int, Query(ge=1, le=400, description="window: the last N days")]
# The fleet is listed a page at a time, so that a page's size does not grow with
# the fleet: the front page and what app.js fetches every 5 s stay small.
PAGE_SIZE = 50
ATTENTION_SHOWN = 25  # of those needing attention, the first by name; "N more" for the rest
API_PAGE = 1000  # rows of a JSON list, unless ?limit= says otherwise (at most API_PAGE_MAX)
API_PAGE_MAX = 10000
Page = Annotated[int, Query(ge=1, le=1_000_000, description="the page of the fleet, from 1")]
Limit = Annotated[int, Query(ge=1, le=API_PAGE_MAX, description="at most this many rows")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="skip this many rows first")]
Attention = Annotated[bool, Query(description="list only the services needing attention")]


def read_only(statement_timeout: float = STATEMENT_TIMEOUT) -> dict[str, Any]:
    """The sessions' options: read-only, so the dashboard cannot write whatever its
    role may do; and a statement that waits (behind a lock, a slow plan) is
    cancelled after ``statement_timeout`` seconds, answered 503, and frees its
    connection for the next request."""
    options = f"-c default_transaction_read_only=on {statement_timeout_option(statement_timeout)}"
    return {"autocommit": True, "options": options}


READ_ONLY = read_only()
# A figure "rests on little data" when up and down time cover less than this
# share of its window (the rest: no data or maintenance).
LITTLE_DATA = 0.5
FLEET_INCIDENT_DAYS = 1  # incidents() over raw history, for the services with down time
RANGES = (30, 60, 90)


class FastJSONResponse(JSONResponse):
    """The CLI's JSON (``jsonable``), written by orjson: it writes dataclasses, times
    and lists itself, and calls ``jsonable`` only for the rest (durations, decimals),
    ten times faster than building the plain values first (the overview of 1,000
    services: 2 ms instead of 21)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=jsonable)


# Times and durations, written the same way by the server and by app.js
# (when() and duration() there; a browser test compares them). The durations are
# output.rough_duration(), beside the CLI's precise one.
def when(t: datetime | None) -> str:
    """``2026-12-02 03:01 UTC``: one format everywhere, the time zone shown."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if t else ""


def percent(ratio: float | None) -> str:
    return "no data" if ratio is None else f"{ratio * 100:.2f} %"


def little_data(observed_seconds: float, window: timedelta) -> str:
    """``2 min of data`` when a figure rests on much less than its window, else empty."""
    if 0 < observed_seconds < LITTLE_DATA * window.total_seconds():
        return f"{duration(observed_seconds)} of data"
    return ""


def service_url(service_name: str) -> str:
    """The service's page: any valid name, ``/`` and ``%`` included, as one path segment."""
    return "/services/" + quote(service_name, safe="")


def deadline(s: answers.ServiceOverview | answers.LiveStatus) -> str:
    """When silence turns the service stale, relative to now."""
    if s.reported_status in ("stopping", "maintenance", "stale"):
        return f"none ({s.reported_status})"
    left = (s.stale_after - s.last_heartbeat).total_seconds() - s.seconds_since
    return f"in {duration(left)}" if left >= 0 else f"missed {duration(-left)} ago"


def uptime_class(ratio: float | None) -> str:
    if ratio is None:
        return "none"
    if ratio >= 0.999:
        return "full"
    if ratio >= 0.99:
        return "high"
    if ratio >= 0.95:
        return "part"
    return "low"


@dataclass(frozen=True)
class ServiceUptime:
    last_24h: answers.Uptime
    last_7d: answers.Uptime
    last_30d: answers.Uptime


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class LatencyChart:
    """The latency chart's geometry, drawn by the template as SVG."""

    width: int
    height: int
    left: int
    bottom: int
    p50: str  # polyline points
    p95: str
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    summary: str


def latency_chart(
    points: list[answers.LatencyPoint], since: datetime, until: datetime
) -> LatencyChart | None:
    if not points:
        return None
    width, height, left, right, top, bottom = 800, 200, 48, 10, 10, 170
    high = max((p.p95 or p.p50 or 0.0) for p in points) or 1.0
    span = (until - since).total_seconds() or 1.0

    def x(t: datetime) -> float:
        return left + (t - since).total_seconds() / span * (width - left - right)

    def y(v: float) -> float:
        return bottom - v / high * (bottom - top)

    def line(key: str) -> str:
        values = ((p.hour, getattr(p, key)) for p in points)
        return " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in values if v is not None)

    midnight = since.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [midnight + timedelta(days=d) for d in range(1, (until - since).days + 2)]
    x_ticks = [Tick(x(d), d.strftime("%m-%d")) for d in days if since <= d <= until]
    y_ticks = [Tick(y(v), f"{v:.0f}") for v in (0.0, high / 2, high)]
    p50s = [p.p50 for p in points if p.p50 is not None]
    p95s = [p.p95 for p in points if p.p95 is not None]
    summary = (
        f"Latency per hour, {when(since)} to {when(until)}: median p50 "
        f"{sorted(p50s)[len(p50s) // 2]:.0f} ms, highest p95 {max(p95s, default=0):.0f} ms"
        if p50s
        else "Latency per hour"
    )
    return LatencyChart(
        width, height, left, bottom, line("p50"), line("p95"), x_ticks, y_ticks, summary
    )


def _templates() -> Jinja2Templates:
    # Loaded from the package, so that an installed wheel finds them wherever it is unpacked.
    env = jinja2.Environment(loader=jinja2.PackageLoader("pystatus.dashboard"), autoescape=True)
    env.filters.update(
        when=when, duration=duration, percent=percent, little_data=little_data,
        service_url=service_url, deadline=deadline, uptime_class=uptime_class,
    )  # fmt: skip
    env.globals.update(
        HOUR=timedelta(hours=1), DAY=timedelta(days=1), MONTH=timedelta(days=30), RANGES=RANGES
    )
    return Jinja2Templates(env=env)


TEMPLATES = _templates()


def not_found(service_name: str) -> HTTPException:
    return HTTPException(404, detail=f"no service named '{service_name}'")


@dataclass(frozen=True)
class Fleet:
    """The fleet as the header and the front page show it: its counts by status, one
    page of its services, and the first of those needing attention."""

    statuses: list[answers.StatusCount]
    services: list[answers.ServiceOverview]  # the page shown (none on a service's page)
    attention: list[answers.ServiceOverview]  # the first ATTENTION_SHOWN needing it
    page: int = 1
    attention_only: bool = False  # the page lists only those needing attention

    @classmethod
    def read(
        cls, conn: psycopg.Connection[Any], page: int | None, attention_only: bool = False
    ) -> Fleet:
        """The counts; with a page number, that page and those needing attention."""
        statuses = answers.fleet_counts(conn)
        if page is None:
            return cls(statuses, [], [])
        offset = (page - 1) * PAGE_SIZE
        return cls(
            statuses,
            answers.service_overview(conn, PAGE_SIZE, offset, attention_only),
            answers.service_overview(conn, ATTENTION_SHOWN, attention_only=True),
            page,
            attention_only,
        )

    @property
    def total(self) -> int:
        return sum(c.services for c in self.statuses)

    @property
    def needy(self) -> int:
        return sum(c.services for c in self.statuses if c.needs_attention)

    @property
    def more_attention(self) -> int:
        """Those needing attention that the list leaves out."""
        return self.needy - len(self.attention)

    @property
    def listed(self) -> int:
        """How many services the pages list."""
        return self.needy if self.attention_only else self.total

    @property
    def pages(self) -> int:
        return max(1, -(-self.listed // PAGE_SIZE))

    def page_url(self, page: int) -> str:
        return f"/?page={page}" + ("&attention=1" if self.attention_only else "")

    @property
    def first(self) -> int:
        """The position of the page's first service in the fleet, from 1."""
        return (self.page - 1) * PAGE_SIZE + 1

    @property
    def summary(self) -> str:
        total, needy = self.total, self.needy
        if not total:
            return "No services yet"
        if not needy:
            return f"All {total:,} services are fine" if total > 1 else "The service is fine"
        return f"{needy:,} of {total:,} services need{'s' if needy == 1 else ''} attention"

    @property
    def counts(self) -> str:
        return " · ".join(f"{c.services:,} {c.effective_status}" for c in self.statuses)


def create_app(dsn: str | None = None, statement_timeout: float = STATEMENT_TIMEOUT) -> FastAPI:
    """The dashboard application, reading the database at ``dsn`` (or DATABASE_URL, PG*);
    no statement runs longer than ``statement_timeout`` seconds."""
    pool = ConnectionPool(
        resolve_dsn(dsn),
        open=False,
        kwargs=read_only(statement_timeout) | {"connect_timeout": CONNECT_TIMEOUT},
        # A connection is checked before each use, so that the first request after a
        # database restart is served, not answered 503 from a dead connection.
        check=ConnectionPool.check_connection,
        **POOL_OPTIONS,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool.open()
        yield
        pool.close()

    app = FastAPI(
        title="pystatus",
        summary="Service health: live status and history, read-only.",
        lifespan=lifespan,
        # The interactive docs pages load scripts from a CDN; the page must work offline.
        docs_url=None,
        redoc_url=None,
    )
    app.mount("/static", StaticFiles(packages=[("pystatus.dashboard", "static")]), name="static")

    @contextmanager
    def connection() -> Iterator[psycopg.Connection[Any]]:
        with translate_errors(), pool.connection() as conn:
            yield conn

    @contextmanager
    def service(service_name: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection, once the service is known to exist (404 otherwise)."""
        with connection() as conn:
            if not answers.service_exists(conn, service_name):
                raise not_found(service_name)
            yield conn

    def json(value: Any) -> JSONResponse:
        return FastJSONResponse(value)

    def json_page(request: Request, rows: list[Any], limit: int, offset: int) -> JSONResponse:
        """``limit`` of the rows (one more was read, to know there are more); a ``Link``
        header names the next page when there is one (RFC 8288, as GitHub's API)."""
        response = json(rows[:limit])
        if len(rows) > limit:
            following = request.url.include_query_params(limit=limit, offset=offset + limit)
            response.headers["Link"] = f'<{following}>; rel="next"'
        return response

    scraped = metrics.registry(connect=connection)

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(scraped), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(PystatusError)
    async def pystatus_error(request: Request, exc: PystatusError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=400 if isinstance(exc, InvalidInput) else 503
        )

    # The JSON API. Each endpoint is one query (two for one service: is it known?),
    # except a service's uptime (three windows).
    @app.get(
        "/api/status",
        summary="Every service's live status, by name, a page at a time (Link: next)",
        response_model=list[answers.LiveStatus],
    )
    def status(request: Request, limit: Limit = API_PAGE, offset: Offset = 0) -> JSONResponse:
        with connection() as conn:
            return json_page(request, answers.live_status(conn, limit + 1, offset), limit, offset)

    @app.get(
        "/api/overview",
        summary="Every service with its 24 h and 30 d uptime and its last 24 hours, by name, "
        "a page at a time (Link: next)",
        response_model=list[answers.ServiceOverview],
    )
    def overview(request: Request, limit: Limit = API_PAGE, offset: Offset = 0) -> JSONResponse:
        with connection() as conn:
            rows = answers.service_overview(conn, limit + 1, offset)
            return json_page(request, rows, limit, offset)

    @app.get(
        "/api/incidents",
        summary="Every service's incidents over the last N days, newest first",
        response_model=list[answers.Incident],
    )
    def fleet_incidents(days: Days = FLEET_INCIDENT_DAYS) -> JSONResponse:
        with connection() as conn:
            return json(answers.recent_incidents(conn, days))

    @app.get(
        "/api/uptime",
        summary="Every service's uptime over the last N days",
        response_model=list[answers.Uptime],
    )
    def fleet_uptime(days: Days = 30) -> JSONResponse:
        with connection() as conn:
            since = answers.server_now(conn) - timedelta(days=days)
            return json(answers.uptime(conn, None, since))

    def service_uptime_of(
        conn: psycopg.Connection[Any], service_name: str, now: datetime
    ) -> ServiceUptime:
        [day], [week], [month] = (
            answers.uptime(conn, service_name, now - timedelta(days=d), now) for d in (1, 7, 30)
        )
        return ServiceUptime(day, week, month)

    @app.get(
        "/api/services/{service_name:path}/uptime",
        summary="A service's uptime over 24 h, 7 d, 30 d",
        response_model=ServiceUptime,
    )
    def service_uptime(service_name: str) -> JSONResponse:
        with service(service_name) as conn:
            return json(service_uptime_of(conn, service_name, answers.server_now(conn)))

    @app.get(
        "/api/services/{service_name:path}/days",
        summary="A service's uptime per UTC day",
        response_model=list[answers.DayUptime],
    )
    def service_days(service_name: str, days: Days = 30) -> JSONResponse:
        with service(service_name) as conn:
            return json(answers.daily_uptime(conn, service_name, days))

    @app.get(
        "/api/services/{service_name:path}/incidents",
        summary="A service's incidents",
        response_model=list[answers.Incident],
    )
    def service_incidents(service_name: str, days: Days = 30) -> JSONResponse:
        with service(service_name) as conn:
            since = answers.server_now(conn) - timedelta(days=days)
            return json(answers.incidents(conn, service_name, since))

    @app.get(
        "/api/services/{service_name:path}/transitions",
        summary="A service's status changes",
        response_model=list[answers.Transition],
    )
    def service_transitions(service_name: str, days: Days = 1) -> JSONResponse:
        with service(service_name) as conn:
            since = answers.server_now(conn) - timedelta(days=days)
            return json(answers.transitions(conn, service_name, since))

    @app.get(
        "/api/services/{service_name:path}/latency",
        summary="A service's hourly latency",
        response_model=list[answers.LatencyPoint],
    )
    def service_latency(service_name: str, days: Days = 7) -> JSONResponse:
        with service(service_name) as conn:
            since = answers.server_now(conn) - timedelta(days=days)
            return json(answers.latency_hourly(conn, service_name, since))

    # The pages, rendered on the server: they work without JavaScript.
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def front_page(request: Request, page: Page = 1, attention: Attention = False) -> HTMLResponse:
        """The fleet: summary, a page of services, those needing attention, recent incidents."""
        with connection() as conn:
            fleet = Fleet.read(conn, page, attention)
            incidents = answers.recent_incidents(conn, FLEET_INCIDENT_DAYS)
        context = {"fleet": fleet, "incidents": incidents, "incident_days": FLEET_INCIDENT_DAYS}
        return TEMPLATES.TemplateResponse(request, "front.html", context)

    @app.get("/fragments/fleet", response_class=HTMLResponse, include_in_schema=False)
    def fleet_fragment(
        request: Request, page: Page = 1, attention: Attention = False
    ) -> HTMLResponse:
        """What app.js refreshes: the summary, the page of services, those needing attention."""
        with connection() as conn:
            fleet = Fleet.read(conn, page, attention)
        return TEMPLATES.TemplateResponse(request, "fleet.html", {"fleet": fleet})

    @app.get("/services/{service_name:path}", response_class=HTMLResponse, include_in_schema=False)
    def service_page(request: Request, service_name: str, days: Days = 30) -> HTMLResponse:
        """One service: its live status and expectations, uptime, days, incidents, latency."""
        with connection() as conn:
            fleet = Fleet.read(conn, None)
            found = answers.service_overview(conn, service_name=service_name)
            current = found[0] if found else None
            if current is None:
                context = {"fleet": fleet, "service_name": service_name}
                return TEMPLATES.TemplateResponse(
                    request, "not_found.html", context, status_code=404
                )
            now = answers.server_now(conn)
            context = {
                "fleet": fleet,
                "s": current,
                "days": days,
                "now": now,
                "uptime": service_uptime_of(conn, service_name, now),
                "per_day": answers.daily_uptime(conn, service_name, days),
                "incidents": answers.incidents(conn, service_name, now - timedelta(days=days)),
                "transitions": answers.transitions(conn, service_name, now - timedelta(days=1)),
                "latency": latency_chart(
                    answers.latency_hourly(conn, service_name, now - timedelta(days=7)),
                    now - timedelta(days=7),
                    now,
                ),
            }
        return TEMPLATES.TemplateResponse(request, "service.html", context)

    return app


def run(
    dsn: str | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    statement_timeout: float = STATEMENT_TIMEOUT,
) -> None:
    import uvicorn

    uvicorn.run(create_app(dsn, statement_timeout), host=host, port=port, log_level="warning")
