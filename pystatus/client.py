"""The Python client: one call per heartbeat, and background heartbeaters.

Each function is one round trip to a SQL function of the ``pystatus`` schema.
``Heartbeat`` (a thread) and ``AsyncHeartbeat`` (an asyncio task) keep a
service's heartbeat going and never raise into the host service: when the
database is away they log, reconnect with backoff, and resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pystatus.connection import backoff, resolve_dsn
from pystatus.errors import (
    InvalidInput,
    InvalidServiceName,
    NotAllowed,
    PystatusError,
    translate_errors,
)
from pystatus.names import service_name_problem
from pystatus.queries import fetch_value, fetch_value_async

logger = logging.getLogger("pystatus")

# Dead peers are noticed within about 25 s instead of blocking a heartbeat forever.
CONNECT_OPTIONS: dict[str, Any] = {
    "autocommit": True,
    "connect_timeout": 10,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
# A heartbeater's own statements wait at most this long (a lock held by someone
# else, a stalled server): the wait shows up as a failure and a warning, and the
# next attempt comes, instead of a thread stuck in the database.
BOUNDED_WAITS = (
    "SELECT set_config('statement_timeout', '10s', false), set_config('lock_timeout', '5s', false)"
)


def _beat_params(
    service_name: str, status: str, current_task: str | None, latency_ms: float | None
) -> dict[str, Any]:
    return {
        "service_name": service_name,
        "status": status,
        "current_task": current_task,
        "latency_ms": latency_ms,
    }


def heartbeat(
    conn: psycopg.Connection[Any],
    service_name: str,
    status: str = "ok",
    current_task: str | None = None,
    latency_ms: float | None = None,
) -> datetime:
    """Records a heartbeat in the caller's transaction; returns the server time recorded."""
    params = _beat_params(service_name, status, current_task, latency_ms)
    return fetch_value(conn, "heartbeat", params)  # type: ignore[no-any-return]


def ping(
    conn: psycopg.Connection[Any],
    token: str,
    status: str = "ok",
    current_task: str | None = None,
    latency_ms: float | None = None,
) -> datetime:
    """Records a heartbeat for the service a ping token belongs to (what ``pystatus ingest``
    does for an HTTP ping); UnknownToken for a token unknown, revoked or malformed."""
    params = {"token": token, "status": status, "current_task": current_task}
    return fetch_value(conn, "ping", params | {"latency_ms": latency_ms})  # type: ignore[no-any-return]


def record_heartbeat(
    conn: psycopg.Connection[Any],
    service_name: str,
    status: str,
    current_task: str | None,
    at: datetime,
    latency_ms: float | None = None,
) -> bool:
    """Backfills a heartbeat at a past time; True when it became the current status."""
    params = {**_beat_params(service_name, status, current_task, latency_ms), "at": at}
    return bool(fetch_value(conn, "record_heartbeat", params))


def heartbeat_many(
    conn: psycopg.Connection[Any],
    beats: Iterable[
        tuple[str, str] | tuple[str, str, str | None] | tuple[str, str, str | None, float | None]
    ],
) -> int:
    """Records many heartbeats, (service_name, status[, current_task[, latency_ms]]) each, in
    one round trip.

    All or nothing; a service named twice keeps its last heartbeat. Returns the services recorded.
    """
    rows = [(*beat, None, None)[:4] for beat in beats]
    params = {
        "service_names": [r[0] for r in rows],
        "statuses": [r[1] for r in rows],
        "current_tasks": [r[2] for r in rows],
        "latencies_ms": [r[3] for r in rows],
    }
    return int(fetch_value(conn, "heartbeat_many", params))


async def heartbeat_async(
    conn: psycopg.AsyncConnection[Any],
    service_name: str,
    status: str = "ok",
    current_task: str | None = None,
    latency_ms: float | None = None,
) -> datetime:
    """``heartbeat`` for an asyncio connection."""
    params = _beat_params(service_name, status, current_task, latency_ms)
    return await fetch_value_async(conn, "heartbeat", params)  # type: ignore[no-any-return]


# What the server says when it refuses the login itself (libpq gives no SQLSTATE):
# a configuration error, not an outage.
_REFUSED = re.compile(
    r"FATAL:\s+(role \S+ does not exist|password authentication failed|database \S+ does not"
    r" exist|no pg_hba\.conf entry|permission denied for database)"
)


