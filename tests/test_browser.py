"""The dashboard in real headless Chromium: every service listed, a silent
service turning stale on the next refresh after its deadline, the historical
view with its bars and incidents. Screenshots go to tests/artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

import pystatus
from tests.browser import chromium
from tests.helpers import one
from tests.serving import dashboard

Conn = psycopg.Connection[Any]
ARTIFACTS = Path(__file__).parent / "artifacts"
MIN = timedelta(minutes=1)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    driver = chromium(str(tmp_path / "profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def services(db: Conn) -> list[str]:
    start = one(db, "SELECT now() - interval '3 days'")
    for minute in range(0, 3 * 1440, 5):
        status = "down" if 2000 <= minute < 2060 else "ok"
        pystatus.record_heartbeat(
            db, "search", status, "querying", start + minute * MIN, 12.0 + minute % 9
        )
    pystatus.heartbeat(db, "search", "ok", "querying")
    pystatus.set_expectations(db, "search", timedelta(minutes=5))
    pystatus.heartbeat(db, "librarian", "degraded", "reindexing")
    pystatus.set_expectations(db, "crasher", timedelta(seconds=2), timedelta(seconds=1))
    pystatus.heartbeat(db, "crasher", "ok", "about to crash")  # and never again
    db.execute("SELECT pystatus.refresh_rollups()")
    return ["crasher", "librarian", "search"]


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


def test_dashboard_in_chromium(browser: WebDriver, dsn: str, services: list[str]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with dashboard(dsn) as url:
        browser.get(url)
        assert listed(browser) == services
        assert badge(browser, "librarian") == "degraded"

        # Silent for 2 s + 1 s: stale at the first refresh after its deadline
        # (refreshes come every 5 s; 20 s bounds the wait, it is not a measurement).
        WebDriverWait(browser, 20, poll_frequency=0.2).until(
            lambda d: badge(d, "crasher") == "stale"
        )

        browser.execute_script("document.querySelector(`tr[data-service='search'] td`).click()")
        WebDriverWait(browser, 20).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#bars rect.day")) == 30
        )
        incidents = browser.find_element(By.ID, "incidents").text
        assert "reported down" in incidents and "60 min" in incidents
        assert "uptime, 24 h" in browser.find_element(By.ID, "uptimes").text
        assert browser.find_elements(By.CSS_SELECTOR, "#latency polyline")
        browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

        # A phone: the page fits its width.
        browser.set_window_size(390, 844)
        browser.get(url + "/#service=search")
        WebDriverWait(browser, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#bars rect.day")
        )
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        browser.save_screenshot(str(ARTIFACTS / "dashboard-phone.png"))
