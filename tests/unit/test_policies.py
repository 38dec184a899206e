"""The pure policies, without a database: retry waits, version order, the
vocabulary's order, and the CLI's early refusals. `make test-unit` runs this
layer in seconds."""

from __future__ import annotations

import argparse

import pytest

from pystatus import vocabulary
from pystatus.cli import common
from pystatus.connection import backoff
from pystatus.migrations import _release


def test_backoff_doubles_from_first_to_most() -> None:
    waits = [backoff(n, first=0.5, most=4.0) for n in range(1, 8)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert backoff(0, first=0.5, most=4.0) == 0.5  # no failure yet: the first wait


def test_backoff_spread_stays_within_its_bounds() -> None:
    spread = [backoff(3, first=1.0, most=30.0, spread=0.2) for _ in range(200)]
    assert all(3.2 <= wait <= 4.8 for wait in spread)
    assert len(set(spread)) > 1  # not in step


def test_a_development_version_comes_before_its_release() -> None:
    shuffled = ["0.10.0", "0.4.0", "0.4.0.dev0", "0.4.0rc1", "0.2.0", "0.3.0"]
    assert sorted(shuffled, key=_release) == [
        "0.2.0",
        "0.3.0",
        "0.4.0.dev0",
        "0.4.0rc1",
        "0.4.0",
        "0.10.0",
    ]
    assert _release("0.4.0.dev0") < _release("0.4.0")
    assert _release("0.4.0.dev0") == _release("0.4.0rc1")  # both before it; neither after


def test_severity_puts_the_worst_first_and_the_unknown_last() -> None:
    assert sorted(["ok", "stale", "degraded", "down"], key=vocabulary.severity) == [
        "down",
        "stale",
        "degraded",
        "ok",
    ]
    assert vocabulary.severity("nonsense") == len(vocabulary.SEVERITY)


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (common.days, "0", "must be 1 to 3660 days"),
        (common.days, "x", "not a whole number of days"),
        (common.interval, "12", "has no unit"),
        (common.interval, "-1 day", "write it positive"),
        (common.interval, " ", "an empty interval"),
        (common.non_negative_float, "nan", "must be a finite number"),
        (common.non_negative_int, "-1", "must be 0 or more"),
        (common.positive_seconds, "0.01", "between 0.1 and 86400"),
    ],
)
def test_the_cli_refuses_what_cannot_be_an_argument(parse: object, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse(text)  # type: ignore[operator]


def test_the_cli_takes_what_can_be() -> None:
    assert common.days("30") == 30
    assert common.interval(" 12h ") == "12h"
    assert common.positive_seconds("2.5") == 2.5
