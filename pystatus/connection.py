"""Where pystatus finds its database."""

from __future__ import annotations

import os
import random
from typing import Any

from psycopg.conninfo import make_conninfo

# The connection pools of the dashboard and the ping endpoint. While the database
# is away a request fails within ``timeout`` (2 s, not libpq's or the pool's
# 30 s and more), and each new connection within ``CONNECT_TIMEOUT``. The pool's
# reconnection doubles its wait for as long as ``reconnect_timeout`` lasts (5
# minutes by default): kept short, it gives up and the next request starts
# afresh, so serving resumes within seconds of the database's return.
POOL_OPTIONS: dict[str, Any] = {
    "min_size": 1,
    "max_size": 4,
    "timeout": 2.0,
    "reconnect_timeout": 3.0,
}
CONNECT_TIMEOUT = 2  # seconds
# The longest a dashboard, scrape or ping statement may run (seconds): one stuck
# behind a lock is cancelled and answered 503, and its connection serves again.
STATEMENT_TIMEOUT = 10.0


def statement_timeout_option(seconds: float = STATEMENT_TIMEOUT) -> str:
    """libpq's ``options`` setting a session's statement_timeout."""
    return f"-c statement_timeout={int(seconds * 1000)}"


def resolve_dsn(dsn: str | None = None) -> str:
    """The DSN to use: the argument, else ``DATABASE_URL``, else "" (libpq's PG* variables)."""
    if dsn:
        return dsn
    return os.environ.get("DATABASE_URL", "")


def in_database(dsn: str | None, name: str) -> str:
    """The same login's DSN for another database of the server (pg_cron's)."""
    return make_conninfo(resolve_dsn(dsn), dbname=name)


def backoff(failures: int, first: float, most: float, spread: float = 0.0) -> float:
    """Seconds to wait after ``failures`` failures in a row (at least one): ``first``,
    doubling with each further failure, never more than ``most``; with ``spread``, that
    much randomness either way, so that processes restarted together do not retry in
    step. Every retry loop of pystatus waits this way."""
    wait = min(most, first * 2.0 ** max(failures - 1, 0))
    return wait * (1 - spread + 2 * spread * random.random()) if spread else wait
