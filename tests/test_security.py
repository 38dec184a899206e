"""Attacks by the logins the docs describe (docs/security.md lists each with its
test): a legacy direct writer of system_status, pystatus_writer,
pystatus_reader, pystatus_alerter, and a login with CONNECT only. Each attack
must fail and change nothing: no role gains an attribute, no code of the
attacker's runs with the owner's rights, jobs still run, limits hold."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import psycopg.errors
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

import pystatus
from pystatus import migrations
from pystatus.errors import InvalidInput, PystatusError
from tests.helpers import one, user

Conn = psycopg.Connection[Any]
Login = Callable[..., str]

# Type names a function body may spell without a schema (keywords such as
# integer, interval or boolean always mean pg_catalog's).
SHADOWED_TYPES = [
    "timestamptz", "text", "jsonb", "json", "date", "name", "regclass", "regrole",
    "oid", "int4", "int8", "float8", "bool", "varchar", "bpchar", "xid", "tstzrange",
]  # fmt: skip
# Tables and views pystatus reads or writes, and the copy trigger's transition tables.
SHADOWED_TABLES = [
    "system_status", "system_status_history", "new_rows", "old_rows", "live_status",
    "service_expectations", "limits", "job_locks", "status_events", "alert_messages",
    "rollup_state", "rollup_hourly", "service_logins", "ping_tokens",
]  # fmt: skip
# Functions and operators a body may call without a schema.
SHADOWED_FUNCTIONS = [
    ("now", ""), ("clock_timestamp", ""), ("statement_timestamp", ""), ("pg_is_in_recovery", ""),
    ("session_user_name", ""), ("cardinality", "anyarray"), ("count", "text"), ("lower", "text"),
    ("format", "text"), ("quote_literal", "text"), ("jsonb_build_object", "text"),
    ("hashtext", "text"), ("date_bin", "interval, timestamptz, timestamptz"),
]  # fmt: skip
SHADOWED_OPERATORS = [
    ("=", "text", "text"), ("=", "varchar", "varchar"), ("<>", "text", "text"),
    ("<", "timestamptz", "timestamptz"), ("<=", "timestamptz", "timestamptz"),
    (">", "timestamptz", "timestamptz"), ("+", "timestamptz", "interval"),
    ("-", "timestamptz", "interval"), ("||", "text", "text"), ("~", "text", "text"),
    ("=", "bigint", "bigint"), ("~~", "text", "text"),
]  # fmt: skip


def attack_script(schema: str | None) -> str:
    """Look-alikes of everything a function body could resolve by name, each
    recording who ran it (in a temporary table of the attacker's) and trying
    to make the attacker a superuser. In pg_temp always; in ``schema`` too
    when the login may create one (it puts that schema first in its path)."""
    parts = [
        "CREATE TEMP TABLE captured (who text, what text)",
        "GRANT INSERT, SELECT ON pg_temp.captured TO PUBLIC",
        # Run with the owner's rights, it would make the connected login a superuser.
        """CREATE FUNCTION pg_temp.capture(what text) RETURNS boolean LANGUAGE plpgsql AS $$
           BEGIN
               INSERT INTO pg_temp.captured VALUES (current_user, what);
               BEGIN
                   EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', session_user);
               EXCEPTION WHEN OTHERS THEN NULL;
               END;
               RETURN true;
           END $$""",
        "GRANT EXECUTE ON FUNCTION pg_temp.capture(text) TO PUBLIC",
    ]
    for name in SHADOWED_TYPES:
        parts.append(
            f"CREATE DOMAIN pg_temp.{name} AS pg_catalog.{name} "
            f"CHECK (pg_temp.capture('domain {name}'))"
        )
    for table in SHADOWED_TABLES:
        parts.append(f"CREATE TEMP TABLE {table} (service_name text, status text)")
        parts.append(f"INSERT INTO pg_temp.{table} VALUES ('hijacked', 'ok')")
        parts.append(
            f"CREATE FUNCTION pg_temp.{table}_trigger() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_temp.capture('table {table}'); RETURN NULL; END $$"
        )
        parts.append(
            f"CREATE TRIGGER capture AFTER INSERT OR UPDATE OR DELETE ON pg_temp.{table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.{table}_trigger()"
        )
    # A type of the attacker's own with an implicit cast from text, and a cast
    # to text: only a body that chose the attacker's type could reach them.
    parts += [
        "CREATE TYPE pg_temp.lure AS (x text)",
        "CREATE FUNCTION pg_temp.to_lure(text) RETURNS pg_temp.lure LANGUAGE sql "
        "AS $$ SELECT ROW($1)::pg_temp.lure WHERE pg_temp.capture('cast') $$",
        "CREATE CAST (text AS pg_temp.lure) WITH FUNCTION pg_temp.to_lure(text) AS IMPLICIT",
        "CREATE COLLATION pg_temp.\"C\" (provider = icu, locale = 'und-u-ks-level2', "
        "deterministic = false)",
        "CREATE TEXT SEARCH CONFIGURATION pg_temp.english (COPY = pg_catalog.simple)",
    ]
    if schema is not None:
        parts.append(f"CREATE SCHEMA {schema}")
        for name, args in SHADOWED_FUNCTIONS:
            params = ", ".join(f"a{i} {t}" for i, t in enumerate(args.split(", ")) if t)
            returns = {"now": "timestamptz", "clock_timestamp": "timestamptz"}.get(name, "text")
            if name in ("cardinality", "count", "hashtext"):
                returns = "integer"
            elif name in ("pg_is_in_recovery",):
                returns = "boolean"
            elif name in ("statement_timestamp", "date_bin"):
                returns = "timestamptz"
            elif name == "jsonb_build_object":
                returns = "jsonb"
            value = {"timestamptz": "'2000-01-01'", "integer": "1", "boolean": "false"}.get(
                returns, "NULL"
            )
            parts.append(
                f"CREATE FUNCTION {schema}.{name}({params}) RETURNS {returns} LANGUAGE sql "
                f"AS $$ SELECT {value}::{returns} WHERE pg_temp.capture('function {name}') $$"
            )
        for i, (op, left, right) in enumerate(SHADOWED_OPERATORS):
            parts.append(
                f"CREATE FUNCTION {schema}.op{i}(a {left}, b {right}) RETURNS boolean "
                f"LANGUAGE sql AS $$ SELECT pg_temp.capture('operator {op} {left}') $$"
            )
            parts.append(
                f"CREATE OPERATOR {schema}.{op} (LEFTARG = {left}, RIGHTARG = {right}, "
                f"FUNCTION = {schema}.op{i})"
            )
        parts += [
            f"CREATE TYPE {schema}.timestamptz AS (x int)",
            f"CREATE FUNCTION {schema}.lower(pg_temp.lure) RETURNS text LANGUAGE sql "
            f"AS $$ SELECT 'x' WHERE pg_temp.capture('function lower(lure)') $$",
            f"CREATE COLLATION {schema}.\"default\" (provider = icu, locale = 'und-u-ks-level2', "
            "deterministic = false)",
            f"CREATE TEXT SEARCH CONFIGURATION {schema}.english (COPY = pg_catalog.simple)",
        ]
    return ";\n".join(parts) + ";"


# A value for each argument of a SECURITY DEFINER function, by its name: a new
# definer function with an argument not listed here fails the test until its
# calls are part of the attack.
ARGUMENTS = {
    "service_name": "'api'",
    "status": "'ok'",
    "current_task": "'task'",
    "latency_ms": "1.5",
    "service_names": "ARRAY['api', 'worker']",
    "statuses": "ARRAY['degraded', 'ok']",
    "current_tasks": "ARRAY['a', 'b']",
    "latencies_ms": "ARRAY[1.0, 2.0]::pg_catalog.float8[]",
    "since": "pg_catalog.now() - interval '1 day'",
    "until": "pg_catalog.now()",
    "month": "CURRENT_DATE",
    "time_zone": "'Europe/Berlin'",
    "days": "7",
    "recent": "interval '1 hour'",
    "baseline": "interval '1 day'",
    "threshold": "2.0",
    "worker": "'attacker'",
    "max_messages": "5",
    "lease": "interval '30 seconds'",
    "message_id": "0",
    "attempt": "1",
    "error": "'oops'",
    "token": "'ps_0000000000_notatoken'",
}


def definer_calls(db: Conn, role: str) -> list[str]:
    """A call of every SECURITY DEFINER function ``role`` may execute (triggers
    aside: the writes below fire them), each argument named."""
    calls = []
    rows = db.execute(
        "SELECT p.proname, p.oid::regprocedure::text, p.proargnames, p.pronargs, p.pronargdefaults,"
        " p.proargmodes"
        " FROM pg_proc AS p"
        " WHERE p.pronamespace = 'pystatus'::regnamespace AND p.prosecdef"
        "   AND p.prorettype <> 'trigger'::regtype AND has_function_privilege(%s, p.oid, 'EXECUTE')"
        " ORDER BY 2",
        (role,),
    ).fetchall()
    for name, signature, names, nargs, ndefaults, modes in rows:
        inputs = [
            n for n, m in zip(names or [], modes or ["i"] * nargs, strict=False) if m in ("i", "b")
        ]
        args = []
        for position, arg in enumerate(inputs):
            if arg not in ARGUMENTS:
                assert position >= nargs - ndefaults, f"no value for {signature}'s {arg}"
                break
            args.append(f"{arg} => {ARGUMENTS[arg]}")
        calls.append(f'SELECT * FROM pystatus."{name}"({", ".join(args)})')
    return calls


@pytest.fixture
def attackers(db: Conn, login: Login) -> dict[str, str]:
    """The documented logins, by kind: their DSNs."""
    logins = {
        "legacy writer": login(),
        "pystatus_writer": login("pystatus_writer"),
        "pystatus_reader": login("pystatus_reader"),
        "pystatus_alerter": login("pystatus_alerter"),
        "connect only": login(),
    }
    # Rights as the docs give them: a service that writes system_status
    # directly keeps the rights it had on it.
    db.execute(
        sql.SQL("GRANT SELECT, INSERT, UPDATE ON public.system_status TO {}").format(
            sql.Identifier(user(logins["legacy writer"]))
        )
    )
    # The worst case: each may own a schema of its own (CONNECT only may not).
    for kind, dsn in logins.items():
        if kind != "connect only":
            db.execute(
                sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                    sql.Identifier(db.info.dbname), sql.Identifier(user(dsn))
                )
            )
    pystatus.heartbeat(db, "api", "ok")
    pystatus.heartbeat(db, "worker", "down")
    db.execute("SELECT pystatus.add_alert_channel('hook', 'webhook', 'http://127.0.0.1:9/')")
    db.execute("SELECT pystatus.add_alert_rule('*', 'hook')")
    return logins


def run_attack(db: Conn, kind: str, dsn: str, calls: list[str]) -> list[tuple[str, str]]:
    """Plants the look-alikes as ``dsn``, makes ``calls`` under a hostile
    search_path, and returns what ran as another role than the attacker."""
    schema = None if kind == "connect only" else f"evil_{user(dsn)}"
    hostile = f"options='-c search_path={schema or 'pg_temp'},pg_catalog,public'"
    failures = []
    with psycopg.connect(f"{dsn} {hostile}", autocommit=True) as conn:
        conn.execute(attack_script(schema))
        for call in calls:
            try:
                with conn.transaction():
                    conn.execute(call)
            except psycopg.errors.RaiseException as exc:  # pystatus's own refusals
                failures.append((call, str(exc)))
            except psycopg.Error as exc:
                if (exc.sqlstate or "").startswith("PS"):
                    failures.append((call, str(exc)))
                else:
                    raise
        ran = conn.execute(
            "SELECT who, what FROM pg_temp.captured WHERE who <> session_user"
        ).fetchall()
    return ran


# What each login does besides calling the functions it may: the legacy writer
# writes its rows as before pystatus, a new service, a heartbeat, a late one
# (history's late-rows trigger runs as its owner too), several rows at once.
DIRECT_WRITES = [
    "INSERT INTO public.system_status (service_name, status, current_task, last_heartbeat)"
    " VALUES ('legacy', 'ok', 'boot', pg_catalog.clock_timestamp())",
    "UPDATE public.system_status SET status = 'down', current_task = 'x',"
    " last_heartbeat = pg_catalog.clock_timestamp()"
    " WHERE service_name OPERATOR(pg_catalog.=) 'legacy'",
    "UPDATE public.system_status SET status = 'ok',"
    " last_heartbeat = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) interval '2 hours'"
    " WHERE service_name OPERATOR(pg_catalog.=) 'legacy'",
    "INSERT INTO public.system_status (service_name, status, last_heartbeat)"
    " SELECT 'legacy-' OPERATOR(pg_catalog.||) i::pg_catalog.text, 'ok',"
    " pg_catalog.clock_timestamp()"
    " FROM pg_catalog.generate_series(1, 3) AS i",
    "UPDATE public.system_status SET status = 'degraded',"
    " last_heartbeat = pg_catalog.clock_timestamp()"
    " WHERE service_name OPERATOR(pg_catalog.~~) 'legacy%'",
]


@pytest.mark.parametrize(
    "kind",
    ["legacy writer", "pystatus_writer", "pystatus_reader", "pystatus_alerter", "connect only"],
)
def test_no_login_runs_its_code_with_the_owners_rights(
    db: Conn, attackers: dict[str, str], kind: str
) -> None:
    dsn = attackers[kind]
    calls = definer_calls(db, user(dsn))
    if kind == "legacy writer":
        calls += DIRECT_WRITES
    expected = {
        "pystatus_writer": "heartbeat",
        "pystatus_reader": "uptime",
        "pystatus_alerter": "evaluate_alerts",
    }
    if kind in expected:
        assert any(f'"{expected[kind]}"' in call for call in calls)
    history = one(db, "SELECT count(*) FROM public.system_status_history")
    ran = run_attack(db, kind, dsn, calls)
    assert ran == []
    assert not one(db, "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (user(dsn),))
    assert (
        one(db, "SELECT count(*) FROM public.system_status_history WHERE service_name = 'hijacked'")
        == 0
    )
    if kind in ("legacy writer", "pystatus_writer"):
        # The writes went through, with their history.
        assert one(db, "SELECT count(*) FROM public.system_status_history") > history


def test_the_attack_works_on_a_definer_function_without_a_pinned_path(
    db: Conn, attackers: dict[str, str]
) -> None:
    """The control: the same look-alikes take over a SECURITY DEFINER function
    that declares a timestamptz without pinning search_path, so the test above
    can fail."""
    db.execute(
        "CREATE FUNCTION public.unpinned() RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS "
        "$$ DECLARE v timestamptz := pg_catalog.clock_timestamp(); BEGIN RETURN 'x'; END $$"
    )
    dsn = attackers["connect only"]
    db.execute(
        sql.SQL("GRANT EXECUTE ON FUNCTION public.unpinned() TO {}").format(
            sql.Identifier(user(dsn))
        )
    )
    try:
        ran = run_attack(db, "connect only", dsn, ["SELECT public.unpinned()"])
        assert ran == [(db.info.user, "domain timestamptz")]
        assert one(db, "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (user(dsn),))
    finally:
        db.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER").format(sql.Identifier(user(dsn))))


@pytest.fixture
def advisory_locks(attackers: dict[str, str]) -> Iterator[None]:
    """A login with CONNECT only holds the advisory locks of every name
    pystatus once used, in a session left open."""
    with psycopg.connect(attackers["connect only"], autocommit=True) as conn:
        for job in ("sweep", "maintain", "refresh_rollups", "evaluate_alerts", "migrate",
                    "service_logins"):  # fmt: skip
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"pystatus.{job}",))
            conn.execute("SELECT pg_advisory_lock(hashtext(%s)::bigint)", (f"pystatus.{job}",))
        yield


def test_no_login_can_silence_the_jobs_with_advisory_locks(
    db: Conn, dsn: str, attackers: dict[str, str], advisory_locks: None
) -> None:
    db.execute(
        "UPDATE public.system_status SET last_heartbeat = now() - interval '10 minutes'"
        " WHERE service_name = 'worker'"
    )
    db.execute("UPDATE pystatus.job_locks SET last_run = NULL")
    db.execute("SET lock_timeout = '5s'")
    # Each job runs: none reports itself skipped, and each run is recorded.
    assert one(db, "SELECT pystatus.sweep()") == 1
    assert "skipped" not in one(db, "SELECT pystatus.maintain()")
    assert "skipped" not in one(db, "SELECT pystatus.refresh_rollups()")
    with psycopg.connect(attackers["pystatus_alerter"], autocommit=True) as alerter:
        alerter.execute("SELECT pystatus.evaluate_alerts()")
    assert one(db, "SELECT count(*) FROM pystatus.alert_messages WHERE state = 'pending'") >= 1
    ran = {
        job
        for (job,) in db.execute("SELECT job FROM pystatus.job_locks WHERE last_run IS NOT NULL")
    }
    assert ran == {"sweep", "maintain", "refresh_rollups", "evaluate_alerts"}
    pystatus.allow_service(db, user(attackers["pystatus_writer"]), "x*")
    # And migrate, which takes the row of pystatus.job_locks once installed.
    done = migrations.apply(dsn, reapply=True, lock_wait=5)
    assert done.definitions
    db.execute("RESET lock_timeout")
    assert all(
        ok for item, ok, _ in db.execute("SELECT * FROM pystatus.check()") if item == "job locks"
    )


def test_a_job_held_past_its_period_turns_check_red_naming_its_holder(
    db: Conn, attackers: dict[str, str]
) -> None:
    """The alert worker's login inside a transaction left open holds the sweep's
    lock: the next sweep is skipped, and check names who holds it."""
    db.execute(
        "UPDATE pystatus.job_locks"
        " SET period = '1 millisecond', last_run = now() - interval '1 hour'"
    )
    alerter = psycopg.connect(attackers["pystatus_alerter"])
    try:
        alerter.execute("SELECT pystatus.alert_sweep()")  # its transaction stays open
        pid = alerter.info.backend_pid
        assert one(db, "SELECT pystatus.sweep()") == 0  # skipped, not waiting
        db.execute("SELECT pg_sleep(0.01)")  # past the period
        [(ok, detail)] = db.execute(
            "SELECT ok, detail FROM pystatus.check() WHERE item = 'job locks'"
        ).fetchall()
        assert not ok
        assert f"sweep held by pid {pid} (login {user(attackers['pystatus_alerter'])})" in detail
    finally:
        alerter.close()
    [(ok,)] = db.execute("SELECT ok FROM pystatus.check() WHERE item = 'job locks'").fetchall()
    assert ok


def test_migrate_waits_for_another_migrate_with_a_bound_and_names_it(db: Conn, dsn: str) -> None:
    holder = psycopg.connect(dsn)
    try:
        holder.execute("SELECT FROM pystatus.job_locks WHERE job = 'migrate' FOR UPDATE")
        with pytest.raises(PystatusError) as raised:
            migrations.apply(dsn, reapply=True, lock_wait=1)
        message = str(raised.value)
        assert "held the migrate lock for more than 1 s" in message
        assert f"pid {holder.info.backend_pid} (login {db.info.user}" in message
        assert "changed nothing" in message
    finally:
        holder.close()
    assert migrations.apply(dsn, reapply=True, lock_wait=1).definitions


def test_migrate_before_the_lock_table_exists_names_an_advisory_holder(empty_dsn: str) -> None:
    """A first install serializes on an advisory lock (nothing of pystatus's
    exists yet): whoever holds it is named, and the wait is bounded."""
    with psycopg.connect(empty_dsn, autocommit=True) as squatter:
        squatter.execute("SELECT pg_advisory_lock(hashtext('pystatus.migrate'))")
        with pytest.raises(PystatusError, match=f"pid {squatter.info.backend_pid} "):
            migrations.apply(empty_dsn, lock_wait=1)
    assert migrations.apply(empty_dsn, lock_wait=1).migrations


def test_the_fleet_and_a_batch_are_bounded(db: Conn, attackers: dict[str, str]) -> None:
    db.execute("SELECT pystatus.set_limits(max_services => 50, max_batch => 20)")
    with psycopg.connect(attackers["pystatus_writer"], autocommit=True) as writer:
        with pytest.raises(InvalidInput, match="21 heartbeats, the limit is 20 a call"):
            pystatus.heartbeat_many(writer, [(f"b-{i}", "ok") for i in range(21)])
        for start in (0, 20):
            pystatus.heartbeat_many(writer, [(f"b-{i}", "ok") for i in range(start, start + 20)])
        with pytest.raises(InvalidInput, match="too many services: system_status may hold 50"):
            pystatus.heartbeat_many(writer, [(f"b-{i}", "ok") for i in range(40, 60)])
        with pytest.raises(InvalidInput, match="too many services"):
            for i in range(40, 60):
                pystatus.heartbeat(writer, f"c-{i}")
        # Known services still heartbeat, in batches and one by one.
        assert pystatus.heartbeat_many(writer, [(f"b-{i}", "down") for i in range(20)]) == 20
        pystatus.heartbeat(writer, "b-1", "ok")
    # The legacy writer is held to it too.
    with (
        psycopg.connect(attackers["legacy writer"], autocommit=True) as legacy,
        pytest.raises(psycopg.Error, match="too many services"),
    ):
        legacy.execute(
            "INSERT INTO system_status (service_name, status, last_heartbeat)"
            " SELECT 'l-' || i, 'ok', now() FROM generate_series(1, 10) AS i"
        )
    assert one(db, "SELECT count(*) FROM system_status") == 50
    with pytest.raises(psycopg.Error, match="invalid max_services 0: must be positive"):
        db.execute("SELECT pystatus.set_limits(max_services => 0)")
    assert db.execute("SELECT max_services, max_batch FROM pystatus.set_limits()").fetchone() == (
        50,
        20,
    )


def test_heartbeat_many_names_the_bad_element_whatever_index_the_arrays_start_at(
    db: Conn,
) -> None:
    for bounds in ("[0:2]", "[-5:-3]", "[7:9]"):
        with pytest.raises(psycopg.Error, match="heartbeat 2 of 3: invalid status 'bad'"):
            db.execute(
                f"SELECT pystatus.heartbeat_many('{bounds}={{a,b,c}}'::text[],"
                f" '{bounds}={{ok,bad,ok}}'::text[])"
            )
        with pytest.raises(psycopg.Error, match="heartbeat 3 of 3: invalid service name"):
            db.execute(
                f"SELECT pystatus.heartbeat_many('{bounds}={{a,b,\"\"}}'::text[],"
                " ARRAY['ok', 'ok', 'ok'])"
            )
    with pytest.raises(psycopg.Error, match="one dimension"):
        db.execute(
            "SELECT pystatus.heartbeat_many('{{a,b},{c,d}}'::text[], '{{ok,ok},{ok,ok}}'::text[])"
        )
    assert one(db, "SELECT count(*) FROM system_status") == 0


def test_every_writers_text_is_cleaned_as_it_is_written(
    db: Conn, attackers: dict[str, str]
) -> None:
    escape = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\u202e  tail\n"
    with psycopg.connect(attackers["pystatus_writer"], autocommit=True) as writer:
        pystatus.heartbeat(writer, "api", "ok", escape)
        pystatus.heartbeat_many(writer, [("worker", "ok", escape)])
    with psycopg.connect(attackers["legacy writer"], autocommit=True) as legacy:
        legacy.execute(
            "UPDATE system_status SET current_task = %s, last_heartbeat = now()"
            " WHERE service_name = 'api'",
            (escape,),
        )
        legacy.execute(
            "INSERT INTO system_status (service_name, status, current_task, last_heartbeat)"
            " VALUES ('legacy', 'ok', %s, now())",
            (escape,),
        )
    db.execute(
        "SELECT pystatus.record_heartbeat('old', 'ok', %s, now() - interval '1 hour')", (escape,)
    )
    db.execute(
        "SELECT pystatus.record_heartbeat('old', 'ok', %s, now() - interval '2 hours')", (escape,)
    )
    clean = "]0;owned [2J [31mred tail"
    assert one(db, "SELECT pystatus.clean_text(%s)", (escape,)) == clean
    tasks = {row[0] for row in db.execute("SELECT current_task FROM system_status_history")} - {
        None
    }
    current = {row[0] for row in db.execute("SELECT current_task FROM system_status")} - {None}
    assert tasks == current == {clean}
    # A clean task is written as it is.
    pystatus.heartbeat(db, "api", "ok", "reindexing shard 3")
    assert one(db, "SELECT current_task FROM system_status WHERE service_name = 'api'") == (
        "reindexing shard 3"
    )


def test_the_jobs_run_while_a_login_holds_every_advisory_lock_concurrently(
    db: Conn, attackers: dict[str, str], advisory_locks: None
) -> None:
    """pg_cron's sweep and a DBA's at once: one marks, the other is skipped at
    once, neither waits (statement_timeout would cancel a wait)."""
    db.execute(
        "INSERT INTO system_status (service_name, status, last_heartbeat)"
        " SELECT 'quiet-' || i, 'ok', now() - interval '10 minutes' FROM generate_series(1, 3) AS i"
    )
    barrier = threading.Barrier(2)
    results: list[int] = []

    def sweep() -> None:
        with psycopg.connect(db.info.dsn, autocommit=True) as conn:
            conn.execute("SET statement_timeout = '10s'")
            barrier.wait()
            results.append(one(conn, "SELECT pystatus.sweep()"))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 3
    assert one(db, "SELECT count(*) FROM system_status WHERE status = 'stale'") == 3


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(
        alphabet=st.one_of(
            st.sampled_from(" \t\n\x1b\x7f\x85\xa0\u200b\u202e\u3000\ufeffab"),
            st.characters(codec="utf-8", exclude_characters="\x00"),
        ),
        max_size=20,
    )
)
def test_the_cleaning_trigger_fires_exactly_for_the_texts_clean_text_changes(
    db: Conn, text: str
) -> None:
    """Its WHEN clause spells the characters out again (10_rules.sql says why)."""
    fires, changes = db.execute(
        "SELECT %(t)s ~ pystatus._unclean_text_pattern(), pystatus.clean_text(%(t)s) <> %(t)s",
        {"t": text},
    ).fetchone()
    assert fires == changes
