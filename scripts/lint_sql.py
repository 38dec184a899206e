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

import pglast
from pglast import ast
from pgspot import cli, formatters, state, visitors

from pystatus.migrations import Sources


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

# Released files never change, and one of them, 0005_compact_history's
# rollback, restores the copy trigger as it was before 0005, SECURITY
# DEFINER without a pinned search_path (the version rolled back to applies its
# own definitions over it). pgspot reports PS003 for it alone; every definer
# function of sql/schema/ pins its path, which test_roles.py checks in the catalog.
RELEASED_UNPINNED_DEFINERS = {"pystatus._copy_status_to_history()"}
_report_error = state.State.error


def error_unless_released(self: Any, code: str, context: Any) -> None:
    if code == "PS003" and str(context) in RELEASED_UNPINNED_DEFINERS:
        return
    _report_error(self, code, context)


state.State.error = error_unless_released  # type: ignore[method-assign]

# The copy trigger reads its statement's transition tables, new_rows and
# old_rows, which cannot be schema-qualified. PostgreSQL looks an unqualified
# name up among the trigger's transition tables before any schema (the parser
# checks ephemeral named relations first), so no object on the caller's
# search_path can stand in for them.
TRANSITION_TABLES = {"new_rows", "old_rows"}
_report_warning = state.State.warn


def warn_unless_transition_table(self: Any, code: str, context: Any) -> None:
    if code == "PS017" and str(context) in TRANSITION_TABLES:
        return
    _report_warning(self, code, context)


state.State.warn = warn_unless_transition_table  # type: ignore[method-assign]


def unpinned_signatures(sources: Sources) -> list[str]:
    """pgspot's spelling of the functions sql/schema/ exempts from a pinned search_path
    (each with its reason, above its definition; the tests read the same marks)."""
    names = sources.unpinned_functions()
    found = []
    for path in sources.schema_files:
        for statement in pglast.parse_sql(path.read_text()):
            node = statement.stmt
            if isinstance(node, ast.CreateFunctionStmt) and node.funcname[-1].sval in names:
                found.append(formatters.format_function(node))
    return found


def runs(sources: Sources) -> list[list[str]]:
    """The scripts in the order a database sees them, each run appended (schemas made
    by one script are known to the next): an installation with its rollback and the
    demo's history; and the readable definition of the tables, which the migrations
    build. (sql/queries.sql holds psycopg queries with placeholders, run with the
    caller's own rights; it is not a script.)"""
    migrations = [Path(m.path) for m in sources.migrations()]
    rollbacks = [p.with_suffix(".rollback.sql") for p in reversed(migrations)]
    install = [*sources.before_migrations, *migrations, *sources.after_migrations]
    return [
        [str(p) for p in [*install, *rollbacks, sources.root / "demo" / "history.sql"]],
        [str(p) for p in [*sources.before_migrations, sources.tables]],
    ]


def main(files: list[str]) -> int:
    """Lints the given scripts, or (none given) pystatus's own."""
    sources = Sources()
    exempt = [
        arg for f in unpinned_signatures(sources) for arg in ("--proc-without-search-path", f)
    ]
    status = 0
    for arguments in (
        [files] if files else [["--append", "--summary-only", *r] for r in runs(sources)]
    ):
        sys.argv = [sys.argv[0], *exempt, *arguments]
        try:
            cli.run()  # exits 1 on a finding: go on with the other run all the same
        except SystemExit as finished:
            status = max(status, int(finished.code or 0))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
