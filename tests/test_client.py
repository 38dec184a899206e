"""The background heartbeaters: they keep going through database restarts, never
raise into the host, and record a final status on a clean stop."""

from __future__ import annotations

import asyncio
import json
import urllib.error
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import pystatus
from pystatus import migrations
from pystatus.client import Heartbeat
from pystatus.cluster import Cluster
from tests.helpers import one, wait_for

Conn = psycopg.Connection[Any]


def statuses(dsn: str, service: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT status FROM system_status_history WHERE service_name = %s"
            " ORDER BY heartbeat_timestamp",
            (service,),
        )
        return [status for (status,) in rows]


def test_heartbeat_sends_at_once_then_every_interval_and_records_a_final_status(dsn: str) -> None:
    with Heartbeat(dsn, "worker", interval=0.2, current_task="starting up") as beat:
        wait_for(lambda: len(statuses(dsn, "worker")) >= 3)
        assert beat.last_error is None and beat.last_recorded_at is not None
    assert statuses(dsn, "worker")[-1] == "stopping"
    with psycopg.connect(dsn) as conn:
        assert one(conn, "SELECT current_task FROM system_status") is None


def test_setting_status_or_current_task_sends_a_heartbeat_at_once(dsn: str) -> None:
    with Heartbeat(dsn, "worker", interval=3600) as beat:
        wait_for(lambda: statuses(dsn, "worker") == ["ok"])
        beat.status = "degraded"
        wait_for(lambda: statuses(dsn, "worker") == ["ok", "degraded"])
        beat.current_task = "compacting"
        wait_for(lambda: len(statuses(dsn, "worker")) == 3)
    with psycopg.connect(dsn) as conn:
        task = one(
            conn,
            "SELECT current_task FROM system_status_history"
            " ORDER BY heartbeat_timestamp DESC OFFSET 1 LIMIT 1",
        )
    assert task == "compacting"


