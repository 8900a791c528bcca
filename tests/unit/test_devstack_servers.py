"""devstack.servers: who PostgreSQL runs as (it refuses root), decided without changing any folder."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.servers import first_closed_folder, server_identity

NOBODY = pwd.struct_passwd(("nobody", "x", 65534, 65534, "nobody", "/nonexistent", "/usr/sbin/nologin"))


def allowed() -> None:
    return None


def refused() -> str:
    return "unshare(CLONE_NEWUSER): Operation not permitted"


def never_asked() -> str:
    raise AssertionError("an ordinary user needs no user namespace")


def test_an_ordinary_user_runs_the_server_as_itself() -> None:
    identity = server_identity([Path("/")], euid=1000, namespace_refusal=never_asked, account=lambda: NOBODY)
    assert identity.kind == "self"


def test_root_runs_the_server_in_a_user_namespace_where_it_is_seen_as_the_unprivileged_account() -> None:
    identity = server_identity([Path("/")], euid=0, namespace_refusal=allowed, account=lambda: NOBODY)
    assert (identity.kind, identity.uid, identity.gid) == ("user-namespace", 65534, 65534)
    assert identity.owner == (os.geteuid(), os.getegid()), "files must stay ours"


def test_root_without_user_namespaces_runs_the_server_as_the_account_when_it_can_reach_every_folder() -> None:
    asked: list[Path] = []

    def reachable(folder: Path, account: pwd.struct_passwd) -> Path | None:
        asked.append(folder)
        return None

    needed = [Path("/venv/pgserver/pginstall"), Path("/checkout/.local")]
    identity = server_identity(
        needed, euid=0, namespace_refusal=refused, account=lambda: NOBODY, closed_folder=reachable
    )
    assert (identity.kind, identity.owner) == ("account", (65534, 65534))
    assert asked == needed


def test_root_without_user_namespaces_refuses_with_what_to_do_when_a_folder_on_the_way_is_closed() -> None:
    def closed(folder: Path, account: pwd.struct_passwd) -> Path | None:
        return Path("/root")

    with pytest.raises(RuntimeError) as refusal:
        server_identity(
            [Path("/root/retail/.local")],
            euid=0,
            namespace_refusal=refused,
            account=lambda: NOBODY,
            closed_folder=closed,
        )
    message = str(refusal.value)
    assert "Operation not permitted" in message
    assert "cannot enter /root on the way to /root/retail/.local" in message
    assert "ordinary user" in message
    assert "DATABASE_URL" in message


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder of our own that others may enter (pytest's base folder is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="retail-closed-folder-test-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder)


def test_a_folder_only_its_owner_may_enter_is_closed_to_another_account_and_stays_as_it_was(open_folder: Path) -> None:
    private = open_folder / "private"
    inside = private / "retail" / ".local"
    inside.mkdir(parents=True)
    private.chmod(0o700)
    someone_else = NOBODY if os.geteuid() != NOBODY.pw_uid else pwd.getpwnam("root")

    assert first_closed_folder(inside, someone_else) == private
    assert stat.S_IMODE(private.stat().st_mode) == 0o700

    private.chmod(0o711)
    assert first_closed_folder(inside, someone_else) is None
    assert first_closed_folder(inside / "not-yet-created", someone_else) is None
