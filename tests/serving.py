"""Serve the dashboard from a thread for a test, on a free port."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from pystatus.dashboard import create_app


@contextmanager
def dashboard(dsn: str) -> Iterator[str]:
    with serving(create_app(dsn)) as url:
        yield url


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serves an ASGI application on a free port; yields its base URL."""
    # Bound here, not only looked up: no other server can take the port meanwhile.
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = int(listening.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        listening.close()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)