def test_bad_input_is_logged_not_raised(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    with Heartbeat(dsn, "worker", interval=0.1, status="bogus", final_status=None) as beat:
        wait_for(lambda: beat.failures >= 2)
        assert isinstance(beat.last_error, pystatus.InvalidStatus)
    assert "invalid status 'bogus'" in caplog.text
    assert statuses(dsn, "worker") == []


def test_retry_delay_never_exceeds_the_interval() -> None:
    beat = Heartbeat(None, "worker", interval=5)
    delays = []
    for failures in range(12):
        beat.failures = failures
        delays.append(beat._next_delay())
    assert delays[0] == 5  # healthy: the interval
    assert delays[1:4] == [0.5, 1, 2]  # then backoff...
    assert max(delays) == 5  # ...capped at the interval, so it resumes within one


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval must be positive"):
        Heartbeat(None, "worker", interval=0)


def test_a_configuration_error_is_raised_at_construction() -> None:
    with pytest.raises(pystatus.InvalidInput, match=r"invalid dsn: missing \"=\" after \"port\""):
        Heartbeat("host=db port", "worker")
    with pytest.raises(pystatus.InvalidServiceName, match="invalid service name ' api'"):
        Heartbeat(None, " api")


def test_a_login_the_server_refuses_is_logged_as_an_error_each_time(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Heartbeat(f"{dsn} user=no_such_login", "worker", interval=0.1, final_status=None) as beat:
        wait_for(lambda: beat.failures >= 3)
    refused = [r for r in caplog.records if "no_such_login" in r.getMessage()]
    assert len(refused) >= 3 and {r.levelname for r in refused} == {"ERROR"}


def test_a_latency_is_sent_with_the_next_heartbeat_only(dsn: str) -> None:
    def latencies() -> list[tuple[str, float | None]]:
        with psycopg.connect(dsn) as conn:
            return conn.execute(
                "SELECT status, latency_ms FROM system_status_history"
                " WHERE service_name = 'worker' ORDER BY heartbeat_timestamp"
            ).fetchall()

    with Heartbeat(dsn, "worker", interval=3600) as beat:
        wait_for(lambda: len(latencies()) == 1)
        beat.latency_ms = 42.0
        beat.current_task = "serving"  # a heartbeat now, carrying it
        wait_for(lambda: len(latencies()) == 2)
        beat.current_task = "idle"  # and the next one, without it
        wait_for(lambda: len(latencies()) == 3)
        beat.latency_ms = 7.0  # measured, then the service stops: not in the final status
    assert latencies() == [("ok", None), ("ok", 42.0), ("ok", None), ("stopping", None)]


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Cluster]:
    """A cluster of its own, so restarting it disturbs no other test."""
    with Cluster.temporary() as running:
        with psycopg.connect(running.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE app")
        migrations.apply(running.dsn("app"))
        yield running


def test_heartbeat_survives_a_database_restart_and_resumes(own_cluster: Cluster) -> None:
    dsn = own_cluster.dsn("app")
    with Heartbeat(dsn, "survivor", interval=0.3) as beat:
        wait_for(lambda: len(statuses(dsn, "survivor")) >= 1)
        own_cluster.stop()
        wait_for(lambda: beat.failures >= 3)
        assert isinstance(beat.last_error, pystatus.DatabaseUnavailable)
        assert beat._thread.is_alive()

        own_cluster.start()
        with psycopg.connect(dsn) as conn:
            back_at = one(conn, "SELECT now()")
        wait_for(
            lambda: (
                beat.failures == 0
                and beat.last_recorded_at is not None
                and beat.last_recorded_at > back_at
            )
        )
    assert statuses(dsn, "survivor")[-1] == "stopping"


def test_async_heartbeat_survives_a_database_restart_and_resumes(own_cluster: Cluster) -> None:
    dsn = own_cluster.dsn("app")

    async def scenario() -> None:
        async with pystatus.AsyncHeartbeat(dsn, "async-survivor", interval=0.3) as beat:
            while beat.last_recorded_at is None:
                await asyncio.sleep(0.05)
            beat.status = "degraded"
            await asyncio.to_thread(own_cluster.stop)
            while beat.failures < 3:
                await asyncio.sleep(0.05)
            assert isinstance(beat.last_error, pystatus.DatabaseUnavailable)
            await asyncio.to_thread(own_cluster.start)
            while beat.failures:
                await asyncio.sleep(0.05)

    asyncio.run(asyncio.wait_for(scenario(), 60))
    history = statuses(dsn, "async-survivor")
    assert history[-2:] == ["degraded", "stopping"]


@pytest.fixture
def locked_row(db: Conn, dsn: str) -> Iterator[str]:
    """A service whose status row another transaction holds locked, as a long
    transaction would: every heartbeat for it waits."""
    pystatus.heartbeat(db, "blocked")
    with psycopg.connect(dsn) as holder:
        holder.execute("SELECT FROM system_status WHERE service_name = 'blocked' FOR UPDATE")
        yield "blocked"
        holder.rollback()


def test_a_blocked_heartbeat_fails_after_a_bounded_wait(dsn: str, locked_row: str) -> None:
    with Heartbeat(dsn, locked_row, interval=0.2) as beat:
        wait_for(lambda: beat.failures >= 1)  # lock_timeout, not a thread stuck for good
        assert "lock timeout" in str(beat.last_error)
        beat.final_status = None


def test_stop_honours_its_timeout_while_the_database_blocks(
    db: Conn, dsn: str, locked_row: str, caplog: pytest.LogCaptureFixture
) -> None:
    beat = Heartbeat(dsn, locked_row, interval=60).start()
    wait_for(lambda: beat._conn is not None and blocked_on_the_row(db))
    beat.stop(timeout=0.5)
    # The statement in flight was cancelled: the thread is over although the row
    # is still locked, and it sent no final status after stop() returned.
    assert not beat._thread.is_alive()
    assert "still waiting on the database" in caplog.text
    assert statuses(dsn, locked_row) == ["ok"]


def blocked_on_the_row(db: Conn) -> bool:
    return bool(
        one(
            db,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND query LIKE '%pystatus.heartbeat%'",
        )
    )


def test_the_dashboard_answers_503_while_the_database_is_down_and_recovers_at_once(
    own_cluster: Cluster,
) -> None:
    from tests.serving import dashboard, get_json

    dsn = own_cluster.dsn("app")
    with dashboard(dsn) as url:
        get_json(f"{url}/api/status")
        own_cluster.stop()
        try:
            with pytest.raises(urllib.error.HTTPError) as down:
                get_json(f"{url}/api/status")
            assert down.value.code == 503
            assert "connection" in json.load(down.value)["detail"]
        finally:
            own_cluster.start()
        # The pooled connections died with the server: the first request after it
        # is back is served all the same.
        assert isinstance(get_json(f"{url}/api/status"), list)
