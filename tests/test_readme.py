"""The README and docs/ cannot drift: their runnable examples run, their links resolve.

A code block is runnable when the line just before its opening fence is an HTML
comment (GitHub does not show it)::

    <!-- runnable -->
    ```sh
    pystatus heartbeat librarian
    ```

``<!-- runnable: prints TEXT -->`` also checks that the block's output contains
TEXT. Each page's runnable blocks run in order, against one fresh migrated
database (the ``dsn`` fixture), in a temporary directory, with ``DATABASE_URL``
set and ``.venv/bin`` first on ``PATH``: ``sh`` blocks with ``sh -e``, ``python``
blocks with this Python, ``sql`` blocks with ``psql -v ON_ERROR_STOP=1``. Each
must exit 0 within ``TIMEOUT`` seconds. Mark only blocks that are quick and need
nothing but the database.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250
TIMEOUT = 60

MARKER = re.compile(r"^<!--\s*runnable(?::\s*prints\s+(?P<prints>.*?))?\s*-->$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
IMAGE = re.compile(r"!\[[^\]]*\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(?P<title>.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    prints: str | None

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line} ({self.lang})"


def code_blocks(lines: list[str]) -> list[tuple[int, int, str]]:
    """Each fenced code block as (index of its opening fence, index of its closing
    fence, language); fences may be indented (in list items) and nest by length."""
    blocks: list[tuple[int, int, str]] = []
    fence, start, lang = "", 0, ""
    for index, line in enumerate(lines):
        stripped = line.strip()
        opening = FENCE.match(stripped)
        if not fence and opening:
            fence, start, lang = opening["fence"], index, opening["lang"]
        elif fence and stripped.startswith(fence) and not stripped.strip(fence[0]):
            blocks.append((start, index, lang))
            fence = ""
    return blocks


def prose_lines(page: Path) -> list[tuple[int, str]]:
    """The lines outside code blocks, with their 1-based numbers."""
    lines = page.read_text().splitlines()
    inside = {i for start, end, _ in code_blocks(lines) for i in range(start, end + 1)}
    return [(i + 1, line) for i, line in enumerate(lines) if i not in inside]


def runnable_blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    for start, end, lang in code_blocks(lines):
        marker = MARKER.match(lines[start - 1].strip()) if start else None
        if marker:
            code = "\n".join(lines[start + 1 : end]) + "\n"
            blocks.append(Block(page, start + 1, lang, code, marker["prints"]))
    return blocks


def slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link's text
    text = text.replace("`", "").strip().lower()
    kept = "".join(
        c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN" or c.isdigit()
    )
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(page):
        heading = HEADING.match(line)
        if heading:
            base = slug(heading["title"])
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(page: Path) -> list[tuple[int, str]]:
    links: list[tuple[int, str]] = []
    for number, line in prose_lines(page):
        prose = re.sub(r"`[^`]*`", "", line)  # code spans hold no links
        for match in [*LINK.finditer(prose), *IMAGE.finditer(prose)]:
            target = match["target"]
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # not http:, mailto:, ...
                links.append((number, target))
    return links


def run(block: Block, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    if block.lang in ("sh", "bash", "shell", "console"):
        command = ["sh", "-e", "-c", block.code]
    elif block.lang == "python":
        command = [sys.executable, "-c", block.code]
    elif block.lang == "sql":
        command = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", env["DATABASE_URL"]]
    else:
        pytest.fail(f"{block}: no way to run a {block.lang!r} block")
    return subprocess.run(
        command,
        input=block.code if block.lang == "sql" else None,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )


PAGES_WITH_EXAMPLES = [page for page in PAGES if runnable_blocks(page)]


def test_the_readme_has_runnable_examples() -> None:
    langs = {block.lang for block in runnable_blocks(ROOT / "README.md")}
    assert {"sh", "python", "sql"} <= langs


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=lambda page: page.name)
def test_runnable_examples_run(page: Path, dsn: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
    }
    for block in runnable_blocks(page):
        done = run(block, env, tmp_path)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{block} exited {done.returncode}:\n{block.code}\n{output}"
        if block.prints:
            assert block.prints in done.stdout, f"{block} did not print {block.prints!r}:\n{output}"


def test_the_readme_is_short() -> None:
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for number, target in relative_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / unquote(path)).resolve() if path else page
        if not linked.exists():
            broken.append(f"{number}: {target} (no such file)")
        elif anchor and linked.suffix == ".md" and unquote(anchor) not in anchors(linked):
            broken.append(f"{number}: {target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_slugs_follow_github() -> None:
    assert slug("HTTP pings (cron jobs and scripts)") == "http-pings-cron-jobs-and-scripts"
    assert slug("Adopting an existing `system_status`") == "adopting-an-existing-system_status"
    assert slug("Retention: how long a row lives") == "retention-how-long-a-row-lives"
    assert slug("`make bench` after the live-database protections") == (
        "make-bench-after-the-live-database-protections"
    )
