"""Which login may heartbeat for which services (pystatus.service_logins).
Empty, any login granted pystatus_writer may report any service; once it has
a row, each login may report only the services its patterns match."""

from __future__ import annotations

from typing import Any

import psycopg

from pystatus.errors import translate_errors
from pystatus.queries import QUERIES

Conn = psycopg.Connection[Any]


def allow_service(conn: Conn, login: str, service_pattern: str) -> None:
    """Lets ``login`` heartbeat for the services ``service_pattern`` matches (* any characters)."""
    with translate_errors():
        conn.execute(QUERIES["allow_service"], {"login": login, "service_pattern": service_pattern})


def disallow_service(conn: Conn, login: str, service_pattern: str) -> bool:
    """Removes one allowance; True if there was one."""
    params = {"login": login, "service_pattern": service_pattern}
    with translate_errors():
        row = conn.execute(QUERIES["disallow_service"], params).fetchone()
    return bool(row and row[0])


def service_logins(conn: Conn) -> list[tuple[str, str]]:
    """Every (login, service pattern) allowance."""
    with translate_errors():
        return conn.execute(QUERIES["service_logins"]).fetchall()
