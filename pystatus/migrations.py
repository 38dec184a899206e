"""Installing and upgrading pystatus's SQL, all or nothing.

Two kinds of SQL (sql/README.md):

* ``sql/migrations/``: versioned migrations (yoyo) for what holds state:
  tables, types, pg_partman's configuration. Append-only once released.
* ``sql/schema/``: the readable definition of every object. All files but
  ``20_tables.sql`` (functions, views, triggers, grants) are idempotent and are
  re-applied whenever any of them changed: those before ``20_tables.sql``
  ahead of the pending migrations (the tables' constraints call them), the
  rest after.

``apply`` runs every pending step in one transaction, under the migrate lock:
if any step fails, the database is exactly as it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.resources
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.conninfo import make_conninfo
from typing_extensions import LiteralString
from yoyo import read_migrations
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import parse_uri

from pystatus.connection import backoff, resolve_dsn
from pystatus.errors import NotAllowed, NotInstalled, PystatusError, translate, translate_errors
from pystatus.queries import fetch_all, fetch_value

TABLES = "20_tables.sql"
"""The file of sql/schema/ that migrations build; the others are re-applied."""

# One migrate or rollback at a time per database; a second one waits, then
# finds nothing left to do. Installed, they lock a row of pystatus.job_locks,
# which only the owner may lock; before it exists (a first install, an upgrade
# from an older version) an advisory lock, which any login could hold: so the
# wait is bounded either way, and the error names who holds it.
_LOCK_ROW = "SELECT job FROM pystatus.job_locks WHERE job = 'migrate' FOR UPDATE SKIP LOCKED"
_LOCK_ADVISORY = "SELECT 1 WHERE pg_try_advisory_xact_lock(hashtext('pystatus.migrate'))"
_LOCK_HOLDERS_ROW = """
    SELECT l.pid, a.usename, a.xact_start
    FROM pystatus.job_locks AS j
    JOIN pg_locks AS l ON l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
                      AND l.transactionid = j.xmax
    LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE j.job = 'migrate'"""
_LOCK_HOLDERS_ADVISORY = """
    SELECT l.pid, a.usename, a.xact_start
    FROM pg_locks AS l LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.objid = (hashtext('pystatus.migrate')::bigint & 4294967295)::text::oid
      AND l.pid <> pg_backend_pid()"""
LOCK_WAIT = 60.0
"""How long migrate and rollback wait for another one (seconds) before giving up."""
# Every heartbeat queues behind a lock request that waits: migrate's DDL waits
# at most this long for one, then gives up, changing nothing, and the whole
# transaction is tried again after a pause in which the queued writes go on:
# a service's open transaction delays the upgrade, never the other services.
_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', '500ms', true)"
# The sessions holding locks on pystatus's tables and the status tables: what a
# migrate that gave up waiting names.
_TABLE_LOCK_HOLDERS = """
    SELECT a.pid, a.usename, a.xact_start, string_agg(DISTINCT c.relname, ', ')
    FROM pg_locks AS l
    JOIN pg_class AS c ON c.oid = l.relation
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.granted AND l.locktype = 'relation' AND a.pid <> pg_backend_pid()
      AND c.relkind IN ('r', 'p')
      AND (n.nspname = 'pystatus' OR c.relname LIKE 'system_status%')
      -- Another login's xact_start is hidden (NULL) from an owner without
      -- pg_read_all_stats: such a session is named all the same.
      AND (a.xact_start IS NULL OR a.xact_start < now() - interval '1 second')
    GROUP BY a.pid, a.usename, a.xact_start
    ORDER BY a.xact_start NULLS LAST, a.pid
    LIMIT 5"""
_UNPINNED = re.compile(r"^-- search_path: not pinned, because (?P<why>.*)", re.MULTILINE)
_FUNCTION = re.compile(r"^CREATE OR REPLACE FUNCTION pystatus\.(?P<name>\w+)\(", re.MULTILINE)


_READING = threading.Lock()  # Sources.migrations()


def version() -> str:
    return importlib.metadata.version("pystatus")


@dataclass(frozen=True)
class Sources:
    """The SQL of one version of pystatus: sql/schema/ and sql/migrations/."""

    root: Path = field(
        default_factory=lambda: Path(str(importlib.resources.files("pystatus") / "sql"))
    )

    @property
    def schema_files(self) -> list[Path]:
        return sorted((self.root / "schema").glob("*.sql"))

    @property
    def tables(self) -> Path:
        return self.root / "schema" / TABLES

    @property
    def before_migrations(self) -> list[Path]:
        return [p for p in self.schema_files if p.name < TABLES]

    @property
    def after_migrations(self) -> list[Path]:
        return [p for p in self.schema_files if p.name > TABLES]

    @property
    def release_directories(self) -> list[Path]:
        """sql/migrations/<release>/, oldest first: the migrations each release added,
        the one under way included (named after the version it will be)."""
        found = [p for p in (self.root / "migrations").iterdir() if p.is_dir()]
        return sorted(found, key=lambda p: _release(p.name))

    def migration_files(self) -> list[Path]:
        """Every migration's file (rollbacks aside), by release, then by name."""
        return [
            path
            for directory in self.release_directories
            for path in sorted(directory.glob("*.sql"))
            if not path.name.endswith(".rollback.sql")
        ]

    def migrations(self) -> Any:
        # yoyo resolves a migration's `-- depends:` through one registry for the
        # whole process, by id, when it loads the file: loaded at once, under a
        # lock, they depend on their own list's migrations, not on a list read
        # later (or by another thread), which would leave them unordered.
        with _READING:
            found = read_migrations(*(str(d) for d in self.release_directories))
            for migration in found:
                migration.load()
        return found

    def definitions_sha256(self) -> str:
        """Changes whenever a re-applied file of sql/schema/ does, or a migration is
        added: what a client compares with the database's (``version_problem``)."""
        digest = hashlib.sha256()
        for path in [*self.before_migrations, *self.after_migrations]:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        # The migrations by file name: loading them (yoyo parses each) would cost
        # every command that asks.
        for path in sorted(self.migration_files(), key=lambda p: p.name):
            digest.update(path.stem.encode() + b"\0")
        return digest.hexdigest()

    def unpinned_functions(self) -> dict[str, str]:
        """The functions that do not pin search_path, each with the reason written
        above its definition (``-- search_path: not pinned, because ...``)."""
        found = {}
        for path in self.schema_files:
            text = path.read_text()
            for marker in _UNPINNED.finditer(text):
                function = _FUNCTION.search(text, marker.end())
                if function is None:
                    raise PystatusError(f"{path.name}: a search_path marker before no function")
                found[function["name"]] = marker["why"]
        return found

    def install_script(self) -> str:
        """What ``apply`` runs on an empty database with the default settings, as one
        script: frozen at each release as the starting point of upgrade tests."""
        migrations = self.migrations()
        checksum = self.definitions_sha256()
        parts = [
            *(p.read_text() for p in self.before_migrations),
            *(Path(m.path).read_text() for m in migrations),
            *(p.read_text() for p in self.after_migrations),
            "INSERT INTO pystatus.definitions_applied (version, sources_sha256)\n"
            f"VALUES ('{version()}', '{checksum}');\n",
        ]
        ids = " ".join(m.id for m in migrations)
        return f"-- migrations: {ids}\n\n" + "\n".join(parts)


