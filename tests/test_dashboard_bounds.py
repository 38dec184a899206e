"""The dashboard and /metrics at any fleet size: pages of a bounded size, "N more"
where a list is cut, series for a bounded number of services, and no request held
longer than the sessions' statement_timeout. Served as a pystatus_reader login."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

import pystatus
from pystatus import answers
from pystatus.dashboard import ATTENTION_SHOWN, PAGE_SIZE, create_app, read_only
from tests.helpers import one
from tests.serving import get_json, serving

Conn = psycopg.Connection[Any]
FLEET = 2 * PAGE_SIZE + 17  # three pages, the last one part full
DOWN = ATTENTION_SHOWN + 12  # more than the attention list shows


@pytest.fixture
def fleet(db: Conn) -> list[str]:
    """FLEET services; every third of the first 3 * DOWN down."""
    names = [f"svc-{i:04d}" for i in range(FLEET)]
    down = set(names[: 3 * DOWN : 3])
    pystatus.heartbeat_many(db, [(n, "down" if n in down else "ok") for n in names])
    return names


@pytest.fixture
def reader(login: Callable[..., str]) -> str:
    return login("pystatus_reader")


@pytest.fixture
def url(reader: str, fleet: list[str]) -> Iterator[str]:
    with serving(create_app(reader)) as served:
        yield served


def get(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return (
                response.status,
                response.read().decode(),
                {k.lower(): v for k, v in response.headers.items()},
            )
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), {k.lower(): v for k, v in exc.headers.items()}


def listed(page: str) -> list[str]:
    """The services of the page's table, in order."""
    body = page.split('<tbody id="services">', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<a href="/services/([^"]+)">', body)


def test_the_front_page_lists_a_page_of_services_and_links_the_next(
    url: str, fleet: list[str]
) -> None:
    status, first, _ = get(f"{url}/")
    assert status == 200
    assert listed(first) == fleet[:PAGE_SIZE]
    assert f"1\N{EN DASH}{PAGE_SIZE} of {FLEET}" in first
    assert '<a href="/?page=2" rel="next">' in first
    assert 'rel="prev"' not in first
    pages = [listed(get(f"{url}/?page={n}")[1]) for n in (1, 2, 3)]
    assert [name for page in pages for name in page] == fleet
    _, last, _ = get(f"{url}/?page=3")
    assert 'rel="next"' not in last and '<a href="/?page=2" rel="prev">' in last
    # The summary counts the whole fleet, whatever the page.
    assert f"{DOWN} of {FLEET} services need attention" in last
    _, beyond, _ = get(f"{url}/?page=9")
    assert listed(beyond) == [] and "No services on this page" in beyond
    assert get(f"{url}/?page=0")[0] == 422


def test_the_fragment_app_js_refreshes_is_the_same_page(url: str, fleet: list[str]) -> None:
    _, fragment, _ = get(f"{url}/fragments/fleet?page=2")
    assert listed(fragment) == fleet[PAGE_SIZE : 2 * PAGE_SIZE]
    assert '<nav id="pages">' in fragment and 'rel="next"' in fragment


def test_the_attention_list_is_cut_with_n_more_leading_to_all_of_them(
    url: str, fleet: list[str]
) -> None:
    down = fleet[: 3 * DOWN : 3]
    _, page, _ = get(f"{url}/")
    attention = page.split('<ul id="attention"', 1)[1].split("</ul>", 1)[0]
    assert re.findall(r'<a href="/services/([^"]+)">', attention) == down[:ATTENTION_SHOWN]
    assert f'<a href="/?attention=1">and {DOWN - ATTENTION_SHOWN} more</a>' in attention
    _, only, _ = get(f"{url}/?attention=1")
    assert listed(only) == down
    assert "Only those needing attention" in only


