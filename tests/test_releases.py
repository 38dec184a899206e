"""Releases: released SQL never changes; upgrading from every released version
gives exactly a fresh install; a fresh install is exactly what the readable
sources (sql/schema/) define."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import migrations
from pystatus.cluster import Cluster
from tests.catalog import describe, differences
from tests.helpers import MIGRATION_ORDER, empty_databases

SQL = migrations.Sources().root

# The sha256 of every released file. A released file never changes: an
# installation that applied it would not get the change. Change the schema
# with a new migration (and sql/schema/) instead. At a release, freeze it
# (scripts/freeze_release.py) and add its files here.
RELEASED = {
    "migrations/0001_baseline.sql": (
        "0935315ec428ff41fce0fd8ee764a7c19379e9846f9b354ed8c812dcdb297808"
    ),
    "migrations/0001_baseline.rollback.sql": (
        "e30eff9634cdcb14e04dcc2f4801967b56412f89207c8c597638ffb119ba0f80"
    ),
    "releases/0.2.0.sql": "6f3a803707819f715323bd6d50bc6aa24d1cf83cb8061d795f8c82c576ae409d",
}
RELEASES = sorted((SQL / "releases").glob("*.sql"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_released_files_never_change() -> None:
    changed = [name for name, digest in RELEASED.items() if sha256(SQL / name) != digest]
    assert not changed, f"released files changed: {changed}: add a migration instead"


def released_migrations(release: Path) -> list[str]:
    found = re.search(r"^-- migrations: (.*)$", release.read_text(), re.MULTILINE)
    assert found, f"{release.name} does not list its migrations"
    return found[1].split()


def test_every_release_and_its_migrations_are_frozen() -> None:
    assert RELEASES, "no release in sql/releases"
    for release in RELEASES:
        assert f"releases/{release.name}" in RELEASED
        for migration in released_migrations(release):
            assert f"migrations/{migration}.sql" in RELEASED
            assert f"migrations/{migration}.rollback.sql" in RELEASED


@pytest.fixture
def databases(cluster: Cluster) -> Iterator[list[str]]:
    """Two empty databases: one to build one way, one the other way."""
    with empty_databases(cluster, "pystatus_built_a", "pystatus_built_b") as dsns:
        yield dsns


def installed(dsn: str) -> dict[str, list[Any]]:
    with psycopg.connect(dsn) as conn:
        return describe(conn)


def assert_same_installation(a: str, b: str) -> None:
    found = differences(installed(a), installed(b))
    assert not found, "\n".join(found)


def install_release(dsn: str, release: Path) -> None:
    """Installs a released version as it was: its frozen script, in one transaction,
    and yoyo's record of the migrations it applied."""
    with psycopg.connect(dsn) as conn:
        conn.execute(release.read_text())
    ids = released_migrations(release)
    with migrations._backend(dsn, {}) as backend:
        backend.mark_migrations(migrations.Sources().migrations().filter(lambda m: m.id in ids))


@pytest.mark.parametrize("release", RELEASES, ids=[r.stem for r in RELEASES])
def test_upgrading_from_each_release_equals_a_fresh_install(
    release: Path, databases: list[str]
) -> None:
    upgraded, fresh = databases
    install_release(upgraded, release)
    with psycopg.connect(upgraded, autocommit=True) as conn:
        pystatus.heartbeat(conn, "librarian")  # the released version works, and keeps its rows
    migrations.apply(upgraded)
    migrations.apply(fresh)
    assert_same_installation(upgraded, fresh)
    with psycopg.connect(upgraded, autocommit=True) as conn:
        pystatus.heartbeat(conn, "librarian")
        assert conn.execute("SELECT count(*) FROM system_status_history").fetchone() == (2,)
    assert not migrations.apply(upgraded)  # and nothing is left to do


def test_a_fresh_install_equals_the_readable_sources(databases: list[str]) -> None:
    """The migrations build exactly the tables sql/schema/20_tables.sql defines."""
    from_sources, fresh = databases
    with psycopg.connect(from_sources) as conn:
        for path in migrations.Sources().schema_files:
            conn.execute(path.read_text())
    migrations.apply(fresh)
    assert_same_installation(from_sources, fresh)


def test_rolling_back_a_whole_install_removes_it(empty_dsn: str) -> None:
    before = installed(empty_dsn)
    migrations.apply(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        pystatus.heartbeat(conn, "librarian")
    rolled_back = migrations.rollback(empty_dsn, count=None)
    assert rolled_back == MIGRATION_ORDER[::-1]
    after = installed(empty_dsn)
    # What stays: the status table, in the seed's shape (dashboards may still
    # read it), and pg_partman, which other tables may use.
    table = {"relations", "columns", "constraints", "indexes"}
    assert {k: v for k, v in after.items() if k not in table | {"pg_partman"}} == {
        k: v for k, v in before.items() if k not in table
    }
    assert [r[0] for r in after["relations"]] == ["system_status"]
    assert after["pg_partman"] == []
