"""An installation as the catalog describes it, for comparing two installations:
tables, columns, constraints, indexes, functions (bodies, settings), views,
types, triggers, grants, comments, pg_partman's configuration and the pg_cron
jobs. Names of partitions, which follow the clock, are left out."""

from __future__ import annotations

from typing import Any

import psycopg

# The objects pystatus owns: its schema, and the two status tables in public.
RELATIONS = """
    SELECT c.oid FROM pg_class AS c
    WHERE (c.relnamespace = to_regnamespace('pystatus')
           OR c.oid IN (to_regclass('public.system_status'),
                        to_regclass('public.system_status_history')))
      AND NOT c.relispartition
"""

QUERIES: dict[str, str] = {
    "schema": """
        SELECT nspname, obj_description(oid, 'pg_namespace'), nspacl::text
        FROM pg_namespace WHERE nspname = 'pystatus'
    """,
    "relations": f"""
        SELECT c.oid::regclass::text, c.relkind, c.relpersistence, c.reloptions::text,
               pg_get_partkeydef(c.oid), obj_description(c.oid, 'pg_class'),
               c.relacl::text,
               CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END
        FROM pg_class AS c WHERE c.oid IN ({RELATIONS}) AND c.relkind IN ('r', 'p', 'v', 'c')
    """,
    "columns": f"""
        SELECT a.attrelid::regclass::text,
               row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
               a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
               a.attgenerated, pg_get_expr(d.adbin, d.adrelid),
               col_description(a.attrelid, a.attnum),
               a.attacl::text
        FROM pg_attribute AS a
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid IN ({RELATIONS}) AND a.attnum > 0 AND NOT a.attisdropped
    """,
    "constraints": f"""
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid),
               obj_description(oid, 'pg_constraint')
        FROM pg_constraint WHERE conrelid IN ({RELATIONS})
    """,
    "indexes": f"""
        SELECT i.indrelid::regclass::text, c.relname, pg_get_indexdef(i.indexrelid),
               obj_description(i.indexrelid, 'pg_class')
        FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
        WHERE i.indrelid IN ({RELATIONS})
    """,
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid),
               obj_description(p.oid, 'pg_proc'), p.proacl::text
        FROM pg_proc AS p WHERE p.pronamespace = to_regnamespace('pystatus')
    """,
    "types": """
        SELECT t.oid::regtype::text, t.typtype, obj_description(t.oid, 'pg_type'), t.typacl::text
        FROM pg_type AS t
        WHERE t.typnamespace = to_regnamespace('pystatus') AND t.typtype = 'c'
          AND NOT EXISTS (SELECT FROM pg_class AS c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
    """,
    "triggers": f"""
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid), tgenabled,
               obj_description(oid, 'pg_trigger')
        FROM pg_trigger WHERE tgrelid IN ({RELATIONS}) AND NOT tgisinternal
    """,
    "sequences": f"""
        SELECT s.seqrelid::regclass::text, s.seqtypid::regtype::text,
               s.seqstart, s.seqincrement, s.seqcache, s.seqcycle
        FROM pg_sequence AS s JOIN pg_depend AS d ON d.objid = s.seqrelid
        WHERE d.refobjid IN ({RELATIONS})
    """,
}

PARTMAN = """
    SELECT row_to_json(c)::jsonb - 'parent_table' - 'maintenance_last_run'
    FROM {schema}.part_config AS c WHERE c.parent_table = 'public.system_status_history'
"""

JOBS = """
    SELECT jobname, schedule, command, database, username, active
    FROM cron.job WHERE database = current_database()
"""


def describe(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Every property of the installation that two installations should share."""
    found = {
        name: sorted(conn.execute(query).fetchall(), key=repr) for name, query in QUERIES.items()
    }
    row = conn.execute(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_partman'"
    ).fetchone()
    if row is not None:
        found["pg_partman"] = conn.execute(PARTMAN.format(schema=row[0])).fetchall()
    if conn.execute("SELECT to_regclass('cron.job')").fetchone() != (None,):
        found["pg_cron"] = sorted(conn.execute(JOBS).fetchall())
    return found


def differences(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> list[str]:
    """What one description has that the other lacks, item by item."""
    lines = []
    for kind in sorted(set(a) | set(b)):
        only_a = [r for r in a.get(kind, []) if r not in b.get(kind, [])]
        only_b = [r for r in b.get(kind, []) if r not in a.get(kind, [])]
        lines += [f"{kind}: only in the first: {r!r}" for r in only_a]
        lines += [f"{kind}: only in the second: {r!r}" for r in only_b]
    return lines
