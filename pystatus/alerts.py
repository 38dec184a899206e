"""Alerts: channels, rules, maintenance windows, and the worker that delivers.

What is decided lives in SQL (sql/schema/75_alerts.sql): status changes become
events in the same transaction, ``pystatus.evaluate_alerts()`` turns them into
messages by the rules, and ``claim_alert_messages`` hands each message to one
worker at a time. Here: thin wrappers, the three ways to send (webhook, email,
Apprise), and ``Worker``, the loop of ``pystatus alerts run``.

Delivery is at least once: a worker that dies mid-send leaves its message to be
sent again after its lease, with the same idempotency key, which receivers use
to drop the copy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import re
import smtplib
import socket
import ssl
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID

import psycopg

from pystatus.connection import resolve_dsn
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
    """Plans a maintenance window (recurring when ``every`` is given); returns its id."""
    params = {
        "service_pattern": service_pattern,
        "starts": starts,
        "ends": ends,
        "every": every,
        "time_zone": time_zone,
        "repeat_until": repeat_until,
        "reason": reason,
    }
    return int(fetch_value(conn, "add_maintenance", params))


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


_OPENER = urllib.request.build_opener(_NoRedirects)


def send_webhook(message: Message, timeout: float) -> None:
    payload = json.dumps(message.body, sort_keys=True).encode()
    request = urllib.request.Request(message.target, data=payload, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "pystatus-alerts")
    request.add_header(IDEMPOTENCY_HEADER, str(message.idempotency_key))
    if secret := message.options.get("secret"):
        request.add_header(SIGNATURE_HEADER, signature(str(secret), payload))
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"{type(reason).__name__}: {reason}") from exc


def send_email(message: Message, timeout: float) -> None:
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
        smtp: smtplib.SMTP
        if options.get("ssl"):
            port = int(options.get("port", 465))
            smtp = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(host, int(options.get("port", 25)), timeout=timeout)
        with smtp:
            if options.get("starttls"):
                smtp.starttls(context=ssl.create_default_context())
            if options.get("username"):
                smtp.login(str(options["username"]), str(options.get("password", "")))
            smtp.send_message(email)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP {host}: {type(exc).__name__}: {exc}") from exc


def send_apprise(message: Message, timeout: float) -> None:
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
    # Its timeouts are the URLs' own (?cto=, ?rto=; 4 s by default).
    sent = notifier.notify(title=subject(message.body), body=body, notify_type=notify_type)
    if not sent:
        raise DeliveryFailed("Apprise could not notify every URL (its log says why)")


SENDERS = {"webhook": send_webhook, "email": send_email, "apprise": send_apprise}


def deliver(message: Message, max_timeout: float) -> None:
    """Sends one message through its channel; DeliveryFailed if the channel did not take it."""
    timeout = min(float(message.options.get("timeout", DEFAULT_TIMEOUT)), max_timeout)
    SENDERS[message.kind](message, timeout)


# --- The worker ---------------------------------------------------------------


class Worker:
    """``pystatus alerts run``: evaluates the rules and delivers the messages.

    Each round it marks silent services stale, evaluates the rules and sends
    what is due. It runs a round every ``poll_interval`` seconds, at the next
    deadline or rule wait that ``evaluate_alerts()`` reports, and when notified
    (a test message). Status writes do not notify (that would make services'
    two-phase commits fail), hence the short poll. Any number of workers may
    run: the database gives each message to one of them at a time, and a send
    never outlives the lease it holds the message for.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        name: str | None = None,
        poll_interval: float = 1.0,
        lease: timedelta = timedelta(minutes=3),
        batch: int = 10,
        concurrency: int = 4,
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

    def stop(self) -> None:
        """Asks the loop to finish the deliveries in hand and return."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        """Runs until ``stop()``; a lost database is retried, never fatal."""
        backoff = 1.0
        while not self.stopping:
            try:
                with psycopg.connect(
                    self.dsn,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=f"pystatus alerts {self.name}"[:63],
                ) as conn:
                    conn.execute("LISTEN pystatus_alerts")  # pystatus._alerts_channel()
                    log.info("alert worker %s connected", self.name)
                    backoff = 1.0
                    self._loop(conn)
            except (psycopg.Error, PystatusError) as exc:
                if self.stopping:
                    break
                log.warning("alert worker %s: %s; retrying in %.0f s", self.name, exc, backoff)
                self._stopping.wait(jitter(backoff))
                backoff = min(backoff * 2, 30.0)

    def _loop(self, conn: Conn) -> None:
        while not self.stopping:
            next_check = self.run_once(conn)
            wait = min(self.poll_interval, max(0.0, next_check))
            self._wait_for_notification(conn, wait)

    def run_once(self, conn: Conn) -> float:
        """One round: evaluate, then deliver everything due. Returns the seconds
        until the next evaluation is needed."""
        sweep(conn)
        evaluation = evaluate(conn)
        # A socket timeout bounds each network operation, not the whole send:
        # a quarter of the lease leaves room for connect, send and answer.
        max_timeout = self.lease.total_seconds() / 4
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="pystatus-alert") as pool:
            while not self.stopping:
                # No more than can be sent at once: each send starts as its lease does.
                messages = claim(conn, self.name, min(self.batch, self.concurrency), self.lease)
                if not messages:
                    break
                outcomes = pool.map(lambda m: (m, attempt(m, max_timeout)), messages)
                for message, error in outcomes:
                    state = finish(conn, message, error)
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
        now: datetime = fetch_value(conn, "server_now")
        return (evaluation.next_check - now).total_seconds()

    def _wait_for_notification(self, conn: Conn, seconds: float) -> None:
        # In slices, so that stop() is honoured within half a second.
        remaining = seconds
        while remaining > 0 and not self.stopping:
            step = min(0.5, remaining)
            with translate_errors():
                for _ in conn.notifies(timeout=step, stop_after=1):
                    return
            remaining -= step


def attempt(message: Message, max_timeout: float) -> str | None:
    """Sends; the error as text when it failed, None when it was delivered."""
    try:
        deliver(message, max_timeout)
    except DeliveryFailed as exc:
        return without_secrets(str(exc))
    except Exception as exc:  # a bug in a sender must not stop the worker
        log.exception("sending message %s", message.message_id)
        return without_secrets(f"{type(exc).__name__}: {exc}")
    return None


_URL = re.compile(r"\b([a-z][a-z0-9+.-]*://)\S+", re.IGNORECASE)


def without_secrets(error: str) -> str:
    """An error as it is logged and stored: URLs (which may carry tokens) cut to their
    scheme, as ``pystatus check`` shows the last error to readers."""
    return _URL.sub(r"\1...", error)


def jitter(seconds: float) -> float:
    """A little randomness, so that restarted workers do not reconnect in step."""
    return seconds * (0.8 + 0.4 * random.random())
