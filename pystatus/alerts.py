"""Alerts: channels, rules, maintenance windows, and the worker that delivers.

What is decided lives in SQL (sql/schema/75_alert_rules.sql, 76_alert_decisions.sql,
77_alert_delivery.sql): status changes become events in the same transaction,
``pystatus.evaluate_alerts()`` turns them into messages by the rules, and
``claim_alert_messages`` hands each message to one worker at a time. Here: thin
wrappers, the three ways to send (webhook, email, Apprise), and ``Worker``, the loop of
``pystatus alerts run``.

Delivery is at least once: a worker that dies mid-send leaves its message to be
sent again after its lease, with the same idempotency key, which receivers use
to drop the copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import os
import queue
import re
import smtplib
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID

import psycopg

from pystatus.connection import backoff, resolve_dsn
from pystatus.errors import PystatusError, translate_errors
from pystatus.queries import Conn, fetch_all, fetch_one, fetch_value

log = logging.getLogger("pystatus.alerts")

SIGNATURE_HEADER = "X-Pystatus-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TIMEOUT = 10.0  # seconds, for a channel without its own


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str  # webhook, email, apprise
    target: str  # masked: URLs cut after the host
    options: dict[str, Any]  # masked: secret and password shown as ***
    rules: int


@dataclass(frozen=True)
class Rule:
    id: int
    service_pattern: str  # * matches any characters
    channel: str
    down_for: timedelta
    down_reports: int
    up_for: timedelta
    remind_every: timedelta | None


@dataclass(frozen=True)
class Window:
    """One occurrence of a maintenance window or snooze."""

    window_id: int
    service_pattern: str
    kind: str  # maintenance, snooze
    starts: datetime
    ends: datetime
    reason: str | None


@dataclass(frozen=True)
class LogEntry:
    message_id: int
    created_at: datetime
    channel: str
    service_name: str | None
    kind: str  # down, reminder, recovered, test
    state: str  # pending, sent, failed
    attempts: int
    sent_at: datetime | None
    last_error: str | None
    idempotency_key: UUID
    body_text: str | None


@dataclass(frozen=True)
class Evaluation:
    messages: int
    next_check: datetime


@dataclass(frozen=True)
class Message:
    """A message claimed for delivery, with its channel's real target and options."""

    message_id: int
    attempt: int
    idempotency_key: UUID
    channel: str
    kind: str
    target: str
    options: dict[str, Any]
    body: dict[str, Any]


# Where a test message wakes the workers: SQL's pystatus._alerts_channel(), which a
# test holds this to.
NOTIFY_CHANNEL = "pystatus_alerts"


# --- Managing channels, rules and windows -------------------------------------


def add_channel(
    conn: Conn, name: str, kind: str, target: str, options: dict[str, Any] | None = None
) -> None:
    """Adds or replaces a channel (webhook, email or apprise)."""
    params = {"name": name, "kind": kind, "target": target, "options": json.dumps(options or {})}
    fetch_value(conn, "add_alert_channel", params)


def remove_channel(conn: Conn, name: str) -> bool:
    return bool(fetch_value(conn, "remove_alert_channel", {"name": name}))


def channels(conn: Conn) -> list[Channel]:
    return fetch_all(conn, Channel, "alert_channels")


def add_rule(
    conn: Conn,
    service_pattern: str,
    channel: str,
    down_for: timedelta = timedelta(0),
    down_reports: int = 1,
    up_for: timedelta = timedelta(0),
    remind_every: timedelta | None = None,
) -> int:
    """Alerts ``channel`` about the services matching ``service_pattern``; returns the rule's id."""
    params = {
        "service_pattern": service_pattern,
        "channel": channel,
        "down_for": down_for,
        "down_reports": down_reports,
        "up_for": up_for,
        "remind_every": remind_every,
    }
    return int(fetch_value(conn, "add_alert_rule", params))


def remove_rule(conn: Conn, rule_id: int) -> bool:
    return bool(fetch_value(conn, "remove_alert_rule", {"rule_id": rule_id}))


