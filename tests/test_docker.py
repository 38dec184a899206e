"""The Docker collector against a real Docker daemon (tests/dockerd.py) and a real
database: container state and health become statuses, events are recorded before
the next snapshot, and neither a restarting daemon, a lost database nor an odd
container stops it. The collector logs in as a login granted pystatus_writer only."""

from __future__ import annotations

import itertools
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

import pystatus
from pystatus.docker_collector import (
    Collector,
    ContainerReport,
    container_status,
    container_task,
    listing_words,
    service_beats,
)
from pystatus.names import service_name_problem
from tests import dockerd as harness
from tests.dockerd import IMAGE, Dockerd, network_state
from tests.helpers import one, wait_for

Conn = psycopg.Connection[Any]
SECOND = 1_000_000_000  # the Engine API's durations are in nanoseconds
HEALTH_FILE_CHECK = {
    "test": ["CMD-SHELL", "test -f /tmp/healthy"],
    "interval": SECOND,
    "timeout": 5 * SECOND,
    "retries": 1,
    # Failures in the start period leave the health "starting" until a first success.
    "start_period": 120 * SECOND,
}
STOP_BOUND = 30  # seconds run() may take to return after stop, generously

_serial = itertools.count()

# The SDK leaks the socket of each connection that fails (docker-py pull request
# 3356), as the collector's do while the daemon is away. Only sockets that never
# connected (no raddr) are let go.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <socket\.socket fd=-?\d+, family=1, type=1, proto=0>\s"
    ":pytest.PytestUnraisableExceptionWarning"
)

# The private daemon's fixtures, used here.
dockerd = harness.dockerd
docker_client = harness.docker_client


# -- The mapping, without a daemon ---------------------------------------------


@pytest.mark.parametrize(
    ("state", "status", "task"),
    [
        (
            {"Status": "running", "Health": {"Status": "healthy", "Log": [{"Output": "fine\n"}]}},
            "ok",
            "running, healthy: fine",
        ),
        ({"Status": "running"}, "ok", "running"),
        (
            {"Status": "running", "Health": {"Status": "starting", "Log": [{"Output": "x"}]}},
            "starting",
            "running, health starting",
        ),
        (
            {
                "Status": "running",
                "Health": {"Status": "unhealthy", "Log": [{"Output": "a\nrefused\n\n"}]},
            },
            "down",
            "running, unhealthy: refused",
        ),
        ({"Status": "paused", "Health": {"Status": "healthy"}}, "degraded", "paused"),
        ({"Status": "restarting"}, "starting", "restarting"),
        ({"Status": "created"}, "starting", "created"),
        (
            {"Status": "created", "Error": 'exec: "nope": not found', "ExitCode": 127},
            "down",
            'created: exec: "nope": not found',
        ),
        (
            {"Status": "exited", "ExitCode": 137, "OOMKilled": True},
            "down",
            "exited (137), out of memory",
        ),
        ({"Status": "exited", "ExitCode": 0}, "down", "exited (0)"),
        ({"Status": "dead"}, "down", "dead"),
        ({"Status": "removing"}, "down", "removing"),
    ],
)
def test_a_container_state_maps_to_a_status_and_a_task(
    state: dict[str, Any], status: str, task: str
) -> None:
    assert (container_status(state), container_task(state)) == (status, task)


def report(container: str, status: str, live: bool = True, service: str = "web") -> ContainerReport:
    return ContainerReport(service, container, status, f"task of {container}", live)


def test_the_containers_of_one_service_make_one_heartbeat() -> None:
    assert service_beats([report("b", "ok"), report("a", "ok")]) == [
        ("web", "ok", "2 of 2 containers ok; a: task of a")
    ]
    assert service_beats([report("a", "ok"), report("b", "down")]) == [
        ("web", "degraded", "1 of 2 containers ok; b: task of b")
    ]
    # A stopped old container beside its running replacement does not count.
    assert service_beats([report("old", "down", live=False), report("new", "ok")]) == [
        ("web", "ok", "task of new")
    ]
    assert service_beats([report("a", "starting"), report("b", "down")]) == [
        ("web", "down", "0 of 2 containers ok; b: task of b")
    ]
    assert service_beats([report("a", "down", live=False), report("b", "ok", service="x")]) == [
        ("web", "down", "task of a"),
        ("x", "ok", "task of b"),
    ]