class _Beating:
    """What the thread and the asyncio heartbeaters share: state and retry policy."""

    _wake: threading.Event | asyncio.Event

    def __init__(
        self,
        dsn: str | None,
        service_name: str,
        interval: float = 60,
        *,
        status: str = "ok",
        current_task: str | None = None,
        final_status: str | None = "stopping",
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        # A configuration error is the caller's to see now: later, every failure
        # is logged and retried, as an outage is.
        problem = service_name_problem(service_name)
        if problem:
            raise InvalidServiceName(f"invalid service name {service_name!r}: {problem}")
        self.dsn = resolve_dsn(dsn)
        try:
            conninfo_to_dict(self.dsn)
        except psycopg.ProgrammingError as error:
            raise InvalidInput(f"invalid dsn: {str(error).strip()}") from None
        self.service_name = service_name
        self.interval = interval
        self._status, self._current_task = status, current_task
        self.final_status = final_status
        self.failures = 0
        self.last_error: PystatusError | None = None
        self.last_recorded_at: datetime | None = None
        # Sent with the next heartbeat only (e.g. a measured request latency), then
        # cleared: a latency measured once is not reported again; no heartbeat of its own.
        self.latency_ms: float | None = None
        self._stopping = False
        self._setup()

    def _setup(self) -> None:
        """Creates what the thread or the task needs."""

    @property
    def status(self) -> str:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        self._status = value
        self._wake.set()  # a change is worth a heartbeat now

    @property
    def current_task(self) -> str | None:
        return self._current_task

    @current_task.setter
    def current_task(self, value: str | None) -> None:
        self._current_task = value
        self._wake.set()

    def _next_delay(self) -> float:
        """Seconds until the next attempt: the interval, or a backoff that never exceeds it."""
        if self.failures == 0:
            return self.interval
        return backoff(self.failures, first=0.5, most=self.interval)

    def _latency_for(self, status: str) -> float | None:
        """The latency to send with a heartbeat of ``status``: none with the final one."""
        return None if self._stopping and status == self.final_status else self.latency_ms

    def _succeeded(self, recorded_at: datetime, latency_ms: float | None = None) -> None:
        if latency_ms is not None and self.latency_ms == latency_ms:
            self.latency_ms = None  # sent: the next heartbeat carries a new one, or none
        if self.failures:
            logger.info("pystatus: %s heartbeats resumed", self.service_name)
        self.failures, self.last_error, self.last_recorded_at = 0, None, recorded_at

    def _failed(self, error: PystatusError) -> None:
        self.failures += 1
        self.last_error = error
        # A login refused or not allowed is a configuration error: said every time.
        configuration = isinstance(error, NotAllowed) or bool(_REFUSED.search(str(error)))
        log = (
            logger.error
            if configuration
            else logger.warning
            if self.failures == 1
            else logger.debug
        )
        log(
            "pystatus: %s heartbeat failed (attempt %d): %s",
            self.service_name,
            self.failures,
            error,
        )


class Heartbeat(_Beating):
    """Sends ``service_name``'s heartbeat every ``interval`` seconds from a daemon thread.

    Use as a context manager, or call ``start()`` and ``stop()``. Setting
    ``status`` or ``current_task`` sends a heartbeat at once. ``stop()`` records
    ``final_status`` (default ``stopping``) so history tells a planned stop
    from a crash.
    """

    _wake: threading.Event

    def _setup(self) -> None:
        self._wake = threading.Event()
        self._abandoned = False  # stop() gave up waiting: send nothing more
        self._conn: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"pystatus-heartbeat-{self.service_name}", daemon=True
        )

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30) -> None:
        """Records ``final_status`` and ends the thread, within ``timeout`` seconds (and
        half a second more) even if the database is blocked: the statement in flight is
        then cancelled, and the final status not sent."""
        self._stopping = True
        self._wake.set()
        if self._thread.ident is None:  # never started
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandoned = True
            conn = self._conn
            logger.warning(
                "pystatus: %s heartbeat still waiting on the database after %s s: cancelled",
                self.service_name,
                timeout,
            )
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.cancel_safe(timeout=0.4)
            self._thread.join(0.1)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _send(self, status: str, current_task: str | None) -> None:
        try:
            if self._conn is None or self._conn.closed:
                with translate_errors():
                    self._conn = psycopg.connect(self.dsn, **CONNECT_OPTIONS)
                    self._conn.execute(BOUNDED_WAITS)
            latency = self._latency_for(status)
            self._succeeded(
                heartbeat(self._conn, self.service_name, status, current_task, latency), latency
            )
        except PystatusError as error:
            self._failed(error)
            self._close()
        except Exception as error:  # the host service must never see our failures
            self._failed(PystatusError(repr(error)))
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                logger.debug("pystatus: closing a broken connection failed", exc_info=True)
            self._conn = None

    def _run(self) -> None:
        delay = 0.0
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            if self._stopping:
                break
            self._send(self._status, self._current_task)
            delay = self._next_delay()
        if self.final_status is not None and not self._abandoned:
            self._send(self.final_status, None)
        self._close()


class AsyncHeartbeat(_Beating):
    """``Heartbeat`` as an asyncio task: ``async with AsyncHeartbeat(dsn, "svc"): ...``."""

    _wake: asyncio.Event

    def _setup(self) -> None:
        self._wake = asyncio.Event()
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._task_handle: asyncio.Task[None] | None = None

    async def start(self) -> AsyncHeartbeat:
        self._task_handle = asyncio.create_task(self._run(), name=f"pystatus-{self.service_name}")
        return self

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task_handle is not None:
            await self._task_handle

    async def __aenter__(self) -> AsyncHeartbeat:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _send(self, status: str, current_task: str | None) -> None:
        try:
            if self._conn is None or self._conn.closed:
                with translate_errors():
                    self._conn = await psycopg.AsyncConnection.connect(self.dsn, **CONNECT_OPTIONS)
                    await self._conn.execute(BOUNDED_WAITS)
            latency = self._latency_for(status)
            self._succeeded(
                await heartbeat_async(self._conn, self.service_name, status, current_task, latency),
                latency,
            )
        except PystatusError as error:
            self._failed(error)
            await self._close()
        except Exception as error:  # the host service must never see our failures
            self._failed(PystatusError(repr(error)))
            await self._close()

    async def _close(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            except Exception:
                logger.debug("pystatus: closing a broken connection failed", exc_info=True)
            self._conn = None

    async def _run(self) -> None:
        delay = 0.0
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            if self._stopping:
                break
            await self._send(self._status, self._current_task)
            delay = self._next_delay()
        if self.final_status is not None:
            await self._send(self.final_status, None)
        await self._close()
