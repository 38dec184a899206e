"""pystatus.heartbeat() and pystatus.record_heartbeat(): the write path, through SQL and Python."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pystatus
from tests.helpers import counts, one

Conn = psycopg.Connection[Any]


def history(db: Conn, service: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT tableoid::regclass::text, service_name, status, current_task, heartbeat_timestamp"
        " FROM system_status_history WHERE service_name = %s ORDER BY heartbeat_timestamp",
        (service,),
    ).fetchall()


def test_every_heartbeat_leaves_one_history_row_with_the_same_values(db: Conn) -> None:
    first = pystatus.heartbeat(db, "librarian")
    second = pystatus.heartbeat(db, "librarian", "degraded", "reindexing")

    current = db.execute(
        "SELECT status, current_task, last_heartbeat FROM system_status WHERE service_name = %s",
        ("librarian",),
    ).fetchone()
    assert current == ("degraded", "reindexing", second)
    rows = history(db, "librarian")
    assert [r[1:] for r in rows] == [
        ("librarian", "ok", None, first),
        ("librarian", "degraded", "reindexing", second),
    ]
    # Each row sits in the partition of its month, none in the default partition.
    for partition, *_, at in rows:
        assert partition == "system_status_history_p" + at.astimezone(timezone.utc).strftime(
            "%Y_%m"
        )
    assert one(db, "SELECT pystatus.history_default_rows()") == 0


def test_created_at_is_set_only_on_rows_written_after_their_time(db: Conn) -> None:
    pystatus.heartbeat(db, "librarian")
    pystatus.record_heartbeat(
        db, "librarian", "down", None, one(db, "SELECT now() - interval '2 hours'")
    )
    db.execute("UPDATE system_status SET last_heartbeat = now() - interval '10 minutes'")
    db.execute("SELECT pystatus.sweep()")
    rows = db.execute(
        "SELECT status, created_at IS NULL, created_at > heartbeat_timestamp"
        " FROM system_status_history WHERE service_name = 'librarian' ORDER BY heartbeat_timestamp"
    ).fetchall()
    assert rows == [
        ("down", False, True),  # backfilled two hours late
        ("ok", False, True),  # a direct write with a clock ten minutes behind
        ("stale", False, True),  # the sweeper's row, dated at the deadline
        ("ok", True, None),  # a heartbeat, written at its time
    ]


def test_heartbeat_through_sql_with_defaults_and_named_arguments(db: Conn) -> None:
    db.execute("SELECT pystatus.heartbeat('a')")
    db.execute("SELECT pystatus.heartbeat(service_name => 'b', current_task => 'x')")
    rows = db.execute("SELECT service_name, status, current_task FROM system_status ORDER BY 1")
    assert rows.fetchall() == [("a", "ok", None), ("b", "ok", "x")]


def test_the_dashboard_query_of_the_seed_still_works(db: Conn) -> None:
    pystatus.heartbeat(db, "librarian", "ok", "idle")
    row = db.execute("SELECT * FROM system_status WHERE service_name = %s", ("librarian",))
    assert row.fetchone()[:3] == ("librarian", "ok", "idle")  # type: ignore[index]


def test_heartbeat_time_is_the_server_clock_whatever_the_client_time_zone(db: Conn) -> None:
    db.execute("SET TimeZone = 'Pacific/Kiritimati'")  # UTC+14
    before = one(db, "SELECT clock_timestamp()")
    recorded = pystatus.heartbeat(db, "librarian")
    after = one(db, "SELECT clock_timestamp()")
    assert before <= recorded <= after
    stored = one(db, "SELECT last_heartbeat FROM system_status")
    assert stored == recorded


def test_a_rolled_back_heartbeat_leaves_neither_status_nor_history(db: Conn) -> None:
    db.autocommit = False
    pystatus.heartbeat(db, "librarian")
    db.rollback()
    db.autocommit = True
    assert counts(db) == (0, 0)


def test_if_the_history_write_fails_the_status_write_fails_with_it(db: Conn) -> None:
    pystatus.heartbeat(db, "librarian", "ok")
    # No partition at all for the current time: the history insert cannot land.
    for (partition,) in db.execute(
        "SELECT partition::text FROM pystatus.history_partitions"
        " WHERE is_default OR now() >= starts AND now() < ends"
    ).fetchall():
        db.execute(f"ALTER TABLE system_status_history DETACH PARTITION {partition}")
    with pytest.raises(pystatus.PystatusError, match="no partition"):
        pystatus.heartbeat(db, "librarian", "down")
    with pytest.raises(pystatus.PystatusError, match="no partition"):
        pystatus.heartbeat(db, "newcomer")
    assert one(db, "SELECT status FROM system_status WHERE service_name = 'librarian'") == "ok"
    assert counts(db)[0] == 1


BAD_NAMES = [
    ("", pystatus.InvalidServiceName, "must not be empty"),
    ("   ", pystatus.InvalidServiceName, "must not be blank"),
    ("x" * 65, pystatus.InvalidServiceName, "at most 64 characters"),
    ("tab\there", pystatus.InvalidServiceName, "control characters"),
    ("line\nbreak", pystatus.InvalidServiceName, "control characters"),
    (" padded", pystatus.InvalidServiceName, "white space"),
    ("nul\x00", pystatus.InvalidInput, "NUL"),
]
BAD_STATUSES = [
    ("OK", "must be one of ok, degraded"),
    ("running", "must be one of ok, degraded"),
    ("", "must be one of ok, degraded"),
    ("stale", "reserved for pystatus"),
]


@pytest.mark.parametrize(("name", "error", "message"), BAD_NAMES)
def test_bad_service_names_are_rejected_and_nothing_is_written(
    db: Conn, name: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        pystatus.heartbeat(db, name)
    assert counts(db) == (0, 0)


@pytest.mark.parametrize(("status", "message"), BAD_STATUSES)
def test_bad_statuses_are_rejected_and_nothing_is_written(
    db: Conn, status: str, message: str
) -> None:
    with pytest.raises(pystatus.InvalidStatus, match=message) as raised:
        pystatus.heartbeat(db, "librarian", status)
    assert repr(status) in str(raised.value) or status == "stale"
    assert counts(db) == (0, 0)


def test_oversized_task_is_rejected_and_nothing_is_written(db: Conn) -> None:
    pystatus.heartbeat(db, "librarian", "ok", "é" * 2048)  # 4096 bytes: the limit
    with pytest.raises(pystatus.InvalidTask, match="4097 bytes, the limit is 4096"):
        pystatus.heartbeat(db, "librarian", "ok", "é" * 2048 + "x")
    assert counts(db) == (1, 1)


@pytest.mark.parametrize(
    ("call", "sqlstate"),
    [
        ("SELECT pystatus.heartbeat('')", "PS001"),
        ("SELECT pystatus.heartbeat(NULL)", "PS001"),
        ("SELECT pystatus.heartbeat('a', 'nope')", "PS002"),
        ("SELECT pystatus.heartbeat('a', NULL)", "PS002"),
        ("SELECT pystatus.heartbeat('a', 'ok', repeat('x', 5000))", "PS003"),
        ("SELECT pystatus.record_heartbeat('a', 'ok', NULL, 'infinity')", "PS004"),
    ],
)
def test_each_rule_has_its_own_sqlstate_in_sql(db: Conn, call: str, sqlstate: str) -> None:
    with pytest.raises(psycopg.Error) as raised:
        db.execute(call)
    assert raised.value.sqlstate == sqlstate
    assert counts(db) == (0, 0)


def test_direct_writes_are_held_to_the_same_rules_by_constraints(db: Conn) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match="system_status_status_valid"):
        db.execute("INSERT INTO system_status VALUES ('a', 'bogus', NULL, now(), now())")
    with pytest.raises(psycopg.errors.CheckViolation, match="system_status_service_name_valid"):
        db.execute("INSERT INTO system_status VALUES (' a', 'ok', NULL, now(), now())")


def test_backfill_older_than_current_goes_to_history_only(db: Conn) -> None:
    now = pystatus.heartbeat(db, "librarian", "ok")
    earlier = now - timedelta(hours=3)
    assert pystatus.record_heartbeat(db, "librarian", "down", "crashed", earlier) is False
    current = db.execute("SELECT status, last_heartbeat FROM system_status").fetchone()
    assert current == ("ok", now)
    assert [(r[2], r[4]) for r in history(db, "librarian")] == [("down", earlier), ("ok", now)]


def test_backfill_newer_than_current_becomes_current(db: Conn) -> None:
    start = one(db, "SELECT now() - interval '2 hours'")
    assert pystatus.record_heartbeat(db, "importer", "ok", None, start) is True
    later = start + timedelta(minutes=30)
    assert pystatus.record_heartbeat(db, "importer", "degraded", "slow", later) is True
    current = db.execute("SELECT status, current_task, last_heartbeat FROM system_status")
    assert current.fetchone() == ("degraded", "slow", later)
    assert len(history(db, "importer")) == 2


def test_backfill_times_must_be_past_and_within_the_partitions(db: Conn) -> None:
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    with pytest.raises(pystatus.InvalidTime, match="in the future"):
        pystatus.record_heartbeat(db, "a", "ok", None, future)
    ancient = datetime(2001, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(pystatus.InvalidTime, match="older than the oldest history partition"):
        pystatus.record_heartbeat(db, "a", "ok", None, ancient)
    assert counts(db) == (0, 0)


def test_bad_input_error_names_the_value(db: Conn) -> None:
    with pytest.raises(pystatus.InvalidServiceName) as raised:
        pystatus.heartbeat(db, "x" * 100)
    message = str(raised.value)
    assert "'" + "x" * 80 + "'..." in message
    assert "it has 100" in message


def test_heartbeat_many_records_a_batch_with_history(db: Conn) -> None:
    beats = [
        ("a", "ok"),
        ("b", "down", "restarting"),
        ("c", "degraded", None, 12.5),
        ("a", "degraded"),
    ]
    assert pystatus.heartbeat_many(db, beats) == 3  # "a" twice: its last heartbeat wins
    rows = db.execute(
        "SELECT service_name, status, current_task, latency_ms FROM system_status ORDER BY 1"
    )
    assert rows.fetchall() == [
        ("a", "degraded", None, None),
        ("b", "down", "restarting", None),
        ("c", "degraded", None, 12.5),
    ]
    assert counts(db) == (3, 3)


def test_heartbeat_many_is_all_or_nothing_and_names_the_bad_element(db: Conn) -> None:
    with pytest.raises(pystatus.InvalidStatus, match="heartbeat 2 of 3: invalid status 'fine'"):
        pystatus.heartbeat_many(db, [("a", "ok"), ("b", "fine"), ("c", "ok")])
    with pytest.raises(psycopg.Error, match="2 service names but 1 statuses") as uneven:
        db.execute("SELECT pystatus.heartbeat_many(ARRAY['a', 'b'], ARRAY['ok'])")
    assert uneven.value.sqlstate == "PS005"
    assert counts(db) == (0, 0)
    assert pystatus.heartbeat_many(db, []) == 0


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.one_of(
        st.text(max_size=70),
        st.text(st.characters(blacklist_categories=["Cs"]), min_size=60, max_size=70),
        st.sampled_from(
            [
                *["a", " a", "a ", "\u00a0a", "a\u2028b", "\u3000", "x" * 64, "x" * 65],
                *["a\u200b", "\u202e", "a\u00a0b", "\ufeffa", "a\u2066b", "\u00ad", "a\u0085"],
            ]
        ),
        st.text(st.sampled_from("ab \u00a0\u200b\u200d\u202e\u2003\u3000\ufeff\u0085\t")),
    )
)
def test_the_fast_name_rule_agrees_with_the_explained_one(db: Conn, name: str) -> None:
    name = name.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    valid, problem = db.execute(
        "SELECT pystatus.is_valid_service_name(%s), pystatus.service_name_problem(%s)", (name, name)
    ).fetchone()  # type: ignore[misc]
    assert valid == (problem is None), (name, problem)
