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
    "migrations/0.2.0/0001_baseline.sql": (
        "0935315ec428ff41fce0fd8ee764a7c19379e9846f9b354ed8c812dcdb297808"
    ),
    "migrations/0.2.0/0001_baseline.rollback.sql": (
        "e30eff9634cdcb14e04dcc2f4801967b56412f89207c8c597638ffb119ba0f80"
    ),
    "releases/0.2.0.sql": "6f3a803707819f715323bd6d50bc6aa24d1cf83cb8061d795f8c82c576ae409d",
    "migrations/0.3.0/0002_finite_times.rollback.sql": (
        "04d86dbd45d7cdf407374063cb1d6b86dbcf19ce26ebe71d0128b908ca5c271c"
    ),
    "migrations/0.3.0/0002_finite_times.sql": (
        "eb2df6a96a9c6a24c8c0118f1e9225a4c63366c741dd27010912d2efe105011c"
    ),
    "migrations/0.3.0/0003_alerts.rollback.sql": (
        "9cc2100cfed68953d6e1fe07173a828c9a35d43b4d76c92be38d5b952f50dc8b"
    ),
    "migrations/0.3.0/0003_alerts.sql": (
        "6031095ab9ecb00417a0975b7cc6c48522241af62b32c16ceba92ff5178e7722"
    ),
    "migrations/0.3.0/0004_ping_tokens.rollback.sql": (
        "666d8401c48350918d65f732440ee188c4def5cdd4a1e5521cb72d338901f85f"
    ),
    "migrations/0.3.0/0004_ping_tokens.sql": (
        "74bac28f81205d9b23d83b7149379c5250b688c66e3b265274f5bfcfbc60740b"
    ),
    "migrations/0.3.0/0005_compact_history.rollback.sql": (
        "3ecc655422bc810a2ea707d45c6e42328f767eb09ccc0c2dec800c4c97f6e5dd"
    ),
    "migrations/0.3.0/0005_compact_history.sql": (
        "deb2ad71fcd288e01ec7f97294d2c79309c908fe7b2dece74fd29b489d8fe1b3"
    ),
    "migrations/0.3.0/0006_rollup_spans.rollback.sql": (
        "f75b14db31a9b2f5d5a504f58e69f6710584413086f1c58d6605a7d2122ee05e"
    ),
    "migrations/0.3.0/0006_rollup_spans.sql": (
        "282ccbb23b0acb2b600f80286cea053923ea219383d158264a99e4b22272998c"
    ),
    "migrations/0.3.0/0007_current_hour_spans.rollback.sql": (
        "63ac48c7c30d8ab277f879647a7a56d65fb4aa9386735f59f3b61420868be232"
    ),
    "migrations/0.3.0/0007_current_hour_spans.sql": (
        "20eca9f6f8b8b233d6b1aaf30c01c22bceed7807f1d66532f48df8d7e31524f2"
    ),
    "migrations/0.3.0/0008_history_time_index.rollback.sql": (
        "f1a3368fac664bacfb959a24ac8a3809d96e1c1645248eed98bd06c154849fd9"
    ),
    "migrations/0.3.0/0008_history_time_index.sql": (
        "69d66621038f069620c8a593bff3f41440c8cc015312331ab6a41234a4292fec"
    ),
    "migrations/0.3.0/0009_rollup_running_totals.rollback.sql": (
        "62e17921e5e6b58eac64968c02354f211ea131aa043fdfaaefb3ecdc5da1bcbe"
    ),
    "migrations/0.3.0/0009_rollup_running_totals.sql": (
        "a70e6cebf72e7a7761ce25b5f8d616d8184586e8c5ff33ab1e6d689e2bcb1f61"
    ),
    "migrations/0.3.0/0010_job_locks.rollback.sql": (
        "7a93026ae2ffd370296605e850f93f84ef6a2ffa44a80cfa7b22ca731a82bc26"
    ),
    "migrations/0.3.0/0010_job_locks.sql": (
        "ef5e7a3e7856351e3e2551238aa8e22c5c21720234c5e0cb3de36138014f81fa"
    ),
    "migrations/0.3.0/0011_alert_queue.rollback.sql": (
        "a18dd42ced851fc5b71f0005898df6168bf4d3cc1b76326c244b1f4d93388fad"
    ),
    "migrations/0.3.0/0011_alert_queue.sql": (
        "236171c934f606d5b0197d0ee7b55062437ec271e196ce3196fddd83b7ada5ba"
    ),
    "migrations/0.3.0/0012_overview_pages.rollback.sql": (
        "60592b8fd178b213f50bb6f55becd3b0037d19fbb3ac67a0a1313e5f6bb6a28e"
    ),
    "migrations/0.3.0/0012_overview_pages.sql": (
        "da996330eaa40fdac70a56070eda3880dac56d5376293b4dd63a769d88aeb071"
    ),
    "migrations/0.3.0/0013_metric_families.rollback.sql": (
        "9d39fe52cb02b5f9cce0875d9b0c21fefe17b31349fa1f96470669858ca9a230"
    ),
    "migrations/0.3.0/0013_metric_families.sql": (
        "20852dcf0e4818c51dc6ca2640a39d341a7986584d3a0e1c9c0c560f5f071a5d"
    ),
    "releases/0.3.0.sql": "ba247322e15e2bf7955e33a49f718a043e820c38e8201671190871bc34d42ea0",
}
RELEASES = sorted((SQL / "releases").glob("*.sql"), key=lambda r: migrations._release(r.stem))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_released_files_never_change() -> None:
    changed = [name for name, digest in RELEASED.items() if sha256(SQL / name) != digest]
    assert not changed, f"released files changed: {changed}: add a migration instead"


