"""Schema migrations: yoyo-migrations over the SQL files shipped in the package."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from yoyo import read_migrations
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import parse_uri
from yoyo.exceptions import LockTimeout

from pystatus.connection import resolve_dsn
from pystatus.errors import PystatusError, translate_errors


def migrations_dir() -> Path:
    return Path(str(importlib.resources.files("pystatus") / "sql" / "migrations"))


class _Backend(PostgresqlPsycopgBackend):  # type: ignore[misc]
    """yoyo's psycopg 3 backend, connecting with any libpq DSN or the PG* variables.

    yoyo only understands URLs; pystatus accepts whatever libpq accepts, and
    sets migration settings (pystatus.*) on each session it opens.
    """

    @classmethod
    def for_dsn(cls, dsn: str, settings: Mapping[str, str | None]) -> _Backend:
        # yoyo makes more backends from this URI (backend.copy()): it carries our arguments.
        chosen = {name: str(value) for name, value in settings.items() if value is not None}
        uri = parse_uri("postgresql+psycopg://")._replace(args={"dsn": dsn, "settings": chosen})
        return cls(uri, "_yoyo_migration")

    def connect(self, dburi: Any) -> psycopg.Connection[Any]:
        conn = psycopg.connect(dburi.args["dsn"], autocommit=True)
        for name, value in dburi.args["settings"].items():
            conn.execute("SELECT set_config(%s, %s, false)", (f"pystatus.{name}", value))
        return conn


@contextmanager
def backend(dsn: str | None = None, settings: Mapping[str, str | None] = {}) -> Iterator[Any]:
    """A yoyo backend holding yoyo's lock; errors come out as pystatus errors."""
    with translate_errors():
        yoyo = _Backend.for_dsn(resolve_dsn(dsn), settings)
    try:
        with translate_errors():
            yoyo.init_database()
            with yoyo.lock():
                yield yoyo
    except LockTimeout as exc:
        raise PystatusError(f"another migration holds yoyo's lock: {exc}") from exc
    finally:
        yoyo.connection.close()


def apply(dsn: str | None = None, settings: Mapping[str, str | None] = {}) -> list[str]:
    """Applies pending migrations under yoyo's lock; returns the ids applied."""
    with backend(dsn, settings) as yoyo:
        pending = yoyo.to_apply(read_migrations(str(migrations_dir())))
        yoyo.apply_migrations(pending)
        return [m.id for m in pending]


def rollback(
    dsn: str | None = None, count: int | None = 1, settings: Mapping[str, str | None] = {}
) -> list[str]:
    """Rolls back the newest ``count`` applied migrations (all when None); returns their ids."""
    with backend(dsn, settings) as yoyo:
        applied = yoyo.to_rollback(read_migrations(str(migrations_dir())))
        chosen = applied if count is None else applied[:count]
        yoyo.rollback_migrations(chosen)
        return [m.id for m in chosen]


def pending(dsn: str | None = None) -> list[str]:
    with backend(dsn) as yoyo:
        return [m.id for m in yoyo.to_apply(read_migrations(str(migrations_dir())))]


def applied(dsn: str | None = None) -> list[str]:
    """Ids of the applied migrations, oldest first."""
    with backend(dsn) as yoyo:
        return [m.id for m in reversed(yoyo.to_rollback(read_migrations(str(migrations_dir()))))]
