"""Real receivers on 127.0.0.1 for the alert tests: an HTTP server that records
what it is sent (and can answer errors or hang), one that answers a byte a
second, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class HttpReceiver:
    """Records every POST. ``answers`` are the status codes of the next requests
    (then 200); ``hang`` seconds are waited before answering the next ones;
    ``reason`` is the reason phrase of every answer (None: the standard one)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    hang: list[float] = field(default_factory=list)
    reason: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, kind: str | None = None) -> list[Any]:
        with self.lock:
            bodies = [r.body for r in self.received]
        return [b for b in bodies if kind is None or b.get("kind") == kind]

    def services(self, kind: str | None = None) -> list[str]:
        """The services the messages received are about, a summary's each."""
        return [
            entry["service"]
            for body in self.bodies(kind)
            for entry in (body["services"] if body.get("services") else [body])
        ]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers), raw))
                code = receiver.answers.pop(0) if receiver.answers else 200
                delay = receiver.hang.pop(0) if receiver.hang else 0.0
            time.sleep(delay)
            try:
                self.send_response(code, receiver.reason)
                if 300 <= code < 400:
                    self.send_header("Location", "/moved")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up waiting (a timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class DrippingReceiver:
    """Reads each request whole, then answers a byte a second: every read of
    the sender gets something, and the answer takes over a minute. With
    ``greeting`` it reads nothing and drips that instead (an SMTP server's
    first line). ``connections`` holds when each request arrived
    (time.monotonic())."""

    url: str = ""
    connections: list[float] = field(default_factory=list)


@contextmanager
def dripping_receiver(
    seconds_per_byte: float = 1.0, greeting: bytes | None = None
) -> Iterator[DrippingReceiver]:
    receiver = DrippingReceiver()
    padding = b"X-Padding: " + b"." * 60 + b"\r\n"
    answer = greeting or b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + padding + b"\r\nok"
    stopping = threading.Event()

    def drip(connection: socket.socket) -> None:
        with connection:
            request = b"\r\n\r\n" if greeting else b""
            while b"\r\n\r\n" not in request:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                request += chunk
            head, _, body = request.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(body) < length:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                body += chunk
            receiver.connections.append(time.monotonic())
            for byte in answer:
                if stopping.wait(seconds_per_byte):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return  # the sender gave up

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    receiver.url = f"http://127.0.0.1:{server.getsockname()[1]}/hook"

    def serve() -> None:
        while not stopping.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(None)
            threading.Thread(target=drip, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        stopping.set()
        thread.join(5)
        server.close()


@dataclass
class SmtpReceiver:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)


@contextmanager
def smtp_receiver(login: tuple[str, str] | None = None) -> Iterator[SmtpReceiver]:
    """An SMTP server; with ``login``, it requires AUTH with that user and password
    (over plain text, as this test server has no certificate)."""
    receiver = SmtpReceiver()

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        given = (data.login.decode(), data.password.decode())
        return AuthResult(success=given == login, handled=False)  # aiosmtpd answers 235 or 535

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            receiver.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            receiver.messages.append(message_from_bytes(envelope.content))
            return "250 Message accepted for delivery"

    # aiosmtpd checks that it is up by connecting to its port: give it a free one.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        receiver.port = probe.getsockname()[1]
    auth: dict[str, Any] = {}
    if login:
        auth = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
    controller = Controller(Handler(), hostname="127.0.0.1", port=receiver.port, **auth)
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
