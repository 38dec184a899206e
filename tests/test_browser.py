"""The dashboard in real headless Chromium, over the demo's 30 days of history:
the fleet summary, a silent service turning stale on the next refresh after its
deadline, rows as links reached by keyboard, the service page with its bars,
incidents and latency chart, the same time formats as the server, and a phone's
width. Screenshots go to tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

import pystatus
from pystatus import answers, demo
from pystatus.dashboard import Fleet, duration, when
from tests.browser import chromium
from tests.serving import dashboard

Conn = psycopg.Connection[Any]
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    driver = chromium(str(tmp_path / "profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def services(dsn: str, db: Conn) -> list[str]:
    """The demo's eight services with 30 days of history and maintenance windows, rolled
    up, and one more that stops heartbeating now."""
    demo.prepare(dsn, None)  # as `make demo` does, without pg_cron
    db.execute("SELECT pystatus.refresh_rollups()")
    # Expected every minute for now: ok however long the browser takes to start.
    pystatus.heartbeat(db, "crasher", "ok", "about to crash")  # and never again
    return sorted([*demo.SERVICES, "crasher"])


# The table is rebuilt at every refresh: read it in one script rather than
# through element handles that a refresh may replace.
def badge(driver: WebDriver, service: str) -> str:
    return driver.execute_script(  # type: ignore[no-any-return]
        "return document.querySelector(`tr[data-service='${arguments[0]}'] .badge`).textContent",
        service,
    )


def listed(driver: WebDriver) -> list[str]:
    return driver.execute_script(  # type: ignore[no-any-return]
        "return [...document.querySelectorAll('#services tr')].map(r => r.dataset.service)"
    )


def text(driver: WebDriver) -> str:
    return driver.execute_script("return document.body.innerText")  # type: ignore[no-any-return]


def test_dashboard_in_chromium(browser: WebDriver, dsn: str, db: Conn, services: list[str]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with dashboard(dsn) as url:
        browser.get(url)
        assert listed(browser) == services
        summary = browser.find_element(By.ID, "summary").text
        assert summary.startswith(Fleet.read(db, 1).summary)
        assert "1 of 9 services needs attention" in summary  # mailer, silent for 20 hours
        assert "hover" not in text(browser).lower()

        # Now expected every 2 s + 1 s: stale at the first refresh after that
        # deadline (refreshes come every 5 s; 20 s bounds the wait, it is not a
        # measurement).
        pystatus.set_expectations(db, "crasher", timedelta(seconds=2), timedelta(seconds=1))
        WebDriverWait(browser, 20, poll_frequency=0.2).until(
            lambda d: badge(d, "crasher") == "stale"
        )
        assert "crasher" in browser.find_element(By.ID, "attention").text
        browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

        # The same formats as the server's, for times and durations.
        now = datetime.now(timezone.utc)
        times = [
            now,
            datetime(2026, 1, 2, 3, 4, 59, tzinfo=timezone.utc),
            now - timedelta(days=400),
        ]
        ages = [0, 59.9, 119, 120, 7199, 7200, 72069, 172799, 172800, 2_600_000]
        assert browser.execute_script(
            "return [arguments[0].map(pystatus.when), arguments[1].map(pystatus.duration)]",
            [t.isoformat() for t in times],
            ages,
        ) == [[when(t) for t in times], [duration(s) for s in ages]]

        # Rows are links: Tab reaches the service's, Enter opens its page.
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        for _ in range(40):
            focused = browser.execute_script("return document.activeElement.textContent")
            if focused == "search":
                break
            browser.switch_to.active_element.send_keys(Keys.TAB)
        assert focused == "search"
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        WebDriverWait(browser, 20).until(lambda d: d.current_url.endswith("/services/search"))

        assert len(browser.find_elements(By.CSS_SELECTOR, "#bars rect.day")) == 30
        incidents = browser.find_element(By.ID, "incidents").text
        assert "reported down" in incidents and "45 min" in incidents
        assert "silence" in incidents
        assert "uptime, 24 h" in browser.find_element(By.ID, "uptimes").text
        axis = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#latency text.tick.x")]
        assert len(axis) >= 6 and all(len(label) == 5 for label in axis)  # MM-DD, UTC days
        assert browser.find_elements(By.CSS_SELECTOR, "#latency polyline.p50")
        legend = browser.find_element(By.ID, "latency-legend").text
        assert "p50" in legend and "p95" in legend and "milliseconds" in legend
        shown = browser.find_element(By.CSS_SELECTOR, ".facts time").text
        [search] = [s for s in answers.live_status(db) if s.service_name == "search"]
        assert shown == when(search.last_heartbeat)
        assert "hover" not in text(browser).lower()
        browser.save_screenshot(str(ARTIFACTS / "dashboard-service.png"))

        # A phone: the pages fit its width.
        browser.set_window_size(390, 844)
        for page, shot in (("/", "dashboard-phone.png"), ("/services/search", "service-phone.png")):
            browser.get(url + page)
            browser.save_screenshot(str(ARTIFACTS / shot))
            wider = browser.execute_script(
                "return [...document.querySelectorAll('body *')]"
                ".filter(e => e.getBoundingClientRect().right > window.innerWidth)"
                ".filter(e => !e.closest('.scroll')).map(e => e.tagName + '.' + e.className)"
            )
            assert wider == [], page
            assert "hover" not in text(browser).lower()
