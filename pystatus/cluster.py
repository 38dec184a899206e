"""A private PostgreSQL cluster with pg_partman and pg_cron loaded.

Tests, ``make db``, the demo and the benchmarks all start their server through
this module, so they run against the same configuration. PostgreSQL refuses to
run as root: when we are root, every server command runs as the ``postgres``
system user and the data directory belongs to it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

POSTGRES_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"

# Appended to postgresql.conf.
SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
max_connections = 200
log_min_messages = warning
"""
# pg_cron is preloaded and lives in one database, by default "postgres" as in
# most installations: pystatus databases then reach it through
# cron.schedule_in_database. Its jobs connect through the socket.
CRON_SETTINGS = """
shared_preload_libraries = 'pg_cron'
cron.database_name = '{cron_database}'
cron.host = '{socket_dir}'
"""


class ClusterError(RuntimeError):
    """A server command failed; the message carries its output."""


def find_bindir() -> Path:
    """The newest installed PostgreSQL server's bin directory (``PYSTATUS_PG_BINDIR`` wins)."""
    if override := os.environ.get("PYSTATUS_PG_BINDIR"):
        return Path(override)
    candidates = sorted(
        (p for p in POSTGRES_ROOT.glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name),
    )
    if not candidates:
        raise ClusterError(
            f"no PostgreSQL server found under {POSTGRES_ROOT}; "
            "run scripts/install-system-packages (or set PYSTATUS_PG_BINDIR)"
        )
    return candidates[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """One PostgreSQL cluster in ``datadir``, listening on 127.0.0.1:``port``, trust auth."""

    datadir: Path
    port: int = field(default_factory=free_port)
    bindir: Path = field(default_factory=find_bindir)
    host: str = "127.0.0.1"
    user: str = SERVER_USER
    remove_on_stop: bool = False
    cron_database: str | None = "postgres"  # None: no pg_cron

    @classmethod
    def temporary(cls, port: int | None = None, cron_database: str | None = "postgres") -> Cluster:
        """A throw-away cluster in a new directory under /tmp, removed on leaving ``with``."""
        datadir = Path(tempfile.mkdtemp(prefix="pystatus-pg-")) / "data"
        return cls(
            datadir=datadir,
            port=port or free_port(),
            remove_on_stop=True,
            cron_database=cron_database,
        )

    @classmethod
    def standby_of(cls, primary: Cluster, port: int | None = None) -> Cluster:
        """A streaming-replication hot standby of the running ``primary``, in a new
        directory under /tmp (removed on leaving ``with``): ``pg_basebackup -R`` copies
        the primary and writes ``primary_conninfo`` and ``standby.signal``. Start it
        with ``with`` or ``start()``; it answers read-only queries while it replays."""
        standby = cls(
            datadir=Path(tempfile.mkdtemp(prefix="pystatus-pg-standby-")) / "data",
            port=port or free_port(),
            bindir=primary.bindir,
            remove_on_stop=True,
            cron_database=primary.cron_database,
        )
        standby.datadir.parent.chmod(0o755)
        standby._give_to_server_user(standby.datadir.parent)
        standby._run(
            "pg_basebackup",
            "-D",
            str(standby.datadir),
            "-h",
            primary.host,
            "-p",
            str(primary.port),
            "-U",
            primary.user,
            "-R",  # standby.signal and primary_conninfo
            "-X",
            "stream",
            "-c",
            "fast",
        )
        # The copied postgresql.conf names the primary's port and socket
        # directory: the standby's own, appended, win.
        with (standby.datadir / "postgresql.conf").open("a") as conf:
            conf.write(SETTINGS.format(port=standby.port, socket_dir=standby.datadir))
            if standby.cron_database:
                conf.write(
                    CRON_SETTINGS.format(
                        cron_database=standby.cron_database, socket_dir=standby.datadir
                    )
                )
        return standby

    # Attributes pytest-postgresql's noproc factory reads from the fixture it depends on.
    password: str | None = None
    options: str = ""
    maintenance_dbname: str = "postgres"
    template_dbname: str | None = None

    @property
    def logfile(self) -> Path:
        return self.datadir.parent / "postgresql.log"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def _run(self, *args: str) -> str:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            raise ClusterError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{log}"
            )
        return done.stdout

    def _give_to_server_user(self, path: Path) -> None:
        if os.geteuid() == 0:
            server = pwd.getpwnam(SERVER_USER)
            os.chown(path, server.pw_uid, server.pw_gid)

    def init(self) -> None:
        """Create the cluster unless the data directory already holds one."""
        if (self.datadir / "PG_VERSION").exists():
            return
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        self.datadir.mkdir(mode=0o700, exist_ok=True)
        # The server user must reach its data directory and write its log beside it.
        self.datadir.parent.chmod(0o755)
        self._give_to_server_user(self.datadir.parent)
        self._give_to_server_user(self.datadir)
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            SERVER_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(SETTINGS.format(port=self.port, socket_dir=self.datadir))
            if self.cron_database:
                conf.write(
                    CRON_SETTINGS.format(cron_database=self.cron_database, socket_dir=self.datadir)
                )

    def is_running(self) -> bool:
        try:
            self._run("pg_ctl", "status", "-D", str(self.datadir))
        except ClusterError:
            return False
        return True

    def start(self) -> Cluster:
        self.init()
        if not self.is_running():
            self._run(
                "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.datadir),
                "-l",
                str(self.logfile),
            )
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.is_running():
            self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.datadir))

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.remove_on_stop:
            shutil.rmtree(self.datadir.parent, ignore_errors=True)
