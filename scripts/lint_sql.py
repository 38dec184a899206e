"""pgspot over pystatus's SQL scripts: any finding fails `make lint`.

pgspot 0.9 stops at the first function with an SQL-standard body (`RETURN expr`
or `BEGIN ATOMIC`), which it cannot read. PostgreSQL binds such a body when the
function is created, so the caller's search_path never reaches it: the body is
checked as part of the script, under the script's own search_path, which
is what PostgreSQL resolves it with.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pgspot import cli, visitors


def check_sql_standard_body(original: Any) -> Any:
    def visit(self: Any, ancestors: Any, node: Any) -> None:
        if node.sql_body is None:
            return original(self, ancestors, node)
        if node.replace and not (
            len(node.funcname) == 2 and node.funcname[0].sval in self.state.created_schemas
        ):
            self.state.warn("PS002", visitors.format_function(node))
        if any(option.defname == "security" and option.arg.boolval for option in node.options):
            self.state.error("PS003", visitors.format_function(node))
        # The visitor goes on into the body, under the script's search_path.
        return None

    return visit


visitors.SQLVisitor.visit_CreateFunctionStmt = check_sql_standard_body(
    visitors.SQLVisitor.visit_CreateFunctionStmt
)


def scripts() -> list[str]:
    """Every SQL script in the order a database sees them: the migrations, their
    rollbacks newest first, the demo's history. (sql/queries.sql holds psycopg
    queries with placeholders, run with the caller's own rights; it is not a script.)"""
    sql = Path(__file__).resolve().parent.parent / "sql"
    migrations = sorted(
        p for p in (sql / "migrations").glob("*.sql") if not p.name.endswith(".rollback.sql")
    )
    rollbacks = sorted((sql / "migrations").glob("*.rollback.sql"), reverse=True)
    return [str(p) for p in [*migrations, *rollbacks, sql / "demo" / "history.sql"]]


# Functions that do not pin search_path, each for a reason given beside it in
# 0001_foundation.sql: the three that call pg_partman (pg_partman 4.x resets
# search_path for the whole session to what it found) and the copy trigger
# (run for every row; a pin costs batches about 10 %). Their bodies name every
# function and operator with its schema, which pgspot checks: only the missing
# pin is allowed.
UNPINNED = [
    "pystatus.create_history_partitions(p_from timestamptz,p_until timestamptz)",
    "pystatus.maintain()",
    "pystatus.move_default_rows()",
    "pystatus.copy_status_to_history()",
]

if __name__ == "__main__":
    if len(sys.argv) == 1:
        # Appended: schemas created by one migration are known to the next.
        sys.argv += ["--append", "--summary-only", *scripts()]
    for function in UNPINNED:
        sys.argv[1:1] = ["--proc-without-search-path", function]
    sys.exit(cli.run())
