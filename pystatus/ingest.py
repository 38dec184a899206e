"""The HTTP ping endpoint (``pystatus ingest``): heartbeats for anything that can run curl.

Each service gets secret tokens (``pystatus tokens add SERVICE``); a request to a
token's URL records a heartbeat for its service through ``pystatus.ping()``::

    GET|POST /ping/<token>            ok
    GET|POST /ping/<token>/start      starting (a run begins; the next ping records its length)
    GET|POST /ping/<token>/fail       down
    GET|POST /ping/<token>/<status>   any status a service may report (degraded, stopping, ...)
    GET|POST /ping/<token>/<0-255>    an exit code: 0 is ok, anything else down
    GET      /healthz                 200 while the database answers, else 503

with optional ``?task=`` (current_task) and ``?latency_ms=``; without ``task``, the
last line of a POSTed body (a script's output) becomes the task. Answers:
200 ``OK``; 400 bad input (nothing written); 403 when the ingest login may not
report the token's service (its allowances); 404 for a token that is unknown,
revoked or malformed, alike, so a guess learns nothing; 413 a body over the
limit; 429 over the per-token rate, with Retry-After; 503 while the database is
away, with Retry-After (nothing written).

It writes as the login of its DSN, which must be a ``pystatus_writer``, never the
owner. Tokens appear in URLs: the access log is off, and what is logged names a
token by its prefix only.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pystatus.connection import CONNECT_TIMEOUT, POOL_OPTIONS, resolve_dsn
from pystatus.errors import (
    DatabaseUnavailable,
    InvalidInput,
    NotAllowed,
    PystatusError,
    UnknownToken,
    translate,
)
from pystatus.names import clean_text
from pystatus.queries import fetch_value, fetch_value_async

log = logging.getLogger("pystatus.ingest")

DEFAULT_PORT = 8020
DEFAULT_MAX_BODY = 10_000  # bytes: room for a script's last lines
DEFAULT_RATE = 60  # pings a minute per token
MAX_TOKEN_LENGTH = 64  # longer is not a token: refused without asking the database
MAX_TASK_CHARACTERS = 1000
STATUS_PATHS = {
    "start": "starting",
    "fail": "down",
    **{s: s for s in ("ok", "degraded", "down", "starting", "stopping", "maintenance")},
}
# Every new connection: fail fast while the database is away, never wait long
# on a lock, and say who we are in pg_stat_activity.
CONNECTION: dict[str, Any] = {
    "autocommit": True,
    "connect_timeout": CONNECT_TIMEOUT,
    "application_name": "pystatus-ingest",
    "options": "-c statement_timeout=5s -c lock_timeout=2s",
}


class RateLimiter:
    """A token bucket per ping token: ``rate`` a minute, bursts up to ``rate``.

    Keyed by the token as given, before the database is asked, so the answer
    is the same whether the token exists. Remembers at most ``capacity``
    tokens, forgetting the least recently seen (a full bucket, by then).
    """

    def __init__(self, rate_per_minute: int, capacity: int = 100_000) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(rate_per_minute)
        self.capacity = capacity
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait_needed(self, key: str, now: float | None = None) -> float:
        """0 if a request may pass now (and counts it), else the seconds until one may."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        level, then = self.buckets.pop(key, (self.burst, now))
        level = min(self.burst, level + (now - then) * self.rate)
        if level >= 1:
            level -= 1
            wait = 0.0
        else:
            wait = (1 - level) / self.rate
        self.buckets[key] = (level, now)
        if len(self.buckets) > self.capacity:
            self.buckets.popitem(last=False)
        return wait


def token_prefix(token: str) -> str:
    """How logs name a token: its listed prefix, never the secret."""
    return token[:11] if token.startswith("ps_") else "(not a token)"


def task_from_body(body: bytes) -> str | None:
    """The last line of a script's output that has something to say, as a clean current_task."""
    lines = body.decode("utf-8", "replace").splitlines()
    cleaned = (clean_text(line, MAX_TASK_CHARACTERS) for line in reversed(lines))
    return next((line for line in cleaned if line), None)


def ping_status(action: str | None) -> tuple[str, str | None]:
    """The status (and default task) a ping's path names; InvalidInput if none."""
    if action is None:
        return "ok", None
    if action in STATUS_PATHS:
        return STATUS_PATHS[action], None
    if action.isdigit() and int(action) <= 255:
        code = int(action)
        return ("ok", None) if code == 0 else ("down", f"exit code {code}")
    raise InvalidInput(
        f"unknown ping {action!r}: use /start, /fail, an exit code 0-255 or a status "
        f"({', '.join(sorted(set(STATUS_PATHS.values())))})"
    )


