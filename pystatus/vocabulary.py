"""The status vocabulary as Python uses it. SQL is its source
(sql/schema/10_rules.sql: ``_statuses()``, ``status_severity()``, ``status_category()``,
``goes_stale()``; 55_dashboard.sql: ``needs_attention()``); tests/test_vocabulary.py
asks the database and fails when the two part."""

from __future__ import annotations

from datetime import timedelta

# What services report; stale only pystatus writes, when one falls silent.
REPORTED = ("ok", "degraded", "down", "starting", "stopping", "maintenance")
STALE = "stale"
STATUSES = (*REPORTED, STALE)
# Worst first, as lists and summaries show statuses.
SEVERITY = ("down", "stale", "degraded", "maintenance", "starting", "stopping", "ok")
# Effective statuses that count as down in uptime, and those that need attention.
DOWN = frozenset({"down", "stale"})
NEEDS_ATTENTION = frozenset({"degraded", "down", "stale"})
# The longest window a question may span (SQL: pystatus.max_window()).
MAX_WINDOW_DAYS = 3660
# The lateness forgiven a service unless said otherwise (`pystatus expect`'s default).
DEFAULT_GRACE = timedelta(seconds=60)


def severity(status: str) -> int:
    """0 for the worst status; past the last for anything else."""
    return SEVERITY.index(status) if status in SEVERITY else len(SEVERITY)
