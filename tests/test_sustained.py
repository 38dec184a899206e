"""`python -m bench.sustained --quick`: the sustained-load harness runs end to end on a
small fleet, through at least one round of pystatus's pg_cron jobs. It asserts
that every figure is reported and that no heartbeat and no job run failed;
never how fast anything was, nor whether maintenance got its lock (it gives up
after 500 ms, by design, and that is a figure)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FIGURES = [
    r"heartbeats sent \| [\d,]+ ",
    r"heartbeats failed \| [\d,]+",
    r"achieved rate \(heartbeats/s\) \| [\d,]+ over",
    r"heartbeat latency p50 / p95 / p99 / max \(ms\) \| [\d.,]+ / [\d.,]+ / [\d.,]+ / [\d.,]+ ",
    r"heartbeats sent behind schedule p99 / max \(ms\) \| [\d.,]+ / [\d.,]+ ",
    r"dashboard read, all of live_status \(500 rows\) p50 / p99 \(ms\) \| [\d.,]+ / [\d.,]+ ",
    r"rollup lag, max \(s\) \| [\d,]+ ",
    r"sweeper lag, max \(s\) \| [\d.,]+ \(median [\d.,]+; \d+ of 20 silent services marked",
    r"heartbeating services marked stale \| [\d,]+ ",
    r"partitions created / dropped during the run \| \d+ / \d+",
    r"pg_cron runs: total, failed \| \d+ runs, \d+ failed",
    r"pg_cron runs per job: count, longest \(s\), worst heartbeat sent meanwhile \(ms\)"
    r" \| pystatus-",
    r"lock waits \(pg_stat_activity every [\d.]+ s\) \| \d+ of \d+ samples",
    r"database size, start → end \| [\d.,]+ MB → [\d.,]+ MB",
    r"CPU time: server, load generator and watcher \(s\) \| server [\d,]+ s",
    r"server log: errors and warnings during the run \| \d+",
]


@pytest.mark.slow
def test_sustained_load_harness_reports_every_figure() -> None:
    # pg_cron schedules by the minute: the run lasts until its jobs have run
    # once under load, 50 to 75 s with the set-up depending on the clock.
    done = subprocess.run(
        [sys.executable, "-m", "bench.sustained", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    missing = [figure for figure in FIGURES if not re.search(figure, out)]
    assert not missing, f"{missing} not in:\n{out}"
    assert re.search(r"heartbeats failed \| 0 \| 0: met", out), out
    assert re.search(r"pg_cron runs: total, failed \| [1-9]\d* runs, 0 failed \|", out), out
