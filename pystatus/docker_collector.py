"""The Docker collector: container state and health, recorded as heartbeats.

``pystatus collect docker`` reads every container from the Docker Engine API
(the ``docker`` SDK, ``pip install 'pystatus[docker]'``) and records one
heartbeat per service through ``heartbeat_many``. A full snapshot goes out every
``interval`` seconds (reconciling whatever the event stream missed), and the
containers' events (start, die, health_status, ...) send the service concerned
at once.

How a container's state becomes a status:

=========================================  ===========  ===================================
Docker state (``State.Status``, health)    status       current_task, for example
=========================================  ===========  ===================================
running, health ``healthy``                ok           ``running, healthy``
running, no health check                   ok           ``running``
running, health ``starting``               starting     ``running, health starting``
running, health ``unhealthy``              down         ``running, unhealthy: <last output
                                                        line of the last health check>``
paused                                     degraded     ``paused``
restarting                                 starting     ``restarting``
created, never started                     starting     ``created``
created, but starting it failed (Error)    down         ``created: <Docker's error>``
exited                                     down         ``exited (137), out of memory``
dead, removing, or a state unknown here    down         ``dead``
=========================================  ===========  ===================================

current_task has control, invisible and surrogate characters replaced by
spaces, white space collapsed, and is cut to ``TASK_LIMIT`` characters, far
below the 4096 bytes the database accepts: odd health-check output never costs
a heartbeat.

Service names: the value of the label ``pystatus.service`` (``--label``) when a
container has it and it is not empty, else the container's name without its
leading ``/``; with ``label_only`` containers without the label are ignored.
A name that breaks pystatus's naming rule (1 to 64 characters, not blank, no
control or invisible characters, no white space at either end) is skipped with
a warning. Should the database refuse heartbeats of a batch anyway (a rule that
changed, a login allowed only some services), the batch is sent again one
heartbeat at a time, so the others are still recorded.

Several containers of one service (replicas, or a stopped old container beside
its replacement): the running (or paused, or restarting) ones count, the others
only when none runs. When they all agree, that is the status; when some are ok
and others not, degraded; otherwise the worst of them (down, then degraded, then
starting). current_task then says ``2 of 3 containers ok; <name>: <its task>``,
naming the container in the worst state.

A removed container (``destroy``) sends nothing: its service's other containers,
if any, are recorded again; a service left without containers keeps its last
status (down, from the ``die`` before) and turns stale when its expected
interval and grace have passed, as any service that falls silent.

Failures are never fatal: a Docker daemon that is away or restarting, and a
database that is unreachable or refuses the login, are logged (logger
``pystatus.docker``; a warning for the first failure in a row, then debug) and
retried with a backoff of 0.5 s doubling up to ``MAX_BACKOFF``, never longer
than the interval. Events missed while the stream was down are made up by a
full snapshot as soon as it is back.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import docker  # type: ignore[import-untyped]
import docker.errors  # type: ignore[import-untyped]
import psycopg

from pystatus.client import BOUNDED_WAITS, CONNECT_OPTIONS, heartbeat_many
from pystatus.connection import backoff, resolve_dsn
from pystatus.errors import InvalidInput, NotAllowed, PystatusError, translate_errors
from pystatus.names import clean_text, service_name_problem
from pystatus.vocabulary import severity

logger = logging.getLogger("pystatus.docker")

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
DEFAULT_LABEL = "pystatus.service"
DEFAULT_INTERVAL = 10.0
TASK_LIMIT = 200  # characters: enough for a line of health output, short on a dashboard
MAX_BACKOFF = 10.0  # seconds between attempts while Docker or the database is away
DOCKER_TIMEOUT = 30  # seconds for one Engine API request (the event stream has none)
# How often the main loop looks at the stop event and at requests for a snapshot.
TICK = 0.25
# The events after which a container's status may have changed. The daemon
# matches "health_status" to "health_status: healthy" and the like, and leaves
# out the exec_* events each health check makes.
EVENTS = ["start", "die", "stop", "pause", "unpause", "restart", "destroy", "health_status"]
EVENT_FILTERS = {"type": "container", "event": EVENTS}
APPLICATION_NAME = "pystatus docker collector"
# Every this many snapshots, every container is inspected again (else only those
# whose listing changed): a minute at the default interval.
FULL_SNAPSHOT_EVERY = 6
# The ages in a listing's Status ("Up 2 hours", "Exited (1) About a minute ago").
AGES = re.compile(r"(Less than a second|About an? \w+|\d+ \w+)( ago)?")
WARNED_LIMIT = 1000  # problems remembered so as to warn once each

Beat = tuple[str, str, str | None]

# Docker's states other than running; running depends on the health check.
STATE_STATUS = {
    "created": "starting",
    "restarting": "starting",
    "paused": "degraded",
    "exited": "down",
    "dead": "down",
    "removing": "down",
}
HEALTH_STATUS = {"healthy": "ok", "starting": "starting", "unhealthy": "down"}
LIVE_STATES = {"running", "paused", "restarting"}


def listing_words(summary: Mapping[str, Any]) -> str:
    """What a container listing says of its state, without the ages that change
    every minute: "Up 2 hours (healthy)" is "running Up (healthy)", "Exited (137)
    3 seconds ago" is "exited Exited (137)"."""
    status = AGES.sub("", str(summary.get("Status", "")))
    return f"{summary.get('State', '')} {' '.join(status.split())}"


