"""Text as pystatus's rules want it, checked in Python before it is sent: the
naming rule and the cleaning rule of sql/schema/10_rules.sql (the database
stays the authority; tests keep each pair in agreement), used to make free
text such as a health check's output or a script's last line a clean, short
current_task."""

from __future__ import annotations

import re

# The characters the naming rule names (sql/schema/10_rules.sql, _name_characters).
_WHITE_SPACE = "\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# NUL too: PostgreSQL's text cannot hold it, and psycopg refuses to send it.
_CONTROL = "\x00-\x1f\x7f-\x9f"
_INVISIBLE = (
    "\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0"
)
# Lone surrogates (JSON may carry them) cannot be encoded as UTF-8 at all.
_SURROGATE = "\ud800-\udfff"
# What no text of pystatus's may hold, as the inside of a regular expression's bracket.
UNPRINTABLE = f"{_CONTROL}{_INVISIBLE}{_SURROGATE}"
_UNPRINTABLE = re.compile(f"[{UNPRINTABLE}]")
_SPACES = re.compile(f"[{_WHITE_SPACE}]+")


def service_name_problem(name: str) -> str | None:
    """Why ``name`` breaks pystatus's naming rule, or None when it keeps it."""
    if not name:
        return "must not be empty"
    if len(name) > 64:
        return f"must be at most 64 characters (it has {len(name)})"
    if _UNPRINTABLE.search(name):
        return "must not contain control, invisible or unencodable characters"
    if _SPACES.fullmatch(name):
        return "must not be blank"
    if _SPACES.match(name) or _SPACES.match(name[-1]):
        return "must not start or end with white space"
    return None


def clean_text(text: str, limit: int) -> str:
    """``text`` on one printable line of at most ``limit`` characters: the SQL function
    pystatus.clean_text() (control and invisible characters become spaces, runs of
    white space one space, none at either end), then shortened to ``limit``."""
    # strip(" "), as SQL's btrim(..., ' '): by now every other white space is a space.
    line = _SPACES.sub(" ", _UNPRINTABLE.sub(" ", text)).strip(" ")
    return line if len(line) <= limit else line[: limit - 3].rstrip(" ") + "..."
