"""pgspot over the SQL scripts (what `make lint` runs), and proof that the
wrapper still reports what pgspot would, SQL-standard bodies included; the
SQL's comments name files that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pystatus.migrations import Sources

LINT = Path(__file__).resolve().parent.parent / "scripts" / "lint_sql.py"


def lint(*files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(LINT), *files], capture_output=True, text=True)


def test_the_sql_scripts_have_no_findings() -> None:
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TOTAL: Errors: 0 Warnings: 0 Unknown: 0" in result.stdout


def test_findings_fail_the_lint(tmp_path: Path) -> None:
    script = tmp_path / "bad.sql"
    script.write_text(
        "CREATE SCHEMA s;\n"
        # Bound at creation under the session's search_path: an unqualified operator.
        "CREATE FUNCTION s.standard(a int) RETURNS int LANGUAGE sql RETURN a + 1;\n"
        "CREATE FUNCTION s.definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS $$ SELECT 1 $$;\n"
        "SET search_path = pg_catalog, pg_temp;\n"
        "CREATE FUNCTION s.pinned(a int) RETURNS int LANGUAGE sql RETURN a + 1;\n"
    )
    result = lint(str(script))
    assert result.returncode == 1
    findings = [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("PS")]
    assert findings == ["PS001", "PS003"], result.stdout


def test_the_sql_names_only_files_that_exist() -> None:
    """A comment that points at another file of sql/schema/ points at one that is
    there: files were renamed and merged, and comments kept their old names."""
    schema = Sources().root / "schema"
    named = {
        (path.name, name)
        for path in schema.glob("*.sql")
        for name in re.findall(r"\b(\d\d_\w+\.sql)\b", path.read_text())
    }
    assert named, "no file names any other"
    assert [(f, n) for f, n in sorted(named) if not (schema / n).exists()] == []
