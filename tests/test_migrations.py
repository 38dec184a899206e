"""Migrations: up, down, up again; re-running; all or nothing; adopting a seed
install; schema drift. Releases and upgrades: tests/test_releases.py."""

from __future__ import annotations

import difflib
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import answers, cli, migrations
from pystatus.cluster import Cluster
from tests.catalog import describe
from tests.helpers import MIGRATION_ORDER, SEED_TABLE, one
from tests.schema_snapshot import SNAPSHOT, dump_schema

ALL = MIGRATION_ORDER


def migrations_from(first: str) -> list[str]:
    """The migrations from ``first`` on, oldest first."""
    return ALL[ALL.index(first) :]


def assert_same_schema(actual: str, expected: str) -> None:
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(True), actual.splitlines(True), "sql/installed.sql", "migrated"
        )
    )
    assert not diff, (
        f"the migrated schema differs from sql/installed.sql (run `make schema`):\n{diff}"
    )


def test_migrated_schema_matches_the_committed_snapshot(dsn: str, cluster: Cluster) -> None:
    assert_same_schema(dump_schema(dsn, cluster.bindir), SNAPSHOT.read_text())


def test_up_down_up_again_and_rerunning_is_a_no_op(empty_dsn: str, cluster: Cluster) -> None:
    assert migrations.apply(empty_dsn) == migrations.Migrated(ALL, definitions=True)
    assert not migrations.apply(empty_dsn)  # nothing changed: a true no-op
    assert migrations.pending(empty_dsn) == []

    assert migrations.rollback(empty_dsn, count=None) == list(reversed(ALL))
    with psycopg.connect(empty_dsn) as db:
        assert one(db, "SELECT to_regnamespace('pystatus')") is None
        assert one(db, "SELECT to_regclass('public.system_status_history')") is None
        assert one(db, "SELECT count(*) FROM partman.part_config") == 0

    assert migrations.apply(empty_dsn).migrations == ALL
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


# --- All or nothing -----------------------------------------------------------


def copy_sources(tmp_path: Path) -> migrations.Sources:
    """A copy of this version's SQL, to change without touching the package."""
    root = tmp_path / "sql"
    shutil.copytree(migrations.Sources().root, root)
    return migrations.Sources(root)


def fail_last_step(sources: migrations.Sources) -> Path:
    """Injects a failure at the very end of the last step, the roles."""
    last = sources.schema_files[-1]
    with last.open("a") as script:
        script.write(
            "\nDO $$ BEGIN RAISE EXCEPTION 'injected failure' USING ERRCODE = 'PS010'; END $$;\n"
        )
    return last


def installation(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn) as db:
        described = describe(db)
        described["yoyo"] = db.execute(
            "SELECT migration_id FROM _yoyo_migration ORDER BY 1"
        ).fetchall()
        described["rows"] = [
            (
                one(db, "SELECT count(*) FROM public.system_status"),
                one(db, "SELECT to_regclass('public.system_status_history')"),
            )
        ]
        return described


def test_a_failure_in_the_last_step_of_a_fresh_install_leaves_the_database_as_it_was(
    empty_dsn: str, tmp_path: Path
) -> None:
    seed_install(empty_dsn)
    sources = copy_sources(tmp_path)
    last = fail_last_step(sources)
    with pytest.raises(pystatus.NotInstalled) as failed:
        migrations.apply(empty_dsn, sources=sources)
    message = str(failed.value)
    assert f"stopped at sql/schema/{last.name}" in message
    assert "changed nothing" in message and "injected failure" in message
    with psycopg.connect(empty_dsn) as db:
        assert one(db, "SELECT to_regnamespace('pystatus')") is None
        assert one(db, "SELECT to_regclass('public.system_status_history')") is None
        assert one(db, "SELECT count(*) FROM _yoyo_migration") == 0
        assert one(db, "SELECT count(*) FROM system_status") == 2
        column_type = one(
            db,
            "SELECT format_type(atttypid, NULL) FROM pg_attribute"
            " WHERE attrelid = 'system_status'::regclass AND attname = 'last_heartbeat'",
        )
        assert column_type == "timestamp without time zone"  # not adopted either
    # Once the cause is gone, the same command installs everything.
    assert migrations.apply(empty_dsn).migrations == ALL


