"""Coupons redeemed exactly once, budgets never overspent, against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from servicekit.db import UnitOfWork
from servicekit.idempotency import RequestIdReused
from services.marketing.domain.codes import generic_code, new_personal_code
from services.marketing.domain.coupons import BudgetExhausted, CouponAlreadyUsed, NotYourCoupon
from services.marketing.domain.discounts import BelowMinimumSpend
from services.marketing.domain.offers import Channel, CouponTerms, DiscountKind, Offer
from services.marketing.domain.sales import JournalSale, SaleLine
from services.marketing.service_layer.redemptions import (
    BasketItem,
    CouponRedemptions,
    HoldCoupon,
    HoldNotFound,
    ReleaseHold,
    SaleCoupons,
)
from tests.integration.marketing.conftest import fetch, request, running_campaign
from tests.support.clock import HandClock

TWENTY_OFF_ABOVE_100 = Offer(DiscountKind.AMOUNT_OFF, 2_000, min_spend_fen=10_000)


def terms(clock: HandClock, **changes: Any) -> CouponTerms:
    return CouponTerms(valid_from=clock.now - timedelta(days=1), valid_until=clock.now + timedelta(days=14), **changes)


@pytest.fixture
def redemptions(unit_of_work: Callable[[], UnitOfWork], clock: HandClock) -> CouponRedemptions:
    return CouponRedemptions(unit_of_work, clock=clock)


def basket(amount_fen: int = 12_000) -> tuple[BasketItem, ...]:
    return (BasketItem("SKU-1", amount_fen // 2), BasketItem("SKU-2", amount_fen - amount_fen // 2))


def hold(code: str, member_id: str = "M1", channel: Channel = Channel.APP, **changes: Any) -> HoldCoupon:
    usual = HoldCoupon(
        request=request(),
        code=code,
        member_id=member_id,
        store_id="S1",
        channel=channel,
        lines=basket(),
        client_id="app-backend",
    )
    return replace(usual, **changes)


def sale(
    sale_id: str,
    code: str,
    clock: HandClock,
    member_id: str | None = "M1",
    *,
    is_return: bool = False,
    original: str = "",
) -> JournalSale:
    return JournalSale(
        sale_id=sale_id,
        is_return=is_return,
        store_id="S1",
        channel=Channel.STORE,
        member_id=member_id,
        occurred_at=clock.now,
        lines=(SaleLine("SKU-1", Decimal(1), 6_000, 5_000), SaleLine("SKU-2", Decimal(1), 6_000, 5_000)),
        coupon_codes=(code,) if code else (),
        original_sale_id=original,
    )


async def journal(
    unit_of_work: Callable[[], UnitOfWork], redemptions: CouponRedemptions, entry: JournalSale
) -> SaleCoupons:
    """What the SALES consumer does with one entry: apply it in one unit of work and commit."""
    async with unit_of_work() as uow:
        outcome = await redemptions.apply_sale(uow, entry)
        await uow.commit()
    return outcome


async def counters(url: str, code: str, campaign_id: str) -> tuple[int, int, int, int, int]:
    coupon = (await fetch(url, "SELECT used, held FROM coupon WHERE code = $1", code))[0]
    campaign = (
        await fetch(url, "SELECT spent_fen, held_fen, redemptions FROM campaign WHERE campaign_id = $1", campaign_id)
    )[0]
    return coupon["used"], coupon["held"], campaign["spent_fen"], campaign["held_fen"], campaign["redemptions"]


async def test_a_held_coupon_is_redeemed_by_the_sale_that_uses_it_at_the_held_discount(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], redemptions: CouponRedemptions, clock: HandClock
) -> None:
    code = new_personal_code().display
    await running_campaign(
        marketing_url, "CMP", TWENTY_OFF_ABOVE_100, terms(clock), coupons={code.replace("-", ""): "M1"}
    )
    held = await redemptions.hold(hold(code.lower()))
    assert (held.discount_fen, held.line_discounts_fen, held.status) == (2_000, (1_000, 1_000), "held")
    assert await counters(marketing_url, held.code, "CMP") == (0, 1, 0, 2_000, 0)
    outcome = await journal(unit_of_work, redemptions, sale("SALE-1", code, clock))
    assert outcome.redeemed == (code,)
    assert await counters(marketing_url, held.code, "CMP") == (1, 0, 2_000, 0, 1)
    rows = await fetch(marketing_url, "SELECT discount_fen, hold_id FROM redemption WHERE code = $1", held.code)
    assert [(row["discount_fen"], row["hold_id"]) for row in rows] == [(2_000, held.hold_id)]
    again = await journal(unit_of_work, redemptions, sale("SALE-1", code, clock))
    assert again.redeemed == (code,)
    assert await counters(marketing_url, held.code, "CMP") == (1, 0, 2_000, 0, 1)
    events = await fetch(marketing_url, "SELECT event_type FROM outbox ORDER BY id")
    assert [event["event_type"] for event in events] == ["retail.marketing.v1.CouponRedeemed"]


async def test_refusals_change_nothing(marketing_url: str, redemptions: CouponRedemptions, clock: HandClock) -> None:
    code = new_personal_code().value
    await running_campaign(marketing_url, "CMP", TWENTY_OFF_ABOVE_100, terms(clock), coupons={code: "M1"})
    with pytest.raises(NotYourCoupon):
        await redemptions.hold(hold(code, member_id="M2"))
    with pytest.raises(BelowMinimumSpend):
        await redemptions.hold(hold(code, lines=basket(9_999)))
    assert await counters(marketing_url, code, "CMP") == (0, 0, 0, 0, 0)
    assert await fetch(marketing_url, "SELECT * FROM coupon_hold") == []


async def test_an_offline_till_that_used_a_spent_code_records_a_conflict_never_a_second_redemption(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], redemptions: CouponRedemptions, clock: HandClock
) -> None:
    code = new_personal_code().value
    await running_campaign(marketing_url, "CMP", TWENTY_OFF_ABOVE_100, terms(clock), coupons={code: "M1"})
    assert (await journal(unit_of_work, redemptions, sale("ONLINE-1", code, clock))).redeemed == (code,)
    replayed = await journal(unit_of_work, redemptions, sale("OFFLINE-7", code, clock))
    assert replayed.conflicts == (code,)
    conflicts = await fetch(marketing_url, "SELECT reason, redeemed_by_sale_id, discount_fen FROM redemption_conflict")
    assert [tuple(row) for row in conflicts] == [("already_used", "ONLINE-1", 2_000)]
    assert await counters(marketing_url, code, "CMP") == (1, 0, 2_000, 0, 1)
    unknown = await journal(unit_of_work, redemptions, sale("OFFLINE-8", "NOT A CODE!", clock))
    assert unknown.conflicts == ("NOT A CODE!",)
    with pytest.raises(CouponAlreadyUsed):
        await redemptions.hold(hold(code))


async def test_a_released_or_lapsed_hold_gives_the_use_and_the_budget_back(
    marketing_url: str, redemptions: CouponRedemptions, clock: HandClock
) -> None:
    first, second = new_personal_code().value, new_personal_code().value
    await running_campaign(
        marketing_url, "CMP", TWENTY_OFF_ABOVE_100, terms(clock), coupons={first: "M1", second: "M2"}
    )
    held = await redemptions.hold(hold(first))
    with pytest.raises(HoldNotFound):
        await redemptions.release(ReleaseHold(request(), held.hold_id, client_id="another-client"))
    assert await counters(marketing_url, first, "CMP") == (0, 1, 0, 2_000, 0)
    assert await redemptions.release(ReleaseHold(request(), held.hold_id, client_id="app-backend")) == "released"
    assert await redemptions.release(ReleaseHold(request(), held.hold_id, client_id="app-backend")) == "released"
    assert await counters(marketing_url, first, "CMP") == (0, 0, 0, 0, 0)
    lapsing = await redemptions.hold(hold(second, member_id="M2", hold_for=timedelta(minutes=1)))
    assert await redemptions.lapse_due() == 0
    clock.advance(minutes=2)
    assert await redemptions.lapse_due() == 1
    assert await counters(marketing_url, second, "CMP") == (0, 0, 0, 0, 0)
    statuses = await fetch(marketing_url, "SELECT hold_id, status FROM coupon_hold ORDER BY created_at, hold_id")
    assert {row["hold_id"]: row["status"] for row in statuses} == {held.hold_id: "released", lapsing.hold_id: "lapsed"}


async def test_holds_stop_at_the_budget_and_a_full_return_gives_the_use_back(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork], redemptions: CouponRedemptions, clock: HandClock
) -> None:
    poster = "SPRING-2027"
    await running_campaign(
        marketing_url,
        "CMP",
        TWENTY_OFF_ABOVE_100,
        terms(clock, per_member_limit=5),
        coupons={generic_code(poster).value: None},
        use_limit=100,
        max_discount_fen=5_000,
    )
    first = await redemptions.hold(hold(poster, member_id="M1"))
    await redemptions.hold(hold(poster, member_id="M2"))
    with pytest.raises(BudgetExhausted):
        await redemptions.hold(hold(poster, member_id="M3"))
    stored = generic_code(poster).value
    assert await counters(marketing_url, stored, "CMP") == (0, 2, 0, 4_000, 0)
    await journal(unit_of_work, redemptions, sale("SALE-1", poster, clock, member_id="M1"))
    assert await counters(marketing_url, stored, "CMP") == (1, 1, 2_000, 2_000, 1)
    partial = sale("RETURN-1", "", clock, member_id="M1", is_return=True, original="SALE-1")
    partial = replace(partial, lines=partial.lines[:1])
    assert (await journal(unit_of_work, redemptions, partial)).given_back == ()
    rest = sale("RETURN-2", "", clock, member_id="M1", is_return=True, original="SALE-1")
    rest = replace(rest, lines=rest.lines[1:])
    assert (await journal(unit_of_work, redemptions, rest)).given_back == (stored,)
    assert await counters(marketing_url, stored, "CMP") == (0, 1, 0, 2_000, 0)
    assert first.hold_id


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_fifty_holds_and_journaled_sales_racing_for_one_code_redeem_it_exactly_once(
    marketing_url: str,
    unit_of_work: Callable[[], UnitOfWork],
    redemptions: CouponRedemptions,
    clock: HandClock,
    seed: int,
) -> None:
    """App and mini-program holds (each followed by its sale when it got the hold), POS-online holds, and
    POS replays of offline sales that priced the code themselves, all at once."""
    code = new_personal_code().value
    await running_campaign(
        marketing_url, "CMP", TWENTY_OFF_ABOVE_100, terms(clock), coupons={code: "M1"}, max_discount_fen=1_000_000
    )
    refused: list[str] = []

    async def online(index: int, channel: Channel) -> None:
        try:
            held = await redemptions.hold(hold(code, channel=channel, client_id=f"client-{index}"))
        except CouponAlreadyUsed:
            refused.append(f"hold-{index}")
            return
        await journal(unit_of_work, redemptions, sale(f"ONLINE-{index}", code, clock))
        assert held.discount_fen == 2_000

    async def replay(index: int) -> None:
        await journal(unit_of_work, redemptions, sale(f"OFFLINE-{index}", code, clock))

    attempts = [online(i, Channel.APP) for i in range(15)]
    attempts += [online(i, Channel.MINI_PROGRAM) for i in range(15, 25)]
    attempts += [online(i, Channel.STORE) for i in range(25, 35)]
    attempts += [replay(i) for i in range(35, 50)]
    random.Random(seed).shuffle(attempts)
    await asyncio.gather(*attempts)

    redeemed = await fetch(marketing_url, "SELECT sale_id, discount_fen FROM redemption WHERE code = $1", code)
    assert len(redeemed) == 1
    conflicts = await fetch(marketing_url, "SELECT sale_id, reason FROM redemption_conflict WHERE code = $1", code)
    offline_sales = {f"OFFLINE-{i}" for i in range(35, 50)}
    assert {row["sale_id"] for row in conflicts} | {redeemed[0]["sale_id"]} >= offline_sales
    assert {row["reason"] for row in conflicts} <= {"already_used"}
    assert len(refused) + len(conflicts) + 1 == 50
    assert await counters(marketing_url, code, "CMP") == (1, 0, redeemed[0]["discount_fen"], 0, 1)
    open_holds = await fetch(marketing_url, "SELECT count(*) AS n FROM coupon_hold WHERE status = 'held'")
    assert open_holds[0]["n"] == 0


async def test_a_retried_hold_answers_with_the_first_hold_and_reserves_nothing_more(
    marketing_url: str, redemptions: CouponRedemptions, clock: HandClock
) -> None:
    poster = generic_code("WEEKEND-10").value
    await running_campaign(
        marketing_url,
        "CMP",
        TWENTY_OFF_ABOVE_100,
        terms(clock, per_member_limit=3),
        coupons={poster: None},
        use_limit=9,
    )
    asked = hold(poster, request=request("retry-1", body=b"basket-1"))
    first = await redemptions.hold(asked)
    clock.advance(seconds=5)
    again = await redemptions.hold(asked)
    assert again == first
    assert await counters(marketing_url, poster, "CMP") == (0, 1, 0, 2_000, 0)
    with pytest.raises(RequestIdReused):
        await redemptions.hold(hold(poster, request=request("retry-1", body=b"another basket")))
    assert await counters(marketing_url, poster, "CMP") == (0, 1, 0, 2_000, 0)
