"""Both pg_partman majors, for real: Debian's 4.7.2 and 5.1.0 (its SQL scripts in
../shared/vendor, installed beside 4.7.2 on the same server), and the upgrade a
DBA runs on a live installation: ALTER EXTENSION pg_partman UPDATE TO '5.1.0'
with heartbeats flowing."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import migrations
from pystatus.cluster import Cluster
from tests.helpers import (
    SEED_TABLE,
    empty_databases,
    heartbeats_flowing,
    make_maintenance_due,
    one,
)

Conn = psycopg.Connection[Any]
VENDOR = Path(__file__).resolve().parent.parent.parent / "shared" / "vendor" / "pg_partman-5.1.0"
VERSIONS = ["4.7.2", "5.1.0"]


@pytest.fixture(scope="module")
def partman_versions(cluster: Cluster) -> list[str]:
    """The pg_partman versions this server can install: 5.1.0's scripts are copied
    into its extension directory when ../shared/vendor has them."""
    scripts = sorted(VENDOR.glob("pg_partman--*.sql"))
    if not scripts:
        return ["4.7.2"]
    sharedir = subprocess.run(
        [str(cluster.bindir / "pg_config"), "--sharedir"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    extension = Path(sharedir) / "extension"
    try:
        for script in scripts:
            if not (extension / script.name).exists():
                shutil.copy(script, extension / script.name)
    except OSError as exc:  # not root: 5.1.0 cannot be installed on this server
        pytest.skip(f"pg_partman 5.1.0's scripts cannot be installed in {extension}: {exc}")
    return VERSIONS


@pytest.fixture(params=VERSIONS)
def partman_db(
    request: pytest.FixtureRequest, cluster: Cluster, partman_versions: list[str]
) -> Iterator[str]:
    """An empty database with pg_partman of the version asked for, created as a DBA
    would before migrating."""
    version = request.param
    if version not in partman_versions:
        pytest.skip(f"pg_partman {version}'s scripts are not in {VENDOR}")
    with empty_databases(cluster, "pystatus_partman") as (dsn,):
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute("CREATE SCHEMA partman")
            db.execute(f"CREATE EXTENSION pg_partman SCHEMA partman VERSION '{version}'")
        yield dsn


def healthy(db: Conn) -> dict[str, bool]:
    return {
        item: ok
        for item, ok, _ in db.execute("SELECT * FROM pystatus.check()")
        if item in ("pg_partman", "partitions ahead", "default partition", "retention")
    }


def test_install_maintain_and_retention(partman_db: str) -> None:
    migrations.apply(partman_db)
    with psycopg.connect(partman_db, autocommit=True) as db:
        version = one(db, "SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'")
        assert one(db, "SELECT count(*) FROM pystatus.history_partitions WHERE NOT is_default") >= 5
        assert healthy(db) == dict.fromkeys(healthy(db), True)
        pystatus.heartbeat(db, "api")
        make_maintenance_due(db)
        done = one(db, "SELECT pystatus.maintain()")
        assert done["dropped"] and done["created"], (version, done)
        assert one(db, "SELECT pystatus._maintenance_due()") == {}
        assert healthy(db) == dict.fromkeys(healthy(db), True)
        assert one(db, "SELECT count(*) FROM pystatus.live_status") == 1


def test_rows_in_the_default_partition_are_moved(partman_db: str) -> None:
    migrations.apply(partman_db)
    with psycopg.connect(partman_db, autocommit=True) as db:
        current = one(
            db,
            "SELECT partition::text FROM pystatus.history_partitions"
            " WHERE starts <= now() AND ends > now()",
        )
        db.execute(f"DROP TABLE {current}")
        pystatus.heartbeat(db, "orphan")
        assert one(db, "SELECT pystatus.history_default_rows()") == 1
        assert one(db, "SELECT pystatus.maintain()")["moved_from_default"] == 1
        assert one(db, "SELECT pystatus.history_default_rows()") == 0
        assert one(db, "SELECT count(*) FROM system_status_history") == 1


def test_maintenance_defers_while_history_is_in_use(partman_db: str) -> None:
    migrations.apply(partman_db)
    with psycopg.connect(partman_db, autocommit=True) as db:
        make_maintenance_due(db)
        with psycopg.connect(partman_db) as reader, heartbeats_flowing(partman_db) as failures:
            reader.execute("SELECT count(*) FROM system_status_history").fetchall()
            assert "deferred" in one(db, "SELECT pystatus.maintain()")
            reader.rollback()
        assert failures == []
        assert one(db, "SELECT pystatus.maintain()")["dropped"]


def test_adopting_a_seed_install(partman_db: str) -> None:
    with psycopg.connect(partman_db, autocommit=True) as db:
        db.execute(SEED_TABLE)
    migrations.apply(partman_db)
    with psycopg.connect(partman_db, autocommit=True) as db:
        assert one(db, "SELECT count(*) FROM system_status") == 2
        pystatus.heartbeat(db, "librarian")
        assert one(db, "SELECT count(*) FROM system_status_history") == 1


def test_the_dbas_upgrade_from_4_to_5_on_a_live_installation(
    cluster: Cluster, partman_versions: list[str]
) -> None:
    if "5.1.0" not in partman_versions:
        pytest.skip(f"pg_partman 5.1.0's scripts are not in {VENDOR}")
    with empty_databases(cluster, "pystatus_partman_upgrade") as (dsn,):
        migrations.apply(dsn)  # pg_partman 4.7.2, Debian's, created by the migration
        with psycopg.connect(dsn, autocommit=True) as db:
            before = db.execute(
                "SELECT partition::text FROM pystatus.history_partitions ORDER BY 1"
            ).fetchall()
            with heartbeats_flowing(dsn) as failures:
                db.execute("ALTER EXTENSION pg_partman UPDATE TO '5.1.0'")
                assert one(
                    db, "SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'"
                ) == ("5.1.0")
                make_maintenance_due(db)
                done = one(db, "SELECT pystatus.maintain()")
            assert failures == []
            assert done["dropped"] and done["created"]
            # Partitions made under 4.x keep their names; maintenance goes on from them.
            after = {
                p for (p,) in db.execute("SELECT partition::text FROM pystatus.history_partitions")
            }
            assert {p for (p,) in before} - set(done["dropped"]) <= after
            assert one(db, "SELECT pystatus._maintenance_due()") == {}
            assert (
                one(db, "SELECT count(*) FROM pystatus.uptime(NULL, now() - interval '1 day')")
                >= 10
            )
            assert all(
                ok
                for item, ok, _ in db.execute("SELECT * FROM pystatus.check()")
                if item in ("pg_partman", "partitions ahead", "default partition", "retention")
            )
