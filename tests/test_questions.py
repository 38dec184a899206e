"""What a question names, checked by the server in the answer's own statement: a
window written as text, and a service that must have reported (with close names
when it has not). As the owner and as a pystatus_reader login."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import answers
from pystatus.errors import InvalidSetting, UnknownService
from tests.helpers import one

Conn = psycopg.Connection[Any]


@pytest.fixture
def fleet(db: Conn) -> Conn:
    for name in ("billing-api", "billing-web", "search"):
        pystatus.heartbeat(db, name)
    return db


def test_a_window_as_text_starts_that_long_before_the_servers_now(fleet: Conn) -> None:
    (report,) = answers.uptime(fleet, "search", "12h")
    assert report.until - report.since == timedelta(hours=12)
    (same,) = answers.uptime(fleet, "search", timedelta(hours=12))
    assert same.until - same.since == timedelta(hours=12)
    # A time stays a time.
    start = one(fleet, "SELECT now() - interval '3 hours'")
    (timed,) = answers.uptime(fleet, "search", start)
    assert timed.since == start


@pytest.mark.parametrize(
    ("span", "message"),
    [
        ("0 seconds", "--since '0 seconds': must be a positive interval, e.g. 12h"),
        ("-2 days", "--since '-2 days': must be a positive interval, e.g. 12h"),
        ("20 years", "--since '20 years': must be at most 3660 days"),
    ],
)
def test_a_window_out_of_bounds_is_named_as_written(fleet: Conn, span: str, message: str) -> None:
    with pytest.raises(InvalidSetting) as refused:
        answers.incidents(fleet, None, span, label="--since")
    assert str(refused.value) == message


def test_an_unknown_service_is_an_error_naming_close_ones(fleet: Conn) -> None:
    with pytest.raises(UnknownService) as refused:
        answers.transitions(fleet, "billing-apl", "1 day", known=True)
    assert str(refused.value) == (
        "no service named 'billing-apl' (did you mean 'billing-api', 'billing-web'?)"
    )
    with pytest.raises(UnknownService) as far:
        answers.uptime(fleet, "xyzzy", "1 day", known=True)
    assert str(far.value) == "no service named 'xyzzy'"
    # Without known, an unknown service is a question with no answer rows.
    assert answers.transitions(fleet, "billing-apl", "1 day") == []
    # Every service (None) is always known.
    assert len(answers.uptime(fleet, None, "1 day", known=True)) == 3


def test_a_reader_asks_with_both_checks(fleet: Conn, login: Callable[..., str]) -> None:
    with psycopg.connect(login("pystatus_reader"), autocommit=True) as reader:
        (report,) = answers.uptime(reader, "search", "1 day", known=True)
        assert report.service_name == "search"
        trend = answers.trend(reader, "search", "1 day", "7 days", known=True)
        assert trend.verdict == "not enough data"
        with pytest.raises(UnknownService, match="did you mean 'search'"):
            answers.task_durations(reader, "serch", "1 day", known=True)
        with pytest.raises(InvalidSetting, match="--baseline '0 days'"):
            answers.trend(reader, "search", "1 day", "0 days", labels=("--recent", "--baseline"))
