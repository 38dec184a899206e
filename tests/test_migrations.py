"""Migrations: up, down, up again; re-running; adopting a seed install; schema drift."""

from __future__ import annotations

import difflib
from datetime import datetime, timezone

import psycopg
import pytest

import pystatus
from pystatus import migrations
from pystatus.cluster import Cluster
from tests.helpers import one
from tests.schema_snapshot import SNAPSHOT, dump_schema

ALL = [
    "0001_foundation",
    "0002_history_answers",
    "0003_dashboard",
    "0004_heartbeat_many",
    "0005_check",
    "0006_roles",
]

# The seed's table, as a seed install has it.
SEED_TABLE = """
CREATE TABLE system_status (
    service_name VARCHAR(64) PRIMARY KEY,
    status VARCHAR(16) NOT NULL,
    current_task TEXT,
    last_heartbeat TIMESTAMP NOT NULL,
    updated_at TIMESTAMP DEFAULT NOW()
);
INSERT INTO system_status VALUES
    ('librarian', 'ok', 'indexing', '2026-11-29 10:00:00', '2026-11-29 10:00:01'),
    ('scheduler', 'down', NULL, '2026-11-28 23:30:00', NULL);
"""


def assert_same_schema(actual: str, expected: str) -> None:
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(True), actual.splitlines(True), "sql/schema.sql", "migrated"
        )
    )
    assert not diff, f"the migrated schema differs from sql/schema.sql (run `make schema`):\n{diff}"


def test_migrated_schema_matches_the_committed_snapshot(dsn: str, cluster: Cluster) -> None:
    assert_same_schema(dump_schema(dsn, cluster.bindir), SNAPSHOT.read_text())


def test_up_down_up_again_and_rerunning_is_a_no_op(empty_dsn: str, cluster: Cluster) -> None:
    assert migrations.apply(empty_dsn) == ALL
    assert migrations.apply(empty_dsn) == []
    assert migrations.pending(empty_dsn) == []

    assert migrations.rollback(empty_dsn, count=None) == list(reversed(ALL))
    with psycopg.connect(empty_dsn) as db:
        assert one(db, "SELECT to_regnamespace('pystatus')") is None
        assert one(db, "SELECT to_regclass('public.system_status_history')") is None
        assert one(db, "SELECT count(*) FROM partman.part_config") == 0

    assert migrations.apply(empty_dsn) == ALL
    assert_same_schema(dump_schema(empty_dsn, cluster.bindir), SNAPSHOT.read_text())
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        pystatus.heartbeat(db, "librarian")
        assert one(db, "SELECT count(*) FROM system_status_history") == 1


def test_rolling_back_one_step_at_a_time(empty_dsn: str) -> None:
    migrations.apply(empty_dsn)
    for expected in reversed(ALL):
        assert migrations.rollback(empty_dsn) == [expected]
    assert migrations.rollback(empty_dsn) == []
    assert migrations.pending(empty_dsn) == ALL


def seed_install(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(SEED_TABLE)


def test_adopting_a_seed_install_keeps_every_row_and_reads_times_in_the_given_zone(
    empty_dsn: str,
) -> None:
    seed_install(empty_dsn)
    migrations.apply(empty_dsn, {"legacy_time_zone": "Europe/Berlin"})
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        # The dashboard's query, unchanged, with the default search_path.
        row = db.execute("SELECT * FROM system_status WHERE service_name = %s", ("librarian",))
        assert row.fetchone() == (
            "librarian",
            "ok",
            "indexing",
            datetime(2026, 11, 29, 9, 0, 0, tzinfo=timezone.utc),  # 10:00 in Berlin (UTC+1)
            datetime(2026, 11, 29, 9, 0, 1, tzinfo=timezone.utc),
            None,  # latency_ms, the one column pystatus adds
        )
        # A missing updated_at takes the row's last heartbeat.
        scheduler = db.execute(
            "SELECT last_heartbeat, updated_at FROM system_status WHERE service_name = 'scheduler'"
        ).fetchone()
        assert scheduler == (datetime(2026, 11, 28, 22, 30, tzinfo=timezone.utc),) * 2
        assert one(db, "SELECT count(*) FROM system_status") == 2

        pystatus.heartbeat(db, "librarian", "degraded")
        assert one(db, "SELECT count(*) FROM system_status_history") == 1
        assert one(db, "SELECT reloptions FROM pg_class WHERE oid = 'system_status'::regclass") == [
            "fillfactor=50"
        ]


def test_adopting_reads_naive_times_as_utc_by_default(empty_dsn: str) -> None:
    seed_install(empty_dsn)
    migrations.apply(empty_dsn)
    with psycopg.connect(empty_dsn) as db:
        assert one(
            db, "SELECT last_heartbeat FROM system_status WHERE service_name = 'librarian'"
        ) == (datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc))


def test_rollback_returns_an_adopted_table_to_the_seed_shape_with_its_rows(empty_dsn: str) -> None:
    seed_install(empty_dsn)
    migrations.apply(empty_dsn, {"legacy_time_zone": "Europe/Berlin"})
    migrations.rollback(empty_dsn, count=None, settings={"legacy_time_zone": "Europe/Berlin"})
    with psycopg.connect(empty_dsn) as db:
        assert db.execute("SELECT * FROM system_status ORDER BY 1").fetchall() == [
            (
                "librarian",
                "ok",
                "indexing",
                datetime(2026, 11, 29, 10, 0),
                datetime(2026, 11, 29, 10, 0, 1),
            ),
            (
                "scheduler",
                "down",
                None,
                datetime(2026, 11, 28, 23, 30),
                datetime(2026, 11, 28, 23, 30),
            ),
        ]


def test_adoption_refuses_statuses_outside_the_vocabulary_and_changes_nothing(
    empty_dsn: str,
) -> None:
    seed_install(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        db.execute("UPDATE system_status SET status = 'running' WHERE service_name = 'librarian'")
    with pytest.raises(
        pystatus.PystatusError, match=r"outside the pystatus vocabulary: 'running' \(1 rows\)"
    ):
        migrations.apply(empty_dsn)
    with psycopg.connect(empty_dsn) as db:
        assert one(db, "SELECT to_regnamespace('pystatus')") is None
        column_type = one(
            db,
            "SELECT format_type(atttypid, NULL) FROM pg_attribute"
            " WHERE attrelid = 'system_status'::regclass AND attname = 'last_heartbeat'",
        )
        assert column_type == "timestamp without time zone"
        assert one(db, "SELECT count(*) FROM system_status") == 2


def test_an_unknown_legacy_time_zone_is_named_in_the_error(empty_dsn: str) -> None:
    seed_install(empty_dsn)
    with pytest.raises(pystatus.PystatusError, match="Mars/Olympus"):
        migrations.apply(empty_dsn, {"legacy_time_zone": "Mars/Olympus"})


def test_bad_partition_settings_are_refused(empty_dsn: str) -> None:
    with pytest.raises(pystatus.InvalidSetting, match="must be 1 day, 1 week or 1 month"):
        migrations.apply(empty_dsn, {"partition_interval": "5 minutes"})
    with pytest.raises(pystatus.InvalidSetting, match="retention"):
        migrations.apply(empty_dsn, {"retention": "-3 days"})
    with psycopg.connect(empty_dsn) as db:
        assert one(db, "SELECT to_regnamespace('pystatus')") is None