@dataclass(frozen=True)
class Migrated:
    """What ``apply`` did: the migrations applied, whether the definitions were,
    and the history partitions it indexed after them (``finish_history_index``)."""

    migrations: list[str]
    definitions: bool
    indexed: tuple[str, ...] = ()
    attempts: int = 1  # more than 1: it gave way to sessions holding locks it needed
    spanned_from: datetime | None = None  # old hours' spans computed back to here

    def __bool__(self) -> bool:
        return (
            bool(self.migrations)
            or self.definitions
            or bool(self.indexed)
            or self.spanned_from is not None
        )

    def __str__(self) -> str:
        done = [*self.migrations, *(["the definitions of sql/schema/"] if self.definitions else [])]
        if self.indexed:
            done.append(f"the indexes of history on {len(self.indexed)} partition(s)")
        if self.spanned_from is not None:
            done.append(
                f"the spans of the hours rolled up before they were kept, back to "
                f"{self.spanned_from:%Y-%m-%d %H:%M %Z}"
            )
        waited = (
            f" (after giving way {self.attempts - 1} time(s) to sessions holding locks it needed)"
            if self.attempts > 1
            else ""
        )
        return ("applied " + ", ".join(done) if done else "already up to date") + waited


class _Backend(PostgresqlPsycopgBackend):  # type: ignore[misc]
    """yoyo's psycopg 3 backend, connecting with any libpq DSN or the PG* variables.

    yoyo only understands URLs; pystatus accepts whatever libpq accepts, and
    sets migration settings (pystatus.*) on each session it opens.
    """

    @classmethod
    def for_dsn(cls, dsn: str, settings: Mapping[str, str | None]) -> _Backend:
        # yoyo makes more backends from this URI (backend.copy()): it carries our arguments.
        chosen = {name: str(value) for name, value in settings.items() if value is not None}
        uri = parse_uri("postgresql+psycopg://")._replace(args={"dsn": dsn, "settings": chosen})
        return cls(uri, "_yoyo_migration")

    def connect(self, dburi: Any) -> psycopg.Connection[Any]:
        conn = psycopg.connect(dburi.args["dsn"], autocommit=True)
        for name, value in dburi.args["settings"].items():
            conn.execute("SELECT set_config(%s, %s, false)", (f"pystatus.{name}", value))
        return conn


