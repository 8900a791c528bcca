"""Test infrastructure: one private PostgreSQL and one private NATS JetStream per test run.

Servers start lazily, only when a test asks for them, so unit tests run without them.
``DATABASE_URL`` / ``NATS_URL`` in the environment point the tests at existing servers
instead. Each test gets its own database (a copy of a migrated template) and its own
random stream and subject names, so tests never see each other's data.
"""

from __future__ import annotations

import os

# The tests restart PostgreSQL and NATS from a process where gRPC threads run. gRPC's fork
# handlers can abort the forked child before it execs the server, and nothing here needs
# gRPC across a fork: switch them off before grpc is first imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import asyncio
import shutil
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest

from devstack.servers import NatsServer, PostgresServer
from servicekit import migrations
from servicekit.settings import to_plain_url

T = TypeVar("T")


def run_in_fresh_loop(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private thread, whatever loop the caller is in."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


@dataclass
class Infra:
    """Where the test run's servers are, and handles to restart or crash them."""

    postgres_admin_url: str
    nats_url: str
    postgres: PostgresServer | None
    nats: NatsServer | None

    def database_url(self, name: str) -> str:
        base = to_plain_url(self.postgres_admin_url).rsplit("/", 1)[0]
        return f"{base}/{name}"


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    # A folder of our own rather than pytest's tmp_path, removed at the end (pytest keeps its
    # last three runs' folders, and this one holds a whole cluster). Others may enter it
    # (0711) so that where root has no user namespaces, the `nobody` PostgreSQL then runs as
    # can reach its state; with them (the usual case) any folder, 0700 too, would do.
    root = Path(tempfile.mkdtemp(prefix="retail-test-servers-"))
    root.chmod(0o711)
    postgres = nats = None
    admin_url = os.environ.get("DATABASE_URL")
    nats_url = os.environ.get("NATS_URL")
    try:
        if not admin_url:
            postgres = PostgresServer(root / "postgres", durable=False)
            postgres.start()
            admin_url = postgres.url
        if not nats_url:
            nats = NatsServer(root / "nats", durable=False)
            nats.start()
            nats_url = nats.url
        yield Infra(admin_url, nats_url, postgres, nats)
    finally:
        if nats:
            nats.stop()
        if postgres:
            postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def kit_template(infra: Infra) -> str:
    """A database migrated with the kit's tables, copied for every test that needs one."""
    name = f"kit_template_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        connection = await asyncpg.connect(to_plain_url(infra.postgres_admin_url))
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    run_in_fresh_loop(create)
    run_in_fresh_loop(lambda: asyncio.to_thread(migrations.upgrade, infra.database_url(name)))
    return name


def create_database_from(infra: Infra, template: str) -> str:
    """A new, uniquely named database copied from ``template``; returns its URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        connection = await asyncpg.connect(to_plain_url(infra.postgres_admin_url))
        try:
            await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await connection.close()

    run_in_fresh_loop(create)
    return infra.database_url(name)


def service_template(infra: Infra, kit_template: str, versions: Path) -> str:
    """The name of a new database holding the kit's tables and a service's schema (``versions``),
    to copy with :func:`create_database_from` for each test."""
    url = create_database_from(infra, kit_template)
    run_in_fresh_loop(lambda: asyncio.to_thread(migrations.upgrade, url, versions))
    return url.rsplit("/", 1)[1]


@pytest.fixture
def database_url(infra: Infra, kit_template: str) -> str:
    """A fresh database with the kit's tables (outbox, inbox, request log)."""
    return create_database_from(infra, kit_template)


@pytest.fixture
def nats_url(infra: Infra) -> str:
    return infra.nats_url


@pytest.fixture
def unique() -> str:
    """A short random token for stream, subject and consumer names of one test."""
    return uuid.uuid4().hex[:10].upper()
