"""The DBA's path with a non-superuser owner, from an empty cluster to pg_cron's
jobs running: `pystatus migrate --plan` says what a superuser must run first,
in this database and in pg_cron's, and after that the owner does the rest."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import cli, migrations
from pystatus.cluster import Cluster
from tests.helpers import wait_for

Conn = psycopg.Connection[Any]


@pytest.fixture(scope="module")
def bare_cluster() -> Iterator[Cluster]:
    """A cluster of its own: pystatus's roles do not exist yet (they are the cluster's)."""
    with Cluster.temporary() as running:
        with psycopg.connect(running.dsn(), autocommit=True) as admin:
            admin.execute("CREATE ROLE app_owner LOGIN")  # no SUPERUSER, no CREATEROLE
            admin.execute("CREATE ROLE app_service LOGIN")
            admin.execute("CREATE DATABASE app")
        yield running


def plan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, list[str]]]:
    """`pystatus migrate --plan`: its exit status, and the statements it asks a
    superuser to run, by database."""
    code = cli.main(["migrate", "--plan", *argv])
    out = capsys.readouterr().out
    statements: dict[str, list[str]] = {}
    database = None
    for line in out.splitlines():
        header = re.match(r"First, a superuser runs in database (\S+):", line)
        if header:
            database = header[1]
        elif not line.strip():
            database = None
        elif database and not line.strip().startswith("--"):
            statements.setdefault(database, []).append(line.strip())
    return code, statements


@pytest.mark.slow
def test_a_non_superuser_owner_installs_with_the_plan_and_the_jobs_run(
    bare_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = f"{bare_cluster.dsn('app')} user=app_owner"
    owner_in_cron = f"{bare_cluster.dsn('postgres')} user=app_owner"

    # Straight away: refused, with the way forward, nothing changed.
    with pytest.raises(pystatus.PystatusError, match="migrate --plan"):
        migrations.apply(owner)

    code, statements = plan(capsys, "--dsn", owner, "--cron-dsn", owner_in_cron)
    assert code == 1
    assert set(statements) == {"app", "postgres"}
    assert any("CREATE EXTENSION pg_partman" in s for s in statements["app"])
    assert any(
        "CREATE ROLE pystatus_writer NOLOGIN; GRANT pystatus_writer TO app_owner WITH ADMIN OPTION;"
        in s
        for s in statements["app"]
    )
    assert any("cron.schedule_in_database" in s for s in statements["postgres"])
    for database, lines in statements.items():
        with psycopg.connect(bare_cluster.dsn(database), autocommit=True) as superuser:
            for statement in lines:
                superuser.execute(statement)

    assert plan(capsys, "--dsn", owner, "--cron-dsn", owner_in_cron) == (0, {})
    assert cli.main(["migrate", "--dsn", owner]) == 0
    assert cli.main(["schedule", "--dsn", owner, "--cron-dsn", owner_in_cron]) == 0
    capsys.readouterr()

    # The owner grants the role, as the plan says it will; a service heartbeats;
    # pg_cron's jobs run, as the owner, and succeed.
    with psycopg.connect(owner, autocommit=True) as as_owner:
        as_owner.execute("GRANT pystatus_writer TO app_service")
    with psycopg.connect(f"{bare_cluster.dsn('app')} user=app_service", autocommit=True) as svc:
        pystatus.heartbeat(svc, "api")

    def ran(cron: Conn) -> set[str]:
        return {
            name
            for (name,) in cron.execute(
                "SELECT j.jobname FROM cron.job_run_details AS d JOIN cron.job AS j USING (jobid)"
                " WHERE d.status = 'succeeded' AND j.database = 'app'"
            )
        }

    with psycopg.connect(bare_cluster.dsn("postgres"), autocommit=True) as cron:
        wait_for(lambda: {"pystatus-sweep:app", "pystatus-rollups:app"} <= ran(cron), 150)
        assert not cron.execute(
            "SELECT d.return_message FROM cron.job_run_details AS d JOIN cron.job AS j"
            " USING (jobid) WHERE d.status = 'failed' AND j.database = 'app'"
        ).fetchall()

    # The owner's own check, reading the jobs where pg_cron lives: all green.
    code = cli.main(["check", "--dsn", owner, "--cron-dsn", owner_in_cron, "--format", "json"])
    assert code == 0, capsys.readouterr().out
    with psycopg.connect(owner, autocommit=True) as conn:
        assert conn.execute("SELECT pystatus.maintain()").fetchone() is not None


def test_a_second_database_shares_the_roles_and_its_owner_is_given_them_to_grant(
    bare_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """The roles are the cluster's: a second database's owner is told to get the
    right to grant them, not to create them. A writer of the first database
    reaches the second only if that database lets it connect."""
    with psycopg.connect(bare_cluster.dsn(), autocommit=True) as admin:
        for role in ("pystatus_writer", "pystatus_reader", "pystatus_alerter"):
            if admin.execute("SELECT to_regrole(%s)", [role]).fetchone() == (None,):
                admin.execute(f"CREATE ROLE {role} NOLOGIN")  # as the first database made them
        admin.execute("CREATE ROLE shop_owner LOGIN")
        admin.execute("CREATE ROLE shop_service LOGIN")
        admin.execute("CREATE DATABASE shop")
        admin.execute("REVOKE CONNECT ON DATABASE shop FROM PUBLIC")
        admin.execute("GRANT CONNECT ON DATABASE shop TO shop_owner, shop_service")
        admin.execute("CREATE ROLE other_service LOGIN IN ROLE pystatus_writer")
    owner = f"{bare_cluster.dsn('shop')} user=shop_owner"
    code, statements = plan(capsys, "--dsn", owner)
    assert code == 1
    roles = [s for s in statements["shop"] if "pystatus_" in s]
    assert roles == [
        f"GRANT {role} TO shop_owner WITH ADMIN OPTION;"
        for role in ("pystatus_writer", "pystatus_reader", "pystatus_alerter")
    ]
    with psycopg.connect(bare_cluster.dsn("shop"), autocommit=True) as superuser:
        for statement in statements["shop"]:
            superuser.execute(statement)
    assert cli.main(["migrate", "--dsn", owner]) == 0
    with psycopg.connect(owner, autocommit=True) as as_owner:
        as_owner.execute("GRANT pystatus_writer TO shop_service")
    with psycopg.connect(f"{bare_cluster.dsn('shop')} user=shop_service", autocommit=True) as svc:
        pystatus.heartbeat(svc, "cart")
    # A writer granted the role for another database cannot connect to this one.
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(f"{bare_cluster.dsn('shop')} user=other_service")


def test_uninstalling_removes_the_jobs_in_pg_crons_database_or_refuses(
    bare_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the first test's install: the owner cannot name pg_cron's database,
    so uninstalling refuses until given --cron-dsn, then removes the jobs there
    with pystatus, and pg_cron runs nothing of it any more."""
    owner = f"{bare_cluster.dsn('app')} user=app_owner"
    owner_in_cron = f"{bare_cluster.dsn('postgres')} user=app_owner"

    def jobs() -> list[str]:
        with psycopg.connect(bare_cluster.dsn("postgres"), autocommit=True) as cron:
            rows = cron.execute("SELECT jobname FROM cron.job WHERE database = 'app'")
            return [name for (name,) in rows]

    scheduled = jobs()
    assert scheduled
    assert cli.main(["rollback", "--all", "--yes", "--dsn", owner]) == 1
    assert "give --cron-dsn for pg_cron's database" in capsys.readouterr().err
    assert migrations.applied(owner) and jobs()  # nothing changed

    code = cli.main(["rollback", "--all", "--yes", "--dsn", owner, "--cron-dsn", owner_in_cron])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Removed {len(scheduled)} maintenance jobs from pg_cron in database postgres." in out
    assert jobs() == [] and migrations.applied(owner) == []
