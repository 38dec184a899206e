"""The dashboard's JSON API: the figures equal the SQL functions' answers; read-only."""

from __future__ import annotations

import html
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import alerts, answers
from pystatus.dashboard import FastJSONResponse, create_app, service_url, when
from pystatus.output import jsonable
from tests.helpers import one
from tests.serving import dashboard, get_json

Conn = psycopg.Connection[Any]
MIN = timedelta(minutes=1)


@pytest.fixture
def history(db: Conn) -> datetime:
    """Two services whose history ended an hour ago with a planned stop, so no figure
    depends on when it is read; rolled up."""
    start = one(db, "SELECT date_trunc('hour', now()) - interval '3 days'")
    # 600 minutes of heartbeats, in order, in one statement.
    db.execute(
        "SELECT pystatus.record_heartbeat('search',"
        " CASE WHEN m >= 100 AND m < 130 THEN 'down' ELSE 'ok' END, 'querying',"
        " %s + m * interval '1 minute', 10.0 + m %% 7)"
        " FROM generate_series(0, 599) AS m ORDER BY m",
        (start,),
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
    assert (month["up_seconds"], month["down_seconds"], month["uptime"]) == (
        float(sql.up_seconds),
        float(sql.down_seconds),
        sql.uptime,
    )
    assert (sql.up_seconds, sql.down_seconds) == (570 * 60, 30 * 60)

    fleet = get_json(f"{url}/api/uptime?days=30")
    assert [(u["service_name"], u["up_seconds"]) for u in fleet] == [
        ("mailer", 2 * 60),  # one heartbeat, then silent until its planned stop
        ("search", 570 * 60),
    ]


def test_days_incidents_transitions_latency_equal_the_sql_answers(url: str, db: Conn) -> None:
    days = get_json(f"{url}/api/services/search/days?days=30")
    sql_days = db.execute(
        "SELECT day, up_seconds, uptime FROM pystatus.daily_uptime('search', 30)"
    ).fetchall()
    assert [(d["day"], d["up_seconds"], d["uptime"]) for d in days] == [
        (day.isoformat(), float(up), uptime) for day, up, uptime in sql_days
    ]
    assert len(days) == 30 and sum(d["down_seconds"] for d in days) == 30 * 60

    incidents = get_json(f"{url}/api/services/search/incidents?days=30")
    now = one(db, "SELECT now()")
    sql_incidents = pystatus.incidents(db, "search", now - timedelta(days=30))
    assert [(i["cause"], i["started"]) for i in incidents] == [
        (i.cause, i.started.isoformat()) for i in sql_incidents
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
    assert f"window until {when(ends)}" in page


def fetch(url: str) -> tuple[int, str]:
    """The status and body of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


ENDPOINTS = ("uptime", "days", "incidents", "transitions", "latency")


def test_an_unknown_service_is_404_with_a_message(url: str) -> None:
    for endpoint in ENDPOINTS:
        code, body = fetch(f"{url}/api/services/nobody/{endpoint}")
        assert (code, json.loads(body)) == (404, {"detail": "no service named 'nobody'"})
    code, page = fetch(f"{url}/services/nobody")
    assert code == 404 and "No service named <q>nobody</q>" in page and 'href="/"' in page


ODD_NAMES = ["api/v2", "a/../b", "50% off", "with space", "ünï ☃ 名前", "x/uptime", "q?a#b&c"]


def test_any_valid_name_works_in_urls(dsn: str, db: Conn) -> None:
    for name in ODD_NAMES:
        pystatus.heartbeat(db, name, "ok", latency_ms=5.0)
    with dashboard(dsn) as url:
        _, front = fetch(f"{url}/")
        for name in ODD_NAMES:
            link = service_url(name)
            assert link.count("/") == 2 and f'href="{link}"' in front
            for endpoint in ENDPOINTS:
                code, body = fetch(f"{url}/api{link}/{endpoint}")
                assert code == 200, (name, endpoint, body)
            uptime = get_json(f"{url}/api{link}/uptime")
            assert uptime["last_24h"]["service_name"] == name
            code, page = fetch(f"{url}{link}")
            assert code == 200 and f"<title>{html.escape(name, quote=False)} · pystatus" in page


@dataclass(frozen=True)
class Sample:
    name: str
    at: datetime
    exactly: datetime
    day: date
    every: timedelta
    seconds: Decimal
    ratio: float | None
    hours: list[float | None]
    flag: bool


def test_the_api_writes_exactly_the_clis_json() -> None:
    utc = timezone.utc
    sample = Sample(
        "ü/x",
        datetime(2026, 12, 6, 17, 5, 9, 123, tzinfo=utc),
        datetime(2026, 12, 6, 17, 5, tzinfo=timezone(timedelta(hours=-5))),
        date(2026, 12, 6),
        timedelta(minutes=1, microseconds=5),
        Decimal("3870.051514"),
        None,
        [None, 0.25, 1.0],
        True,
    )
    for value in (sample, [sample, sample], {"last_24h": sample}):
        written = json.loads(FastJSONResponse(value).body)
        assert written == json.loads(json.dumps(jsonable(value)))
    assert written["last_24h"]["at"] == "2026-12-06T17:05:09.000123+00:00"
    assert written["last_24h"]["exactly"] == "2026-12-06T17:05:00-05:00"
    assert written["last_24h"]["every"] == 60.000005


def test_json_types_are_the_clis(url: str) -> None:
    """Numbers as numbers, times as ISO 8601 with their offset, durations as seconds."""
    [_, search] = get_json(f"{url}/api/status")
    assert search["expected_interval"] == 60.0 and search["grace"] == 60.0
    assert datetime.fromisoformat(search["last_heartbeat"]).utcoffset() is not None
    assert isinstance(search["seconds_since"], float)
    month = get_json(f"{url}/api/services/search/uptime")["last_30d"]
    assert all(isinstance(month[k], float) for k in ("up_seconds", "down_seconds", "uptime"))
    [incident] = get_json(f"{url}/api/services/search/incidents?days=30")
    assert incident["duration"] == 1800.0 and incident["ended"].endswith("+00:00")
    [overview, _] = get_json(f"{url}/api/overview")
    assert overview["service_name"] == "mailer" and overview["observed_30d_seconds"] == 1800.0
    assert len(overview["hourly_uptime"]) == 24 and overview["needs_attention"] is False


@pytest.fixture
def fleet(db: Conn, history: datetime) -> None:
    """Four services, two needing attention: search and mailer (stopped), a degraded
    one and a silent one, past its deadline."""
    pystatus.heartbeat(db, "billing", "degraded", "invoicing")
    pystatus.set_expectations(db, "crasher", timedelta(seconds=1), timedelta(0))
    pystatus.record_heartbeat(db, "crasher", "ok", None, one(db, "SELECT now() - interval '1 h'"))


def test_the_summary_and_overview_equal_the_sql_answers(dsn: str, db: Conn, fleet: None) -> None:
    with dashboard(dsn) as url:
        _, page = fetch(f"{url}/")
        overview = get_json(f"{url}/api/overview")
    needy = one(
        db,
        "SELECT count(*) FROM pystatus.live_status"
        " WHERE effective_status IN ('degraded', 'down', 'stale')",
    )
    total = one(db, "SELECT count(*) FROM pystatus.live_status")
    assert (needy, total) == (2, 4)
    assert f"{needy} of {total} services need attention" in page
    assert [(s["service_name"], s["needs_attention"]) for s in overview] == [
        ("billing", True), ("crasher", True), ("mailer", False), ("search", False)
    ]  # fmt: skip
    attention = page.split('id="attention"', 1)[1].split("</ul>", 1)[0]
    assert "billing" in attention and "crasher" in attention and "search" not in attention
    # The 24 h and 30 d figures are the ones Prometheus scrapes.
    scraped = {
        (service, window): value
        for service, window, value in db.execute(
            "SELECT service, time_window, value FROM pystatus.metrics()"
            " WHERE metric = 'pystatus_service_uptime_ratio'"
        ).fetchall()
    }
    for s in overview:
        assert s["uptime_30d"] == scraped.get((s["service_name"], "30d"))
        assert s["uptime_24h"] == scraped.get((s["service_name"], "1d"))


def test_a_figure_on_little_data_says_so(url: str, db: Conn) -> None:
    _, page = fetch(f"{url}/")
    row = page.split('data-service="mailer"', 1)[1].split("</tr>", 1)[0]
    [mailer] = [s for s in answers.service_overview(db) if s.service_name == "mailer"]
    assert mailer.observed_30d_seconds == 30 * 60 and mailer.uptime_30d is not None
    assert f'{mailer.uptime_30d * 100:.2f} %<span class="little"> · 30 min of data' in row
    _, service_page = fetch(f"{url}/services/mailer")
    assert "· 30 min of data" in service_page


def test_recent_incidents_across_the_fleet(url: str, db: Conn) -> None:
    api = get_json(f"{url}/api/incidents?days=7")
    now = one(db, "SELECT now()")
    sql = sorted(
        pystatus.incidents(db, None, now - timedelta(days=7)),
        key=lambda i: (i.started, i.service_name),
        reverse=True,
    )
    assert [(i["service_name"], i["started"]) for i in api] == [
        (i.service_name, i.started.isoformat()) for i in sql
    ]
    assert {i["service_name"] for i in api} == {"search", "mailer"}
    assert get_json(f"{url}/api/incidents") == []  # the last 24 h: theirs are older
    _, page = fetch(f"{url}/")
    assert "(last 24 h, newest first)" in page and "No incidents." in page


def test_the_service_page_without_javascript(url: str, history: datetime) -> None:
    code, page = fetch(f"{url}/services/search?days=60")
    assert code == 200
    assert page.count('class="day ') == 60 and "<option selected>60</option>" in page
    assert "reported down" in page and "30 min" in page
    assert "every 60 s, 60 s grace" in page and "none (stopping)" in page
    assert 'class="tick x"' in page and "p50 (median)" in page and "milliseconds" in page
    assert f"{when(history + 600 * MIN)}</time>" in page  # the last heartbeat
    assert "hover" not in page.lower()


def test_times_are_in_one_format(url: str, history: datetime) -> None:
    _, page = fetch(f"{url}/services/search")
    stamps = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d(?: UTC)?", page)
    assert stamps and all(s.endswith(" UTC") for s in stamps)
    assert re.search(r"\b\d+ s ago\b", page) is None  # 3 days: "3 d ago", not seconds
    assert "3 d ago" in page or "2 d ago" in page
