"""Prometheus exposition, scraped by a real Prometheus server (Debian's
`prometheus`): the values it stores equal what the database says, read as a
pystatus_reader login; a scrape while the database is away still answers."""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import generate_latest

import pystatus
from pystatus import metrics
from pystatus.cluster import free_port
from tests.helpers import one, wait_for
from tests.serving import dashboard

Conn = psycopg.Connection[Any]
PROMETHEUS = Path("/usr/bin/prometheus")
MIN = timedelta(minutes=1)


@contextmanager
def exporter(dsn: str) -> Iterator[int]:
    """`pystatus exporter` in a thread; yields its port."""
    port, stop = free_port(), threading.Event()
    thread = threading.Thread(target=metrics.serve, args=(dsn, "127.0.0.1", port, stop))
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(15)


@contextmanager
def prometheus(target_port: int) -> Iterator[str]:
    """A Prometheus server scraping 127.0.0.1:target_port every second; yields its URL."""
    if not PROMETHEUS.exists():
        pytest.fail("Prometheus is not installed: run scripts/install-system-packages")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="pystatus-prometheus-") as work:
        config = Path(work) / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: pystatus\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
        )
        server = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={work}/data",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(30)


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """The instant vector of a PromQL query, through Prometheus's HTTP API."""
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(address, timeout=5) as response:
            answer = json.load(response)
    except OSError:
        return []  # not up yet
    return answer["data"]["result"]  # type: ignore[no-any-return]


@pytest.fixture
def fleet(db: Conn) -> datetime:
    """Three services: one up with a day of history (rolled up), one down, one stale."""
    start = one(db, "SELECT date_trunc('hour', now()) - interval '2 days'")
    for minute in range(0, 36 * 60, 5):
        status = "down" if 300 <= minute < 420 else "ok"
        pystatus.record_heartbeat(db, "search", status, None, start + minute * MIN, 12.0)
    pystatus.heartbeat(db, "search", "ok", latency_ms=15.0)
    pystatus.heartbeat(db, "billing", "down")
    pystatus.heartbeat(db, "mailer", "ok")
    db.execute(
        "UPDATE system_status SET last_heartbeat = now() - interval '1 hour'"
        " WHERE service_name = 'mailer'"
    )
    db.execute("SELECT pystatus.refresh_rollups()")
    return start  # type: ignore[no-any-return]


@pytest.fixture
def reader_dsn(db: Conn, dsn: str) -> Iterator[str]:
    db.execute("CREATE ROLE scraper LOGIN IN ROLE pystatus_reader")
    try:
        yield f"{dsn} user=scraper"
    finally:
        db.execute("DROP ROLE scraper")


def test_a_real_prometheus_stores_what_the_database_says(
    db: Conn, fleet: datetime, reader_dsn: str
) -> None:
    with exporter(reader_dsn) as port, prometheus(port) as url:
        wait_for(lambda: [r["value"][1] for r in query(url, "pystatus_scrape_ok")] == ["1"], 60)
        up = {r["metric"]["service"]: r for r in query(url, "pystatus_service_up")}
        current = {
            r["metric"]["service"]: r["metric"]["status"]
            for r in query(url, "pystatus_service_status == 1")
        }
        ratios = {
            (r["metric"]["service"], r["metric"]["window"]): float(r["value"][1])
            for r in query(url, "pystatus_service_uptime_ratio")
        }
        by_status = {r["metric"]["status"]: r["value"][1] for r in query(url, "pystatus_services")}
        behind = query(url, "pystatus_sweeper_behind_services")

    live = {s.service_name: s for s in pystatus.live_status(db)}
    assert set(up) == set(live)
    for name, row in up.items():
        assert set(row["metric"]) == {"__name__", "service", "instance", "job"}  # one series
        assert current[name] == live[name].effective_status
        assert row["value"][1] == (
            "1" if live[name].effective_status in ("ok", "degraded") else "0"
        )
    assert by_status["ok"] == "1" and by_status["down"] == "1" and by_status["stale"] == "1"
    sql = {
        (r[0], r[1]): r[2]
        for r in db.execute(
            "SELECT service, time_window, value FROM pystatus.metrics()"
            " WHERE metric = 'pystatus_service_uptime_ratio'"
        )
    }
    assert ratios == pytest.approx(sql)
    assert 0 < ratios[("search", "1d")] < 1  # two hours down in the last day
    assert [b["value"][1] for b in behind] == ["1"]  # mailer: silent an hour, not swept


def test_uptime_over_whole_rolled_up_hours_equals_the_answer(db: Conn, fleet: datetime) -> None:
    rolled = one(db, "SELECT rolled_until FROM pystatus.rollup_state")
    (answer,) = pystatus.uptime(db, "search", rolled - timedelta(hours=24), rolled)
    exposed = one(
        db,
        "SELECT value FROM pystatus.metrics() WHERE metric = 'pystatus_service_uptime_ratio'"
        " AND service = 'search' AND time_window = '1d'",
    )
    assert exposed == pytest.approx(answer.uptime)


def test_a_scrape_while_the_database_is_away_says_so() -> None:
    away = f"host=127.0.0.1 port={free_port()} user=nobody dbname=none"
    text = generate_latest(metrics.registry(away)).decode()
    assert "pystatus_scrape_ok 0.0" in text and "pystatus_service_up" not in text


def test_the_dashboard_serves_metrics(dsn: str, fleet: datetime) -> None:
    with dashboard(dsn) as url, urllib.request.urlopen(f"{url}/metrics") as response:
        assert response.headers["content-type"].startswith("text/plain")
        text = response.read().decode()
    assert 'pystatus_service_up{service="billing"} 0.0' in text
    assert 'pystatus_service_status{service="billing",status="down"} 1.0' in text
    assert 'pystatus_service_status{service="billing",status="ok"} 0.0' in text
    assert "pystatus_scrape_ok 1.0" in text


def test_label_sets_are_bounded(db: Conn, fleet: datetime) -> None:
    rows = db.execute(
        "SELECT metric, array_agg(DISTINCT status), array_agg(DISTINCT time_window)"
        " FROM pystatus.metrics() GROUP BY metric"
    ).fetchall()
    for metric, statuses, windows in rows:
        assert set(statuses) <= {
            None,
            "ok",
            "degraded",
            "down",
            "stale",
            "starting",
            "stopping",
            "maintenance",
        }, metric
        assert set(windows) <= {None, "1d", "7d", "30d"}, metric