NAMES = [
    "api",
    "a" * 64,
    "a" * 65,
    "",
    " ",
    "\u3000",
    " lead",
    "trail ",
    "tab\tinside",
    "ctl\x01",
    "del\x7f",
    "nel\x85inside",
    "zero\u200bwidth",
    "bom\ufeff",
    "nbsp\xa0inside",
    "\xa0lead",
    "ümlaut",
    "rocket 🚀",
    "a b",
    "hangul\u3164filler",
]


def test_the_name_rule_agrees_with_the_database(db: Conn) -> None:
    for name in NAMES:
        valid = one(db, "SELECT pystatus.is_valid_service_name(%s)", [name])
        assert (service_name_problem(name) is None) == valid, repr(name)


# -- Against the daemon and the database ---------------------------------------


@dataclass
class Writer:
    name: str
    dsn: str


@pytest.fixture
def writer(db: Conn, dsn: str) -> Iterator[Writer]:
    """A login granted pystatus_writer and nothing else, as the collector should run."""
    name = f"docker_collector_{next(_serial)}"
    db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    db.execute(sql.SQL("GRANT pystatus_writer TO {}").format(sql.Identifier(name)))
    yield Writer(name, f"{dsn} user={name}")
    terminate_sessions(db, name)
    db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
    db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


MakeCollector = Callable[..., Collector]


@pytest.fixture
def make_collector(dockerd: Dockerd, writer: Writer) -> Iterator[MakeCollector]:
    """Collectors of the private daemon, logged in as ``writer``; closed after the test."""
    made: list[Collector] = []

    def make(**options: Any) -> Collector:
        made.append(Collector(writer.dsn, dockerd.url, **{"interval": 1.0, **options}))
        return made[-1]

    yield make
    for collector in made:
        collector.close()


def terminate_sessions(db: Conn, login: str) -> None:
    """Ends the login's sessions, and waits until they are gone."""
    sessions = "FROM pg_stat_activity WHERE usename = %s"
    db.execute(f"SELECT pg_terminate_backend(pid) {sessions}", [login])
    wait_for(lambda: one(db, f"SELECT count(*) {sessions}", [login]) == 0)


@contextmanager
def collecting(collector: Collector) -> Iterator[threading.Thread]:
    """``collector.run`` in a thread until the block ends; it must then return."""
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), name="test-collector")
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(STOP_BOUND)
    assert not thread.is_alive(), "run() did not return after stop was set"
    followers = [t for t in threading.enumerate() if t.name == "pystatus-docker-events"]
    assert followers == [], "the events thread outlived run()"


def run_container(
    client: Any,
    name: str,
    command: list[str] | None = None,
    start: bool = True,
    **options: Any,
) -> Any:
    """A container of the test image, without a network; ``--init`` so that a stop
    (SIGTERM to PID 1) is quick."""
    create = client.containers.run if start else client.containers.create
    extra = {"detach": True} if start else {}
    return create(
        IMAGE,
        command or ["sleep", "1000"],
        name=name,
        init=True,
        network_mode="none",
        **extra,
        **options,
    )


def current(db: Conn, service: str) -> tuple[str, str | None] | None:
    row = db.execute(
        "SELECT status, current_task FROM system_status WHERE service_name = %s", [service]
    ).fetchone()
    return None if row is None else (row[0], row[1])


def status(db: Conn, service: str) -> str | None:
    found = current(db, service)
    return None if found is None else found[0]


def wait_for_status(db: Conn, service: str, expected: str) -> None:
    wait_for(lambda: status(db, service) == expected)


def statuses_in_history(db: Conn, service: str) -> list[str]:
    """The service's statuses in history, in order, repeats collapsed."""
    rows = db.execute(
        "SELECT status FROM system_status_history WHERE service_name = %s"
        " ORDER BY heartbeat_timestamp",
        [service],
    ).fetchall()
    return [status for status, _ in itertools.groupby(row[0] for row in rows)]


def is_subsequence(wanted: list[str], found: list[str]) -> bool:
    remaining = iter(found)
    return all(item in remaining for item in wanted)