def test_a_failure_in_the_last_step_of_an_upgrade_leaves_the_database_as_it_was(
    empty_dsn: str, tmp_path: Path
) -> None:
    migrations.apply(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        pystatus.heartbeat(db, "librarian")
    before = installation(empty_dsn)
    # The next version: a new migration, a changed function, and a failing last step.
    sources = copy_sources(tmp_path)
    (sources.release_directories[-1] / "0004_next.sql").write_text(
        "-- depends: 0003_alerts\nALTER TABLE pystatus.service_expectations ADD COLUMN note text;\n"
    )
    answers = sources.root / "schema" / "50_answers.sql"
    answers.write_text(answers.read_text().replace("stale once the service", "stale when it"))
    fail_last_step(sources)
    with pytest.raises(pystatus.NotInstalled, match="changed nothing"):
        migrations.apply(empty_dsn, sources=sources)
    assert installation(empty_dsn) == before


def test_definitions_are_applied_again_only_when_they_change(
    empty_dsn: str, tmp_path: Path
) -> None:
    migrations.apply(empty_dsn)
    sources = copy_sources(tmp_path)
    assert not migrations.apply(empty_dsn, sources=sources)  # the same files: nothing to do
    check = sources.root / "schema" / "80_check.sql"
    check.write_text(check.read_text().replace("The installation''s health", "Health"))
    assert migrations.apply(empty_dsn, sources=sources) == migrations.Migrated([], True)
    with psycopg.connect(empty_dsn) as db:
        comment = one(db, "SELECT obj_description('pystatus.check()'::regprocedure)")
        assert comment.startswith("Health: pg_partman")
        assert one(db, "SELECT count(*) FROM pystatus.definitions_applied") == 2
    assert not migrations.apply(empty_dsn, sources=sources)
    # Back to this version's files: applied again, and equal to a fresh install.
    assert migrations.apply(empty_dsn).definitions


def test_two_migrations_at_once_apply_once(empty_dsn: str) -> None:
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: migrations.apply(empty_dsn), range(2)))
    assert sorted(r.migrations for r in results) == [[], ALL]
    with psycopg.connect(empty_dsn) as db:
        assert one(db, "SELECT count(*) FROM pystatus.definitions_applied") == 1


