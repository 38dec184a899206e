"""The named queries of sql/queries.sql, loaded once."""

from __future__ import annotations

import importlib.resources
import re

from psycopg import sql


def _load() -> dict[str, sql.SQL]:
    text = (importlib.resources.files("pystatus") / "sql" / "queries.sql").read_text()
    sections = re.split(r"^-- (\w+) --\n", text, flags=re.MULTILINE)[1:]
    return {
        name: sql.SQL(body.split("\n", 1)[1].strip())  # drop the description line
        for name, body in zip(sections[::2], sections[1::2])
    }


QUERIES = _load()
