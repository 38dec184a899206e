"""Backup and restore as docs/installing.md prints them: a database dumped with
pg_dump and restored into a cluster that lacks pystatus's roles (pg_dump keeps
grants, not roles) is found by `pystatus check` and repaired by `pystatus
migrate`; with the roles restored first (pg_dumpall --roles-only) nothing is
missing. History and allowances come back with the database."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import pystatus
from pystatus import admin, migrations
from pystatus.cluster import Cluster
from tests.helpers import one

ROLES = ("pystatus_writer", "pystatus_reader", "pystatus_alerter")


@pytest.fixture(scope="module")
def dumped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A database with pystatus, a writer login held to its services and history,
    dumped; and the roles."""
    folder = tmp_path_factory.mktemp("backup")
    with Cluster.temporary() as source:
        with psycopg.connect(source.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE app")
        migrations.apply(source.dsn("app"))
        with psycopg.connect(source.dsn("app"), autocommit=True) as conn:
            conn.execute("CREATE ROLE billing LOGIN IN ROLE pystatus_writer")
            admin.allow_service(conn, "billing", "billing*")
        with psycopg.connect(f"{source.dsn('app')} user=billing", autocommit=True) as billing:
            for status in ("ok", "down", "ok"):
                pystatus.heartbeat(billing, "billing", status)
        dump, roles = folder / "app.dump", folder / "roles.sql"
        subprocess.run(
            [source.bindir / "pg_dump", "--format=custom", f"--file={dump}", source.dsn("app")],
            check=True,
        )
        subprocess.run(
            [source.bindir / "pg_dumpall", "--roles-only", f"--file={roles}", "-d", source.dsn()],
            check=True,
        )
        yield dump, roles


def restore(cluster: Cluster, dump: Path) -> subprocess.CompletedProcess[str]:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE app")
    return subprocess.run(
        [cluster.bindir / "pg_restore", f"--dbname={cluster.dsn('app')}", dump],
        capture_output=True,
        text=True,
    )


def assert_held_to_its_services(dsn: str) -> None:
    """The allowance came back with the database, and holds: billing reports its
    own service and no other."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        allowed = [(a.login, a.service_pattern) for a in admin.service_logins(conn)]
    assert allowed == [("billing", "billing*")]
    with psycopg.connect(f"{dsn} user=billing", autocommit=True) as billing:
        pystatus.heartbeat(billing, "billing")
        with pytest.raises(pystatus.NotAllowed):
            pystatus.heartbeat(billing, "search")


def role_items(dsn: str) -> dict[str, bool]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {i.item: i.ok for i in admin.check(conn) if i.item.startswith("role ")}


def test_a_restore_without_the_roles_is_found_and_repaired_by_migrate(
    dumped: tuple[Path, Path],
) -> None:
    dump, _ = dumped
    with Cluster.temporary() as target:
        restored = restore(target, dump)
        # The grants to roles the cluster lacks are the only statements refused.
        errors = [line for line in restored.stderr.splitlines() if "ERROR" in line]
        assert errors and all('role "' in e and "does not exist" in e for e in errors), errors
        assert role_items(target.dsn("app")) == {f"role {r}": False for r in ROLES}
        done = migrations.apply(target.dsn("app"))
        assert done.definitions and not done.migrations
        assert role_items(target.dsn("app")) == {f"role {r}": True for r in ROLES}
        with psycopg.connect(target.dsn("app"), autocommit=True) as conn:
            assert one(conn, "SELECT count(*) FROM system_status_history") == 3
            conn.execute("CREATE ROLE billing LOGIN IN ROLE pystatus_writer")
        assert_held_to_its_services(target.dsn("app"))
        assert not migrations.apply(target.dsn("app"))  # and then nothing is left to do


def test_a_restore_after_the_roles_needs_nothing_more(dumped: tuple[Path, Path]) -> None:
    dump, roles = dumped
    with Cluster.temporary() as target:
        with psycopg.connect(target.dsn(), autocommit=True) as conn:
            # The dump recreates the cluster's superuser too: it exists already.
            conn.execute(
                "\n".join(
                    line
                    for line in roles.read_text().splitlines()
                    if "ROLE postgres" not in line and not line.startswith("\\")
                )
            )
        restored = restore(target, dump)
        assert restored.returncode == 0, restored.stderr
        assert role_items(target.dsn("app")) == {f"role {r}": True for r in ROLES}
        assert_held_to_its_services(target.dsn("app"))
        assert not migrations.apply(target.dsn("app"))
