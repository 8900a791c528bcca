"""The facts other contexts announce, kept as the alerts service's projections (in the consumer's unit of work)."""

from __future__ import annotations

from datetime import datetime, timedelta

from servicekit.db import UnitOfWork
from services.alerts.adapters import projection_store
from services.alerts.domain.terminals import silence_spell


class Projections:
    def __init__(self, *, pos_silence: timedelta = timedelta(minutes=30)) -> None:
        self.pos_silence = pos_silence

    async def item_changed(self, uow: UnitOfWork, sku: str, category: str, version: int) -> None:
        await projection_store.item_changed(uow.session, sku, category, version)

    async def price_changed(
        self,
        uow: UnitOfWork,
        *,
        store_id: str,
        sku: str,
        book_version: int,
        old_fen: int | None,
        new_fen: int | None,
        promoted: bool,
        change_id: str,
        effective_at: datetime,
    ) -> None:
        await projection_store.price_changed(
            uow.session,
            store_id=store_id,
            sku=sku,
            book_version=book_version,
            old_fen=old_fen,
            new_fen=new_fen,
            promoted=promoted,
            change_id=change_id,
            effective_at=effective_at,
        )

    async def stock_level(self, uow: UnitOfWork, location_id: str, sku: str, out: bool, at: datetime) -> None:
        await projection_store.stock_level(uow.session, location_id, sku, out, at)

    async def campaign_launched(
        self, uow: UnitOfWork, campaign_id: str, name: str, store_id: str, ends_at: datetime | None, at: datetime
    ) -> None:
        await projection_store.campaign_launched(uow.session, campaign_id, name, store_id, ends_at, at)

    async def journal_entry(
        self, uow: UnitOfWork, store_id: str, terminal_id: str, sale_id: str, recorded_at: datetime
    ) -> None:
        """The terminal's and the store's last entry; a long enough silence it ends is kept as a spell."""
        before = await projection_store.journal_entry(uow.session, store_id, terminal_id, sale_id, recorded_at)
        spell = silence_spell(before, recorded_at, self.pos_silence)
        if spell is not None:
            await projection_store.add_silence(uow.session, store_id, *spell)
