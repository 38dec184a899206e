"""`pystatus demo` starts a cluster, loads history, serves the dashboard, sends
an alert through its webhook receiver, and stops cleanly on Ctrl-C, leaving no
server behind."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from pystatus.cluster import free_port
from tests.serving import get_json


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_serves_the_dashboard_and_ctrl_c_leaves_nothing_running() -> None:
    web = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "pystatus.cli", "demo", "--port", str(web)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    lines = []
    try:
        too_long = threading.Timer(180, demo.kill)  # a demo that never says where: fail, not hang
        too_long.start()
        try:
            for line in demo.stdout:
                lines.append(line)
                if line.startswith("Dashboard:"):
                    break
        finally:
            too_long.cancel()
        assert lines and lines[-1].startswith("Dashboard:"), "".join(lines)
        output = "".join(lines)
        database = int(re.search(r"127\.0\.0\.1:(\d+)/pystatus_demo", output).group(1))  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        while not port_is_open(web):
            assert time.monotonic() < deadline, "the dashboard did not start listening"
            time.sleep(0.1)
        status = get_json(f"http://127.0.0.1:{web}/api/status")
        assert len(status) in (8, 9)  # nightly-backup appears at its first ping
        assert {s["service_name"]: s["effective_status"] for s in status}["mailer"] == "stale"
        ping = re.search(r"reports to (http://\S+)", output).group(1)  # type: ignore[union-attr]
        with urllib.request.urlopen(f"{ping}/fail?task=demo%20test") as response:
            assert response.read() == b"OK\n"
        # Planned quiet times are maintenance, not incidents: indexer's weekly window
        # (it reports maintenance) and search's nightly one (a scheduled window).
        for service in ("indexer", "search"):
            incidents = get_json(f"http://127.0.0.1:{web}/api/services/{service}/incidents?days=30")
            assert [i for i in incidents if i["cause"] == "silence" and i["duration"] > 1800] == []
        assert (
            f"export DATABASE_URL=postgresql://postgres@127.0.0.1:{database}/pystatus_demo"
            in output
        )
        changes = get_json(f"http://127.0.0.1:{web}/api/services/nightly-backup/transitions")
        assert "down" in [change["to_status"] for change in changes]
        days = get_json(f"http://127.0.0.1:{web}/api/services/search/days?days=30")
        assert len(days) == 30
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics") as response:
            assert (
                'pystatus_service_status{service="mailer",status="stale"} 1.0'
                in response.read().decode()
            )
        # mailer, silent since yesterday, is alerted at once: often before the
        # dashboard's line, else soon after.
        alerted = "ALERT via webhook: mailer is stale (silent)"
        if not any(line.startswith(alerted) for line in lines):
            give_up = threading.Timer(60, demo.kill)  # if the alert never came
            give_up.start()
            for line in demo.stdout:
                lines.append(line)
                if line.startswith(alerted):
                    break
            give_up.cancel()
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
    except BaseException:
        # Reaped, its pipe closed, and what it said shown with the failure.
        demo.kill()
        try:
            print("".join(lines) + demo.communicate(timeout=30)[0])
        except subprocess.TimeoutExpired:  # a child still holds the pipe: the failure stands
            print("".join(lines))
        raise
    output = "".join(lines) + rest
    assert demo.returncode == 0, output
    assert "ALERT via webhook: mailer is stale (silent)" in output
    assert "Loaded 30 days of history" in output and "Demo stopped." in output
    assert not port_is_open(web) and not port_is_open(database)


def test_demo_rejects_bad_arguments() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pystatus.cli", "demo", "--port", "x"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "invalid int value" in done.stderr


def test_demo_says_when_its_port_is_busy() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "pystatus.cli", "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1 and done.stdout == ""
    assert f"pystatus: error: port {port} is in use" in done.stderr
    assert f"pystatus demo --port {port + 1}" in done.stderr