def latency_param(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        latency = float(value)
    except ValueError:
        raise InvalidInput(f"invalid latency_ms {value[:40]!r}: a number of milliseconds") from None
    if not math.isfinite(latency) or latency < 0:
        raise InvalidInput(f"invalid latency_ms {value[:40]!r}: a finite number, 0 or more")
    return latency


def text(body: str, status_code: int, **headers: str) -> PlainTextResponse:
    return PlainTextResponse(body + "\n", status_code=status_code, headers=headers or None)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None once it passes ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def refuse_owner(conn: psycopg.Connection[Any]) -> None:
    """NotAllowed if the login is a superuser or owns pystatus: ingest writes as a writer only."""
    if fetch_value(conn, "login_owns_pystatus"):
        raise NotAllowed(
            "pystatus ingest runs as a pystatus_writer login, not a superuser or the owner of "
            "pystatus: give it a DSN with such a login (docs/integrations.md, 'HTTP pings')"
        )


def create_app(
    dsn: str | None = None,
    rate_per_minute: int = DEFAULT_RATE,
    max_body: int = DEFAULT_MAX_BODY,
) -> Starlette:
    """The ping endpoint, writing to the database at ``dsn`` (or DATABASE_URL, PG*)."""
    pool = AsyncConnectionPool(
        resolve_dsn(dsn),
        open=False,
        kwargs=CONNECTION,
        **POOL_OPTIONS,  # no check before use: see record()
    )
    limiter = RateLimiter(rate_per_minute)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.open(wait=False)
        yield
        await pool.close()

    async def record(params: dict[str, Any]) -> None:
        # Connections are not checked before use (a round trip, a third of a
        # ping's time): one that died with a database restart fails at once,
        # and the ping is sent again on a new one. A ping recorded just before
        # its connection broke is then recorded twice, a harmless extra heartbeat.
        for attempt in (1, 2):
            used: psycopg.AsyncConnection[Any] | None = None
            try:
                async with pool.connection() as used:
                    await fetch_value_async(used, "ping", params)
                return
            except DatabaseUnavailable:
                if attempt == 2 or used is None or not used.broken:
                    raise

    async def ping(request: Request) -> PlainTextResponse:
        token = request.path_params["token"]
        wait = limiter.wait_needed(token)
        if wait:
            return text("too many pings: slow down", 429, **{"Retry-After": str(math.ceil(wait))})
        body = await read_body(request, max_body)
        if body is None:
            return text(f"body too large: the limit is {max_body} bytes", 413)
        try:
            status, task = ping_status(request.path_params.get("action"))
            task = request.query_params.get("task") or task_from_body(body) or task
            latency = latency_param(request.query_params.get("latency_ms"))
            if len(token) > MAX_TOKEN_LENGTH:
                raise UnknownToken("unknown ping token")
            params = {"token": token, "status": status, "current_task": task, "latency_ms": latency}
            await record(params)
        except UnknownToken:
            return text("not found", 404)
        except InvalidInput as exc:
            return text(str(exc), 400)
        except NotAllowed as exc:
            # The ingest login's allowances (pystatus.service_logins) do not cover the
            # token's service, or it lacks pystatus_writer: the DBA's to fix.
            log.warning("ping %s refused: %s", token_prefix(token), exc)
            return text(f"not recorded: {exc}", 403)
        except (PystatusError, psycopg.Error, TimeoutError) as exc:
            # The pool's PoolTimeout is a TimeoutError: the database is away or busy.
            log.warning("ping %s not recorded: %s", token_prefix(token), describe(exc))
            return text(
                "database unavailable: not recorded, try again", 503, **{"Retry-After": "5"}
            )
        return text("OK", 200)

    async def healthz(request: Request) -> PlainTextResponse:
        try:
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, TimeoutError) as exc:
            return text(f"database unavailable: {describe(exc)}", 503)
        return text("OK", 200)

    methods = ["GET", "POST"]
    return Starlette(
        routes=[
            Route("/ping/{token}", ping, methods=methods),
            Route("/ping/{token}/{action}", ping, methods=methods),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def describe(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error):
        exc = translate(exc)
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def check_login(dsn: str | None) -> None:
    """At start: refuse an owner's login, if the database answers (else the pool retries)."""
    try:
        with psycopg.connect(resolve_dsn(dsn), connect_timeout=CONNECT_TIMEOUT) as conn:
            refuse_owner(conn)
    except psycopg.OperationalError as exc:
        log.warning("database unavailable at start (pings answer 503 until it is): %s", exc)


def run(
    dsn: str | None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    rate_per_minute: int = DEFAULT_RATE,
    max_body: int = DEFAULT_MAX_BODY,
) -> None:
    import uvicorn

    check_login(dsn)
    app = create_app(dsn, rate_per_minute, max_body)
    # No access log: tokens are in the paths.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
