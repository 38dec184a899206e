"""A private Docker daemon for the tests, and an image to run on it.

``dockerd`` (a session fixture) starts Debian's dockerd (package docker.io) as
root, on a socket of its own, with its own data and exec roots and its own
containerd, no bridge, no iptables rules and no IP forwarding: the machine's
network is the same before and after. It is stopped by its PID, and any
process left that names its exec root (containerd, shims) is killed.
``IMAGE`` is imported into it from busybox-static; no registry is needed.

A machine without the packages, or a user who is not root, fails the tests
that use it, with the reason: CI runs as root and must run them.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import struct
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import docker.errors  # type: ignore[import-untyped]
import pytest

# Debian's (docker.io), else whichever the machine has (docker-ce's is in /usr/bin).
DOCKERD = Path("/usr/sbin/dockerd")
BUSYBOX = Path("/bin/busybox")  # busybox-static's: it runs in an image with nothing else
IMAGE = "pystatus-busybox:test"
APPLETS = ["sh", "sleep", "cat", "echo", "test", "touch", "rm", "true", "false", "printf", "head"]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
CGROUP_ROOT = Path("/sys/fs/cgroup")
PT_INTERP = 3  # the ELF program header naming a dynamic loader
INSTALL_HINT = "run scripts/install-system-packages (Debian packages docker.io, busybox-static)"


def network_state() -> dict[str, str]:
    """What a Docker daemon could change in the machine's network: the interfaces,
    IP forwarding and the iptables rules."""
    state = {
        "interfaces": " ".join(sorted(os.listdir("/sys/class/net"))),
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
    }
    for command in ("iptables-save", "ip6tables-save"):
        if shutil.which(command):
            saved = subprocess.run([command], capture_output=True, text=True, check=False)
            # Comment lines carry the time of the dump.
            state[command] = "\n".join(
                line for line in saved.stdout.splitlines() if not line.startswith("#")
            )
    return state


def processes_naming(text: str) -> list[int]:
    """PIDs of the processes whose command line contains ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:  # it ended meanwhile
            continue
    return [pid for pid in found if pid != os.getpid()]


def end_processes_naming(text: str, grace: float = 10.0) -> None:
    """Gives the processes naming ``text`` ``grace`` seconds to end, then SIGKILL."""
    deadline = time.monotonic() + grace
    while (left := processes_naming(text)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _remove_cgroups(name: str) -> None:
    """Removes the cgroup ``name`` (and what containers left under it) in every hierarchy."""
    for top in CGROUP_ROOT.glob(f"*/{name}"):
        for directory in sorted(top.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                directory.rmdir()


@dataclass
class Dockerd:
    """One private dockerd; ``start()``, ``stop()``, ``restart()``."""

    base: Path  # socket, pid file, log, data root
    # containerd's socket lives under the exec root, and a unix socket's path must
    # stay under 104 characters: hence a short directory of its own in /tmp.
    exec_root: Path
    process: subprocess.Popen[bytes] | None = None
    cgroup_parent: str = field(default_factory=lambda: f"pystatus-test-{os.getpid()}")
    network_before: dict[str, str] | None = None  # as the fixture found it

    @classmethod
    def temporary(cls) -> Dockerd:
        base = Path(tempfile.mkdtemp(prefix="pystatus-dockerd-"))
        exec_root = Path(tempfile.mkdtemp(prefix="dx-", dir="/tmp"))
        # The daemon's identity key would go to /etc/docker: keep it in here.
        (base / "daemon.json").write_text(f'{{"deprecated-key-path": "{base}/key.json"}}\n')
        return cls(base=base, exec_root=exec_root)

    @property
    def socket_path(self) -> Path:
        return self.base / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log(self) -> Path:
        return self.base / "dockerd.log"

    def command(self) -> list[str]:
        return [
            str(find_dockerd()),
            f"--config-file={self.base}/daemon.json",
            f"--host={self.url}",
            f"--data-root={self.base}/data",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.base}/docker.pid",
            f"--cgroup-parent=/{self.cgroup_parent}",
            # Nothing on the machine's network: containers run with --network none.
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
        ]

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> None:
        with self.log.open("ab") as log:
            # A session of its own: the terminal's Ctrl-C goes to pytest, which stops it.
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_until_answering()

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(
                    f"dockerd exited ({self.process.returncode}) while starting:\n{self.log_tail()}"
                )
            if self.answers():
                return
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"dockerd did not answer /_ping within {START_TIMEOUT:.0f} s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def answers(self) -> bool:
        """Whether the daemon answers ``/_ping``. A request of our own: the SDK leaks a
        socket each time it cannot connect (docker-py pull request 3356)."""
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(5)
                sock.connect(str(self.socket_path))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                reply = b"".join(iter(lambda: sock.recv(4096), b""))
        except OSError:
            return False
        return reply.split(b"\r\n", 1)[0].endswith(b" 200 OK") and reply.endswith(b"\r\n\r\nOK")

    def stop(self) -> None:
        """SIGTERM to dockerd (it stops the containers and its containerd), SIGKILL if it
        does not end; then, after a grace period, SIGKILL to whatever still names the
        exec root."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        end_processes_naming(str(self.exec_root))

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> Any:
        return docker.DockerClient(base_url=self.url, timeout=60)

    def remove(self) -> None:
        """Stops the daemon, unmounts what it left, and deletes its files and cgroups."""
        self.stop()
        for root in (self.exec_root, self.base):
            mounts = [
                line.split()[1]
                for line in Path("/proc/self/mounts").read_text().splitlines()
                if line.split()[1].startswith(str(root))
            ]
            for mountpoint in sorted(mounts, reverse=True):
                subprocess.run(["umount", "-l", mountpoint], check=False)
            shutil.rmtree(root, ignore_errors=True)
        _remove_cgroups(self.cgroup_parent)


def busybox_rootfs_tar() -> bytes:
    """A root file system of busybox-static and its applets, as a tar."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory, mode in [("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777)]:
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buffer.getvalue()


