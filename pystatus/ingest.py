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
last line of a POSTed body (a script's output) becomes the task, and either is
made one clean line (pystatus.names.clean_text, the SQL cleaning rule). Answers:
200 ``OK``; 400 bad input (nothing written); 403 when the ingest login may not
report the token's service (its allowances); 404 for a token that is unknown,
revoked or malformed, alike, so a guess learns nothing; 405 for HEAD, which
records nothing (a safe method); 413 a body over the limit; 414 a query string
over the limit; 429 over the per-token rate, with Retry-After; 503 while the
database is away, with Retry-After (nothing written).

It writes as the login of its DSN, which must be a ``pystatus_writer``, never the
owner. Tokens appear in URLs: the access log is off, and what is logged names a
token by its prefix only.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
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
from pystatus.vocabulary import REPORTED

log = logging.getLogger("pystatus.ingest")

DEFAULT_PORT = 8020
DEFAULT_MAX_BODY = 10_000  # bytes: room for a script's last lines
DEFAULT_RATE = 60  # pings a minute per token
MAX_TOKEN_LENGTH = 64  # longer is not a token: refused without asking the database
MAX_TASK_CHARACTERS = 1000
# Room for a task of MAX_TASK_CHARACTERS, percent-encoded, and a latency.
MAX_QUERY_BYTES = 16_384
PARAMETERS = ("task", "latency_ms")
# ASCII digits only: str.isdigit() takes '²', int() and float() take '१' (Devanagari one).
DIGITS = re.compile(r"[0-9]+")
DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
STATUS_PATHS = {
    "start": "starting",
    "fail": "down",
    **{s: s for s in REPORTED},
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


# What a ping's answer says of it, as the outcome label of pystatus_ingest_pings_total.
OUTCOMES = {
    200: "recorded",
    400: "bad_request",
    403: "not_allowed",
    404: "unknown_token",
    405: "method_not_allowed",
    413: "body_too_large",
    414: "query_too_long",
    429: "rate_limited",
    503: "database_unavailable",
}
LOGGED = {403, 503}  # refusals logged where they happen, with their cause


def token_prefix(token: str) -> str:
    """How logs name a token: its listed prefix, never the secret (nor what a client
    sent in its place)."""
    return token[:11] if re.fullmatch(r"ps_[0-9a-f]{8}", token[:11]) else "(not a token)"


def quoted(value: str) -> str:
    """A client's text in an answer: short, and with control characters escaped (repr)."""
    return repr(value[:40]) + ("..." if len(value) > 40 else "")


def is_token_shaped(token: str) -> bool:
    """False for what cannot be a token (too long, not printable ASCII, NUL): not asked of
    the database, and answered as an unknown token is."""
    return len(token) <= MAX_TOKEN_LENGTH and token.isascii() and token.isprintable()


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
    if DIGITS.fullmatch(action):
        # Its length first: int() refuses thousands of digits.
        digits = action.lstrip("0") or "0"
        if len(digits) > 3 or int(digits) > 255:
            raise InvalidInput(f"invalid exit code {quoted(action)}: an exit code is 0 to 255")
        code = int(digits)
        return ("ok", None) if code == 0 else ("down", f"exit code {code}")
    raise InvalidInput(
        f"unknown ping {quoted(action)}: use /start, /fail, an exit code 0-255 or a status "
        f"({', '.join(sorted(set(STATUS_PATHS.values())))})"
    )


def ping_params(request: Request) -> dict[str, str]:
    """The query's task and latency_ms; InvalidInput for one given twice (which to take?)."""
    given = request.query_params
    twice = [name for name in PARAMETERS if len(given.getlist(name)) > 1]
    if twice:
        raise InvalidInput(f"{twice[0]} given {len(given.getlist(twice[0]))} times: give it once")
    return {name: given[name] for name in PARAMETERS if name in given}


def task_param(value: str | None) -> str | None:
    """?task= as a clean current_task, like a body's last line; None when nothing is left."""
    if not value:
        return None
    return clean_text(value, MAX_TASK_CHARACTERS) or None


def latency_param(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    if not DECIMAL.fullmatch(value):
        raise InvalidInput(f"invalid latency_ms {quoted(value)}: a number of milliseconds")
    latency = float(value)
    if not math.isfinite(latency) or latency < 0:
        raise InvalidInput(f"invalid latency_ms {quoted(value)}: a finite number, 0 or more")
    return latency


def text(body: str, status_code: int, **headers: str) -> PlainTextResponse:
    return PlainTextResponse(body + "\n", status_code=status_code, headers=headers or None)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None once it passes ``limit`` bytes (read no further).
    ClientDisconnect if the client leaves before sending it all."""
    declared = request.headers.get("content-length", "")
    # Its length first: int() refuses thousands of digits.
    if DIGITS.fullmatch(declared) and (len(declared) > 20 or int(declared) > limit):
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
    # The endpoint's own metrics, at /metrics: pings by outcome (a registry of
    # its own, so two apps in one process count apart).
    registry = CollectorRegistry(auto_describe=True)
    pings = Counter(
        "pystatus_ingest_pings",
        "Pings received, by outcome (recorded, or why not)",
        ["outcome"],
        registry=registry,
    )
    for outcome in OUTCOMES.values():
        pings.labels(outcome).inc(0)  # every outcome from the start: rate() sees the first

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
        response = await answer(request)
        outcome = OUTCOMES.get(response.status_code, "other")
        pings.labels(outcome).inc()
        if response.status_code >= 400 and response.status_code not in LOGGED:
            # One line per refused ping, naming the token by its prefix only.
            reason = bytes(response.body).decode(errors="replace").strip()
            log.info(
                "ping %s refused: %d %s",
                token_prefix(request.path_params["token"]),
                response.status_code,
                quoted(reason),
            )
        return response

    async def answer(request: Request) -> PlainTextResponse:
        if request.method == "HEAD":
            # A safe method: link checkers, proxies and monitors send it expecting no
            # effect (docs/integrations.md, "HTTP pings").
            return text("HEAD records nothing: ping with GET or POST", 405, Allow="GET, POST")
        token = request.path_params["token"]
        wait = limiter.wait_needed(token)
        if wait:
            return text("too many pings: slow down", 429, **{"Retry-After": str(math.ceil(wait))})
        if len(request.scope["query_string"]) > MAX_QUERY_BYTES:
            return text(f"query string too long: the limit is {MAX_QUERY_BYTES} bytes", 414)
        try:
            body = await read_body(request, max_body)
        except ClientDisconnect:
            return text("body incomplete: not recorded", 400)  # no one is left to read it
        if body is None:
            return text(f"body too large: the limit is {max_body} bytes", 413)
        try:
            status, task = ping_status(request.path_params.get("action"))
            query = ping_params(request)
            task = task_param(query.get("task")) or task_from_body(body) or task
            latency = latency_param(query.get("latency_ms"))
            if not is_token_shaped(token):
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

    async def metrics_page(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> PlainTextResponse:
        try:
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, TimeoutError) as exc:
            return text(f"database unavailable: {describe(exc)}", 503)
        return text("OK", 200)

    methods = ["GET", "POST"]  # Starlette adds HEAD, which ping() refuses
    app = Starlette(
        routes=[
            Route("/ping/{token}", ping, methods=methods),
            Route("/ping/{token}/{action}", ping, methods=methods),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    # A redirect (of /ping/<token>/ to /ping/<token>) records nothing, yet curl -f
    # takes it for success: an unknown path is a 404 instead.
    app.router.redirect_slashes = False
    return app


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
