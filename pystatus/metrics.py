"""Prometheus exposition: a collector that reads ``pystatus.metrics()`` at each
scrape (one query, as a ``pystatus_reader`` login may), served at ``/metrics``
on the dashboard and by ``pystatus exporter``.

The metrics and their labels are defined in SQL (sql/schema/85_metrics.sql);
docs/integrations.md, "Prometheus", lists them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pystatus.connection import resolve_dsn, statement_timeout_option
from pystatus.errors import PystatusError
from pystatus.queries import Conn, fetch_all

log = logging.getLogger("pystatus.metrics")

HELP = {
    "pystatus_service_up": "1 when the service's effective status is up (ok, degraded), else 0",
    "pystatus_service_status": "1 for the service's effective status, 0 for the others",
    "pystatus_service_heartbeat_age_seconds": "Seconds since the service's last heartbeat",
    "pystatus_service_uptime_ratio": "Time-weighted uptime, up / (up + down), over the last 24 "
    "rolled-up hours (1d) or 7 and 30 whole days (7d, 30d)",
    "pystatus_service_latency_p50_seconds": "Median latency measure over the last rolled-up hour",
    "pystatus_service_latency_p95_seconds": "95th percentile of the latency measure over the last "
    "rolled-up hour",
    "pystatus_services": "Services by effective status",
    "pystatus_services_not_exported": "Services without series of their own in this scrape "
    "(past pystatus.limits.max_metric_services; those needing attention come first)",
    "pystatus_sweeper_behind_services": "Services silent past their deadline for 5 minutes "
    "and not yet marked stale (is the sweep job running?)",
    "pystatus_rollup_lag_seconds": "How far the rollups are behind now",
    "pystatus_partitions_ahead_seconds": "How far ahead of now history partitions exist",
    "pystatus_default_partition_rows": "Rows in history's default partition (should be 0)",
    "pystatus_scrape_ok": "1 when this scrape could read the database, else 0",
}
LABELS = ("service", "status", "time_window")
# Prometheus's label for time_window is "window" (a reserved word in SQL).
LABEL_NAMES = {"time_window": "window"}


@dataclass(frozen=True)
class Sample:
    metric: str
    service: str | None
    status: str | None
    time_window: str | None
    value: float | None


def samples(conn: Conn) -> list[Sample]:
    """Every sample of a scrape, from one query."""
    return fetch_all(conn, Sample, "metrics")


def families(rows: list[Sample]) -> list[GaugeMetricFamily]:
    """The samples as metric families, each with the labels its rows carry."""
    found: dict[str, GaugeMetricFamily] = {}
    for row in rows:
        labels = {name: getattr(row, name) for name in LABELS if getattr(row, name) is not None}
        family = found.get(row.metric)
        if family is None:
            names = [LABEL_NAMES.get(name, name) for name in labels]
            family = GaugeMetricFamily(row.metric, HELP.get(row.metric, row.metric), labels=names)
            found[row.metric] = family
        family.add_metric(list(labels.values()), float("nan") if row.value is None else row.value)
    return list(found.values())


class PystatusCollector(Collector):
    """Reads the database at each scrape. A scrape that cannot reach it still
    answers, with ``pystatus_scrape_ok 0``, so Prometheus tells "database down"
    from "exporter down"."""

    def __init__(self, dsn: str | None = None, connect: Any = None) -> None:
        self.dsn = resolve_dsn(dsn) if connect is None else ""
        self._connect = connect or (
            lambda: psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=5, options=statement_timeout_option()
            )
        )
        self._lock = threading.Lock()  # one scrape at a time reads the database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ok = GaugeMetricFamily("pystatus_scrape_ok", HELP["pystatus_scrape_ok"])
        try:
            with self._lock, self._connect() as conn:
                rows = samples(conn)
        except (psycopg.Error, PystatusError) as exc:
            log.warning("scrape failed: %s", exc)
            ok.add_metric([], 0)
            yield ok
            return
        yield from families(rows)
        ok.add_metric([], 1)
        yield ok


def registry(dsn: str | None = None, connect: Any = None) -> CollectorRegistry:
    """A registry holding only pystatus's collector."""
    held = CollectorRegistry(auto_describe=False)
    held.register(PystatusCollector(dsn, connect))
    return held


def serve(dsn: str | None, host: str, port: int, stop: threading.Event) -> None:
    """``pystatus exporter``: serves /metrics until ``stop`` is set."""
    server, thread = start_http_server(port, addr=host, registry=registry(dsn))
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