def test_statuses_follow_the_containers(
    docker_client: Any,
    db: Conn,
    make_collector: MakeCollector,
) -> None:
    checked = run_container(docker_client, "checked", healthcheck=HEALTH_FILE_CHECK)
    run_container(docker_client, "plain")
    run_container(docker_client, "created", start=False)
    run_container(docker_client, "exits", ["false"])
    with collecting(make_collector()):
        wait_for_status(db, "checked", "starting")
        checked.exec_run(["touch", "/tmp/healthy"])
        wait_for_status(db, "checked", "ok")
        checked.exec_run(["rm", "/tmp/healthy"])
        wait_for_status(db, "checked", "down")
        assert current(db, "checked") == ("down", "running, unhealthy")
        checked.exec_run(["touch", "/tmp/healthy"])
        wait_for_status(db, "checked", "ok")
        checked.pause()
        wait_for(lambda: current(db, "checked") == ("degraded", "paused"))
        checked.unpause()
        wait_for_status(db, "checked", "ok")
        checked.stop(timeout=10)
        wait_for(lambda: current(db, "checked") == ("down", "exited (143)"))
        assert current(db, "plain") == ("ok", "running")
        assert current(db, "created") == ("starting", "created")
        assert current(db, "exits") == ("down", "exited (1)")
    history = statuses_in_history(db, "checked")
    assert is_subsequence(["starting", "ok", "down", "ok", "degraded", "ok", "down"], history)


def test_service_names_come_from_the_label_or_the_container_name(
    docker_client: Any,
    make_collector: MakeCollector,
) -> None:
    run_container(docker_client, "api-1", labels={"pystatus.service": "api"})
    run_container(docker_client, "api-2", labels={"pystatus.service": "api"})
    run_container(docker_client, "unlabelled")
    run_container(docker_client, "empty-label", labels={"pystatus.service": ""})
    run_container(docker_client, "other-label", labels={"com.example.service": "billing"})

    names = {beat[0] for beat in make_collector().snapshot()}
    assert names == {"api", "unlabelled", "empty-label", "other-label"}
    assert make_collector().snapshot()[0] == ("api", "ok", "2 of 2 containers ok; api-1: running")

    assert [beat[0] for beat in make_collector(label_only=True).snapshot()] == ["api"]
    custom = make_collector(label="com.example.service", label_only=True)
    assert [beat[0] for beat in custom.snapshot()] == ["billing"]


def test_events_are_recorded_before_the_next_snapshot(
    docker_client: Any,
    db: Conn,
    make_collector: MakeCollector,
) -> None:
    checked = run_container(docker_client, "checked", healthcheck=HEALTH_FILE_CHECK)
    collector = make_collector(interval=3600)
    with collecting(collector):
        # The first snapshot, and the one made once the event stream is followed.
        wait_for(lambda: collector.snapshots_sent == 2)
        assert status(db, "checked") == "starting"
        checked.exec_run(["touch", "/tmp/healthy"])
        wait_for_status(db, "checked", "ok")
        late = run_container(docker_client, "late")
        wait_for_status(db, "late", "ok")
        late.pause()
        wait_for_status(db, "late", "degraded")
        late.unpause()
        wait_for_status(db, "late", "ok")
        late.kill()
        wait_for(lambda: current(db, "late") == ("down", "exited (137)"))
        late.remove()
        # Nothing to record for a removed container: it keeps its last status.
        checked.restart(timeout=10)
        wait_for(
            lambda: is_subsequence(
                ["starting", "ok", "starting", "ok"], statuses_in_history(db, "checked")
            )
        )
        assert current(db, "late") == ("down", "exited (137)")
        assert collector.snapshots_sent == 2  # so the events did it all


def test_the_collector_survives_a_daemon_restart(
    dockerd: Dockerd,
    docker_client: Any,
    db: Conn,
    make_collector: MakeCollector,
) -> None:
    run_container(docker_client, "before")
    collector = make_collector(interval=3600)
    with collecting(collector) as thread:
        wait_for(lambda: collector.snapshots_sent == 2)
        assert status(db, "before") == "ok"
        dockerd.stop()
        wait_for(lambda: collector.event_failures.failures > 0)
        dockerd.start()
        # Stopping the daemon stopped its containers: the snapshot made once the
        # events are followed again says so, if the events did not.
        wait_for(lambda: current(db, "before") == ("down", "exited (143)"))
        run_container(docker_client, "after")
        wait_for_status(db, "after", "ok")
        assert thread.is_alive()
        assert collector.event_failures.failures == 0