def service_name_for(
    name: str, labels: Mapping[str, str] | None, label: str, label_only: bool
) -> str | None:
    """The service a container reports: its label's value, else (unless ``label_only``)
    its name. None: the container reports nothing."""
    value = (labels or {}).get(label) or ""
    if value:
        return value
    return None if label_only else name.lstrip("/")


def container_status(state: Mapping[str, Any]) -> str:
    """The pystatus status of a container's ``State`` (the table in the module's docstring)."""
    docker_status = state.get("Status", "")
    if docker_status == "running":
        return HEALTH_STATUS.get(_health(state).get("Status", ""), "ok")
    if docker_status == "created" and state.get("Error"):
        return "down"
    return STATE_STATUS.get(docker_status, "down")


def container_task(state: Mapping[str, Any]) -> str:
    """A short account of a container's ``State`` for current_task."""
    docker_status = str(state.get("Status", "unknown"))
    if docker_status == "running":
        task = _running_task(_health(state))
    elif docker_status == "exited":
        task = f"exited ({state.get('ExitCode', '?')})"
        if state.get("OOMKilled"):
            task += ", out of memory"
    else:
        task = docker_status
    if state.get("Error"):
        task += f": {state['Error']}"
    return clean_text(task, TASK_LIMIT)


def _health(state: Mapping[str, Any]) -> Mapping[str, Any]:
    return state.get("Health") or {}


def _running_task(health: Mapping[str, Any]) -> str:
    health_status = health.get("Status")
    if not health_status or health_status == "none":
        return "running"
    if health_status == "starting":  # no verdict yet: its output says nothing
        return "running, health starting"
    output = last_health_output(health)
    return f"running, {health_status}: {output}" if output else f"running, {health_status}"


def last_health_output(health: Mapping[str, Any]) -> str:
    """The last non-blank line the latest health check printed."""
    log = health.get("Log") or []
    output = str(log[-1].get("Output") or "") if log else ""
    lines = [clean for line in output.splitlines() if (clean := clean_text(line, TASK_LIMIT))]
    return lines[-1] if lines else ""


@dataclass(frozen=True)
class ContainerReport:
    """What one container says about its service."""

    service: str
    container: str
    status: str
    task: str
    live: bool  # running, paused or restarting: counts before stopped containers


def container_report(
    attrs: Mapping[str, Any], label: str, label_only: bool
) -> ContainerReport | None:
    """The report of one container (``container.attrs``, an inspect), or None when it
    reports no service."""
    name = str(attrs.get("Name", "")).lstrip("/")
    labels = (attrs.get("Config") or {}).get("Labels")
    service = service_name_for(name, labels, label, label_only)
    if service is None:
        return None
    state = attrs.get("State") or {}
    return ContainerReport(
        service=service,
        container=name,
        status=container_status(state),
        task=container_task(state),
        live=state.get("Status") in LIVE_STATES,
    )


def service_beats(reports: Iterable[ContainerReport]) -> list[Beat]:
    """One heartbeat per service, combining its containers' reports."""
    by_service: dict[str, list[ContainerReport]] = {}
    for report in sorted(reports, key=lambda r: (r.service, r.container)):
        by_service.setdefault(report.service, []).append(report)
    return [_service_beat(service, found) for service, found in by_service.items()]


