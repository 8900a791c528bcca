"""Marketing's projections: purchases follow merges and come back on undo, returns count, erasure voids coupons."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from servicekit.db import UnitOfWork
from services.marketing.domain.offers import Channel, CouponTerms, DiscountKind, Offer
from services.marketing.domain.sales import JournalSale, SaleLine
from services.marketing.service_layer.projections import Projections
from services.marketing.service_layer.redemptions import CouponRedemptions
from tests.integration.marketing.conftest import fetch, running_campaign
from tests.support.clock import HandClock


def sale(sale_id: str, member_id: str | None, clock: HandClock, *, net: int = 8_000, original: str = "") -> JournalSale:
    return JournalSale(
        sale_id=sale_id,
        is_return=bool(original),
        store_id="S1",
        channel=Channel.STORE,
        member_id=member_id,
        occurred_at=clock.now,
        lines=(SaleLine("MILK", Decimal(2), net + 1_000, net),),
        original_sale_id=original,
    )


async def test_sales_become_purchases_with_categories_and_costs_and_returns_reduce_them(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock
) -> None:
    projections = Projections(CouponRedemptions(unit_of_work, clock=clock))
    async with unit_of_work() as uow:
        assert await projections.item_changed(
            uow, sku="MILK", category="dairy", cost_fen=2_500, version=2, at=clock.now
        )
        assert not await projections.item_changed(uow, sku="MILK", category="old", cost_fen=1, version=1, at=clock.now)
        await projections.apply_sale(uow, sale("S-1", "M1", clock))
        await projections.apply_sale(uow, sale("S-1", "M1", clock))  # redelivered: nothing new
        await projections.apply_sale(uow, sale("S-2", None, clock))  # not a member: no purchase
        await projections.apply_sale(uow, sale("R-1", None, clock, net=3_000, original="S-1"))
        await uow.commit()
    purchases = await fetch(marketing_url, "SELECT sale_id, member_id, net_fen, cost_fen, returned_fen FROM purchase")
    assert [tuple(row) for row in purchases] == [("S-1", "M1", 8_000, 5_000, 3_000)]
    lines = await fetch(marketing_url, "SELECT sku, category, quantity, cost_fen FROM purchase_line")
    assert [tuple(row) for row in lines] == [("MILK", "dairy", Decimal("2.000"), 5_000)]


async def test_a_merge_moves_purchases_and_coupons_to_the_survivor_and_undoing_it_moves_them_back(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock
) -> None:
    terms = CouponTerms(valid_from=clock.now - timedelta(days=1), valid_until=clock.now + timedelta(days=9))
    await running_campaign(
        marketing_url, "CMP", Offer(DiscountKind.AMOUNT_OFF, 500), terms, coupons={"CODEA": "A", "CODEB": "B"}
    )
    projections = Projections(CouponRedemptions(unit_of_work, clock=clock))
    async with unit_of_work() as uow:
        for member_id in ("A", "B", "C"):
            await projections.member_registered(uow, member_id, "S1", clock.now)
        await projections.apply_sale(uow, sale("SA", "A", clock))
        await projections.apply_sale(uow, sale("SB", "B", clock))
        await projections.members_merged(uow, survivor="A", absorbed="B", at=clock.now)
        await projections.members_merged(uow, survivor="C", absorbed="A", at=clock.now)
        await uow.commit()
    owners = await fetch(marketing_url, "SELECT sale_id, member_id FROM purchase ORDER BY sale_id")
    assert [tuple(row) for row in owners] == [("SA", "C"), ("SB", "C")]
    async with unit_of_work() as uow:
        await projections.merge_undone(uow, survivor="C", restored="A", at=clock.now)
        await uow.commit()
    owners = await fetch(marketing_url, "SELECT sale_id, member_id FROM purchase ORDER BY sale_id")
    # B is still merged into A: its purchase and coupon stay with A.
    assert [tuple(row) for row in owners] == [("SA", "A"), ("SB", "A")]
    coupons = await fetch(marketing_url, "SELECT code, member_id FROM coupon ORDER BY code")
    assert [tuple(row) for row in coupons] == [("CODEA", "A"), ("CODEB", "A")]
    async with unit_of_work() as uow:
        await projections.merge_undone(uow, survivor="A", restored="B", at=clock.now)
        await uow.commit()
    coupons = await fetch(marketing_url, "SELECT code, member_id FROM coupon ORDER BY code")
    assert [tuple(row) for row in coupons] == [("CODEA", "A"), ("CODEB", "B")]
    members = await fetch(marketing_url, "SELECT member_id, merged_into FROM member ORDER BY member_id")
    assert [tuple(row) for row in members] == [("A", None), ("B", None), ("C", None)]


async def test_consent_tier_stage_and_erasure_are_kept_and_erasure_voids_unused_coupons(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock
) -> None:
    terms = CouponTerms(valid_from=clock.now - timedelta(days=1), valid_until=clock.now + timedelta(days=9))
    await running_campaign(marketing_url, "CMP", Offer(DiscountKind.AMOUNT_OFF, 500), terms, coupons={"CODEA": "A"})
    projections = Projections(CouponRedemptions(unit_of_work, clock=clock))
    async with unit_of_work() as uow:
        await projections.consent_changed(uow, "A", "sms", True, clock.now)  # before registration arrived
        await projections.consent_changed(uow, "A", "app_push", True, clock.now)
        await projections.consent_changed(uow, "A", "sms", True, clock.now)
        await projections.consent_changed(uow, "A", "app_push", False, clock.now)
        await projections.tier_changed(uow, "A", "gold", clock.now)
        await projections.lifecycle_changed(uow, "A", "active", clock.now)
        await uow.commit()
    member = (await fetch(marketing_url, "SELECT consent, tier, lifecycle_stage, erased FROM member"))[0]
    assert tuple(member) == (["sms"], "gold", "active", False)
    async with unit_of_work() as uow:
        assert await projections.member_erased(uow, "A", clock.now) == 1
        await uow.commit()
    assert (await fetch(marketing_url, "SELECT state FROM coupon"))[0]["state"] == "void"
    assert (await fetch(marketing_url, "SELECT erased FROM member"))[0]["erased"] is True