def test_a_database_migrated_by_another_version_is_refused(empty_dsn: str) -> None:
    migrations.apply(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        db.execute(
            "INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc)"
            " VALUES ('x', '0099_from_the_future', now())"
        )
    for command in (migrations.apply, migrations.rollback):
        with pytest.raises(pystatus.PystatusError, match="does not know: 0099_from_the_future"):
            command(empty_dsn)


PARTITION_INDEXES = """
    SELECT count(*) FILTER (WHERE EXISTS (
               SELECT FROM (VALUES ('system_status_history_service_hour'::regclass),
                                   ('system_status_history_time'::regclass)) AS parent(index)
               WHERE NOT EXISTS (
                   SELECT FROM pg_inherits AS ip JOIN pg_index AS x ON x.indexrelid = ip.inhrelid
                   WHERE ip.inhparent = parent.index AND x.indrelid = p.inhrelid))),
           count(*)
    FROM pg_inherits AS p WHERE p.inhparent = 'system_status_history'::regclass
"""


def test_rollups_made_before_spans_were_kept_are_marked_so(empty_dsn: str) -> None:
    """Upgrading to 0006: hours already rolled up have no spans, and answers read
    raw history for them (spans_from); with nothing rolled up yet, every hour has spans."""
    state = (
        "SELECT spans_from = rolled_until, spans_from = '-infinity', current_from = rolled_until"
        " FROM pystatus.rollup_state"
    )
    migrations.apply(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        assert db.execute(state).fetchone() == (False, True, True)  # a fresh install
    for rolled_up in (True, False):
        assert (
            migrations.rollback(empty_dsn, count=len(migrations_from("0006_rollup_spans")))
            == migrations_from("0006_rollup_spans")[::-1]
        )
        with psycopg.connect(empty_dsn, autocommit=True) as db:
            db.execute("TRUNCATE pystatus.rollup_hourly")
            if rolled_up:
                db.execute(
                    "INSERT INTO pystatus.rollup_hourly"
                    " SELECT 'librarian', rolled_until - interval '1 hour', 3600000000, 0, 0, 60, 0"
                    " FROM pystatus.rollup_state"
                )
        assert migrations.apply(empty_dsn).migrations == migrations_from("0006_rollup_spans")
        with psycopg.connect(empty_dsn, autocommit=True) as db:
            assert db.execute(state).fetchone() == (rolled_up, not rolled_up, True)


def test_the_current_hour_is_rolled_up_again_with_its_spans_after_0007(empty_dsn: str) -> None:
    """Upgrading to 0007: the current hour's rollup, kept without spans, is
    started afresh, and the next refresh rolls it up again with them."""
    migrations.apply(empty_dsn)
    assert (
        migrations.rollback(empty_dsn, count=len(migrations_from("0007_current_hour_spans")))
        == migrations_from("0007_current_hour_spans")[::-1]
    )
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        # An hour half lived: rolled up so far as 0006 did (times only).
        db.execute(
            "UPDATE pystatus.rollup_state SET rolled_until = date_trunc('hour', now()),"
            " current_from = date_trunc('hour', now()), current_until = now()"
        )
        db.execute("INSERT INTO pystatus.rollup_current VALUES ('librarian', 0, 60000000, 0)")
    assert migrations.apply(empty_dsn).migrations == migrations_from("0007_current_hour_spans")
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        assert one(db, "SELECT count(*) FROM pystatus.rollup_current") == 0
        assert one(
            db,
            "SELECT current_from = rolled_until AND current_until = rolled_until"
            " FROM pystatus.rollup_state",
        )


def test_compacting_a_history_with_rows_builds_its_index_after_the_transaction(
    empty_dsn: str, cluster: Cluster
) -> None:
    migrations.apply(empty_dsn)
    assert (
        migrations.rollback(empty_dsn, count=len(migrations_from("0005_compact_history")))
        == migrations_from("0005_compact_history")[::-1]
    )
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        for status in ("ok", "down", "ok"):
            pystatus.heartbeat(db, "librarian", status)
        assert one(db, "SELECT count(*) FROM system_status_history WHERE id IS NOT NULL") == 3

    done = migrations.apply(empty_dsn)

    # The partition with rows was indexed concurrently, after the migration.
    assert done.migrations == migrations_from("0005_compact_history")
    assert len(done.indexed) == 1 and "system_status_history_p" in done.indexed[0]
    assert "the indexes of history on 1 partition(s)" in str(done)
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        unindexed, partitions = db.execute(PARTITION_INDEXES).fetchone()
        assert (unindexed, partitions > 1) == (0, True)
        assert one(db, "SELECT to_regclass('system_status_history_service_time')") is None
        assert one(
            db,
            "SELECT indisvalid FROM pg_index"
            " WHERE indexrelid = 'system_status_history_service_hour'::regclass",
        )
        # Rows kept, answers read through the new index.
        since = one(db, "SELECT now() - interval '1 hour'")
        assert [t.to_status for t in answers.transitions(db, "librarian", since)] == [
            "ok",
            "down",
            "ok",
        ]
    assert_same_schema(dump_schema(empty_dsn, cluster.bindir), SNAPSHOT.read_text())
    assert not migrations.apply(empty_dsn)  # nothing left to build


def test_indexing_a_history_with_rows_by_time_builds_the_index_after_the_transaction(
    empty_dsn: str, cluster: Cluster
) -> None:
    """Upgrading to 0008 on a live history: the partition with rows gets its
    time index concurrently, after the migration, and its statistics (the
    planner's estimate of the fleet's last minutes); every partition made later
    has it from the start; and a fleet's answers read the same rows through it."""
    migrations.apply(empty_dsn)
    # The rows are written first: between a rollback and the older version's
    # own migrate, the definitions left are this version's.
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        for service, status in [("librarian", "ok"), ("reader", "down"), ("librarian", "down")]:
            pystatus.heartbeat(db, service, status)
    assert (
        migrations.rollback(empty_dsn, count=len(migrations_from("0008_history_time_index")))
        == migrations_from("0008_history_time_index")[::-1]
    )
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        assert one(db, "SELECT to_regclass('system_status_history_time')") is None

    done = migrations.apply(empty_dsn)

    assert done.migrations == migrations_from("0008_history_time_index")
    assert len(done.indexed) == 1 and "system_status_history_p" in done.indexed[0]
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        unindexed, partitions = db.execute(PARTITION_INDEXES).fetchone()
        assert (unindexed, partitions > 1) == (0, True)
        assert one(
            db,
            "SELECT indisvalid FROM pg_index"
            " WHERE indexrelid = 'system_status_history_time'::regclass",
        )
        assert (
            one(
                db,
                "SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = %s",
                [done.indexed[0].split(".")[1][:50] + "_time"],
            )
            == 1
        )
        db.execute("SELECT pystatus.create_history_partitions(now(), now() + interval '200 days')")
        unindexed, more = db.execute(PARTITION_INDEXES).fetchone()
        assert (unindexed, more > partitions) == (0, True)
        since = one(db, "SELECT now() - interval '1 hour'")
        fleet = db.execute(
            "SELECT service, status"
            " FROM pystatus._segments(NULL, tstzmultirange(tstzrange(%s, now())))"
            " ORDER BY service, starts",
            [since],
        ).fetchall()
        assert fleet == [("librarian", "ok"), ("librarian", "down"), ("reader", "down")]
    assert_same_schema(dump_schema(empty_dsn, cluster.bindir), SNAPSHOT.read_text())
    assert not migrations.apply(empty_dsn)  # nothing left to build


def test_upgrading_to_running_totals_computes_them_for_the_rollups_kept(empty_dsn: str) -> None:
    """0009: each kept hourly rollup gets what its service's earlier hours add
    up to, and uptime over them reads the same as before the upgrade."""
    migrations.apply(empty_dsn)
    assert (
        migrations.rollback(empty_dsn, count=len(migrations_from("0009_rollup_running_totals")))
        == migrations_from("0009_rollup_running_totals")[::-1]
    )
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        # Three hours of librarian (up, up then down, down) and one of reader.
        db.execute(
            "INSERT INTO pystatus.rollup_hourly"
            " (service_name, bucket, up_us, down_us, maintenance_us, heartbeats, latency_count)"
            " SELECT s, date_trunc('hour', now()) - h * interval '1 hour', up, down, m, 60, 0"
            " FROM (VALUES ('librarian', 4, 3600000000, 0, 0),"
            "              ('librarian', 3, 1000, 3599999000, 0),"
            "              ('librarian', 2, 0, 3000000000, 600000000),"
            "              ('reader', 3, 5, 7, 11)) AS v(s, h, up, down, m)"
        )
    assert migrations.apply(empty_dsn).migrations == migrations_from("0009_rollup_running_totals")
    with psycopg.connect(empty_dsn, autocommit=True) as db:
        totals = db.execute(
            "SELECT service_name, up_us_before, down_us_before, maintenance_us_before"
            " FROM pystatus.rollup_hourly ORDER BY service_name, bucket"
        ).fetchall()
        assert totals == [
            ("librarian", 0, 0, 0),
            ("librarian", 3600000000, 0, 0),
            ("librarian", 3600001000, 3599999000, 0),
            ("reader", 0, 0, 0),
        ]


def test_adoption_is_announced_by_the_plan_and_by_migrate(
    empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_install(empty_dsn)
    said = (
        "An existing public.system_status with 2 rows is adopted: its rows are kept, and none is"
        " copied into history (each service's history starts with its next write); its"
        " TIMESTAMP columns last_heartbeat, updated_at become timestamptz, the values read as"
        " times in {zone}."
    )
    cli.main(["migrate", "--plan", "--dsn", empty_dsn])
    assert (
        "Note: " + said.format(zone="UTC (--legacy-time-zone to say another zone)")
        in capsys.readouterr().out
    )
    assert cli.main(["migrate", "--dsn", empty_dsn, "--legacy-time-zone", "Asia/Tokyo"]) == 0
    assert "  " + said.format(zone="Asia/Tokyo") in capsys.readouterr().out
    # Once installed, nothing more is said of it.
    assert cli.main(["migrate", "--dsn", empty_dsn]) == 0
    assert "adopted" not in capsys.readouterr().out