def rules(conn: Conn) -> list[Rule]:
    return fetch_all(conn, Rule, "alert_rules")


def add_maintenance(
    conn: Conn,
    service_pattern: str,
    starts: datetime | str,
    ends: datetime | str,
    every: timedelta | str | None = None,
    time_zone: str = "UTC",
    repeat_until: datetime | str | None = None,
    reason: str | None = None,
) -> int:
    """Plans a maintenance window (recurring when ``every`` is given); returns its id.
    Times given as text without an offset are read in ``time_zone``, where the window
    repeats, for this call only: the session's zone is set back after it."""
    params = {
        "service_pattern": service_pattern,
        "starts": starts,
        "ends": ends,
        "every": every,
        "time_zone": time_zone,
        "repeat_until": repeat_until,
        "reason": reason,
    }
    with translate_errors(), conn.transaction():
        before = fetch_value(conn, "time_zone_for_transaction", {"time_zone": time_zone})
        window_id = int(fetch_value(conn, "add_maintenance", params))
        # Set back: inside a caller's transaction, the zone would stay ours.
        fetch_value(conn, "time_zone_for_transaction", {"time_zone": before})
        return window_id


def snooze(
    conn: Conn, service_pattern: str, duration: timedelta | str, reason: str | None = None
) -> int:
    """Mutes the alerts of matching services for ``duration`` from now; returns the snooze's id."""
    params = {"service_pattern": service_pattern, "duration": duration, "reason": reason}
    return int(fetch_value(conn, "snooze", params))


def remove_maintenance(conn: Conn, window_id: int) -> bool:
    return bool(fetch_value(conn, "remove_maintenance", {"window_id": window_id}))


def windows(conn: Conn, since: datetime, until: datetime) -> list[Window]:
    """The occurrences of maintenance windows and snoozes overlapping [since, until)."""
    return fetch_all(conn, Window, "maintenance_occurrences", {"since": since, "until": until})


def send_test(conn: Conn, channel: str) -> int:
    """Queues a test message for ``channel``; the worker delivers it. Returns its id."""
    return int(fetch_value(conn, "send_test_alert", {"channel": channel}))


def message_log(conn: Conn, since: datetime) -> list[LogEntry]:
    return fetch_all(conn, LogEntry, "alert_log", {"since": since})


def sweep(conn: Conn) -> int:
    """Marks services silent past their deadline stale (as pystatus_alerter may)."""
    return int(fetch_value(conn, "alert_sweep"))


def evaluate(conn: Conn) -> Evaluation:
    """Writes the alert messages that are due; says when to evaluate next."""
    return fetch_one(conn, Evaluation, "evaluate_alerts")


def claim(
    conn: Conn, worker: str, max_messages: int, lease: timedelta, message_id: int | None = None
) -> list[Message]:
    """Takes due messages (or only ``message_id``) for ``lease``: one worker at a time each."""
    params = {
        "worker": worker,
        "max_messages": max_messages,
        "lease": lease,
        "message_id": message_id,
    }
    return fetch_all(conn, Message, "claim_alert_messages", params)


def finish(conn: Conn, message: Message, error: str | None) -> str:
    """Records the attempt's outcome (error None: delivered); returns the message's state."""
    params = {"message_id": message.message_id, "attempt": message.attempt, "error": error}
    return str(fetch_value(conn, "finish_alert_attempt", params))


# --- Sending ------------------------------------------------------------------


class DeliveryFailed(Exception):
    """The channel did not take the message; the worker retries later."""


def subject(body: dict[str, Any]) -> str:
    return f"[pystatus] {body.get('text', body.get('kind', 'alert'))}"


def signature(secret: str, payload: bytes) -> str:
    """The webhook's signature header: sha256=<hex HMAC-SHA256 of the raw body>."""
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


