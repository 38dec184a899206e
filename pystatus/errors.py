"""pystatus's exceptions, and the one place that turns psycopg errors into them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg.errors


class PystatusError(Exception):
    """pystatus could not do what was asked."""


class InvalidInput(PystatusError, ValueError):
    """The input breaks a documented rule; nothing was written."""


class InvalidServiceName(InvalidInput):
    """A service name has 1 to 64 characters, is not blank and has no control characters."""


class InvalidStatus(InvalidInput):
    """Services report ok, degraded, down, starting, stopping or maintenance."""


class InvalidTask(InvalidInput):
    """current_task is at most 4096 bytes."""


class InvalidTime(InvalidInput):
    """A backfilled time is finite, not in the future and within the history partitions."""


class InvalidMeasure(InvalidInput):
    """latency_ms is a finite number, 0 or more."""


class InvalidSetting(InvalidInput):
    """A setting (retention, interval, ...) has an impossible value."""


class LimitExceeded(InvalidInput):
    """A write would pass a bound of pystatus.limits: services in all, or heartbeats a call."""


class UnknownService(InvalidInput, LookupError):
    """No service of that name has reported; the message names close ones."""


class NotInstalled(PystatusError):
    """pystatus (or pg_partman) is not installed in this database: run `pystatus migrate`."""


class NotAllowed(PystatusError, PermissionError):
    """The login may not do this: it lacks the role, or may not report that service."""


class UnknownToken(PystatusError):
    """A ping token that was never made, was revoked, or is malformed (one error for all)."""


class DatabaseUnavailable(PystatusError):
    """The database cannot be reached, or the connection was lost."""


# SQLSTATEs raised by the SQL API (sql/schema/); docs/sql-api.md lists them.
SQLSTATE_ERRORS: dict[str, type[PystatusError]] = {
    "PS001": InvalidServiceName,
    "PS002": InvalidStatus,
    "PS003": InvalidTask,
    "PS004": InvalidTime,
    "PS005": InvalidSetting,
    "PS006": InvalidMeasure,
    "PS007": NotAllowed,
    "PS008": UnknownToken,
    "PS009": LimitExceeded,
    "PS010": NotInstalled,
    "PS011": UnknownService,
    "3F000": NotInstalled,  # invalid_schema_name: no pystatus schema
    "42883": NotInstalled,  # undefined_function: schema older than the client
    "42703": NotInstalled,  # undefined_column: likewise
    "42P01": NotInstalled,  # undefined_table: likewise
    "42704": NotInstalled,  # undefined_object (a type): likewise
    "42501": NotAllowed,  # insufficient_privilege: the login lacks pystatus_writer/_reader
    "22007": InvalidInput,  # invalid_datetime_format, e.g. a bad --since
    "22P02": InvalidInput,  # invalid_text_representation
    "22023": InvalidInput,  # invalid_parameter_value, e.g. an unknown time zone
}


def translate(exc: psycopg.Error) -> PystatusError:
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        # Connection refused or lost, server shutting down (57P0x), ...
        return DatabaseUnavailable(str(exc).strip() or type(exc).__name__)
    if isinstance(exc, psycopg.DataError) and exc.sqlstate is None:
        # Raised by psycopg before sending, e.g. a NUL character in a string.
        return InvalidInput(str(exc))
    error_class = SQLSTATE_ERRORS.get(exc.sqlstate or "", PystatusError)
    message = exc.diag.message_primary or str(exc)
    if exc.diag.message_hint:
        message = f"{message} ({exc.diag.message_hint})"
    return error_class(message)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Raises pystatus errors in place of psycopg's, keeping the original as __cause__."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc) from exc
