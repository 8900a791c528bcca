"""The private PostgreSQL the stack and the tests run: never as root, never outliving its
parent, and never changing a folder outside its state folder (issue 11, point 3)."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import devstack.servers
from devstack.servers import PostgresServer

REPO = Path(__file__).resolve().parents[2]


def folder(mode: int) -> Iterator[Path]:
    made = Path(tempfile.mkdtemp(prefix="retail-private-servers-test-"))
    made.chmod(mode)
    yield made
    shutil.rmtree(made, ignore_errors=True)


@pytest.fixture
def private_folder() -> Iterator[Path]:
    """A folder only its owner may enter, like /root."""
    yield from folder(0o700)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder others may enter but not list."""
    yield from folder(0o711)


def uid_map(pid: int) -> list[list[str]]:
    return [line.split() for line in Path(f"/proc/{pid}/uid_map").read_text().splitlines()]


def real_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def owners_under(path: Path) -> set[int]:
    owners = {path.lstat().st_uid}
    for parent, folders, files in os.walk(path):
        owners |= {os.lstat(os.path.join(parent, name)).st_uid for name in (*folders, *files)}
    return owners


def test_postgresql_in_a_folder_only_its_owner_may_enter_runs_as_no_root_and_its_files_stay_ours(
    private_folder: Path,
) -> None:
    server = PostgresServer(private_folder / "postgres", durable=False)
    server.start()
    try:
        assert server.process is not None
        pid = server.process.pid
        if os.geteuid() == 0:
            # In a user namespace of its own, where our uid 0 is seen as `nobody`.
            nobody = pwd.getpwnam("nobody")
            assert uid_map(pid) == [[str(nobody.pw_uid), "0", "1"]]
        else:
            assert uid_map(pid) == uid_map(os.getpid()), "an ordinary user runs it as it is"
        assert real_uid(pid) == os.geteuid()
        server.create_database("reached")
    finally:
        server.stop()
    assert owners_under(private_folder) == {os.geteuid()}
    assert stat.S_IMODE(private_folder.stat().st_mode) == 0o700


def test_postgresql_does_not_outlive_a_killed_parent(private_folder: Path) -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from devstack.servers import PostgresServer; "
            "server = PostgresServer(Path(sys.argv[1]), durable=False); server.start(); "
            "print(server.process.pid, flush=True); time.sleep(600)",
            str(private_folder / "postgres"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    postmaster = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{postmaster}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{postmaster}").exists(), "PostgreSQL outlived the process that started it"


# Only root has a choice of identity to test: an ordinary user always runs the server as itself.
if os.geteuid() == 0:

    @pytest.fixture
    def binaries_nobody_can_reach(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
        """The PostgreSQL binaries, copied into a folder `nobody` may enter.

        The checkout itself may sit in a private folder (a clone below /root), where `nobody`
        could not reach the installed ones; these tests are about the state folder's path.
        """
        made = Path(tempfile.mkdtemp(prefix="retail-pginstall-"))
        made.chmod(0o755)
        installed = devstack.servers.postgres_bin_dir().parent  # site-packages/pgserver/pginstall
        copy = made / "pgserver" / "pginstall"
        shutil.copytree(installed, copy, symlinks=True)
        # The binaries find their libraries at $ORIGIN/../../../pgserver.libs: keep that layout.
        shutil.copytree(installed.parent.parent / "pgserver.libs", made / "pgserver.libs", symlinks=True)
        monkeypatch.setattr(devstack.servers, "postgres_bin_dir", lambda: copy / "bin")
        yield copy
        shutil.rmtree(made, ignore_errors=True)

    def test_root_without_user_namespaces_runs_postgresql_as_nobody_where_nobody_can_reach_it(
        open_folder: Path, binaries_nobody_can_reach: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(devstack.servers, "user_namespace_refusal", lambda: "refused by the test")
        nobody = pwd.getpwnam("nobody")
        server = PostgresServer(open_folder / "postgres", durable=False)
        server.start()
        try:
            assert server.process is not None
            assert server.identity.kind == "account"
            assert real_uid(server.process.pid) == nobody.pw_uid
        finally:
            server.stop()
        assert owners_under(open_folder / "postgres") == {nobody.pw_uid}
        assert stat.S_IMODE(open_folder.stat().st_mode) == 0o711

    def test_root_without_user_namespaces_refuses_a_folder_nobody_cannot_enter_and_changes_nothing(
        private_folder: Path, binaries_nobody_can_reach: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(devstack.servers, "user_namespace_refusal", lambda: "refused by the test")
        server = PostgresServer(private_folder / "postgres", durable=False)
        with pytest.raises(RuntimeError, match=f"cannot enter {private_folder} on the way"):
            server.start()
        assert server.process is None
        assert stat.S_IMODE(private_folder.stat().st_mode) == 0o700
        assert not (private_folder / "postgres" / "data").exists()