def import_busybox_image(client: Any) -> None:
    repository, tag = IMAGE.split(":")
    client.api.import_image_from_data(busybox_rootfs_tar(), repository=repository, tag=tag)


def find_dockerd() -> Path:
    if DOCKERD.exists():
        return DOCKERD
    found = shutil.which("dockerd")
    if found is None:
        pytest.fail(f"no dockerd: {INSTALL_HINT}")
    return Path(found)


def is_static(executable: Path) -> bool:
    """Whether an ELF executable needs no dynamic loader (has no PT_INTERP segment)."""
    data = executable.read_bytes()  # ELF64, little-endian: the machines' kind
    (program_headers,) = struct.unpack_from("<Q", data, 32)  # e_phoff
    entry_size, entries = struct.unpack_from("<HH", data, 54)  # e_phentsize, e_phnum
    return all(
        struct.unpack_from("<I", data, program_headers + i * entry_size)[0] != PT_INTERP
        for i in range(entries)
    )


def _check_prerequisites() -> None:
    if os.geteuid() != 0:
        pytest.fail("the Docker tests start their own dockerd, which needs root")
    find_dockerd()
    if not BUSYBOX.exists() or not is_static(BUSYBOX):
        pytest.fail(f"{BUSYBOX} is missing or not statically linked: {INSTALL_HINT}")


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    """A private Docker daemon with ``IMAGE``, for the session; the network is checked
    to be as it was when it is removed."""
    _check_prerequisites()
    network_before = network_state()
    daemon = Dockerd.temporary()
    daemon.network_before = network_before
    try:
        daemon.start()
        client = daemon.client()
        try:
            import_busybox_image(client)
        finally:
            client.close()
        yield daemon
    finally:
        daemon.remove()
    assert processes_naming(str(daemon.exec_root)) == [], "processes of dockerd left behind"
    assert network_state() == network_before, "dockerd changed the machine's network"


@pytest.fixture
def docker_client(dockerd: Dockerd) -> Iterator[Any]:
    """A client of the private daemon; every container is removed after the test."""
    client = dockerd.client()
    yield client
    if not dockerd.answers():  # a test that stopped the daemon and failed
        dockerd.restart()
        client = dockerd.client()
    for container in client.containers.list(all=True, ignore_removed=True):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
    client.close()