def released_migrations(release: Path) -> list[str]:
    found = re.search(r"^-- migrations: (.*)$", release.read_text(), re.MULTILINE)
    assert found, f"{release.name} does not list its migrations"
    return found[1].split()


# The releases from which an upgrade has migrations to run: where the tests of an
# upgrade's locks and load start (from the others, it applies definitions only).
WITH_MIGRATIONS_PENDING = [
    release
    for release in RELEASES
    if set(released_migrations(release)) < {m.id for m in migrations.Sources().migrations()}
]


def test_every_release_and_its_migrations_are_frozen() -> None:
    assert RELEASES, "no release in sql/releases"
    files = {path.stem: path for path in migrations.Sources().migration_files()}
    for release in RELEASES:
        assert f"releases/{release.name}" in RELEASED
        for migration in released_migrations(release):
            path = files[migration].relative_to(SQL)
            assert str(path) in RELEASED
            assert str(path.with_suffix(".rollback.sql")) in RELEASED


def test_each_release_directory_holds_the_migrations_its_release_added() -> None:
    """sql/migrations/<release>/ holds what that release added to the one before;
    the last directory may be the release under way, named after this version."""
    directories = migrations.Sources().release_directories
    frozen = {release.stem: release for release in RELEASES}
    so_far: list[str] = []
    for directory in directories:
        so_far += sorted(p.stem for p in directory.glob("*.sql") if ".rollback" not in p.name)
        if directory.name in frozen:
            assert sorted(released_migrations(frozen[directory.name])) == so_far, directory
        else:
            assert directory == directories[-1], f"{directory.name} is no release"
            assert (
                migrations._release(directory.name)[:-1]
                == migrations._release(migrations.version())[:-1]
            ), f"{directory.name}: the release under way is {migrations.version()}"
    assert [d.name for d in directories if d.name in frozen] == list(frozen)
    # Every migration file has its rollback beside it.
    for directory in directories:
        for path in directory.glob("*.sql"):
            if ".rollback" not in path.name:
                assert path.with_suffix(".rollback.sql").exists(), path


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
