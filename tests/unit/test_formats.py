"""The two ways pystatus writes a duration, side by side: to the second in the
CLI's tables, whole units at a glance on the dashboard (whose app.js writes the
same; test_browser.py compares them)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pystatus.output import age, duration, rough_duration


@pytest.mark.parametrize(
    ("seconds", "precise", "rough", "ago"),
    [
        (0, "0 s", "0 s", "0 s ago"),
        (4.25, "4.2 s", "4 s", "4 s ago"),
        (42, "42 s", "42 s", "42 s ago"),
        (303, "5 min 3 s", "5 min", "5 min ago"),
        (3 * 3600 + 7 * 60, "3 h 7 min", "3 h", "3 h ago"),
        (86_400 + 21 * 60, "1 d 0 h 21 min", "24 h", "1 d ago"),
        (3 * 86_400, "3 d", "3 d", "3 d ago"),
    ],
)
def test_a_duration_to_the_second_and_at_a_glance(
    seconds: float, precise: str, rough: str, ago: str
) -> None:
    assert duration(seconds) == precise
    assert rough_duration(seconds) == rough == rough_duration(timedelta(seconds=seconds))
    assert age(seconds) == ago


def test_a_negative_duration_at_a_glance_is_zero() -> None:
    assert rough_duration(-5) == "0 s"
