"""The named queries of sql/queries.sql, loaded once."""

from __future__ import annotations

import importlib.resources
import re
from typing import cast

from typing_extensions import LiteralString


def _load() -> dict[str, LiteralString]:
    text = (importlib.resources.files("pystatus") / "sql" / "queries.sql").read_text()
    sections = re.split(r"^-- (\w+) --\n", text, flags=re.MULTILINE)[1:]
    # Plain strings, not sql.SQL objects: psycopg caches the parsing of a string
    # query, which keeps a heartbeat as cheap as a hand-written execute().
    return {
        name: cast(LiteralString, body.split("\n", 1)[1].strip())  # drop the description line
        for name, body in zip(sections[::2], sections[1::2])
    }


QUERIES = _load()
