"""pystatus: service heartbeats with history in PostgreSQL."""

from pystatus.client import (
    AsyncHeartbeat,
    Heartbeat,
    heartbeat,
    heartbeat_async,
    record_heartbeat,
)
from pystatus.errors import (
    DatabaseUnavailable,
    InvalidInput,
    InvalidServiceName,
    InvalidSetting,
    InvalidStatus,
    InvalidTask,
    InvalidTime,
    NotInstalled,
    PystatusError,
)

__all__ = [
    "AsyncHeartbeat",
    "DatabaseUnavailable",
    "Heartbeat",
    "InvalidInput",
    "InvalidServiceName",
    "InvalidSetting",
    "InvalidStatus",
    "InvalidTask",
    "InvalidTime",
    "NotInstalled",
    "PystatusError",
    "heartbeat",
    "heartbeat_async",
    "record_heartbeat",
]
