"""The dashboard: a read-only web page and JSON API over pystatus's answers.

Install with ``pip install pystatus[dashboard]`` and run ``pystatus dashboard``.
Every figure comes from the same Python wrappers (and SQL functions) as the
CLI. The connections are read-only sessions and no endpoint writes.
"""

from __future__ import annotations

import html
import importlib.resources
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import psycopg
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from psycopg_pool import ConnectionPool

from pystatus import answers
from pystatus.connection import resolve_dsn
from pystatus.errors import InvalidInput, PystatusError, translate_errors

STATIC = importlib.resources.files("pystatus.dashboard") / "static"
Days = Annotated[int, Query(ge=1, le=400, description="window: the last N days")]
# Read-only sessions: the dashboard cannot write, whatever its role may do.
READ_ONLY: dict[str, Any] = {"autocommit": True, "options": "-c default_transaction_read_only=on"}


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
        kwargs=READ_ONLY,
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

    @contextmanager
    def connection() -> Iterator[psycopg.Connection[Any]]:
        with translate_errors(), pool.connection() as conn:
            yield conn

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
    def page() -> str:
        with connection() as conn:
            services = answers.live_status(conn)
        return render_page(services)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        files = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in files:
            return Response(status_code=404)
        return Response((STATIC / name).read_text(), media_type=files[name])

    return app


def render_page(services: list[answers.LiveStatus]) -> str:
    """The page, with the current view rendered on the server (it works without JavaScript)."""
    rows = "\n".join(
        f'<tr data-service="{html.escape(s.service_name)}">'
        f'<td class="name">{html.escape(s.service_name)}</td>'
        f'<td><span class="badge {html.escape(s.effective_status)}">'
        f"{html.escape(s.effective_status)}</span></td>"
        f'<td class="age">{s.seconds_since:.0f} s ago</td>'
        f'<td class="task">{html.escape(s.current_task or "")}</td></tr>'
        for s in services
    )
    return (STATIC / "page.html").read_text().replace("<!-- rows -->", rows)


def run(dsn: str | None, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    uvicorn.run(create_app(dsn), host=host, port=port, log_level="warning")