class Deadline:
    """The whole time one send may take. A socket timeout bounds each read, not
    a send: a receiver that answers a byte at a time would hold it for as long
    as it likes. When the time is up, or ``cut()`` is called (the worker
    stops), the sockets the send opened are shut, and whatever it was reading
    fails at once. Use it with ``with``: its clock starts there."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.reason: str | None = None  # why it was cut
        self._ends = 0.0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(
            seconds, self.cut, (f"timed out: no whole answer within {seconds:g} s",)
        )
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._ends = time.monotonic() + self.seconds
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()

    def remaining(self) -> float:
        """Seconds left: what each network operation may wait, at most."""
        left = self._ends - time.monotonic()
        if self.reason is not None or left <= 0:
            raise DeliveryFailed(self.reason or f"timed out after {self.seconds:g} s")
        return left

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` when the deadline is cut. A duplicate of it is kept: it
        shuts the same connection after TLS has wrapped the socket (STARTTLS)."""
        with self._lock:
            self._sockets.append(sock.dup())
            cut = self.reason is not None
        if cut:
            self._shut()

    def cut(self, reason: str) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
        self._shut()

    def _shut(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def failure(self, error: str) -> DeliveryFailed:
        """The error to report: why the send was cut, when it was (a cut socket
        fails with whatever its reader was doing), else ``error``."""
        return DeliveryFailed(self.reason or error)


def _watched(connection_class: type[http.client.HTTPConnection], deadline: Deadline) -> Any:
    """urllib's connection class, with every socket it opens watched by ``deadline``
    (a proxy's tunnel included)."""

    def connect(*args: Any, **kwargs: Any) -> socket.socket:
        sock = socket.create_connection(*args, **kwargs)
        deadline.watch(sock)
        return sock

    def make(host: str, **kwargs: Any) -> http.client.HTTPConnection:
        connection = connection_class(host, **kwargs)
        connection._create_connection = connect  # type: ignore[attr-defined]
        return connection

    return make


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPConnection, self.deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPSConnection, self.deadline), req)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would arrive as a GET without its body: refuse it, so
    the attempt fails and says where the channel should point."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> None:
        raise urllib.error.HTTPError(
            req.full_url,
            code,
            f"{msg}: redirected to {newurl}, set the channel's URL to it",
            headers,
            fp,
        )


