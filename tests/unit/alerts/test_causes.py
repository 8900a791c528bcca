"""Cause ranking: each kind of cause, injected among plausible distractors, is ranked first."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from services.alerts.domain.causes import (
    Anomaly,
    CampaignEnd,
    Cause,
    CauseKind,
    Direction,
    Evidence,
    GivenUpLabel,
    JournalSilence,
    PriceChange,
    StockOut,
    rank_causes,
)
from services.alerts.domain.opening_hours import StoreHours

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = StoreHours.parse("Asia/Shanghai", "08:00-22:00")
DAY = date(2026, 12, 3)
CATEGORY = [f"DAIRY{n:02d}" for n in range(10)]
OTHER = [f"SNACK{n:02d}" for n in range(10)]
NOW = datetime(2026, 12, 4, 2, 0, tzinfo=SHANGHAI)  # the run after the day closed


def at(day_offset: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 3, hour, minute, tzinfo=SHANGHAI) + timedelta(days=day_offset)


def anomaly(direction: Direction, store: str = "S001") -> Anomaly:
    return Anomaly(
        anomaly_id="A1",
        location_id=store,
        category="DAIRY",
        business_date=DAY,
        direction=direction,
        actual=Decimal(40) if direction is Direction.BELOW else Decimal(160),
        expected=Decimal(100),
        lower=Decimal(70),
        upper=Decimal(130),
        method="forecast",
        skus=tuple(CATEGORY),
    )


def price(
    sku: str, old: int, new: int, when: datetime, *, store: str = "S001", before: bool = False, after: bool = False
) -> PriceChange:
    return PriceChange(store, sku, old, new, before, after, when, change_id=f"CH-{sku}-{new}")


def evidence(**parts: Any) -> Evidence:
    return Evidence(category_skus=frozenset(CATEGORY), **parts)


# Distractors that appear in many scenarios: weak, but each would be listed on its own.
SMALL_STOCK_OUT = StockOut("S001", CATEGORY[9], at(0, 20), at(0, 21))
CHAIN_CAMPAIGN_LONG_AGO = CampaignEnd("C-OLD", "Autumn week", "", at(-6, 9))
ONE_LABEL = GivenUpLabel("S001", "L-9", CATEGORY[9], at(-1, 10))


def kinds(causes: list[Cause]) -> list[CauseKind]:
    return [cause.kind for cause in causes]


def test_a_thirty_percent_price_rise_on_the_category_ranks_first() -> None:
    changes = [price(sku, 1000, 1300, at(0, 7)) for sku in CATEGORY]
    found = rank_causes(
        anomaly(Direction.BELOW),
        evidence(
            price_changes=changes,
            stock_outs=[SMALL_STOCK_OUT],
            campaigns=[CHAIN_CAMPAIGN_LONG_AGO],
            labels=[ONE_LABEL],
        ),
        HOURS,
        now=NOW,
    )
    assert kinds(found)[0] is CauseKind.PRICE_CHANGE
    assert found[0].score == 1.0
    assert (found[0].facts["from"], found[0].facts["to"]) == ("1000", "1300")
    assert set(kinds(found)) == {
        CauseKind.PRICE_CHANGE,
        CauseKind.STOCK_OUT,
        CauseKind.CAMPAIGN_ENDED,
        CauseKind.LABEL_MISMATCH,
    }
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)


def test_a_price_rise_does_not_explain_sales_above_the_band() -> None:
    changes = [price(sku, 1000, 1300, at(0, 7)) for sku in CATEGORY]
    found = rank_causes(anomaly(Direction.ABOVE), evidence(price_changes=changes), HOURS, now=NOW)
    assert CauseKind.PRICE_CHANGE not in kinds(found)


def test_a_price_change_in_another_category_or_store_is_not_listed() -> None:
    changes = [
        *(price(sku, 1000, 1500, at(0, 7)) for sku in OTHER),  # another category, same store
        *(price(sku, 1000, 1500, at(0, 7), store="S002") for sku in CATEGORY),  # same category, another store
    ]
    found = rank_causes(
        anomaly(Direction.BELOW),
        Evidence(category_skus=frozenset(CATEGORY), price_changes=changes, stock_outs=[SMALL_STOCK_OUT]),
        HOURS,
        now=NOW,
    )
    assert CauseKind.PRICE_CHANGE not in kinds(found)
    assert kinds(found) == [CauseKind.STOCK_OUT]


def test_a_price_change_before_the_window_or_after_the_day_is_not_listed() -> None:
    changes = [
        *(price(sku, 1000, 1300, at(-8, 7)) for sku in CATEGORY[:5]),
        *(price(sku, 1000, 1300, at(1, 9)) for sku in CATEGORY[5:]),
    ]
    found = rank_causes(anomaly(Direction.BELOW), evidence(price_changes=changes), HOURS, now=NOW)
    assert found == []


def test_a_promotion_started_ranks_first_for_sales_above() -> None:
    changes = [price(sku, 1000, 800, at(0, 8), after=True) for sku in CATEGORY[:6]]
    distractors = [
        price(CATEGORY[7], 1000, 970, at(-3, 9)),  # a small regular cut on one SKU (agrees, weakly)
        price(CATEGORY[8], 1000, 1200, at(0, 9)),  # a rise: disagrees with above, not listed
    ]
    found = rank_causes(
        anomaly(Direction.ABOVE),
        evidence(
            price_changes=[*changes, *distractors],
            stock_outs=[SMALL_STOCK_OUT],
            labels=[ONE_LABEL],
            silences=[JournalSilence("S001", at(0, 8), at(0, 10))],
        ),
        HOURS,
        now=NOW,
    )
    assert kinds(found)[0] is CauseKind.PROMOTION_STARTED
    assert CauseKind.STOCK_OUT not in kinds(found)  # out of stock never explains selling more
    assert CauseKind.PROMOTION_ENDED not in kinds(found)
    assert found[0].facts["skus"] == ",".join(CATEGORY[:6])


def test_a_promotion_ended_ranks_first_for_sales_below() -> None:
    changes = [price(sku, 800, 1000, at(-1, 0), before=True) for sku in CATEGORY[:7]]
    found = rank_causes(
        anomaly(Direction.BELOW),
        evidence(
            price_changes=[*changes, price(CATEGORY[8], 1000, 1100, at(-2, 9))],
            stock_outs=[SMALL_STOCK_OUT],
            campaigns=[CHAIN_CAMPAIGN_LONG_AGO],
        ),
        HOURS,
        now=NOW,
    )
    assert kinds(found)[0] is CauseKind.PROMOTION_ENDED
    # The promotion's end is not counted a second time as a regular price change.
    price_cause = next(c for c in found if c.kind is CauseKind.PRICE_CHANGE)
    assert price_cause.facts["skus"] == CATEGORY[8]


def test_stock_outs_rank_first_for_sales_below() -> None:
    outs = [StockOut("S001", sku, at(-1, 18)) for sku in CATEGORY[:6]]  # still out
    found = rank_causes(
        anomaly(Direction.BELOW),
        evidence(
            stock_outs=[*outs, StockOut("S002", CATEGORY[7], at(0, 8)), StockOut("S001", OTHER[0], at(0, 8))],
            price_changes=[price(CATEGORY[8], 1000, 1050, at(-2, 9))],
            campaigns=[CHAIN_CAMPAIGN_LONG_AGO],
            labels=[ONE_LABEL],
        ),
        HOURS,
        now=NOW,
    )
    assert kinds(found)[0] is CauseKind.STOCK_OUT
    assert found[0].score == round(0.6**0.5, 3)
    assert found[0].facts["skus"] == ",".join(CATEGORY[:6])


def test_stock_outs_do_not_explain_sales_above() -> None:
    outs = [StockOut("S001", sku, at(-1, 18)) for sku in CATEGORY]
    assert rank_causes(anomaly(Direction.ABOVE), evidence(stock_outs=outs), HOURS, now=NOW) == []


def test_labels_given_up_rank_first_when_nothing_stronger_is_known() -> None:
    labels = [GivenUpLabel("S001", f"L-{n}", sku, at(-1, 10)) for n, sku in enumerate(CATEGORY[:8])]
    found = rank_causes(
        anomaly(Direction.ABOVE),
        evidence(
            labels=[*labels, GivenUpLabel("S002", "L-x", CATEGORY[0], at(0, 9))],
            price_changes=[
                price(OTHER[1], 1000, 700, at(0, 9)),
                price(CATEGORY[9], 1000, 980, at(-4, 9)),
                price(CATEGORY[8], 1000, 900, at(-3, 9), after=True),  # one SKU's promotion started
            ],
            stock_outs=[SMALL_STOCK_OUT],
            silences=[JournalSilence("S001", at(0, 8), at(0, 10))],
        ),
        HOURS,
        now=NOW,
    )
    assert kinds(found)[0] is CauseKind.LABEL_MISMATCH
    assert set(kinds(found)[1:]) == {CauseKind.PROMOTION_STARTED, CauseKind.POS_NOT_SYNCING}
    assert found[0].facts["labels"] == ",".join(f"L-{n}" for n in range(8))


def test_a_store_campaign_that_ended_on_the_day_ranks_first() -> None:
    found = rank_causes(
        anomaly(Direction.BELOW),
        evidence(
            campaigns=[
                CampaignEnd("C-S001", "Members' dairy week", "S001", at(0, 9)),
                CampaignEnd("C-S002", "Other store", "S002", at(0, 9)),
                CHAIN_CAMPAIGN_LONG_AGO,
            ],
            price_changes=[price(CATEGORY[1], 1000, 1030, at(-1, 9)), price(CATEGORY[2], 1000, 1030, at(-1, 9))],
            labels=[ONE_LABEL],
            stock_outs=[SMALL_STOCK_OUT],
        ),
        HOURS,
        now=NOW,
    )
    assert kinds(found)[0] is CauseKind.CAMPAIGN_ENDED
    assert found[0].facts["campaign_id"] == "C-S001"


def test_a_silent_pos_ranks_first_for_sales_below() -> None:
    found = rank_causes(
        anomaly(Direction.BELOW),
        evidence(
            silences=[JournalSilence("S001", at(0, 12)), JournalSilence("S002", at(0, 8))],
            stock_outs=[StockOut("S001", sku, at(0, 14), at(0, 18)) for sku in CATEGORY[:3]],
            campaigns=[CHAIN_CAMPAIGN_LONG_AGO],
            price_changes=[price(CATEGORY[3], 1000, 1100, at(-1, 9))],
        ),
        HOURS,
        now=NOW,
    )
    assert kinds(found)[0] is CauseKind.POS_NOT_SYNCING
    assert found[0].score == 1.0
    assert found[0].facts["silent_share"] == f"{10 / 14:.3f}"


def test_a_short_silence_or_one_outside_opening_hours_is_not_listed() -> None:
    found = rank_causes(
        anomaly(Direction.BELOW),
        evidence(silences=[JournalSilence("S001", at(0, 22), at(1, 8)), JournalSilence("S001", at(0, 9), at(0, 10))]),
        HOURS,
        now=NOW,
    )
    assert found == []
