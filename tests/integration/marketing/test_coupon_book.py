"""A member's coupons page by page, generic codes created once, conflicts listed newest first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest

from servicekit.db import UnitOfWork
from services.marketing.domain.codes import MalformedCode, new_personal_code
from services.marketing.domain.offers import Channel, CouponTerms, DiscountKind, Offer
from services.marketing.domain.sales import JournalSale, SaleLine
from services.marketing.service_layer.coupons import CodeTaken, CouponBook, CreateGenericCode
from services.marketing.service_layer.redemptions import CouponRedemptions
from tests.integration.marketing.conftest import request, running_campaign
from tests.support.clock import HandClock


async def test_a_members_coupons_come_soonest_to_expire_first_in_pages_and_used_ones_only_when_asked(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock
) -> None:
    codes = {}
    for days in (30, 10, 20):
        code = new_personal_code().value
        terms = CouponTerms(valid_from=clock.now - timedelta(days=1), valid_until=clock.now + timedelta(days=days))
        await running_campaign(
            marketing_url, f"CMP{days}", Offer(DiscountKind.AMOUNT_OFF, 500), terms, coupons={code: "M1"}
        )
        codes[days] = code
    await running_campaign(
        marketing_url,
        "CMP-OTHER",
        Offer(DiscountKind.AMOUNT_OFF, 500),
        CouponTerms(valid_from=clock.now - timedelta(days=1), valid_until=clock.now + timedelta(days=5)),
        coupons={new_personal_code().value: "M2"},
    )
    book = CouponBook(unit_of_work, clock=clock)
    first, after = await book.member_coupons("M1", include_inactive=False, after="", limit=2)
    assert [c.code for c in first] == [codes[10], codes[20]]
    rest, after = await book.member_coupons("M1", include_inactive=False, after=after, limit=2)
    assert ([c.code for c in rest], after) == ([codes[30]], "")
    async with unit_of_work() as uow:
        sale = JournalSale(
            "S1", False, "S1", Channel.STORE, "M1", clock.now, (SaleLine("X", Decimal(1), 5_000, 5_000),), (codes[10],)
        )
        await CouponRedemptions(unit_of_work, clock=clock).apply_sale(uow, sale)
        await uow.commit()
    active, _ = await book.member_coupons("M1", include_inactive=False, after="", limit=10)
    assert [c.code for c in active] == [codes[20], codes[30]]
    everything, _ = await book.member_coupons("M1", include_inactive=True, after="", limit=10)
    assert [(c.code, c.used) for c in everything] == [(codes[10], 1), (codes[20], 0), (codes[30], 0)]


async def test_a_generic_code_is_created_once_and_never_twice_under_one_name(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], clock: HandClock
) -> None:
    terms = CouponTerms(valid_from=clock.now - timedelta(days=1), valid_until=clock.now + timedelta(days=5))
    await running_campaign(marketing_url, "CMP", Offer(DiscountKind.AMOUNT_OFF, 500), terms, coupons={})
    book = CouponBook(unit_of_work, clock=clock)
    creation = CreateGenericCode(request(), "CMP", "new-year-8", use_limit=500)
    assert await book.create_generic_code(creation) == "NEWYEAR8"
    assert await book.create_generic_code(creation) == "NEWYEAR8"
    with pytest.raises(CodeTaken):
        await book.create_generic_code(CreateGenericCode(request(), "CMP", "NEWYEAR8", use_limit=5))
    with pytest.raises(MalformedCode):
        await book.create_generic_code(CreateGenericCode(request(), "CMP", "no!", use_limit=5))