def send_webhook(message: Message, deadline: Deadline) -> None:
    payload = json.dumps(message.body, sort_keys=True).encode()
    request = urllib.request.Request(message.target, data=payload, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "pystatus-alerts")
    request.add_header(IDEMPOTENCY_HEADER, str(message.idempotency_key))
    if secret := message.options.get("secret"):
        request.add_header(SIGNATURE_HEADER, signature(str(secret), payload))
    opener = urllib.request.build_opener(
        _NoRedirects, _HTTPHandler(deadline), _HTTPSHandler(deadline)
    )
    try:
        with opener.open(request, timeout=deadline.remaining()) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        raise deadline.failure(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise deadline.failure(f"{type(reason).__name__}: {reason}") from exc


class _SMTP(smtplib.SMTP):
    """An SMTP client whose deadline watches its socket."""

    def __init__(self, deadline: Deadline, host: str, port: int) -> None:
        self.deadline = deadline  # before connecting, which the constructor does
        super().__init__(host, port, timeout=deadline.remaining())

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self.deadline.watch(sock)  # before TLS, for SMTP_SSL: its handshake is watched too
        return sock


class _SMTPSSL(smtplib.SMTP_SSL, _SMTP):
    """SMTP over TLS: SMTP_SSL wraps the socket that _SMTP opened and watches."""

    def __init__(self, deadline: Deadline, host: str, port: int) -> None:
        self.deadline = deadline
        smtplib.SMTP_SSL.__init__(
            self, host, port, timeout=deadline.remaining(), context=ssl.create_default_context()
        )


def send_email(message: Message, deadline: Deadline) -> None:
    options = message.options
    email = EmailMessage()
    email["Subject"] = subject(message.body)
    email["From"] = options.get("sender") or f"pystatus@{socket.getfqdn()}"
    email["To"] = message.target
    # The same Message-ID in every copy: mail clients show a resent alert once.
    email["Message-ID"] = f"<{message.idempotency_key}@pystatus>"
    email[IDEMPOTENCY_HEADER] = str(message.idempotency_key)
    email.set_content(
        f"{message.body.get('text', '')}\n\n{json.dumps(message.body, indent=2, sort_keys=True)}\n"
    )
    host = str(options.get("host", "localhost"))
    try:
        smtp: _SMTP
        if options.get("ssl"):
            smtp = _SMTPSSL(deadline, host, int(options.get("port", 465)))
        else:
            smtp = _SMTP(deadline, host, int(options.get("port", 25)))
        with smtp:
            if options.get("starttls"):
                smtp.starttls(context=ssl.create_default_context())
            if options.get("username"):
                smtp.login(str(options["username"]), str(options.get("password", "")))
            smtp.send_message(email)
    except (smtplib.SMTPException, OSError) as exc:
        raise deadline.failure(f"SMTP {host}: {type(exc).__name__}: {exc}") from exc


def send_apprise(message: Message, deadline: Deadline) -> None:
    try:
        import apprise  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise DeliveryFailed(
            "Apprise is not installed: pip install 'pystatus[alerts]' where the worker runs"
        ) from exc
    notifier = apprise.Apprise()
    for url in message.target.split():
        if not notifier.add(url):
            raise DeliveryFailed(f"Apprise does not understand the URL {url.split('://')[0]}://...")
    text = message.body.get("text", "")
    body = f"{text}\n\nidempotency key: {message.idempotency_key}"
    kind = message.body.get("kind")
    notify_type = {"down": "failure", "reminder": "warning", "recovered": "success"}.get(
        str(kind), "info"
    )
    # Its sockets are its own (their timeouts are the URLs' ?cto= and ?rto=, 4 s
    # by default): it notifies in a thread of its own, and the send is given up
    # at the deadline, that thread left to end by itself.
    sent: list[bool] = []
    notifying = threading.Thread(
        target=lambda: sent.append(
            bool(notifier.notify(title=subject(message.body), body=body, notify_type=notify_type))
        ),
        daemon=True,
        name=f"pystatus-apprise-{message.message_id}",
    )
    notifying.start()
    while notifying.is_alive():
        notifying.join(min(0.1, deadline.remaining()))
    if sent != [True]:
        raise DeliveryFailed("Apprise could not notify every URL (its log says why)")


SENDERS: dict[str, Callable[[Message, Deadline], None]] = {
    "webhook": send_webhook,
    "email": send_email,
    "apprise": send_apprise,
}


def send_seconds(message: Message, max_seconds: float) -> float:
    """How long sending ``message`` may take in all: its channel's ``timeout``, at
    most ``max_seconds``."""
    return min(float(message.options.get("timeout", DEFAULT_TIMEOUT)), max_seconds)


def deliver(message: Message, max_seconds: float, deadline: Deadline | None = None) -> None:
    """Sends one message through its channel within its deadline (``send_seconds``
    unless given); DeliveryFailed if the channel did not take it in time."""
    with deadline or Deadline(send_seconds(message, max_seconds)) as bound:
        SENDERS[message.kind](message, bound)


# --- The worker ---------------------------------------------------------------


class Worker:
    """``pystatus alerts run``: evaluates the rules and delivers the messages.

    Each round it marks silent services stale, evaluates the rules and starts
    sending what is due. It runs a round every ``poll_interval`` seconds, at
    the next deadline or rule wait that ``evaluate_alerts()`` reports, and when
    notified (a test message). Status writes do not notify (that would make
    services' two-phase commits fail), hence the short poll.

    Up to ``concurrency`` sends run at once, each in a thread of its own, while
    the loop goes on: a slow receiver holds only its own sends, and the
    database gives out only a few of a channel's messages at a time
    (``_alert_sends_per_channel()``), so the other channels' keep flowing. A
    send is cut at its deadline, at most half the ``lease`` the message is
    held for: no other worker sends it again while this one may still be
    sending. Any number of workers may run: the database gives each message
    to one of them at a time.
    """

    stop_grace = 2.0
    """Seconds the sends under way at ``stop()`` are given to end before they are cut."""

    def __init__(
        self,
        dsn: str | None = None,
        *,
        name: str | None = None,
        poll_interval: float = 1.0,
        lease: timedelta = timedelta(minutes=3),
        batch: int = 10,
        concurrency: int = 8,
    ) -> None:
        self.dsn = resolve_dsn(dsn)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.poll_interval = poll_interval
        self.lease = lease
        self.batch = batch
        self.concurrency = concurrency
        self.delivered = 0
        self.failed = 0
        self._stopping = threading.Event()
        # What the sending threads report, and None to wake the loop: a
        # SimpleQueue, whose put() a signal handler may call (stop()).
        self._ended: queue.SimpleQueue[tuple[Message, str | None] | None] = queue.SimpleQueue()
        self._unrecorded: list[tuple[Message, str | None]] = []
        self._sending: dict[int, Deadline] = {}

    @property
    def max_send_seconds(self) -> float:
        """The longest a send may take: half the lease, the other half a margin
        for reporting its outcome before another worker may take the message."""
        return self.lease.total_seconds() / 2

    def stop(self) -> None:
        """Asks the loop to return: the sends under way get ``stop_grace`` seconds to
        end, then are cut (and retried later, by any worker). Safe in a signal handler."""
        self._stopping.set()
        self._ended.put(None)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        """Runs until ``stop()``; a lost database is retried, never fatal."""
        failures = 0
        while not self.stopping:
            try:
                with psycopg.connect(
                    self.dsn,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=f"pystatus alerts {self.name}"[:63],
                ) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    log.info("alert worker %s connected", self.name)
                    failures = 0
                    self._loop(conn)
            except (psycopg.Error, PystatusError) as exc:
                if self.stopping:
                    break
                failures += 1
                wait = backoff(failures, first=1.0, most=30.0, spread=0.2)
                log.warning("alert worker %s: %s; retrying in %.0f s", self.name, exc, wait)
                self._stopping.wait(wait)
        # Stopped without a database to report to: the sends still under way
        # end now; their messages are sent again after their lease.
        self._cut_sends()

    def _loop(self, conn: Conn) -> None:
        next_round = 0.0
        while not self.stopping:
            self._record(conn)
            if time.monotonic() >= next_round:
                next_round = time.monotonic() + min(self.poll_interval, self._evaluate(conn))
            self._start_due(conn)
            self._wait(conn, next_round - time.monotonic())
        self._wind_down(conn)

    def _evaluate(self, conn: Conn) -> float:
        """Marks silent services stale and writes the messages due; returns the
        seconds until the next evaluation is needed."""
        sweep(conn)
        evaluation = evaluate(conn)
        now: datetime = fetch_value(conn, "server_now")
        return max(0.0, (evaluation.next_check - now).total_seconds())

    def _start_due(self, conn: Conn) -> None:
        """Claims what there are free sends for, and starts sending each: a message
        is claimed only when its send can start, so its lease is all its own."""
        while not self.stopping and (free := self.concurrency - len(self._sending)) > 0:
            wanted = min(self.batch, free)
            messages = claim(conn, self.name, wanted, self.lease)
            for message in messages:
                deadline = Deadline(send_seconds(message, self.max_send_seconds))
                self._sending[message.message_id] = deadline
                threading.Thread(
                    target=self._send,
                    args=(message, deadline),
                    daemon=True,  # one stuck in a library must not keep the process alive
                    name=f"pystatus-alert-{message.message_id}",
                ).start()
            if len(messages) < wanted:
                return

    def _send(self, message: Message, deadline: Deadline) -> None:
        self._ended.put((message, attempt(message, deadline.seconds, deadline)))

    def _wait(self, conn: Conn, seconds: float) -> None:
        """Until a send ends, a notification, ``stop()`` or ``seconds`` have passed."""
        if self._sending:
            with contextlib.suppress(queue.Empty):
                ended = self._ended.get(timeout=max(0.0, seconds))
                if ended is not None:
                    self._unrecorded.append(ended)
            return
        # Nothing being sent: wait for a notification, in slices, so that
        # stop() is honoured within half a second.
        remaining = seconds
        while remaining > 0 and not self.stopping:
            step = min(0.5, remaining)
            with translate_errors():
                for _ in conn.notifies(timeout=step, stop_after=1):
                    return
            remaining -= step

    def _record(self, conn: Conn) -> None:
        """Reports the outcome of every send that ended (kept to report after a
        reconnection, should the database be lost meanwhile)."""
        while True:
            try:
                ended = self._ended.get_nowait()
            except queue.Empty:
                break
            if ended is not None:
                self._unrecorded.append(ended)
        while self._unrecorded:
            message, error = self._unrecorded[0]
            state = finish(conn, message, error)
            self._unrecorded.pop(0)
            self._sending.pop(message.message_id, None)
            if error is None:
                self.delivered += 1
                log.info(
                    "sent %s message %s via %s",
                    message.body.get("kind"),
                    message.message_id,
                    message.channel,
                )
            else:
                self.failed += 1
                log.warning(
                    "message %s via %s failed (%s): %s",
                    message.message_id,
                    message.channel,
                    state,
                    error,
                )

    def _wind_down(self, conn: Conn) -> None:
        """On stop: the sends under way get ``stop_grace`` seconds, then are cut
        and reported as failed (they are retried later, by any worker)."""
        for grace, cut in ((self.stop_grace, False), (1.0, True)):
            if cut:
                self._cut_sends()
            ends = time.monotonic() + grace
            while self._sending and time.monotonic() < ends:
                with contextlib.suppress(queue.Empty):
                    ended = self._ended.get(timeout=max(0.0, ends - time.monotonic()))
                    if ended is not None:
                        self._unrecorded.append(ended)
                self._record(conn)
        if self._sending:
            log.warning(
                "alert worker %s: %d sends did not end; their messages are sent again after"
                " their lease",
                self.name,
                len(self._sending),
            )

    def _cut_sends(self) -> None:
        for deadline in list(self._sending.values()):
            deadline.cut("cut short: the worker stopped")


def attempt(message: Message, max_seconds: float, deadline: Deadline | None = None) -> str | None:
    """Sends; the error as text when it failed, None when it was delivered."""
    try:
        deliver(message, max_seconds, deadline)
    except DeliveryFailed as exc:
        return without_secrets(str(exc))
    except Exception as exc:  # a bug in a sender must not stop the worker
        log.exception("sending message %s", message.message_id)
        return without_secrets(f"{type(exc).__name__}: {exc}")
    return None


@dataclass(frozen=True)
class ChannelTest:
    """What became of a test message sent at once: ``attempted`` is False when a
    running worker claimed it first (its outcome is then in the log)."""

    message_id: int
    attempted: bool
    error: str | None = None


def send_test_now(conn: Conn, channel: str, lease: timedelta = timedelta(minutes=1)) -> ChannelTest:
    """Queues a test message for ``channel`` and delivers it from this process, through
    the queue as a worker does (claimed, sent within half its lease, finished)."""
    message_id = send_test(conn, channel)
    for message in claim(
        conn, f"pystatus alerts test ({channel})", 1, lease, message_id=message_id
    ):
        error = attempt(message, lease.total_seconds() / 2)
        finish(conn, message, error)
        return ChannelTest(message_id, True, error)
    return ChannelTest(message_id, False)


_URL = re.compile(r"\b([a-z][a-z0-9+.-]*://)\S+", re.IGNORECASE)


def without_secrets(error: str) -> str:
    """An error as it is logged and stored: URLs (which may carry tokens) cut to their
    scheme, as ``pystatus check`` shows the last error to readers."""
    return _URL.sub(r"\1...", error)
