"""The dashboard: a read-only web page and JSON API over pystatus's answers.

Install with ``pip install pystatus[dashboard]`` and run ``pystatus dashboard``.
Every figure comes from the same Python wrappers (and SQL functions) as the
CLI. The connections are read-only sessions and no endpoint writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import jinja2
import psycopg
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import ConnectionPool

from pystatus import answers, metrics
from pystatus.connection import resolve_dsn
from pystatus.errors import InvalidInput, PystatusError, translate_errors

Days = Annotated[int, Query(ge=1, le=400, description="window: the last N days")]
# Read-only sessions: the dashboard cannot write, whatever its role may do.
READ_ONLY: dict[str, Any] = {"autocommit": True, "options": "-c default_transaction_read_only=on"}
# While the database is away a request answers 503 within about 2 s, not after
# libpq's or the pool's defaults (30 s and more).
FAIL_FAST: dict[str, Any] = {"connect_timeout": 2}
POOL_WAIT = 2.0
# Loaded from the package, so that an installed wheel finds them wherever it is unpacked.
TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.PackageLoader("pystatus.dashboard"), autoescape=True)
)


@dataclass(frozen=True)
class ServiceUptime:
    last_24h: answers.Uptime
    last_7d: answers.Uptime
    last_30d: answers.Uptime


def create_app(dsn: str | None = None) -> FastAPI:
    """The dashboard application, reading the database at ``dsn`` (or DATABASE_URL, PG*)."""
    pool = ConnectionPool(
        resolve_dsn(dsn),
        min_size=1,
        max_size=4,
        open=False,
        kwargs=READ_ONLY | FAIL_FAST,
        timeout=POOL_WAIT,
        # A connection is checked before each use, so that the first request after a
        # database restart is served, not answered 503 from a dead connection.
        check=ConnectionPool.check_connection,
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

    scraped = metrics.registry(connect=connection)

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(scraped), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(PystatusError)
    async def pystatus_error(request: Request, exc: PystatusError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=400 if isinstance(exc, InvalidInput) else 503
        )

    @app.get("/api/status", summary="Every service's live status")
    def status() -> list[answers.LiveStatus]:
        with connection() as conn:
            return answers.live_status(conn)

    @app.get("/api/uptime", summary="Every service's uptime over the last N days")
    def fleet_uptime(days: Days = 30) -> list[answers.Uptime]:
        with connection() as conn:
            return answers.uptime(conn, None, answers.server_now(conn) - timedelta(days=days))

    @app.get(
        "/api/services/{service_name}/uptime", summary="A service's uptime over 24 h, 7 d, 30 d"
    )
    def service_uptime(service_name: str) -> ServiceUptime:
        with connection() as conn:
            now = answers.server_now(conn)
            [day], [week], [month] = (
                answers.uptime(conn, service_name, now - timedelta(days=d), now) for d in (1, 7, 30)
            )
            return ServiceUptime(day, week, month)

    @app.get("/api/services/{service_name}/days", summary="A service's uptime per UTC day")
    def service_days(service_name: str, days: Days = 30) -> list[answers.DayUptime]:
        with connection() as conn:
            return answers.daily_uptime(conn, service_name, days)

    @app.get("/api/services/{service_name}/incidents", summary="A service's incidents")
    def service_incidents(service_name: str, days: Days = 30) -> list[answers.Incident]:
        with connection() as conn:
            since = answers.server_now(conn) - timedelta(days=days)
            return answers.incidents(conn, service_name, since)

    @app.get("/api/services/{service_name}/transitions", summary="A service's status changes")
    def service_transitions(service_name: str, days: Days = 1) -> list[answers.Transition]:
        with connection() as conn:
            since = answers.server_now(conn) - timedelta(days=days)
            return answers.transitions(conn, service_name, since)

    @app.get("/api/services/{service_name}/latency", summary="A service's hourly latency")
    def service_latency(service_name: str, days: Days = 7) -> list[answers.LatencyPoint]:
        with connection() as conn:
            since = answers.server_now(conn) - timedelta(days=days)
            return answers.latency_hourly(conn, service_name, since)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request) -> HTMLResponse:
        """The page, with the current view rendered on the server (it works without JavaScript)."""
        with connection() as conn:
            services = answers.live_status(conn)
        return TEMPLATES.TemplateResponse(request, "page.html", {"services": services})

    return app


def run(dsn: str | None, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    uvicorn.run(create_app(dsn), host=host, port=port, log_level="warning")
