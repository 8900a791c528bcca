"""Async database engine and the unit of work every command handler runs in.

A unit of work is one PostgreSQL transaction. Whatever a handler changes, the outbox rows
it adds and the response it stores under a ``request_id`` commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from servicekit.outbox import OutboxEvent, add_to_outbox
from servicekit.settings import to_async_url


def create_engine(
    database_url: str, *, pool_size: int = 10, max_overflow: int = 10, application_name: str = "retail"
) -> AsyncEngine:
    """An asyncpg-backed engine; connections are opened lazily, never at import time."""
    return create_async_engine(
        to_async_url(database_url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": application_name}},
    )


def units_of_work(engine: AsyncEngine) -> Callable[[], UnitOfWork]:
    """The factory of units of work over ``engine`` that a composition root hands its services
    (one session maker; objects stay usable after commit)."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    def unit_of_work() -> UnitOfWork:
        return UnitOfWork(sessions)

    return unit_of_work


class UnitOfWork:
    """One transaction: ``async with uow: ...; await uow.commit()``.

    Leaving the block without ``commit()`` rolls everything back, so a handler that
    raises changes nothing. Services subclass this to expose their repositories.
    """

    session: AsyncSession

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._pending_events: list[OutboxEvent] = []

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
