"""Async database engine and the unit of work every command handler runs in.

A unit of work is one PostgreSQL transaction. Whatever a handler changes, the outbox rows
it adds and the response it stores under a ``request_id`` commit together or not at all.

Pooled connections are checked before use only when they have sat unused in the pool for
:data:`PING_AFTER_IDLE_SECONDS` (as HikariCP's alive-bypass window does): a connection
that served a request a moment ago is alive, and pinging it again cost a round trip per
unit of work (7% of the member service's CPU on identity resolution, 6% of pricing's on
baskets). A connection that died in between (PostgreSQL restarted in that second) fails
its statement instead; SQLAlchemy then discards every connection of the pool opened before
the failure, and the failure is an infrastructure one (:func:`is_infrastructure_failure`):
consumers hand the event back, and gRPC answers ``UNAVAILABLE`` for the caller to retry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import asyncpg
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from servicekit.outbox import OutboxEvent, add_to_outbox
from servicekit.settings import to_async_url

# A pooled connection unused for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


def create_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    application_name: str = "retail",
    ping_after_idle_seconds: float = PING_AFTER_IDLE_SECONDS,
) -> AsyncEngine:
    """An asyncpg-backed engine; connections are opened lazily, never at import time."""
    engine = create_async_engine(
        to_async_url(database_url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": application_name}},
    )
    _ping_when_idle(engine, ping_after_idle_seconds)
    return engine


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection at checkout only if it has been back in the pool ``idle_seconds``;
    one that does not answer is replaced by the pool (``DisconnectionError``)."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def returned(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def handed_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < idle_seconds:
            return  # just opened, or used a moment ago
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("the pooled connection did not answer a ping") from exc
        if not alive:
            raise DisconnectionError("the pooled connection did not answer a ping")


def is_infrastructure_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says our database could not be reached, rather than that the handler failed.

    Such failures say nothing about the message or request: consumers never count them
    towards dead-lettering, and gRPC answers them ``UNAVAILABLE``.
    """
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc, OSError | asyncpg.InterfaceError | asyncpg.PostgresConnectionError | OperationalError | InterfaceError
    ) or isinstance(exc.__cause__, OSError | asyncpg.PostgresConnectionError | asyncpg.InterfaceError)


def units_of_work(engine: AsyncEngine) -> Callable[[], UnitOfWork]:
    """The factory of units of work over ``engine`` that a composition root hands its services
    (one session maker; objects stay usable after commit)."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    # Sessions whose statements run outside a transaction (UnitOfWork.read).
    reads = async_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)

    def unit_of_work() -> UnitOfWork:
        return UnitOfWork(sessions, reads)

    return unit_of_work


class UnitOfWork:
    """One transaction: ``async with uow: ...; await uow.commit()``.

    Leaving the block without ``commit()`` rolls everything back, so a handler that
    raises changes nothing. Services subclass this to expose their repositories.
    """

    session: AsyncSession

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], reads: async_sessionmaker[AsyncSession] | None = None
    ) -> None:
        self._sessions = sessions
        self._reads = reads
        self._pending_events: list[OutboxEvent] = []

    def read(self) -> AsyncSession:
        """A session for a read of one statement, instead of entering the unit of work:
        ``async with uow_factory().read() as session: ...``.

        Its statements run outside any transaction, which saves the BEGIN and ROLLBACK round
        trips (12% of the member service's CPU on identity resolution). Each statement sees its
        own snapshot, so reads that must agree with each other enter the unit of work instead.
        """
        return (self._reads or self._sessions)()

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        await self.session.begin()
        self._pending_events = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.session.in_transaction():
                await self.session.rollback()
        finally:
            await self.session.close()

    def publish(self, *events: OutboxEvent) -> None:
        """Queue integration events; they are written to the outbox in this transaction at commit."""
        self._pending_events.extend(events)

    async def commit(self) -> None:
        if self._pending_events:
            await add_to_outbox(self.session, self._pending_events)
        await self.session.commit()
        self._pending_events = []

    async def rollback(self) -> None:
        await self.session.rollback()
        self._pending_events = []
