"""Roles: pystatus_writer may only heartbeat, pystatus_reader may only read what
dashboards and the CLI read; SECURITY DEFINER functions cannot be hijacked
through search_path; the roles serve every database of the cluster; logins can
be restricted to their own services."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
import pytest
from psycopg import sql

import pystatus
from pystatus import cli, migrations
from pystatus.client import Heartbeat
from pystatus.cluster import Cluster
from tests.helpers import as_login, empty_databases, one, user, wait_for
from tests.serving import dashboard, get_json

Conn = psycopg.Connection[Any]
Login = Callable[..., str]


def history_rows(db: Conn) -> int:
    return one(db, "SELECT count(*) FROM public.system_status_history")  # type: ignore[no-any-return]


# What the roles may not do. Each statement must fail with insufficient_privilege
# and change nothing.
FORBIDDEN_TO_BOTH = [
    "INSERT INTO public.system_status (service_name, status, last_heartbeat) "
    "VALUES ('x', 'ok', now())",
    "UPDATE public.system_status SET status = 'down'",
    "DELETE FROM public.system_status",
    "TRUNCATE public.system_status_history",
    "INSERT INTO public.system_status_history (heartbeat_timestamp, service_name, status) "
    "VALUES (now(), 'x', 'ok')",
    "DELETE FROM public.system_status_history",
    "SELECT * FROM public.system_status_history",
    "SELECT * FROM pystatus.rollup_hourly",
    "DELETE FROM pystatus.rollup_daily",
    "SELECT pystatus.record_heartbeat('api', 'ok', NULL, now() - interval '1 hour')",
    "SELECT pystatus.sweep()",
    "SELECT pystatus.maintain()",
    "SELECT pystatus.move_default_rows()",
    "SELECT pystatus.refresh_rollups()",
    "SELECT pystatus.set_expectations('api', '1 second', '1 second')",
    "SELECT pystatus.set_history_retention('1 day')",
    "SELECT pystatus.allow_service(session_user, '%')",
    "SELECT pystatus.unschedule_maintenance()",
    "SELECT * FROM pystatus.uptime_raw('api', now() - interval '1 day')",
    "SELECT * FROM pystatus.segments('api', now() - interval '1 day', now())",
]
FORBIDDEN_TO_WRITER = [
    *FORBIDDEN_TO_BOTH,
    "SELECT * FROM public.system_status",
    "SELECT * FROM pystatus.live_status",
    "SELECT * FROM pystatus.uptime('api', now() - interval '1 day')",
    "SELECT * FROM pystatus.history('api', now() - interval '1 day')",
    "SELECT * FROM pystatus.check()",
]
FORBIDDEN_TO_READER = [
    *FORBIDDEN_TO_BOTH,
    "SELECT pystatus.heartbeat('api')",
    "SELECT pystatus.heartbeat_many(ARRAY['api'], ARRAY['ok'])",
]


def assert_forbidden(dsn: str, db: Conn, statements: list[str]) -> None:
    before = (history_rows(db), one(db, "SELECT count(*) FROM public.system_status"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(statement)
    assert (history_rows(db), one(db, "SELECT count(*) FROM public.system_status")) == before


def test_a_writer_may_heartbeat_and_nothing_else(db: Conn, login: Login) -> None:
    pystatus.heartbeat(db, "api")
    writer = login("pystatus_writer")
    with psycopg.connect(writer, autocommit=True) as conn:
        pystatus.heartbeat(conn, "api", "degraded", "reindexing", latency_ms=12.5)
        assert pystatus.heartbeat_many(conn, [("api", "ok"), ("worker", "starting")]) == 2
        with pytest.raises(
            pystatus.NotAllowed, match="permission denied for function record_heartbeat"
        ):
            pystatus.record_heartbeat(conn, "api", "down", None, one(db, "SELECT now()"))
    assert (
        one(db, "SELECT status FROM public.system_status WHERE service_name = 'worker'")
        == "starting"
    )
    assert history_rows(db) == 4
    assert_forbidden(writer, db, FORBIDDEN_TO_WRITER)


def test_a_reader_may_read_and_nothing_else(db: Conn, dsn: str, login: Login) -> None:
    pystatus.heartbeat(db, "api")
    db.execute("SELECT pystatus.refresh_rollups()")
    reader = login("pystatus_reader")
    with psycopg.connect(reader, autocommit=True) as conn:
        # The seed dashboard's own query, and the answers.
        assert conn.execute("SELECT service_name, status FROM system_status").fetchall() == [
            ("api", "ok")
        ]
        assert [s.service_name for s in pystatus.live_status(conn)] == ["api"]
        assert (
            pystatus.uptime(conn, "api", one(db, "SELECT now() - interval '1 hour'"))[
                0
            ].service_name
            == "api"
        )
        assert conn.execute(
            "SELECT count(*) FROM pystatus.history('api', now() - interval '1 hour')"
        ).fetchone() == (1,)
    assert_forbidden(reader, db, FORBIDDEN_TO_READER)


def test_the_cli_and_the_dashboard_work_as_a_reader(
    db: Conn, login: Login, capsys: pytest.CaptureFixture[str]
) -> None:
    pystatus.heartbeat(db, "api", latency_ms=3.0)
    db.execute("SELECT pystatus.refresh_rollups()")
    reader = login("pystatus_reader")
    for command in (
        ["status"],
        ["history", "api"],
        ["transitions", "api"],
        ["incidents"],
        ["uptime"],
        ["uptime", "api", "--month", "2026-01"],
        ["trend", "api"],
        ["tasks", "api"],
    ):
        assert cli.main([*command, "--dsn", reader]) == 0, command
    capsys.readouterr()
    cli.main(["check", "--dsn", reader, "--format", "json"])
    items = {row["item"] for row in json.loads(capsys.readouterr().out)}
    assert {"pg_partman", "role pystatus_writer", "role pystatus_reader"} <= items
    with dashboard(reader) as url:
        assert [s["service_name"] for s in get_json(f"{url}/api/status")] == ["api"]
        for path in ("uptime", "days", "incidents", "transitions", "latency"):
            get_json(f"{url}/api/services/api/{path}")  # raises unless 200
        assert len(get_json(f"{url}/api/uptime")) == 1


def test_each_role_holds_exactly_the_rights_of_the_one_list(db: Conn) -> None:
    """pystatus._role_rights() is the list the grants are made from; nothing else in
    the schema, nor on the status tables, is granted to the roles or to PUBLIC."""
    listed = set(db.execute("SELECT grantee::text, privilege, object FROM pystatus._role_rights()"))
    held = set(
        db.execute(
            "SELECT CASE WHEN a.grantee = 0 THEN 'public' ELSE a.grantee::regrole::text END,"
            " a.privilege_type, o.object"
            " FROM (SELECT 'FUNCTION ' || p.oid::regprocedure::text AS object, p.proacl AS acl,"
            "              p.proowner AS owner, 'f' AS kind FROM pg_proc AS p"
            "       WHERE p.pronamespace = 'pystatus'::regnamespace"
            "       UNION ALL"
            "       SELECT 'TABLE ' || c.oid::regclass::text, c.relacl, c.relowner, 'r'"
            "       FROM pg_class AS c"
            "       WHERE c.relkind IN ('r', 'p', 'v')"
            "         AND (c.relnamespace = 'pystatus'::regnamespace"
            "              OR c.oid = 'public.system_status'::regclass"
            "              OR c.oid = 'public.system_status_history'::regclass)"
            "       UNION ALL"
            "       SELECT 'SCHEMA pystatus', n.nspacl, n.nspowner, 'n' FROM pg_namespace AS n"
            "       WHERE n.nspname = 'pystatus') AS o"
            " CROSS JOIN LATERAL aclexplode("
            '     coalesce(o.acl, acldefault(o.kind::"char", o.owner))) AS a'
            " WHERE a.grantee <> o.owner"
        )
    )
    # The list names functions as they are declared; the catalog, in its own
    # spelling (timestamp with time zone): compare through regprocedure.
    spelled = {
        (grantee, privilege, _catalog_spelling(db, obj)) for grantee, privilege, obj in listed
    }
    assert held == spelled
    # The roles may read or change no table outside the list.
    readable = (
        "SELECT c.oid::regclass::text FROM pg_class AS c "
        "WHERE c.relnamespace IN ('pystatus'::regnamespace, 'public'::regnamespace) "
        "AND c.relkind IN ('r', 'p', 'v') AND has_table_privilege(%s, c.oid, %s) ORDER BY 1"
    )
    for role in ("pystatus_writer", "pystatus_reader", "public"):
        assert db.execute(readable, (role, "INSERT, UPDATE, DELETE, TRUNCATE")).fetchall() == []
    assert db.execute(readable, ("pystatus_writer", "SELECT")).fetchall() == []
    assert db.execute(readable, ("pystatus_reader", "SELECT")).fetchall() == [
        ("pystatus.live_status",),
        ("system_status",),
    ]


def _catalog_spelling(db: Conn, obj: str) -> str:
    kind, name = obj.split(" ", 1)
    if kind == "FUNCTION":
        return f"FUNCTION {one(db, 'SELECT %s::regprocedure::text', (name,))}"
    if kind == "TABLE":
        return f"TABLE {one(db, 'SELECT %s::regclass::text', (name,))}"
    return obj


def test_every_function_pins_search_path_but_those_the_sources_exempt(db: Conn) -> None:
    unpinned = db.execute(
        "SELECT p.proname, p.prosecdef FROM pg_proc AS p "
        "WHERE p.pronamespace = 'pystatus'::regnamespace "
        "AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY(p.proconfig), false) "
        "AND (p.prosqlbody IS NULL OR p.prosecdef)"
    ).fetchall()
    # Each exemption is written once, with its reason, above the function's
    # definition in sql/schema/ (lint reads the same marks).
    exempt = migrations.Sources().unpinned_functions()
    # None of them runs as its owner: every SECURITY DEFINER function pins its path.
    assert sorted(unpinned) == sorted((name, False) for name in exempt)
    assert set(exempt) == {
        "create_history_partitions",
        "maintain",
        "move_default_rows",
        "_name_characters",
        "_service_name_pattern",
        "_statuses",
        "_rollup_delay",
    }
    assert all(reason for reason in exempt.values())
    definers = {
        name
        for (name,) in db.execute(
            "SELECT proname FROM pg_proc "
            "WHERE prosecdef AND pronamespace = 'pystatus'::regnamespace"
        )
    }
    assert {"heartbeat", "heartbeat_many", "uptime", "check"} <= definers


HIJACK = (Path(__file__).parent / "hijack.sql").read_text()


def test_search_path_cannot_hijack_the_definer_functions(db: Conn, dsn: str, login: Login) -> None:
    writer = login("pystatus_writer")
    reader = login("pystatus_reader")
    db.execute(
        sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(db.info.dbname), sql.Identifier(user(writer))
        )
    )
    with psycopg.connect(writer, autocommit=True) as conn:
        conn.execute(HIJACK)
    db.execute("SELECT pystatus.refresh_rollups()")

    def captured() -> list[tuple[str, str]]:
        return db.execute("SELECT who, what FROM evil.captured").fetchall()

    # The attacker's schema first, pg_catalog after it, and temporary look-alikes.
    hostile = "options='-c search_path=evil,pg_catalog,public'"
    with psycopg.connect(f"{writer} {hostile}", autocommit=True) as conn:
        columns = (
            "service_name varchar(64), status varchar(16), current_task text, latency_ms float8"
        )
        conn.execute(
            f"CREATE TEMP TABLE system_status ({columns}, "
            "last_heartbeat timestamptz, updated_at timestamptz)"
        )
        conn.execute(
            f"CREATE TEMP TABLE system_status_history ({columns}, heartbeat_timestamp timestamptz)"
        )
        assert conn.execute("SELECT now()").fetchone() == (
            one(conn, "SELECT timestamptz '2000-01-01'"),
        )
        recorded = pystatus.heartbeat(conn, "api", "ok", "x", latency_ms=1.0)
        pystatus.heartbeat_many(conn, [("api", "degraded"), ("worker", "ok")])
        # Two known services in one statement: the copy trigger's path for many rows.
        pystatus.heartbeat_many(conn, [("api", "ok"), ("worker", "degraded")])
    # A service writing system_status directly: the copy trigger runs as its owner
    # under the writer's search_path, allowances on, so _may_report is asked too.
    db.execute(
        sql.SQL("GRANT SELECT, INSERT, UPDATE ON public.system_status TO {}").format(
            sql.Identifier(user(writer))
        )
    )
    pystatus.allow_service(db, user(writer), "direct*")
    with psycopg.connect(f"{writer} {hostile}", autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.system_status (service_name, status, last_heartbeat)"
            " VALUES ('direct', 'ok', pg_catalog.clock_timestamp())"
        )
        conn.execute(
            "UPDATE public.system_status SET status = 'down',"
            " last_heartbeat = pg_catalog.clock_timestamp()"
            " WHERE service_name OPERATOR(pg_catalog.=) 'direct'"
        )
    pystatus.disallow_service(db, user(writer), "direct*")
    db.execute("TRUNCATE evil.captured")  # the probe above ran as the writer itself
    with psycopg.connect(f"{reader} {hostile}", autocommit=True) as conn:
        for query in (
            "SELECT * FROM pystatus.live_status",
            "SELECT * FROM pystatus.uptime('api', pg_catalog.now() - interval '1 day')",
            "SELECT * FROM pystatus.incidents('api', pg_catalog.now() - interval '1 day')",
            "SELECT * FROM pystatus.transitions('api', pg_catalog.now() - interval '1 day')",
            "SELECT * FROM pystatus.history('api', pg_catalog.now() - interval '1 day')",
            "SELECT * FROM pystatus.trend('api')",
            "SELECT * FROM pystatus.daily_uptime('api')",
            "SELECT * FROM pystatus.latency_hourly('api', pg_catalog.now() - interval '1 day')",
            "SELECT * FROM pystatus.task_durations('api', pg_catalog.now() - interval '1 day')",
            "SELECT * FROM pystatus.check()",
        ):
            conn.execute(query).fetchall()
    assert captured() == []
    assert recorded.year > 2000
    assert (
        one(
            db,
            "SELECT count(*) FROM public.system_status_history "
            "WHERE heartbeat_timestamp > '2001-01-01'",
        )
        == 7
    )
    assert (
        one(db, "SELECT count(*) FROM public.system_status_history WHERE service_name = 'hijacked'")
        == 0
    )

    # The same attack on a SECURITY DEFINER function that does not pin search_path
    # runs the attacker's code with the owner's rights: the test's setup is able to hijack.
    db.execute(
        "CREATE FUNCTION public.unpinned() RETURNS timestamptz LANGUAGE plpgsql SECURITY DEFINER "
        "AS $$ BEGIN RETURN clock_timestamp(); END $$"
    )
    with psycopg.connect(f"{writer} {hostile}", autocommit=True) as conn:
        conn.execute("SELECT public.unpinned()")
    assert captured() == [(db.info.user, "clock_timestamp")]


def test_service_logins_restrict_each_login_to_its_services(db: Conn, login: Login) -> None:
    billing = login("pystatus_writer")
    search = login("pystatus_writer")
    billing_login = user(billing)
    with psycopg.connect(search, autocommit=True) as conn:
        pystatus.heartbeat(conn, "billing-api")  # no allowance yet: anyone may report anything

    pystatus.allow_service(db, billing_login, "billing-*")
    before = history_rows(db)
    with psycopg.connect(billing, autocommit=True) as conn:
        pystatus.heartbeat(conn, "billing-api", "degraded")
        with pytest.raises(
            pystatus.NotAllowed,
            match=f"login {billing_login} may not heartbeat for service 'search'",
        ):
            pystatus.heartbeat(conn, "search")
        with pytest.raises(pystatus.NotAllowed, match="may not heartbeat for service 'search'"):
            pystatus.heartbeat_many(conn, [("billing-worker", "ok"), ("search", "ok")])
    with (
        psycopg.connect(search, autocommit=True) as conn,
        pytest.raises(pystatus.NotAllowed),
    ):  # a login without allowances may report nothing now
        pystatus.heartbeat(conn, "search")
    assert history_rows(db) == before + 1
    assert (
        one(
            db,
            "SELECT count(*) FROM public.system_status "
            "WHERE service_name IN ('search', 'billing-worker')",
        )
        == 0
    )
    pystatus.heartbeat(db, "search")  # the owner is not restricted

    # A login cannot escape through another role it is a member of.
    db.execute(
        sql.SQL("GRANT {} TO {}").format(
            sql.Identifier(user(search)), sql.Identifier(billing_login)
        )
    )
    with psycopg.connect(billing, autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(user(search))))
        with pytest.raises(pystatus.NotAllowed):
            pystatus.heartbeat(conn, "search")

    assert pystatus.disallow_service(db, billing_login, "billing-*") is True
    assert pystatus.disallow_service(db, billing_login, "billing-*") is False
    with psycopg.connect(search, autocommit=True) as conn:
        pystatus.heartbeat(conn, "search")  # the last allowance gone, the restriction is lifted
        # The table written directly, by the owner, switches it too.
        db.execute(
            "INSERT INTO pystatus.service_logins (login, service_pattern) VALUES (%s, 'billing-*')",
            (billing_login,),
        )
        with pytest.raises(pystatus.NotAllowed):
            pystatus.heartbeat(conn, "search")
        db.execute("TRUNCATE pystatus.service_logins")
        pystatus.heartbeat(conn, "search")
    with pytest.raises(pystatus.InvalidSetting, match="invalid login 'nobody': no such role"):
        pystatus.allow_service(db, "nobody", "x")
    with pytest.raises(pystatus.InvalidSetting, match="'pystatus_writer': the role cannot log in"):
        pystatus.allow_service(db, "pystatus_writer", "x")


def test_allowances_take_only_star_for_a_wildcard(db: Conn, login: Login) -> None:
    writer = login("pystatus_writer")
    for pattern in ("billing_api", "50%_off", "back\\slash", "web-*-eu"):
        pystatus.allow_service(db, user(writer), pattern)
    with psycopg.connect(writer, autocommit=True) as conn:
        for name in ("billing_api", "50%_off", "back\\slash", "web-1-eu", "web--eu"):
            pystatus.heartbeat(conn, name)
        for name in ("billingXapi", "50X_off", "50%Xoff", "backXslash", "web-1-us"):
            with pytest.raises(pystatus.NotAllowed):
                pystatus.heartbeat(conn, name)


def test_a_non_superuser_owner_can_turn_the_restriction_on(db: Conn, login: Login) -> None:
    # Nothing in switching allowances may need a superuser: the owner need not be one.
    writer = login("pystatus_writer")
    owner = user(login())
    for statement in (
        "ALTER TABLE pystatus.service_logins OWNER TO {0}",
        "ALTER FUNCTION pystatus._logins_restricted() OWNER TO {0}",
        "GRANT USAGE, CREATE ON SCHEMA pystatus TO {0}",
        "GRANT EXECUTE ON FUNCTION pystatus.allow_service(name, text), "
        "pystatus.disallow_service(name, text), pystatus._sync_logins_restricted(),"
        " pystatus._wait_job_lock(text) TO {0}",
        "GRANT SELECT, UPDATE ON pystatus.job_locks TO {0}",
    ):
        db.execute(sql.SQL(statement).format(sql.Identifier(owner)))
    with psycopg.connect(as_login(db.info.dsn, owner), autocommit=True) as conn:
        assert one(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
        pystatus.allow_service(conn, user(writer), "billing-*")
    with psycopg.connect(writer, autocommit=True) as conn:
        with pytest.raises(pystatus.NotAllowed):
            pystatus.heartbeat(conn, "search")
        pystatus.heartbeat(conn, "billing-api")
    with psycopg.connect(as_login(db.info.dsn, owner), autocommit=True) as conn:
        assert pystatus.disallow_service(conn, user(writer), "billing-*") is True
    with psycopg.connect(writer, autocommit=True) as conn:
        pystatus.heartbeat(conn, "search")
    db.execute("ALTER TABLE pystatus.service_logins OWNER TO CURRENT_USER")
    db.execute("ALTER FUNCTION pystatus._logins_restricted() OWNER TO CURRENT_USER")


def test_a_service_writing_system_status_directly_still_gets_history(
    db: Conn, login: Login
) -> None:
    # The rights such a service had before pystatus, and no grant on anything
    # pystatus added: the copy trigger and the late-rows trigger run as their owner.
    legacy = login()
    db.execute(
        sql.SQL("GRANT SELECT, INSERT, UPDATE ON public.system_status TO {0}").format(
            sql.Identifier(user(legacy))
        )
    )
    hostile = "options='-c search_path=pg_temp,public'"  # the trigger qualifies every name
    with psycopg.connect(f"{legacy} {hostile}", autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE system_status_history (LIKE public.system_status)")
        conn.execute(
            "INSERT INTO public.system_status (service_name, status, last_heartbeat) "
            "VALUES ('old', 'ok', now())"
        )
        conn.execute(
            "UPDATE public.system_status SET status = 'down', last_heartbeat = now() "
            "WHERE service_name = 'old'"
        )
        # A clock ten minutes behind: the row is late, and marks its rollups dirty.
        conn.execute(
            "INSERT INTO public.system_status (service_name, status, last_heartbeat) "
            "VALUES ('slow-clock', 'ok', now() - interval '10 minutes')"
        )
        with pytest.raises(psycopg.errors.CheckViolation):  # the rules still apply
            conn.execute(
                "UPDATE public.system_status SET status = 'running' WHERE service_name = 'old'"
            )
        # Writing through the triggers widens nothing: history stays unreadable.
        for table in ("public.system_status_history", "pystatus.rollup_dirty"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT FROM {table}")
    assert db.execute(
        "SELECT status FROM system_status_history WHERE service_name = 'old' "
        "ORDER BY heartbeat_timestamp"
    ).fetchall() == [("ok",), ("down",)]
    assert one(db, "SELECT count(*) FROM pystatus.rollup_dirty WHERE service_name = 'slow-clock'")
    assert db.execute("SELECT pystatus.refresh_rollups()").fetchone()

    # Allowances hold for direct writes too: the copy trigger checks them.
    pystatus.allow_service(db, user(legacy), "new-*")
    with psycopg.connect(legacy, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.system_status (service_name, status, last_heartbeat) "
            "VALUES ('new-1', 'ok', now())"
        )
        with pytest.raises(psycopg.Error, match="may not heartbeat for service 'old'") as refused:
            conn.execute(
                "UPDATE public.system_status SET last_heartbeat = now() WHERE service_name = 'old'"
            )
        assert refused.value.sqlstate == "PS007"
    assert one(db, "SELECT count(*) FROM system_status_history WHERE service_name = 'old'") == 2


def test_migrating_takes_the_trigger_right_on_the_status_tables(
    db: Conn, dsn: str, login: Login, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = user(login())
    db.execute(sql.SQL("GRANT ALL ON public.system_status TO {}").format(sql.Identifier(legacy)))
    assert migrations.apply(dsn, reapply=True).definitions
    assert (
        one(db, "SELECT has_table_privilege(%s, 'public.system_status', 'TRIGGER')", (legacy,))
        is False
    )
    assert (
        one(db, "SELECT has_table_privilege(%s, 'public.system_status', 'UPDATE')", (legacy,))
        is True
    )
    cli.main(["check", "--dsn", dsn, "--format", "json"])
    items = {row["item"]: row for row in json.loads(capsys.readouterr().out)}
    assert items["status tables"]["ok"]
    assert items["status tables"]["detail"].startswith(f"written directly by {legacy}")


def test_check_reports_the_roles(
    db: Conn, dsn: str, login: Login, capsys: pytest.CaptureFixture[str]
) -> None:
    def check() -> tuple[int, dict[str, dict[str, Any]]]:
        code = cli.main(["check", "--dsn", dsn, "--format", "json"])
        return code, {row["item"]: row for row in json.loads(capsys.readouterr().out)}

    writer = user(login("pystatus_writer"))
    db.execute("SELECT pystatus.refresh_rollups()")
    _, items = check()
    for item in (
        "role pystatus_writer",
        "role pystatus_reader",
        "public access",
        "status tables",
        "service logins",
    ):
        assert items[item]["ok"], items[item]
    assert items["status tables"]["detail"] == "written by pystatus's functions only"
    assert writer in items["role pystatus_writer"]["detail"]
    assert items["service logins"]["detail"] == "off: any writer may report any service"

    db.execute("GRANT INSERT ON public.system_status_history TO pystatus_writer")
    db.execute(
        "REVOKE EXECUTE ON FUNCTION pystatus.uptime(text, timestamptz, timestamptz) "
        "FROM pystatus_reader"
    )
    db.execute("GRANT EXECUTE ON FUNCTION pystatus.maintain() TO PUBLIC")
    db.execute("CREATE ROLE gone_login LOGIN")
    pystatus.allow_service(db, "gone_login", "x")
    db.execute("DROP ROLE gone_login")
    code, items = check()
    assert "no longer exist: gone_login" in items["service logins"]["detail"]
    db.execute(
        "CREATE OR REPLACE FUNCTION pystatus._logins_restricted() RETURNS boolean "
        "LANGUAGE sql STABLE RETURN false"
    )
    db.execute("GRANT TRIGGER ON public.system_status TO pystatus_reader")
    db.execute("ALTER ROLE pystatus_reader LOGIN")
    try:
        code, items = check()
    finally:
        db.execute("ALTER ROLE pystatus_reader NOLOGIN")  # the roles are the whole cluster's
    assert code == 1
    assert items["role pystatus_writer"]["detail"] == "may change public.system_status_history"
    assert items["role pystatus_reader"]["detail"] == (
        "has LOGIN: ALTER ROLE pystatus_reader NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB "
        "NOBYPASSRLS; cannot call pystatus.uptime(text, timestamptz, timestamptz)"
    )
    assert not items["status tables"]["ok"]
    assert (
        "run with the owner's rights: pystatus_reader on public.system_status"
        in (items["status tables"]["detail"])
    )
    assert not items["public access"]["ok"]
    assert "pystatus.maintain()" in items["public access"]["detail"]
    assert not items["service logins"]["ok"]
    assert items["service logins"]["detail"].startswith(
        "out of step with pystatus._logins_restricted()"
    )


@pytest.fixture
def two_databases(cluster: Cluster) -> Iterator[list[str]]:
    with (
        empty_databases(cluster, "pystatus_roles_a", "pystatus_roles_b") as dsns,
        psycopg.connect(cluster.dsn(), autocommit=True) as admin,
    ):
        admin.execute("DROP ROLE IF EXISTS shared_writer")
        admin.execute("CREATE ROLE shared_writer LOGIN IN ROLE pystatus_writer")
        yield dsns
        admin.execute("DROP ROLE shared_writer")


def test_the_roles_serve_every_database_of_the_cluster(two_databases: list[str]) -> None:
    a, b = two_databases
    migrations.apply(a)
    migrations.apply(b)
    for dsn in (a, b):
        with psycopg.connect(as_login(dsn, "shared_writer"), autocommit=True) as conn:
            pystatus.heartbeat(conn, "api")

    # Rolling b back entirely leaves a's grants, and the roles, in place.
    migrations.rollback(b, count=None)
    with psycopg.connect(as_login(a, "shared_writer"), autocommit=True) as conn:
        pystatus.heartbeat(conn, "api")
    with psycopg.connect(b) as conn:
        assert one(conn, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'pystatus\\_%%'") == 3

    # Migrating b again reuses the roles; rolling a back entirely leaves b's
    # grants in place.
    migrations.apply(b)
    migrations.rollback(a, count=None)
    with (
        psycopg.connect(as_login(a, "shared_writer"), autocommit=True) as conn,
        pytest.raises(pystatus.NotInstalled, match='schema "pystatus" does not exist'),
    ):
        pystatus.heartbeat(conn, "api")
    with psycopg.connect(as_login(b, "shared_writer"), autocommit=True) as conn:
        pystatus.heartbeat(conn, "api")
    migrations.apply(a)
    with psycopg.connect(as_login(a, "shared_writer"), autocommit=True) as conn:
        pystatus.heartbeat(conn, "api")


def test_the_logins_command(dsn: str, login: Login, capsys: pytest.CaptureFixture[str]) -> None:
    billing = user(login("pystatus_writer"))
    assert (
        cli.main(["logins", "--dsn", dsn, "--allow", billing, "billing-*", "--format", "csv"]) == 0
    )
    assert capsys.readouterr().out.splitlines() == ["login,service_pattern", f"{billing},billing-*"]
    assert cli.main(["logins", "--dsn", dsn, "--allow", "nobody", "x"]) == 1
    assert "invalid login 'nobody': no such role" in capsys.readouterr().err
    assert cli.main(["logins", "--dsn", dsn, "--disallow", billing, "billing-*"]) == 0
    assert cli.main(["logins", "--dsn", dsn, "--disallow", billing, "billing-*"]) == 1
    assert "had no allowance 'billing-*'" in capsys.readouterr().err


def test_a_heartbeat_thread_refused_by_its_allowances_keeps_the_host_running(
    db: Conn, login: Login, caplog: pytest.LogCaptureFixture
) -> None:
    writer = login("pystatus_writer")
    pystatus.allow_service(db, user(writer), "billing-*")
    with Heartbeat(writer, "search", interval=0.1, final_status=None) as beat:
        wait_for(lambda: beat.failures >= 2)
        assert isinstance(beat.last_error, pystatus.NotAllowed)
    assert "may not heartbeat for service 'search'" in caplog.text
    assert one(db, "SELECT count(*) FROM public.system_status WHERE service_name = 'search'") == 0


def test_maintenance_leaves_the_callers_search_path_alone(db: Conn) -> None:
    db.execute("SET search_path = public, pystatus")
    db.execute("SELECT maintain()")
    db.execute("SELECT move_default_rows()")
    db.execute("SELECT create_history_partitions(now() - interval '20 days', now())")
    pystatus.heartbeat(db, "api")
    db.execute("SELECT sweep(), refresh_rollups()")
    db.execute("SELECT * FROM pystatus.check()")
    assert one(db, "SHOW search_path") == "public, pystatus"


def test_the_setup_report_says_what_is_left_to_grant(db: Conn, login: Login) -> None:
    def todos() -> dict[str, str | None]:
        rows = db.execute("SELECT item, todo FROM pystatus.setup_report() WHERE item LIKE 'role %'")
        return dict(rows.fetchall())

    assert todos() == {
        "role pystatus_writer": "grant pystatus_writer to the logins of services: "
        "GRANT pystatus_writer TO <login>",
        "role pystatus_reader": "grant pystatus_reader to the logins of dashboards and monitoring: "
        "GRANT pystatus_reader TO <login>",
        "role pystatus_alerter": "grant pystatus_alerter to the logins of the alert worker, if you "
        "use alerts: GRANT pystatus_alerter TO <login>",
    }
    login("pystatus_writer")
    login("pystatus_reader")
    login("pystatus_alerter")
    assert todos() == {
        "role pystatus_writer": None,
        "role pystatus_reader": None,
        "role pystatus_alerter": None,
    }
