"""What marketing keeps of other contexts' facts, applied in the consumer's unit of work.

The SALES journal feeds both the purchase projection (for segments, models and reports) and
coupon redemption; the member context's events keep the member projection; pricing's item
changes keep the items. Every handler is idempotent and raises only what a retry can cure:
a journal entry is a fact, so nothing in one is refused here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from servicekit.db import UnitOfWork
from services.marketing.adapters import projection_store as store
from services.marketing.domain.sales import ImportedPurchase, JournalSale
from services.marketing.service_layer.redemptions import CouponRedemptions, SaleCoupons


class Projections:
    def __init__(self, redemptions: CouponRedemptions) -> None:
        self._redemptions = redemptions

    async def apply_sale(self, uow: UnitOfWork, sale: JournalSale) -> SaleCoupons:
        if sale.is_return:
            if sale.original_sale_id:
                returned = sum(max(line.net_fen, 0) for line in sale.lines)
                await store.record_return(uow.session, sale.original_sale_id, returned)
        elif sale.member_id is not None:
            await store.ensure_member(uow.session, sale.member_id, sale.occurred_at)
            await store.record_purchase(uow.session, sale)
        return await self._redemptions.apply_sale(uow, sale)

    async def purchases_imported(
        self, uow: UnitOfWork, member_id: str, purchases: Sequence[ImportedPurchase], at: datetime
    ) -> int:
        """A member's legacy purchases, kept once each as imported purchases (no coupon is redeemed by
        them); how many were new."""
        await store.ensure_member(uow.session, member_id, at)
        kept = 0
        for purchase in purchases:
            kept += await store.record_purchase(
                uow.session, purchase.sale, imported=True, amount_fen=purchase.amount_fen
            )
        return kept

    async def import_purchases(self, uow: UnitOfWork, sales: Sequence[JournalSale]) -> int:
        """Members' past sales from before marketing kept the journal (a history import): purchases
        only, never coupon uses; sales already kept are left alone. How many were new."""
        return await store.import_purchases(uow.session, sales)

    async def item_changed(
        self, uow: UnitOfWork, *, sku: str, category: str, cost_fen: int, version: int, at: datetime
    ) -> bool:
        return await store.upsert_item(uow.session, sku, category, cost_fen, version, at)

    async def member_registered(self, uow: UnitOfWork, member_id: str, store_id: str | None, at: datetime) -> None:
        await store.register_member(uow.session, member_id, store_id, at)

    async def tier_changed(self, uow: UnitOfWork, member_id: str, tier: str, at: datetime) -> None:
        await store.set_member(uow.session, member_id, at, tier=tier)

    async def lifecycle_changed(self, uow: UnitOfWork, member_id: str, stage: str, at: datetime) -> None:
        await store.set_member(uow.session, member_id, at, lifecycle_stage=stage)

    async def consent_changed(self, uow: UnitOfWork, member_id: str, channel: str, granted: bool, at: datetime) -> None:
        await store.set_consent(uow.session, member_id, channel, granted, at)

    async def member_erased(self, uow: UnitOfWork, member_id: str, at: datetime) -> int:
        return await store.erase_member(uow.session, member_id, at)

    async def members_merged(self, uow: UnitOfWork, survivor: str, absorbed: str, at: datetime) -> None:
        await store.merge_members(uow.session, survivor, absorbed, at)

    async def merge_undone(self, uow: UnitOfWork, survivor: str, restored: str, at: datetime) -> None:
        await store.undo_merge(uow.session, survivor, restored, at)
