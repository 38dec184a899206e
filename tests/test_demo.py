"""`pystatus demo` starts, shows services heartbeating, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import pytest


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_and_ctrl_c_leaves_nothing_running() -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "pystatus.cli", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    lines = []
    try:
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("librarian"):
                break
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", "".join(lines)).group(1))  # type: ignore[union-attr]
        assert port_is_open(port)
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
    except BaseException:
        demo.kill()
        raise
    output = "".join(lines) + rest
    assert demo.returncode == 0, output
    assert "Migrated: 0001_foundation" in output
    assert "Demo stopped." in output
    assert not port_is_open(port)


@pytest.mark.parametrize("argv", [["demo", "--duration", "x"]])
def test_demo_rejects_bad_arguments(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pystatus.cli", *argv], capture_output=True, text=True
    )
    assert done.returncode == 2 and "invalid float value" in done.stderr