@contextmanager
def _backend(dsn: str | None, settings: Mapping[str, str | None]) -> Iterator[Any]:
    """A yoyo backend whose bookkeeping tables exist; errors come out as pystatus errors."""
    with translate_errors():
        backend = _Backend.for_dsn(resolve_dsn(dsn), settings)
    try:
        with translate_errors():
            # yoyo's records live in the first schema of search_path; without the
            # right to create them there, yoyo fails with a confusing message.
            role, schema, able = backend.connection.execute(
                "SELECT current_user, current_schema(), to_regclass('_yoyo_migration') IS NOT NULL"
                " OR has_schema_privilege(current_schema(), 'CREATE')"
            ).fetchone()
            if not able:
                raise PystatusError(
                    f"{role} may not create pystatus's migration records in schema {schema}: "
                    f"`pystatus migrate --plan` prints what a superuser must grant first"
                )
            backend.init_database()
            backend.ensure_internal_schema_updated()
        yield backend
    finally:
        backend.connection.close()


class _Steps:
    """Runs the steps of one transaction, remembering which one is running."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.current = "the migrate lock"
        # Scripts set search_path and TimeZone for themselves (SET LOCAL): each
        # step starts from the session's own values.
        self._session = backend.connection.execute(
            "SELECT current_setting('search_path'), current_setting('TimeZone')"
        ).fetchone()

    def _restore(self) -> None:
        self.backend.connection.execute(
            "SELECT set_config('search_path', %s, true), set_config('TimeZone', %s, true)",
            self._session,
        )

    def run_file(self, path: Path) -> None:
        self.current = f"sql/schema/{path.name}"
        self.backend.connection.execute(path.read_text())
        self._restore()

    def run_migration(self, migration: Any, direction: str) -> None:
        self.current = f"migration {migration.id} ({direction})"
        migration.process_steps(self.backend, direction)
        self._restore()
        self.backend.log_migration(migration, direction)
        if direction == "apply":
            self.backend.mark_one(migration, log=False)
        else:
            self.backend.unmark_one(migration, log=False)

    def failed(self, exc: PystatusError | psycopg.Error, command: str) -> PystatusError:
        error: PystatusError = translate(exc) if isinstance(exc, psycopg.Error) else exc
        if isinstance(error, NotAllowed | NotInstalled):  # a right or an extension missing
            remedy = ". `pystatus migrate --plan` prints what a superuser must grant first"
        elif isinstance(exc, psycopg.errors.LockNotAvailable):
            remedy = (
                ". Other transactions held a table it changes for more than 0.5 s (it does not "
                "wait longer, so that heartbeats never queue behind it): run it again"
            )
        else:
            remedy = ""
        return type(error)(
            f"{command} stopped at {self.current} and changed nothing (all its steps run in "
            f"one transaction, which was rolled back): {error}{remedy}"
        )


def _refuse_unknown(backend: Any, known: Any) -> None:
    """Applied migrations this version does not ship mean another version installed
    them: going on would mix two versions' schemas."""
    ids = {m.id for m in known}
    applied = [row[0] for row in backend.execute("SELECT migration_id FROM _yoyo_migration")]
    unknown = [i for i in applied if i not in ids]
    if unknown:
        raise PystatusError(
            f"this database has migrations pystatus {version()} does not know: "
            f"{', '.join(unknown)}. A newer version of pystatus (or a development version from "
            "before 0.2.0) installed it: use that version, or roll it back with that version first"
        )


