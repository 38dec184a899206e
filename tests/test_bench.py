"""`make bench-quick`: the benchmark harness runs end to end at tiny sizes.
It asserts that every scenario produced its figures, never how fast they are."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.test_releases import WITH_MIGRATIONS_PENDING

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_harness_runs_every_scenario() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for heading in [
        "1. Single-row",
        "2. Batched",
        "3. Python",
        "4. Dashboard",
        "5. Uptime",
        "6. Retention",
    ]:
        assert heading in out
    for figure in [
        r"trigger path / one statement, 1 clients: [\d.]+\u00d7",
        r"heartbeat_many, \d+ per call, 2 clients each with its own services"
        r" \(heartbeats/s\): [\d,]+",
        r"2 clients sending the same \d+ services \(heartbeats/s\): [\d,]+",
        r"baseline: \d+ rows a statement upserted into a bare table, no history \(rows/s\):"
        r" [\d,]+.* heartbeat_many at [\d.]+\u00d7 of it",
        r"live_status, 100 services, in the database \(ms\): [\d.]+",
        r"fleet, 2 days, from rollups \(ms\): [\d.,]+",
        r"bytes per history row, indexes included: \d+",
        r"share of system_status updates that were HOT: [\d.]+%",
        r"heartbeats during maintenance .*: [\d,]+/s, 0 failed",
        r"the least copy trigger / one statement, 1 clients: [\d.]+\u00d7",
        r"one check's downtime over 2 days at the client \(ms\), Healthchecks: its \d+ flips",
        # Healthchecks' walk over its flips and pystatus.uptime() give one answer.
        r"the two answers \(s down\): Healthchecks [\d,]+, pystatus [\d,]+"
        r"  \[agree within a minute: met\]",
        r"a ping's database work, 4 clients \(tps\): .*: [\d.]+\u00d7",
        r"claim_alert_messages\(\), 4 at a time, 100 pending \(ms\): [\d.]+",
        r"50 services silent at once, one message each: after their deadline, the first alert,"
        r" the last \(s\): [\d.]+, [\d.]+ \(50 of 50 arrived",
    ]:
        assert re.search(figure, out), figure


def test_the_upgrade_benchmark_runs_and_no_heartbeat_fails() -> None:
    """`python -m bench.upgrade` at a tiny size: both runs report, none failed
    (the figure the benchmark exists for; its speed is not asserted)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.upgrade",
            "--services",
            "5",
            "--days",
            "1",
            "--hold-open",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runs = re.findall(
        r"migrate [\d.]+ s \((\d+) attempt\(s\).*heartbeats by 4 services, (\d+) failed",
        done.stdout,
    )
    assert len(runs) == 2 * len(WITH_MIGRATIONS_PENDING), done.stdout
    assert all(failed == "0" for _, failed in runs), done.stdout
    assert int(runs[1][0]) > 1  # the run with a transaction held open gave way
