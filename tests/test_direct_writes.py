"""Services that write system_status directly, as before pystatus, with the table
rights they always had: held to the same rules as the API. Each refusal has its
SQLSTATE, names the value, and writes nothing; what is accepted keeps history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

import pystatus
from tests.helpers import counts, one

Conn = psycopg.Connection[Any]

NAME_RULE = "23514"  # check_violation: system_status_service_name_valid
STATUS_RULE = "23514"
NOT_NULL = "23502"
FINITE_RULE = "23514"  # check_violation: system_status_last_heartbeat_finite

# (what, SQL run by the legacy writer, the SQLSTATE it must fail with, or None when accepted)
CASES: list[tuple[str, str, str | None]] = [
    # Times: within 1 day behind and 5 minutes ahead of the server's clock.
    ("now", "INSERT INTO system_status VALUES ('svc', 'ok', NULL, now())", None),
    (
        "clock 3 min fast",
        "INSERT INTO system_status VALUES ('svc', 'ok', NULL, now() + interval '3 minutes')",
        None,
    ),
    (
        "clock 10 min slow",
        "INSERT INTO system_status VALUES ('svc', 'ok', NULL, now() - interval '10 minutes')",
        None,
    ),
    (
        "clock 20 h slow",
        "INSERT INTO system_status VALUES ('svc', 'ok', NULL, now() - interval '20 hours')",
        None,
    ),
    (
        "clock 10 min fast",
        "INSERT INTO system_status VALUES ('svc', 'ok', NULL, now() + interval '10 minutes')",
        "PS004",
    ),
    (
        "a year ahead",
        "INSERT INTO system_status VALUES ('svc', 'ok', NULL, now() + interval '1 year')",
        "PS004",
    ),
    (
        "decades ahead",
        "INSERT INTO system_status VALUES ('svc', 'ok', NULL, '2099-01-01')",
        "PS004",
    ),
    ("infinity", "INSERT INTO system_status VALUES ('svc', 'ok', NULL, 'infinity')", FINITE_RULE),
    ("-infinity", "INSERT INTO system_status VALUES ('svc', 'ok', NULL, '-infinity')", FINITE_RULE),
    (
        "two days behind",
        "INSERT INTO system_status VALUES ('svc', 'ok', NULL, now() - interval '2 days')",
        "PS004",
    ),
    ("epoch", "INSERT INTO system_status VALUES ('svc', 'ok', NULL, 'epoch')", "PS004"),
    ("year 1", "INSERT INTO system_status VALUES ('svc', 'ok', NULL, '0001-01-01')", "PS004"),
    ("no time", "INSERT INTO system_status VALUES ('svc', 'ok', NULL, NULL)", NOT_NULL),
    (
        "update to infinity",
        "UPDATE system_status SET last_heartbeat = 'infinity' WHERE service_name = 'seeded'",
        FINITE_RULE,
    ),
    (
        "update a day back",
        "UPDATE system_status SET last_heartbeat = now() - interval '25 hours' WHERE service_name = 'seeded'",
        "PS004",
    ),
    # Statuses: the vocabulary, and stale only by pystatus.
    ("stale", "INSERT INTO system_status VALUES ('svc', 'stale', NULL, now())", "PS002"),
    (
        "update to stale, same time",
        "UPDATE system_status SET status = 'stale' WHERE service_name = 'seeded'",
        "PS002",
    ),
    (
        "update to stale, new time",
        "UPDATE system_status SET status = 'stale', last_heartbeat = now() WHERE service_name = 'seeded'",
        "PS002",
    ),
    (
        "upsert to stale",
        "INSERT INTO system_status VALUES ('seeded', 'stale', NULL, now()) ON CONFLICT (service_name) DO UPDATE SET status = EXCLUDED.status",
        "PS002",
    ),
    (
        "unknown status",
        "INSERT INTO system_status VALUES ('svc', 'running', NULL, now())",
        STATUS_RULE,
    ),
    ("upper case", "INSERT INTO system_status VALUES ('svc', 'OK', NULL, now())", STATUS_RULE),
    ("no status", "INSERT INTO system_status VALUES ('svc', NULL, NULL, now())", NOT_NULL),
    # Names: invisible, direction-changing and confusable characters.
    (
        "zero-width space",
        "INSERT INTO system_status VALUES (E'api\\u200b', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "zero-width joiner",
        "INSERT INTO system_status VALUES (E'a\\u200dpi', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "right-to-left override",
        "INSERT INTO system_status VALUES (E'\\u202eipa', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "bidi isolate",
        "INSERT INTO system_status VALUES (E'api\\u2066', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "left-to-right mark",
        "INSERT INTO system_status VALUES (E'api\\u200e', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "byte-order mark",
        "INSERT INTO system_status VALUES (E'\\ufeffapi', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "soft hyphen",
        "INSERT INTO system_status VALUES (E'a\\u00adpi', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "word joiner",
        "INSERT INTO system_status VALUES (E'a\\u2060pi', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "hangul filler",
        "INSERT INTO system_status VALUES (E'api\\u3164', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "no-break space at the end",
        "INSERT INTO system_status VALUES (E'api\\u00a0', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "no-break space first",
        "INSERT INTO system_status VALUES (E'\\u00a0api', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "em space at the end",
        "INSERT INTO system_status VALUES (E'api\\u2003', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "ideographic space first",
        "INSERT INTO system_status VALUES (E'\\u3000api', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "narrow no-break space at the end",
        "INSERT INTO system_status VALUES (E'api\\u202f', 'ok', NULL, now())",
        NAME_RULE,
    ),
    (
        "no-break space inside",
        "INSERT INTO system_status VALUES (E'my\\u00a0api', 'ok', NULL, now())",
        None,
    ),
    (
        "rename to an invisible twin",
        "UPDATE system_status SET service_name = E'seeded\\u200b' WHERE service_name = 'seeded'",
        NAME_RULE,
    ),
    (
        "control character",
        "INSERT INTO system_status VALUES (E'api\\u0085x', 'ok', NULL, now())",
        NAME_RULE,
    ),
    # Other columns.
    (
        "NaN latency",
        "INSERT INTO system_status (service_name, status, last_heartbeat, latency_ms) VALUES ('svc', 'ok', now(), 'NaN')",
        "23514",
    ),
    (
        "huge task",
        "INSERT INTO system_status VALUES ('svc', 'ok', repeat('x', 5000), now())",
        "23514",
    ),
    # One bad row refuses the whole statement.
    (
        "a batch with one bad row",
        "INSERT INTO system_status VALUES ('svc-1', 'ok', NULL, now()), ('svc-2', 'ok', NULL, 'infinity')",
        FINITE_RULE,
    ),
    (
        "a batch with one row a year ahead",
        "INSERT INTO system_status VALUES ('svc-1', 'ok', NULL, now()), ('svc-2', 'ok', NULL, now() + interval '1 year')",
        "PS004",
    ),
]


@pytest.fixture
def legacy(db: Conn, dsn: str) -> Iterator[Conn]:
    """A service's login with the rights it had before pystatus: SELECT, INSERT and
    UPDATE on system_status, nothing else."""
    db.execute("CREATE ROLE legacy_service LOGIN")
    db.execute("GRANT SELECT, INSERT, UPDATE ON public.system_status TO legacy_service")
    pystatus.heartbeat(db, "seeded")
    with psycopg.connect(f"{dsn} user=legacy_service", autocommit=True) as conn:
        yield conn
    db.execute("DROP OWNED BY legacy_service")
    db.execute("DROP ROLE legacy_service")


def test_the_corpus_has_thirty_refusals_or_more() -> None:
    assert sum(1 for _, _, refused in CASES if refused) >= 30


@pytest.mark.parametrize(("what", "statement", "sqlstate"), CASES, ids=[c[0] for c in CASES])
def test_a_direct_write(
    what: str, statement: str, sqlstate: str | None, db: Conn, legacy: Conn
) -> None:
    before = counts(db)
    seeded = db.execute("SELECT * FROM system_status WHERE service_name = 'seeded'").fetchone()
    if sqlstate is None:
        legacy.execute(statement)
        assert (
            counts(db)[1] > before[1]
        )  # kept in history, by the trigger, as the writer's own rights
        return
    with pytest.raises(psycopg.Error) as refused:
        legacy.execute(statement)
    assert refused.value.sqlstate == sqlstate, refused.value
    assert counts(db) == before
    assert (
        db.execute("SELECT * FROM system_status WHERE service_name = 'seeded'").fetchone() == seeded
    )
    if sqlstate.startswith("PS"):  # pystatus's own messages name the value and the service
        assert "svc" in str(refused.value) or "seeded" in str(refused.value)


def test_only_pystatus_writes_stale_and_keeps_history_of_it(db: Conn, legacy: Conn) -> None:
    pystatus.record_heartbeat(db, "quiet", "ok", None, one(db, "SELECT now() - interval '1 hour'"))
    assert one(db, "SELECT pystatus.sweep()") == 1  # as pg_cron runs it, as the owner
    assert db.execute(
        "SELECT status FROM system_status_history WHERE service_name = 'quiet'"
        " ORDER BY heartbeat_timestamp"
    ).fetchall() == [("ok",), ("stale",)]
    # The service may end it as always, by writing again.
    legacy.execute(
        "UPDATE system_status SET status = 'ok', last_heartbeat = now() WHERE service_name = 'quiet'"
    )
    assert one(db, "SELECT status FROM system_status WHERE service_name = 'quiet'") == "ok"


def test_a_backfill_may_write_old_times_and_a_direct_writer_may_not(db: Conn, legacy: Conn) -> None:
    old = one(db, "SELECT now() - interval '20 days'")
    assert pystatus.record_heartbeat(db, "imported", "ok", None, old) is True
    assert (
        one(db, "SELECT last_heartbeat FROM system_status WHERE service_name = 'imported'") == old
    )
    # The announcement of the backfill ends with it: the next write is held to the window.
    with pytest.raises(psycopg.Error) as refused:
        legacy.execute(
            sql.SQL("INSERT INTO system_status VALUES ('late', 'ok', NULL, {})").format(
                sql.Literal(old)
            )
        )
    assert refused.value.sqlstate == "PS004"
