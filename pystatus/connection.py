"""Where pystatus finds its database."""

from __future__ import annotations

import os


def resolve_dsn(dsn: str | None = None) -> str:
    """The DSN to use: the argument, else ``DATABASE_URL``, else "" (libpq's PG* variables)."""
    if dsn:
        return dsn
    return os.environ.get("DATABASE_URL", "")