def _service_beat(service: str, reports: list[ContainerReport]) -> Beat:
    counted = [r for r in reports if r.live] or reports
    # Worst first: which container's task a service with mixed containers shows.
    worst = min(counted, key=lambda r: severity(r.status))
    if len(counted) == 1:
        return (service, worst.status, worst.task)
    statuses = {r.status for r in counted}
    if len(statuses) == 1:
        status = worst.status
    elif "ok" in statuses:
        status = "degraded"
    else:
        status = worst.status
    ok = sum(r.status == "ok" for r in counted)
    task = f"{ok} of {len(counted)} containers ok; {worst.container}: {worst.task}"
    return (service, status, clean_text(task, TASK_LIMIT))


def docker_url(socket: str) -> str:
    """A base_url for the SDK: a bare socket path gets its ``unix://``."""
    return f"unix://{socket}" if socket.startswith("/") else socket


class _FailureStreak:
    """Failures in a row of one activity: a warning for the first, debug for the others,
    a note when it works again, and the backoff before the next attempt."""

    def __init__(self, activity: str) -> None:
        self.activity = activity
        self.failures = 0

    def failed(self, error: BaseException) -> None:
        self.failures += 1
        log = logger.warning if self.failures == 1 else logger.debug
        # A traceback only for what is not one of the expected outages.
        expected = isinstance(error, (docker.errors.DockerException, OSError, PystatusError))
        log(
            "%s failed (%d in a row): %s",
            self.activity,
            self.failures,
            _describe(error),
            exc_info=None if expected else error,
        )

    def succeeded(self) -> None:
        if self.failures:
            logger.info("%s works again after %d failures", self.activity, self.failures)
        self.failures = 0

    def backoff(self) -> float:
        """Seconds before the next attempt: 0.5 s, doubling with each failure in a row
        up to ``MAX_BACKOFF``."""
        return backoff(self.failures, first=0.5, most=MAX_BACKOFF)


def _describe(error: BaseException) -> str:
    return str(error).strip() or type(error).__name__


