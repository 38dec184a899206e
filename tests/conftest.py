"""Test harness: one private PostgreSQL cluster per session (pg_partman and pg_cron
loaded, pg_cron living in the "postgres" database as in most installations), a
template database migrated once, and a fresh copy of it for every test."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pytest_postgresql import factories

from pystatus import migrations
from pystatus.cluster import Cluster
from tests.helpers import as_login


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with Cluster.temporary() as running:
        yield running


def _migrate_template(host: str, port: int, user: str, dbname: str, **_: Any) -> None:
    migrations.apply(f"host={host} port={port} user={user} dbname={dbname}")


migrated_server = factories.postgresql_noproc(
    dbname="pystatus_test", depends_on="cluster", load=[_migrate_template]
)
postgresql = factories.postgresql("migrated_server")


@pytest.fixture
def dsn(postgresql: psycopg.Connection[Any]) -> str:
    """DSN of this test's fresh, migrated database."""
    info = postgresql.info
    return f"host={info.host} port={info.port} user={info.user} dbname={info.dbname}"


@pytest.fixture
def db(postgresql: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """An autocommit connection to this test's fresh, migrated database."""
    postgresql.autocommit = True
    return postgresql


_serial = itertools.count()


@pytest.fixture
def login(db: psycopg.Connection[Any], dsn: str) -> Iterator[Callable[..., str]]:
    """Makes a login (a cluster-wide role) granted the given roles; returns a DSN
    to this test's database as that login. Dropped after the test."""
    made: list[str] = []

    def make(*roles: str) -> str:
        name = f"login_{next(_serial)}_{len(made)}"
        db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        for role in roles:
            db.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(name)))
        made.append(name)
        return as_login(dsn, name)

    yield make
    for name in made:
        db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def empty_dsn(cluster: Cluster) -> Iterator[str]:
    """DSN of an empty database (not migrated), dropped after the test."""
    name = "pystatus_empty"
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    yield cluster.dsn(name)
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def cron_db(cluster: Cluster) -> Iterator[psycopg.Connection[Any]]:
    """pg_cron's own database ("postgres", as cron.database_name says), with the
    extension; pystatus's jobs are removed after the test."""
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        yield conn
        conn.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'pystatus-%'")