def test_the_front_page_does_not_grow_with_the_fleet(db: Conn, url: str, fleet: list[str]) -> None:
    size = len(get(f"{url}/")[1].encode())
    # 10,000 more services, every one of them down: the page holds as many rows.
    db.execute(
        "INSERT INTO system_status (service_name, status, last_heartbeat)"
        " SELECT 'flood-' || lpad(i::text, 5, '0'), 'down', now()"
        " FROM generate_series(1, 10000) AS i"
    )
    _, page, _ = get(f"{url}/")
    assert len(listed(page)) == PAGE_SIZE
    # Only the figures' digits grow (a count of 2,607 is longer than one of 237).
    assert len(page.encode()) < size * 1.1
    assert len(page.encode()) < 250_000


def test_the_json_lists_come_in_pages_linked_by_their_link_header(
    url: str, db: Conn, fleet: list[str]
) -> None:
    seen: list[str] = []
    following: str | None = f"{url}/api/status?limit=100"
    while following:
        _, body, headers = get(following)
        seen += [s["service_name"] for s in json.loads(body)]
        link = headers.get("link")
        following = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else None
    assert seen == [s.service_name for s in pystatus.live_status(db)] == fleet
    overview = get_json(f"{url}/api/overview?limit=10&offset=5")
    assert [s["service_name"] for s in overview] == fleet[5:15]
    assert len(get_json(f"{url}/api/overview")) == FLEET  # under the default page
    assert get(f"{url}/api/status?limit=10001")[0] == 422


def test_fleet_counts_count_what_live_status_lists(db: Conn, fleet: list[str]) -> None:
    live = pystatus.live_status(db)
    counts = {c.effective_status: (c.services, c.needs_attention) for c in answers.fleet_counts(db)}
    assert counts == {
        status: (
            sum(s.effective_status == status for s in live),
            status in ("degraded", "down", "stale"),
        )
        for status in {s.effective_status for s in live}
    }


def scrape(reader: str) -> dict[str, list[Any]]:
    with serving(create_app(reader)) as served:
        _, text, _ = get(f"{served}/metrics")
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_a_scrape_has_series_of_a_bounded_number_of_services_those_down_first(
    db: Conn, reader: str, fleet: list[str]
) -> None:
    db.execute("SELECT pystatus.set_limits(max_metric_services => 70)")
    families = scrape(reader)
    exported = [s.labels["service"] for s in families["pystatus_service_up"]]
    down = fleet[: 3 * DOWN : 3]
    # Those needing attention first, then by name.
    assert sorted(exported) == sorted(down + [n for n in fleet if n not in down][: 70 - DOWN])
    [omitted] = families["pystatus_services_not_exported"]
    assert omitted.value == FLEET - 70
    # The counts by status still count every service.
    assert sum(s.value for s in families["pystatus_services"]) == FLEET
    db.execute("SELECT pystatus.set_limits(max_metric_services => 100000)")
    families = scrape(reader)
    assert len(families["pystatus_service_up"]) == FLEET
    assert families["pystatus_services_not_exported"][0].value == 0


def test_a_request_stuck_behind_a_lock_is_cancelled_and_the_dashboard_serves_again(
    db: Conn, dsn: str, reader: str, fleet: list[str]
) -> None:
    with psycopg.connect(reader, **read_only()) as conn:
        assert one(conn, "SHOW statement_timeout") == "10s"
    with serving(create_app(reader, statement_timeout=0.5)) as served:
        with psycopg.connect(dsn) as holder:
            holder.execute("LOCK TABLE system_status IN ACCESS EXCLUSIVE MODE")
            # More requests than the pool has connections: each is cancelled in
            # turn, none waits for the lock to go.
            answers_ = [get(f"{served}/api/status") for _ in range(6)]
            assert {status for status, _, _ in answers_} == {503}
            assert all("statement timeout" in body for _, body, _ in answers_)
            holder.rollback()
        status, body, _ = get(f"{served}/api/status?limit=1")
        assert status == 200 and '"svc-0000"' in body
