"""Prometheus's own tool on pystatus's metrics and sample rules: every scrape is
clean for `promtool check metrics` whatever state the fleet is in, and the
rules in docs/prometheus/ pass `promtool check rules` and their unit tests
(`promtool test rules`: they fire on a reported down within their `for:`, stay
one alert when down turns stale, and fire when the exporter is unreachable)."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import generate_latest

import pystatus
from pystatus import metrics
from pystatus.cluster import free_port

Conn = psycopg.Connection[Any]
MINUTE = timedelta(minutes=1)
ROOT = Path(__file__).parent.parent
RULES = ROOT / "docs" / "prometheus" / "pystatus-rules.yml"
RULE_TESTS = Path(__file__).parent / "prometheus" / "rules_test.yml"


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def assert_clean(text: str) -> None:
    checked = promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr


def scrape(dsn: str) -> str:
    return generate_latest(metrics.registry(dsn)).decode()


def test_the_sample_rules_are_valid_and_pass_their_unit_tests() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        ["promtool", "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_an_empty_install_scrapes_clean(dsn: str) -> None:
    assert_clean(scrape(dsn))


def test_a_fleet_in_every_status_scrapes_clean(db: Conn, dsn: str) -> None:
    for status in ("ok", "degraded", "down", "starting", "stopping", "maintenance"):
        pystatus.heartbeat(db, f"svc-{status}", status, latency_ms=12.5)
    # The last hour the rollups hold (it ends 5 minutes before it is rolled up:
    # before 5 past, that is the hour before last), whenever the test runs.
    db.execute("SELECT pystatus.refresh_rollups()")
    last_hour = db.execute(
        "SELECT rolled_until - interval '1 hour' FROM pystatus.rollup_state"
    ).fetchone()[0]
    for minute, latency in ((10, 20.0), (20, 40.0)):
        pystatus.record_heartbeat(db, "timed", "ok", None, last_hour + minute * MINUTE, latency)
    pystatus.record_heartbeat(db, "silent", "ok", None, last_hour)
    db.execute("SELECT pystatus.refresh_rollups()")
    text = scrape(dsn)
    assert 'pystatus_service_latency_p50_seconds{service="timed"}' in text
    assert 'pystatus_service_status{service="svc-down",status="down"} 1.0' in text
    assert 'pystatus_service_status{service="silent",status="stale"} 1.0' in text
    assert_clean(text)


def test_a_scrape_while_the_database_is_away_is_clean() -> None:
    text = scrape(f"host=127.0.0.1 port={free_port()} user=nobody dbname=none connect_timeout=2")
    assert "pystatus_scrape_ok 0.0" in text
    assert_clean(text)


def test_the_check_finds_what_the_old_latency_gauge_was() -> None:
    """The control: a gauge with a quantile label, as scrapes had it, is refused."""
    old = '# HELP x_seconds latency\n# TYPE x_seconds gauge\nx_seconds{quantile="0.5"} 0.1\n'
    with pytest.raises(AssertionError):
        assert_clean(old)