def _release(text: str) -> tuple[int, ...]:
    """``0.3.0`` as (0, 3, 0, 1), ``0.4.0.dev0`` as (0, 4, 0, 0): a development (or
    pre-release) suffix counts as before its release."""
    numbers = re.match(r"(\d+(?:\.\d+)*)", text)
    if not numbers:
        return ()
    released = 0 if text[numbers.end() :] else 1  # 0.4.0.dev0, 0.4.0rc1 < 0.4.0
    return (*(int(n) for n in numbers[1].split(".")), released)


class VersionProblem(str):
    """What to run, as a message; ``newer``: the database's pystatus is newer than
    this one (which may still read it)."""

    newer: bool = False


def _newer(message: str) -> VersionProblem:
    problem = VersionProblem(message)
    problem.newer = True
    return problem


def _ask(conn: psycopg.Connection[Any], query: LiteralString) -> tuple[Any, ...] | None:
    """One row of ``query``; a failure leaves a connection inside a transaction usable
    (a savepoint), and costs an autocommit one no extra round trip."""
    if conn.autocommit:
        return conn.execute(query).fetchone()
    with conn.transaction():
        return conn.execute(query).fetchone()


def version_problem(
    conn: psycopg.Connection[Any], sources: Sources | None = None
) -> VersionProblem | None:
    """What to run when this database's pystatus is not this pystatus (not installed,
    older, newer, or other definitions); None when they are the same. Any login may
    ask: it reads ``pystatus.installed_version()``, granted to every role."""
    mine = version()
    try:
        # Asked first, in one round trip: on a current install, all there is to ask.
        row, asked = (
            _ask(conn, "SELECT version, sources_sha256 FROM pystatus.installed_version()"),
            True,
        )
    except (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName):
        row, asked = None, False
    if not asked:
        found = conn.execute("SELECT to_regnamespace('pystatus') IS NOT NULL").fetchone()
        if not (found and found[0]):
            return VersionProblem(
                "pystatus is not installed in this database: its owner runs `pystatus migrate "
                "--plan` (what a superuser must grant first), then `pystatus migrate` "
                f"(pystatus {mine})"
            )
        try:
            row = _ask(
                conn,
                "SELECT version FROM pystatus.definitions_applied ORDER BY applied_at DESC LIMIT 1",
            )
            installed = f"pystatus {row[0]}" if row else "an older pystatus"
        except (
            psycopg.errors.UndefinedTable,
            psycopg.errors.UndefinedColumn,
            psycopg.errors.InsufficientPrivilege,
        ):  # older still, or a login that may not read it: a lost connection is raised
            installed = "an older pystatus"
        return VersionProblem(
            f"this database is at {installed}, older than this pystatus {mine}: its owner runs "
            "`pystatus migrate` (`pystatus migrate --plan` says what it needs)"
        )
    if row is None:
        return VersionProblem(
            "pystatus's definitions were never applied here: its owner runs `pystatus migrate`"
        )
    installed, checksum = row
    if checksum == (sources or Sources()).definitions_sha256():
        return None
    if _release(installed) > _release(mine):
        return _newer(
            f"this database is at pystatus {installed}, newer than this pystatus {mine}: "
            f"upgrade this client (pip install 'pystatus>={installed}')"
        )
    if _release(installed) < _release(mine):
        return VersionProblem(
            f"this database is at pystatus {installed}, older than this pystatus {mine}: its "
            "owner runs `pystatus migrate` (`pystatus migrate --plan` says what it needs)"
        )
    return VersionProblem(
        f"this database is at pystatus {installed} and this pystatus is {mine}, with other "
        "definitions: its owner runs `pystatus migrate`"
    )


# Whether the roles exist and hold their rights: after a restore into a cluster
# without them (pg_dump carries grants, not roles), migrate makes them again.
_ROLES_INTACT = """
    SELECT coalesce(bool_and(h.held), true) FROM pystatus._role_rights_held() AS h"""