class Collector:
    """Records the containers of one Docker daemon as heartbeats, see the module's docstring.

    ``run(stop)`` is the service; ``snapshot()`` and ``send()`` are its two halves,
    usable on their own (then ``close()`` after).
    """

    def __init__(
        self,
        dsn: str | None,
        base_url: str = DEFAULT_SOCKET,
        label: str = DEFAULT_LABEL,
        interval: float = DEFAULT_INTERVAL,
        label_only: bool = False,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.dsn = resolve_dsn(dsn)
        self.base_url = docker_url(base_url)
        self.label = label
        self.interval = interval
        self.label_only = label_only
        self._client: Any = None  # the snapshots' DockerClient, made when first needed
        self._conn: psycopg.Connection[Any] | None = None
        # One observation and its heartbeats at a time: a snapshot taken before
        # an event must not be recorded after the event's heartbeat.
        self._in_order = threading.RLock()
        self._snapshot_wanted = threading.Event()
        self._warned: set[tuple[str, str]] = set()
        # Each container's last inspection, by id, with the listing's words it was
        # made for: a snapshot inspects only containers whose state changed.
        self._inspected: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self._snapshots_since_full = 0
        self.docker_failures = _FailureStreak("docker: reading the containers")
        self.event_failures = _FailureStreak("docker: following the events")
        self.database_failures = _FailureStreak("docker collector: recording heartbeats")
        # The event follower's client and stream, closed from run() to unblock it.
        self._stream_lock = threading.Lock()
        self._stream: Any = None
        self._stream_client: Any = None
        self._halted = threading.Event()
        self.snapshots_sent = 0  # full snapshots recorded by run(), for monitoring and tests

    # -- Docker ------------------------------------------------------------

    def _new_client(self) -> Any:
        return docker.DockerClient(base_url=self.base_url, timeout=DOCKER_TIMEOUT)

    def _docker(self) -> Any:
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def snapshot(self) -> list[Beat]:
        """Every service's heartbeat from all containers (running or not). Raises the
        SDK's errors when the daemon cannot be read."""
        try:
            inspected = self._inspect_changed(self._docker())
        except Exception:
            self._drop_client()  # a new connection next time: the daemon may have restarted
            raise
        return self._beats(inspected)

    def _inspect_changed(self, client: Any) -> list[Mapping[str, Any]]:
        """Every container's inspection: one listing, then an inspect only of the
        containers whose state or health the listing shows changed (inspecting all
        100 containers every 10 s cost 2.7 % of a core), and of all of them every
        FULL_SNAPSHOT_EVERY snapshots, which refreshes health checks' output."""
        full = self._snapshots_since_full % FULL_SNAPSHOT_EVERY == 0
        self._snapshots_since_full += 1
        inspected = {}
        for summary in client.api.containers(all=True):
            container_id, words = summary["Id"], listing_words(summary)
            cached = self._inspected.get(container_id)
            if cached is not None and cached[0] == words and not full:
                inspected[container_id] = cached
                continue
            with contextlib.suppress(docker.errors.NotFound):  # removed meanwhile
                inspected[container_id] = (words, client.api.inspect_container(container_id))
        self._inspected = inspected
        return [attrs for _, attrs in inspected.values()]

    def _beats(self, inspected: Iterable[Mapping[str, Any]]) -> list[Beat]:
        reports = [
            report
            for attrs in inspected
            if (report := container_report(attrs, self.label, self.label_only)) is not None
        ]
        return [beat for beat in service_beats(reports) if self._is_valid_name(beat[0])]

    def _is_valid_name(self, service: str) -> bool:
        problem = service_name_problem(service)
        if problem is not None:
            self._warn_once(
                ("name", service), "docker: skipped service %r: its name %s", service, problem
            )
        return problem is None

    def _warn_once(self, key: tuple[str, str], message: str, *args: object) -> None:
        """A warning the first time, debug after: a snapshot repeats every interval."""
        if len(self._warned) > WARNED_LIMIT:  # containers come and go: forget, warn again
            self._warned.clear()
        log = logger.debug if key in self._warned else logger.warning
        self._warned.add(key)
        log(message, *args)

    def _service_beats(self, client: Any, service: str) -> list[Beat]:
        """The heartbeat of one service alone (none if it has no container left): one
        listing, then an inspect of its containers only."""
        summaries = client.api.containers(all=True)
        ids = [s["Id"] for s in summaries if self._summary_service(s) == service]
        inspected = []
        for container_id in ids:
            with contextlib.suppress(docker.errors.NotFound):  # removed meanwhile
                inspected.append(client.api.inspect_container(container_id))
        return [beat for beat in self._beats(inspected) if beat[0] == service]

    def _summary_service(self, summary: Mapping[str, Any]) -> str | None:
        names = summary.get("Names") or [""]
        return service_name_for(names[0], summary.get("Labels"), self.label, self.label_only)

    # -- The database --------------------------------------------------------

    def send(self, beats: Sequence[Beat]) -> bool:
        """Records ``beats``; False when the database could not be reached (logged; the
        connection is opened again next time). Heartbeats the database refuses are
        logged and left out; the others are recorded."""
        if not beats:
            return True
        with self._in_order:
            try:
                self._record(beats)
            except Exception as error:  # the collector outlives any database trouble
                self.database_failures.failed(error)
                self._close_connection()
                return False
            self.database_failures.succeeded()
            return True

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            with translate_errors():
                self._conn = psycopg.connect(
                    self.dsn, application_name=APPLICATION_NAME, **CONNECT_OPTIONS
                )
                self._conn.execute(BOUNDED_WAITS)
        return self._conn

    def _record(self, beats: Sequence[Beat]) -> None:
        conn = self._connection()
        try:
            heartbeat_many(conn, beats)
        except (InvalidInput, NotAllowed) as error:
            # The batch is all or nothing: one heartbeat the database refuses
            # must not cost the others theirs.
            logger.debug("docker: batch refused (%s); sending one at a time", error)
            self._record_one_by_one(conn, beats)

    def _record_one_by_one(self, conn: psycopg.Connection[Any], beats: Sequence[Beat]) -> None:
        for beat in beats:
            try:
                heartbeat_many(conn, [beat])
            except (InvalidInput, NotAllowed) as error:
                self._warn_once(
                    ("refused", f"{beat[0]}: {error}"),
                    "docker: the database refused the heartbeat of %r: %s",
                    beat[0],
                    error,
                )

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    # -- Running ---------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Snapshots every ``interval`` seconds and follows the events until ``stop`` is
        set; returns soon after (within a tick, plus any request in flight)."""
        self._halted.clear()
        follower = threading.Thread(
            target=self._follow_events, name="pystatus-docker-events", daemon=True
        )
        follower.start()
        logger.info("docker: collecting from %s every %s s", self.base_url, self.interval)
        try:
            self._snapshot_loop(stop)
        finally:
            self._halt_events()
            # A daemon that accepted the connection but never answers could keep
            # the follower blocked: it is a daemon thread, and is left behind.
            follower.join(timeout=DOCKER_TIMEOUT)
            self.close()
            logger.info("docker: collector stopped")

    def close(self) -> None:
        """Closes the Docker client and the database connection (``run()`` does, when
        it returns); they are opened again if needed."""
        with self._in_order:
            self._drop_client()
            self._close_connection()

    def _snapshot_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._snapshot_and_send()
            self._wait(stop, self._next_delay())

    def _next_delay(self) -> float:
        """The interval, or a shorter backoff while Docker or the database fails."""
        failing = [s for s in (self.docker_failures, self.database_failures) if s.failures]
        return min([self.interval, *(streak.backoff() for streak in failing)])

    def _snapshot_and_send(self) -> None:
        with self._in_order:
            try:
                beats = self.snapshot()
            except Exception as error:  # the daemon is away: try again soon
                self.docker_failures.failed(error)
                return
            self.docker_failures.succeeded()
            if self.send(beats):
                self.snapshots_sent += 1

    def _wait(self, stop: threading.Event, seconds: float) -> None:
        """Until ``seconds`` have passed, ``stop`` is set or a snapshot is wanted."""
        deadline = time.monotonic() + seconds
        while not stop.is_set() and not self._snapshot_wanted.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            stop.wait(min(remaining, TICK))
        self._snapshot_wanted.clear()

    # -- Events ----------------------------------------------------------------

    def _follow_events(self) -> None:
        while not self._halted.is_set():
            try:
                self._follow_stream()
            except Exception as error:  # the daemon is away or restarting
                if not self._halted.is_set():
                    self.event_failures.failed(error)
            # After a stream that ended cleanly too (a daemon shutting down): a pause, not a spin.
            self._halted.wait(self.event_failures.backoff())

    def _follow_stream(self) -> None:
        client = self._new_client()
        stream = client.events(decode=True, filters=EVENT_FILTERS)
        if not self._adopt_stream(client, stream):
            return
        try:
            self.event_failures.succeeded()
            logger.info("docker: following the events of %s", self.base_url)
            # Whatever happened while the stream was down is known only to a snapshot.
            self._snapshot_wanted.set()
            for event in stream:
                if self._halted.is_set():
                    break
                self._on_event(client, event)
        finally:
            self._close_stream()
            # The SDK's close() shuts the socket, but the HTTP response still
            # holds a file on it, and the descriptor stays open until the
            # response is collected: closed here, in the thread that read it.
            with contextlib.suppress(Exception):
                stream._response.close()

    def _adopt_stream(self, client: Any, stream: Any) -> bool:
        """Keeps the stream where run() can close it; False (and closed) if run() is
        already done."""
        with self._stream_lock:
            self._stream, self._stream_client = stream, client
        if self._halted.is_set():
            self._close_stream()
            return False
        return True

    def _close_stream(self) -> None:
        with self._stream_lock:
            stream, client = self._stream, self._stream_client
            self._stream = self._stream_client = None
        # Closing the socket is what wakes a thread blocked reading the stream.
        for closable in (stream, client):
            if closable is not None:
                with contextlib.suppress(Exception):
                    closable.close()

    def _halt_events(self) -> None:
        self._halted.set()
        self._close_stream()

    def _on_event(self, client: Any, event: Mapping[str, Any]) -> None:
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        service = service_name_for(
            attributes.get("name", ""), attributes, self.label, self.label_only
        )
        if service is None:
            return
        logger.debug("docker: %s of %s", event.get("Action"), attributes.get("name"))
        with self._in_order:
            beats = self._service_beats(client, service)
            if not self.send(beats):
                self._snapshot_wanted.set()  # the snapshot loop retries, with its backoff


def run_collector(
    dsn: str | None,
    socket: str,
    label: str,
    interval: float,
    label_only: bool,
    stop: threading.Event,
) -> None:
    """``pystatus collect docker``: runs a ``Collector`` until ``stop`` is set."""
    Collector(dsn, socket, label=label, interval=interval, label_only=label_only).run(stop)