def test_the_collector_survives_the_database_going_away(
    docker_client: Any,
    db: Conn,
    writer: Writer,
    make_collector: MakeCollector,
) -> None:
    container = run_container(docker_client, "steady")
    collector = make_collector(interval=3600)
    with collecting(collector) as thread:
        wait_for(lambda: collector.snapshots_sent == 2)
        login = sql.Identifier(writer.name)
        db.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(login))
        terminate_sessions(db, writer.name)
        container.pause()
        wait_for(lambda: collector.database_failures.failures >= 2)
        assert status(db, "steady") == "ok"
        assert thread.is_alive()
        db.execute(sql.SQL("ALTER ROLE {} LOGIN").format(login))
        wait_for_status(db, "steady", "degraded")
        assert collector.database_failures.failures == 0


# A health check whose output has control characters, a NUL, invalid UTF-8 and
# a line of 600 characters.
ODD_OUTPUT = "printf 'first line\\n\\001\\033[31mred\\000alert\\377 %0600d\\n' 0; exit 1"


def test_odd_containers_block_no_one(
    docker_client: Any,
    db: Conn,
    make_collector: MakeCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_container(docker_client, "good")
    run_container(docker_client, "x" * 70)
    run_container(docker_client, "tab", labels={"pystatus.service": "tab\there"})
    run_container(docker_client, "padded", labels={"pystatus.service": " padded"})
    run_container(docker_client, "invisible", labels={"pystatus.service": "zero\u200bwidth"})
    odd = run_container(
        docker_client,
        "odd",
        healthcheck={"test": ["CMD-SHELL", ODD_OUTPUT], "interval": SECOND, "retries": 1},
    )
    wait_for(lambda: odd_health(odd) == "unhealthy")
    collector = make_collector()
    with caplog.at_level(logging.WARNING, logger="pystatus.docker"):
        assert collector.send(collector.snapshot())
    services = {row[0] for row in db.execute("SELECT service_name FROM system_status")}
    assert services == {"good", "odd"}
    assert "skipped service 'xxxxx" in caplog.text
    assert "skipped service 'tab\\there'" in caplog.text
    assert "skipped service ' padded'" in caplog.text
    task = current(db, "odd")
    assert task is not None and task[0] == "down"
    assert task[1] is not None and len(task[1]) == 200
    assert task[1].startswith("running, unhealthy: [31mred alert\ufffd 0000")
    assert task[1].isprintable()


def odd_health(container: Any) -> str:
    container.reload()
    return str(container.attrs["State"].get("Health", {}).get("Status"))


def test_heartbeats_the_database_refuses_block_no_one(
    docker_client: Any,
    db: Conn,
    writer: Writer,
    make_collector: MakeCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pystatus.allow_service(db, writer.name, "allowed-*")
    run_container(docker_client, "allowed-1")
    run_container(docker_client, "forbidden")
    collector = make_collector()
    with caplog.at_level(logging.WARNING, logger="pystatus.docker"):
        assert collector.send(collector.snapshot())
    assert {row[0] for row in db.execute("SELECT service_name FROM system_status")} == {"allowed-1"}
    assert "refused the heartbeat of 'forbidden'" in caplog.text


def test_the_daemon_leaves_the_network_alone(
    dockerd: Dockerd,
    docker_client: Any,
) -> None:
    run_container(docker_client, "running")
    assert dockerd.network_before is not None
    assert network_state() == dockerd.network_before


def test_the_cli_collects_until_sigterm(
    docker_client: Any, dockerd: Dockerd, db: Conn, writer: Writer
) -> None:
    run_container(docker_client, "from-cli", labels={"pystatus.service": "cli-labelled"})
    command = [sys.executable, "-m", "pystatus.cli", "collect", "docker"]
    options = ["--socket", dockerd.url, "--label-only", "--interval", "1", "--dsn", writer.dsn]
    collector = subprocess.Popen(
        command + options, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for_status(db, "cli-labelled", "ok")
    finally:
        collector.send_signal(signal.SIGTERM)
        output, _ = collector.communicate(timeout=STOP_BOUND + 10)
    assert collector.returncode == 0, output
    assert "Recording the containers of" in output and "Traceback" not in output


def test_a_listing_is_read_without_its_ages() -> None:
    def words(state: str, status: str) -> str:
        return listing_words({"State": state, "Status": status})

    assert words("running", "Up 2 hours (healthy)") == words("running", "Up 3 days (healthy)")
    assert words("running", "Up 2 hours (healthy)") != words("running", "Up 2 hours (unhealthy)")
    assert words("exited", "Exited (137) About a minute ago") == "exited Exited (137)"
    assert words("exited", "Exited (0) 5 seconds ago") != words(
        "exited", "Exited (1) 5 seconds ago"
    )
    assert words("running", "Up Less than a second") == "running Up"
