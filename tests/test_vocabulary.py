"""One source for the vocabulary: every list Python keeps of statuses, their order,
what needs attention, the default expectation and the alert channel is what SQL
says, asked of an installed database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from pystatus import alerts, docker_collector, ingest, output, vocabulary
from tests.helpers import one

Conn = psycopg.Connection[Any]


def test_the_statuses_are_sqls(db: Conn) -> None:
    assert list(vocabulary.STATUSES) == one(db, "SELECT pystatus._statuses()")
    # What services may report: every status but the one pystatus writes.
    for status in vocabulary.STATUSES:
        valid = one(db, "SELECT pystatus._is_valid_heartbeat('svc', %s, NULL, NULL)", (status,))
        assert valid is (status in vocabulary.REPORTED), status


def test_each_status_means_in_python_what_it_means_in_sql(db: Conn) -> None:
    rows = db.execute(
        "SELECT s, pystatus.status_severity(s),"
        " pystatus.needs_attention(s), pystatus.status_category(s) = 'down'"
        " FROM unnest(pystatus._statuses()) AS s"
    ).fetchall()
    for status, severity, attention, down in rows:
        assert vocabulary.severity(status) == severity, status
        assert (status in vocabulary.NEEDS_ATTENTION) is attention, status
        assert (status in vocabulary.DOWN) is down, status
    assert set(vocabulary.SEVERITY) == set(vocabulary.STATUSES)


def test_the_default_expectation_and_the_alert_channel_are_sqls(db: Conn) -> None:
    assert one(db, "SELECT pystatus.default_grace()") == vocabulary.DEFAULT_GRACE
    assert one(db, "SELECT pystatus.max_window()") == timedelta(days=vocabulary.MAX_WINDOW_DAYS)
    assert one(db, "SELECT pystatus._alerts_channel()") == alerts.NOTIFY_CHANNEL


def test_every_list_of_statuses_in_python_is_the_vocabulary() -> None:
    assert set(output.STATUS_STYLES) == set(vocabulary.STATUSES)
    # The ping endpoint's paths (its own, /start and /fail, included) record only
    # statuses services may report.
    assert set(ingest.STATUS_PATHS.values()) <= set(vocabulary.REPORTED)
    containers = {*docker_collector.STATE_STATUS.values(), *docker_collector.HEALTH_STATUS.values()}
    assert containers <= set(vocabulary.REPORTED)