def _roles_intact(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(_ROLES_INTACT).fetchone()
    return bool(row and row[0])


def installed_definitions(conn: psycopg.Connection[Any]) -> str | None:
    """The checksum of the definitions last applied, or None (not installed)."""
    if conn.execute("SELECT to_regclass('pystatus.definitions_applied')").fetchone() == (None,):
        return None
    row = conn.execute(
        "SELECT sources_sha256 FROM pystatus.definitions_applied ORDER BY applied_at DESC LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def _take_migrate_lock(conn: psycopg.Connection[Any], wait: float) -> None:
    """Takes the migrate lock for this transaction, waiting at most ``wait`` seconds
    for another migrate (or rollback); then says which session holds it."""
    deadline = time.monotonic() + wait
    tries = 0
    while True:
        tries += 1
        installed = conn.execute("SELECT to_regclass('pystatus.job_locks')").fetchone()
        row = installed is not None and installed[0] is not None
        if conn.execute(_LOCK_ROW if row else _LOCK_ADVISORY).fetchone() is not None:
            return
        if time.monotonic() >= deadline:
            holders = conn.execute(_LOCK_HOLDERS_ROW if row else _LOCK_HOLDERS_ADVISORY).fetchall()
            who = ", ".join(
                f"pid {pid} (login {login or 'unknown'}"
                + (f", in a transaction since {since:%Y-%m-%d %H:%M:%S %Z}" if since else "")
                + ")"
                for pid, login, since in holders
            )
            raise PystatusError(
                f"another migrate or rollback held the migrate lock for more than {wait:g} s: "
                f"{who or 'a session that has since ended'}. Let it finish, or end that session "
                "(SELECT pg_terminate_backend(pid)), and run it again"
            )
        time.sleep(backoff(tries, first=0.05, most=1.0))


@contextmanager
def _one_transaction(
    dsn: str | None,
    settings: Mapping[str, str | None],
    sources: Sources,
    command: str,
    lock_wait: float = LOCK_WAIT,
) -> Iterator[tuple[Any, _Steps, Any]]:
    """The backend, its step runner and the migrations, inside one transaction that
    holds the migrate lock; a failed step rolls everything back and says where."""
    migrations = sources.migrations()
    with _backend(dsn, settings) as backend:
        _refuse_unknown(backend, migrations)
        steps = _Steps(backend)
        try:
            with backend.transaction():
                _take_migrate_lock(backend.connection, lock_wait)
                backend.execute(_LOCK_TIMEOUT)
                yield backend, steps, migrations
        except (PystatusError, psycopg.Error) as exc:
            raise steps.failed(exc, command) from exc


T = TypeVar("T")


def _waited_for_a_lock(exc: BaseException) -> bool:
    """Whether a lock timeout is behind ``exc``, however many errors wrap it (a step's
    error wraps a named query's, which wraps psycopg's)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, psycopg.errors.LockNotAvailable):
            return True
        cause = cause.__cause__
    return False


def _giving_way(
    dsn: str | None, command: str, lock_wait: float, attempt: Callable[[], T]
) -> tuple[T, int]:
    """Runs ``attempt`` (one whole transaction) until none of its statements has to
    wait more than the lock timeout for a lock, pausing between attempts so that
    the writes queued behind it go on; for at most ``lock_wait`` seconds, then
    names the sessions holding locks on pystatus's tables. Returns its result and
    the number of attempts."""
    deadline = time.monotonic() + lock_wait
    for attempts in itertools.count(1):
        try:
            return attempt(), attempts
        except PystatusError as exc:
            if not _waited_for_a_lock(exc):
                raise
            if time.monotonic() >= deadline:
                raise PystatusError(
                    f"{command} gave way to sessions holding locks it needs for {lock_wait:g} s "
                    f"({attempts} attempts, nothing changed): {_lock_holders(dsn)}. Let them "
                    "finish (or end them: SELECT pg_terminate_backend(pid)), and run it again"
                ) from exc
            pause = backoff(attempts, first=0.5, most=4.0)  # 0.5, 1, 2, 4, 4 ... s
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
    raise AssertionError("unreachable")


def _lock_holders(dsn: str | None) -> str:
    with translate_errors(), psycopg.connect(resolve_dsn(dsn), autocommit=True) as conn:
        holders = conn.execute(_TABLE_LOCK_HOLDERS).fetchall()
    return (
        ", ".join(
            f"pid {pid} (login {login or 'unknown'}, "
            + (
                f"in a transaction since {since:%Y-%m-%d %H:%M:%S %Z}"
                if since
                else "its transaction's start not visible to this login"
            )
            + f", holding {tables})"
            for pid, login, since, tables in holders
        )
        or "sessions that have since ended"
    )


def apply(
    dsn: str | None = None,
    settings: Mapping[str, str | None] = {},
    *,
    reapply: bool = False,
    sources: Sources | None = None,
    lock_wait: float = LOCK_WAIT,
) -> Migrated:
    """Applies the pending migrations and, when they changed (or ``reapply``), the
    definitions, in one transaction, given way to sessions holding the locks it
    needs (tried again for up to ``lock_wait`` seconds); then finishes the
    history index concurrently (``finish_history_index``). Returns what it applied."""
    sources = sources or Sources()
    done, attempts = _giving_way(
        dsn,
        "pystatus migrate",
        lock_wait,
        lambda: _apply_in_one_transaction(dsn, settings, reapply, sources, lock_wait),
    )
    indexed = finish_history_index(dsn)
    spanned = finish_old_spans(dsn)
    return dataclasses.replace(
        done, indexed=tuple(indexed), attempts=attempts, spanned_from=spanned
    )


def finish_old_spans(dsn: str | None = None) -> datetime | None:
    """Computes the spans of hours rolled up before spans were kept, while raw
    history holds them (``pystatus.span_old_hours()``, a day per transaction, after
    migrate's own); resumed by the next migrate if stopped. Returns how far back
    spans now reach, or None when there was nothing to do."""
    reached: datetime | None = None
    with translate_errors(), psycopg.connect(resolve_dsn(dsn), autocommit=True) as conn:
        if conn.execute(
            "SELECT to_regprocedure('pystatus.span_old_hours(interval)')"
        ).fetchone() == (None,):
            return None
        conn.execute(_INDEX_LOCK_TIMEOUT)
        waits = 0
        while True:
            try:
                row = conn.execute("SELECT pystatus.span_old_hours()").fetchone()
            except psycopg.errors.LockNotAvailable:
                # A refresh of the rollups holds their lock: after it, or at the next migrate.
                waits += 1
                if waits > _INDEX_ATTEMPTS:
                    return reached
                time.sleep(backoff(waits, first=0.5, most=2.0))
                continue
            if row is None or row[0] is None:
                return reached
            reached, waits = row[0], 0  # a day spanned: the next one waits afresh


# Waits of the index steps that heartbeats could queue behind (attaching an
# index, dropping the old one): short, and retried.
_INDEX_LOCK_TIMEOUT = "SET lock_timeout = '500ms'"
_INDEX_ATTEMPTS = 10


def finish_history_index(dsn: str | None = None) -> list[str]:
    """Builds the indexes of history that migrations left on the partitions
    that had rows (0005_compact_history's by service and hour,
    0008_history_time_index's by time), one partition at a time with CREATE
    INDEX CONCURRENTLY (which cannot run in a transaction, and lets heartbeats
    go on), attaches each, then drops the index 0005 replaces. Resumes where a
    stopped run left off. Returns the partitions it indexed, each named once."""
    indexed: list[str] = []
    with translate_errors(), psycopg.connect(resolve_dsn(dsn), autocommit=True) as conn:
        found = conn.execute("SELECT to_regprocedure('pystatus._history_indexes_pending()')")
        if (found.fetchone() or (None,))[0] is None:
            return indexed  # not installed
        for partition in fetch_all(conn, _PendingIndex, "history_index_pending"):
            table = sql.Identifier(partition.schema_name, partition.table_name)
            index = sql.Identifier(partition.schema_name, partition.index_name)
            if partition.index_state == "invalid":  # a build that stopped half way
                conn.execute(sql.SQL("DROP INDEX CONCURRENTLY {}").format(index))
            if partition.index_state != "unattached":
                # The definition is pystatus's own (_history_indexes_pending()).
                conn.execute(
                    sql.SQL("CREATE INDEX CONCURRENTLY {} ON {} {}").format(
                        sql.Identifier(partition.index_name), table, sql.SQL(partition.definition)
                    )
                )
            _with_retries(
                conn,
                sql.SQL("ALTER INDEX {} ATTACH PARTITION {}").format(
                    sql.Identifier("public", partition.parent_index), index
                ),
            )
            name = f"{partition.schema_name}.{partition.table_name}"
            if name not in indexed:
                indexed.append(name)
                # Both indexes are on expressions, whose statistics ANALYZE
                # gathers only once the index exists: without them the planner
                # guessed a third of the partition for the fleet's last minutes
                # and read all of it. (It takes no lock that heartbeats wait on.)
                conn.execute(sql.SQL("ANALYZE {}").format(table))
        if fetch_value(conn, "history_index_replaced"):
            _with_retries(conn, sql.SQL("DROP INDEX public.system_status_history_service_time"))
    return indexed


@dataclass
class _PendingIndex:
    parent_index: str
    schema_name: str
    table_name: str
    index_name: str
    index_state: str
    definition: str


def _with_retries(conn: psycopg.Connection[Any], statement: sql.SQL | sql.Composed) -> None:
    """Runs a statement that needs a lock heartbeats also take, waiting at most
    0.5 s for it each time, so that no heartbeat queues behind it for longer."""
    conn.execute(_INDEX_LOCK_TIMEOUT)
    for attempt in range(_INDEX_ATTEMPTS):
        try:
            conn.execute(statement)
            break
        except psycopg.errors.LockNotAvailable:
            if attempt == _INDEX_ATTEMPTS - 1:
                raise
            time.sleep(1 + attempt)
    conn.execute("RESET lock_timeout")


def _apply_in_one_transaction(
    dsn: str | None,
    settings: Mapping[str, str | None],
    reapply: bool,
    sources: Sources,
    lock_wait: float,
) -> Migrated:
    with _one_transaction(dsn, settings, sources, "pystatus migrate", lock_wait) as (
        backend,
        steps,
        known,
    ):
        pending = backend.to_apply(known)
        checksum = sources.definitions_sha256()
        if (
            not pending
            and not reapply
            and installed_definitions(backend.connection) == checksum
            and _roles_intact(backend.connection)
        ):
            return Migrated([], False)
        for path in sources.before_migrations:
            steps.run_file(path)
        for migration in pending:
            steps.run_migration(migration, "apply")
        for path in sources.after_migrations:
            steps.run_file(path)
        steps.current = "recording the definitions applied"
        backend.connection.execute(
            "INSERT INTO pystatus.definitions_applied (version, sources_sha256) VALUES (%s, %s)",
            (version(), checksum),
        )
        return Migrated([m.id for m in pending], True)


def rollback(
    dsn: str | None = None,
    count: int | None = 1,
    settings: Mapping[str, str | None] = {},
    *,
    sources: Sources | None = None,
    lock_wait: float = LOCK_WAIT,
) -> list[str]:
    """Rolls back the newest ``count`` applied migrations (all when None), in one
    transaction; returns their ids. Rolling back the first migration removes
    pystatus entirely."""
    sources = sources or Sources()

    def attempt() -> list[str]:
        with _one_transaction(dsn, settings, sources, "pystatus rollback", lock_wait) as (
            backend,
            steps,
            known,
        ):
            applied = backend.to_rollback(known)
            chosen = applied if count is None else applied[:count]
            for migration in chosen:
                steps.run_migration(migration, "rollback")
            return [m.id for m in chosen]

    return _giving_way(dsn, "pystatus rollback", lock_wait, attempt)[0]


def pending(dsn: str | None = None) -> list[str]:
    with _backend(dsn, {}) as backend:
        return [m.id for m in backend.to_apply(Sources().migrations())]


def applied(dsn: str | None = None) -> list[str]:
    """Ids of the applied migrations, oldest first."""
    with _backend(dsn, {}) as backend:
        return [m.id for m in reversed(backend.to_rollback(Sources().migrations()))]


# --- Before installing: what a superuser must do first -------------------------


@dataclass(frozen=True)
class PlanItem:
    """One thing the migrating role needs: whether it has it, and what a superuser
    runs (in ``database``) when it has not."""

    item: str
    ok: bool
    statement: str
    database: str


@dataclass(frozen=True)
class Plan:
    role: str
    database: str
    cron_database: str | None  # None: pg_cron's database is unknown (see ``notes``)
    items: list[PlanItem]
    notes: list[str]

    @property
    def ready(self) -> bool:
        return all(item.ok for item in self.items)


def _cron_database_name(conn: psycopg.Connection[Any]) -> tuple[str | None, bool]:
    """cron.database_name, and whether this role may read it (superusers and
    pg_read_all_settings only, even with missing_ok)."""
    try:
        row = conn.execute("SELECT current_setting('cron.database_name', true)").fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None, False
    return (None if row is None else row[0]), True


def adoption(conn: psycopg.Connection[Any], legacy_time_zone: str | None = None) -> str | None:
    """What installing does to a ``system_status`` that is already there (the
    original design's table, with its rows); None when there is none, or pystatus
    is installed."""
    installed = conn.execute(
        "SELECT to_regclass('public.system_status_history') IS NOT NULL"
        " OR to_regnamespace('pystatus') IS NOT NULL"
    ).fetchone()
    if installed is None or installed[0]:
        return None
    if conn.execute("SELECT to_regclass('public.system_status')").fetchone() == (None,):
        return None
    readable = conn.execute("SELECT has_table_privilege('public.system_status', 'SELECT')")
    rows = (
        conn.execute("SELECT count(*) FROM public.system_status").fetchone()
        if readable.fetchone() == (True,)
        else None
    )
    naive = [
        name
        for (name,) in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'public.system_status'::regclass"
            " AND atttypid = 'timestamp'::regtype AND attnum > 0 AND NOT attisdropped"
            " ORDER BY attnum"
        )
    ]
    count = (
        "rows this role may not count yet"
        if rows is None
        else f"{rows[0]:,} row{'' if rows[0] == 1 else 's'}"
    )
    what = (
        f"an existing public.system_status with {count} is adopted: its rows are kept, and none "
        "is copied into history (each service's history starts with its next write)"
    )
    if naive:
        zone = legacy_time_zone or "UTC"
        what += (
            f"; its TIMESTAMP column{'s' if len(naive) > 1 else ''} {', '.join(naive)} become"
            f"{'' if len(naive) > 1 else 's'} timestamptz, the values read as times in {zone}"
            + ("" if legacy_time_zone else " (--legacy-time-zone to say another zone)")
        )
    return what


def plan(dsn: str | None = None, cron_dsn: str | None = None) -> Plan:
    """What the role ``dsn`` connects as needs before ``apply`` can install pystatus
    and ``pystatus schedule`` register its jobs: read from the catalogs, changing
    nothing. ``cron_dsn`` reaches pg_cron's database (found from cron.database_name
    with the same login when not given)."""
    with translate_errors(), psycopg.connect(resolve_dsn(dsn), autocommit=True) as conn:
        role, database = conn.info.user, conn.info.dbname
        items = fetch_all(conn, PlanItem, "install_plan")
        cron_name, readable = _cron_database_name(conn)
        adopted = adoption(conn)
    notes = [adopted[0].upper() + adopted[1:] + "."] if adopted else []
    if cron_dsn is None and cron_name and cron_name != database:
        cron_dsn = make_conninfo(resolve_dsn(dsn), dbname=cron_name)
    elif cron_dsn is None and not readable:
        notes.append(
            f"pg_cron's database (cron.database_name) is not readable by {role}: give --cron-dsn "
            f"to plan its part, or have a superuser run: GRANT pg_read_all_settings TO {role};"
        )
    if cron_dsn is not None:
        with translate_errors(), psycopg.connect(cron_dsn, autocommit=True) as cron:
            cron_name = cron.info.dbname
            items += fetch_all(cron, PlanItem, "install_plan_cron", {"database": database})
        notes.append(
            f"pg_cron runs the jobs by connecting to {database} as {role}, from the server itself "
            f"(cron.host, default localhost): that login needs a password in the PostgreSQL "
            f"server's ~/.pgpass, or a trust line for it in pg_hba.conf."
        )
    elif cron_name is None and readable:
        notes.append(
            "pg_cron is not loaded: run `pystatus maintain` every minute from another scheduler."
        )
    return Plan(role, database, cron_name, items, notes)
