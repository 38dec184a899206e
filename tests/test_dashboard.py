"""The dashboard's JSON API: the figures equal the SQL functions' answers; read-only."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import alerts
from pystatus.dashboard import create_app
from tests.helpers import one
from tests.serving import dashboard, get_json

Conn = psycopg.Connection[Any]
MIN = timedelta(minutes=1)


@pytest.fixture
def history(db: Conn) -> datetime:
    """Two services whose history ended an hour ago with a planned stop, so no figure
    depends on when it is read; rolled up."""
    start = one(db, "SELECT date_trunc('hour', now()) - interval '3 days'")
    for minute in range(0, 600):
        status = "down" if 100 <= minute < 130 else "ok"
        pystatus.record_heartbeat(
            db, "search", status, "querying", start + minute * MIN, 10.0 + minute % 7
        )
    pystatus.record_heartbeat(db, "search", "stopping", None, start + 600 * MIN)
    pystatus.record_heartbeat(db, "mailer", "ok", None, start)
    pystatus.record_heartbeat(db, "mailer", "stopping", None, start + 30 * MIN)
    db.execute("SELECT pystatus.refresh_rollups()")
    return start  # type: ignore[no-any-return]


@pytest.fixture
def url(dsn: str, history: datetime) -> Iterator[str]:
    with dashboard(dsn) as served:
        yield served


def test_status_equals_live_status(url: str, db: Conn) -> None:
    api = get_json(f"{url}/api/status")
    sql = pystatus.live_status(db)
    assert [(s["service_name"], s["effective_status"], s["current_task"]) for s in api] == [
        (s.service_name, s.effective_status, s.current_task) for s in sql
    ]


def test_uptime_figures_equal_the_sql_answers(url: str, db: Conn, history: datetime) -> None:
    api = get_json(f"{url}/api/services/search/uptime")
    now = one(db, "SELECT now()")
    [sql] = pystatus.uptime(db, "search", now - timedelta(days=30), now)
    month = api["last_30d"]
    assert (Decimal(month["up_seconds"]), Decimal(month["down_seconds"]), month["uptime"]) == (
        sql.up_seconds,
        sql.down_seconds,
        sql.uptime,
    )
    assert (sql.up_seconds, sql.down_seconds) == (570 * 60, 30 * 60)

    fleet = get_json(f"{url}/api/uptime?days=30")
    assert [(u["service_name"], Decimal(u["up_seconds"])) for u in fleet] == [
        ("mailer", 2 * 60),  # one heartbeat, then silent until its planned stop
        ("search", 570 * 60),
    ]


def test_days_incidents_transitions_latency_equal_the_sql_answers(url: str, db: Conn) -> None:
    days = get_json(f"{url}/api/services/search/days?days=30")
    sql_days = db.execute(
        "SELECT day, up_seconds, uptime FROM pystatus.daily_uptime('search', 30)"
    ).fetchall()
    assert [(d["day"], Decimal(d["up_seconds"]), d["uptime"]) for d in days] == [
        (day.isoformat(), up, uptime) for day, up, uptime in sql_days
    ]
    assert len(days) == 30 and sum(Decimal(d["down_seconds"]) for d in days) == 30 * 60

    incidents = get_json(f"{url}/api/services/search/incidents?days=30")
    now = one(db, "SELECT now()")
    sql_incidents = pystatus.incidents(db, "search", now - timedelta(days=30))
    assert [(i["cause"], i["started"]) for i in incidents] == [
        (i.cause, i.started.isoformat().replace("+00:00", "Z")) for i in sql_incidents
    ]
    assert [i.duration for i in sql_incidents] == [30 * MIN]

    latency = get_json(f"{url}/api/services/search/latency?days=7")
    sql_latency = db.execute(
        "SELECT samples, p50 FROM pystatus.latency_hourly('search', now() - interval '7 days')"
    ).fetchall()
    assert [(p["samples"], p["p50"]) for p in latency] == sql_latency
    assert len(latency) == 10  # ten hours with a measure

    assert get_json(f"{url}/api/services/search/transitions?days=1") == []  # all older


def test_the_page_lists_every_service_without_javascript(url: str) -> None:
    with urllib.request.urlopen(f"{url}/") as response:
        page = response.read().decode()
    assert 'data-service="search"' in page and 'data-service="mailer"' in page
    assert '<span class="badge stopping">stopping</span>' in page


class Cells(HTMLParser):
    """The services table as a browser reads it: data-service values and cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.services: list[str | None] = []
        self.cells: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr" and "data-service" in dict(attrs):
            self.services.append(dict(attrs)["data-service"])

    def handle_data(self, data: str) -> None:
        self.cells.append(data)


def test_the_page_escapes_what_services_report(dsn: str, db: Conn) -> None:
    name, task = '<b>"Tom" & Jerry</b>', "<script>alert('task')</script>"
    pystatus.heartbeat(db, name, "ok", task)
    with dashboard(dsn) as url, urllib.request.urlopen(f"{url}/") as response:
        page = response.read().decode()
    assert "<b>" not in page and "<script>alert" not in page
    assert "&lt;b&gt;" in page and "&amp; Jerry" in page and '"Tom"' not in page
    parsed = Cells()
    parsed.feed(page)
    assert parsed.services == [name]
    assert name in parsed.cells and task in parsed.cells


def test_static_files_are_served_and_nothing_else(url: str) -> None:
    for name, media_type in (("app.js", "javascript"), ("style.css", "text/css")):
        with urllib.request.urlopen(f"{url}/static/{name}") as response:
            assert media_type in response.headers["content-type"]
            assert response.read()
    for path in ("/static/page.html", "/static/../__init__.py", "/static/%2e%2e/__init__.py"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}{path}")
        assert refused.value.code == 404, path
        refused.value.close()


def test_openapi_schema_describes_the_api(url: str) -> None:
    schema = get_json(f"{url}/openapi.json")
    assert {"/api/status", "/api/uptime", "/api/services/{service_name}/days"} <= set(
        schema["paths"]
    )


def test_bad_parameters_are_refused(url: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/api/services/search/days?days=0")
    assert refused.value.code == 422
    refused.value.close()


def test_no_endpoint_writes(dsn: str) -> None:
    app = create_app(dsn)
    methods = {m for route in app.routes for m in getattr(route, "methods", set())}
    assert methods <= {"GET", "HEAD"}


def test_its_sessions_are_read_only(url: str, dsn: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(f"{url}/api/status", method="POST"))
    assert refused.value.code == 405
    refused.value.close()
    from pystatus.dashboard import READ_ONLY

    with (
        psycopg.connect(dsn, **READ_ONLY) as conn,
        pytest.raises(pystatus.PystatusError, match="read-only transaction"),
    ):
        pystatus.heartbeat(conn, "intruder")


def test_a_service_in_a_maintenance_window_shows_the_window(url: str, db: Conn) -> None:
    pystatus.heartbeat(db, "indexer", "down")
    ends = one(db, "SELECT date_trunc('minute', now()) + interval '2 hours'")
    alerts.add_maintenance(db, "indexer", one(db, "SELECT now()"), ends, reason="reindex")
    (indexer,) = [s for s in get_json(f"{url}/api/status") if s["service_name"] == "indexer"]
    assert indexer["effective_status"] == "maintenance"
    assert datetime.fromisoformat(indexer["maintenance_until"]) == ends
    with urllib.request.urlopen(f"{url}/") as response:
        page = response.read().decode()
    assert f"window until {ends.isoformat(timespec='minutes')}" in page
