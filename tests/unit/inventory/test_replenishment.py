"""Replenishment: reorder point, order-up-to level and order quantity on a hand-computed example; alerts."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.inventory.domain.forecasting import Forecast
from services.inventory.domain.replenishment import (
    AlertKind,
    LastReported,
    ReplenishmentPolicy,
    StockPosition,
    days_of_cover,
    news_since,
    round_up_to_pack,
    safety_stock,
    service_level_z,
    stock_alerts,
    suggest_replenishment,
)

START = date(2026, 11, 2)
# 14 days; the first 3 sum to 30, the first 10 to 110, all 14 to 150.
DAILY = [10, 12, 8, 10, 10, 15, 15, 10, 10, 10, 10, 10, 10, 10]
POLICY = ReplenishmentPolicy(lead_time_days=3, review_period_days=7, service_level=Decimal("0.95"))
SIGMA = Decimal(4)


def _forecast(daily: list[int] = DAILY) -> Forecast:
    return Forecast(
        "SKU00001", "S001", START, [(START + timedelta(days=step), Decimal(q)) for step, q in enumerate(daily)]
    )


def test_safety_stock_is_z_times_sigma_times_root_lead_time() -> None:
    # z(0.95) = 1.644854; 1.644854 × 4 × √3 = 11.395880, rounded up to the gram.
    assert service_level_z(Decimal("0.95")).quantize(Decimal("0.000001")) == Decimal("1.644854")
    assert safety_stock(SIGMA, 3, Decimal("0.95")) == Decimal("11.396")
    assert safety_stock(SIGMA, 0, Decimal("0.95")) == 0
    assert safety_stock(Decimal(0), 3, Decimal("0.95")) == 0


def test_reorder_point_and_order_quantity_on_a_hand_computed_example() -> None:
    position = StockPosition(on_hand=Decimal(50), reserved=Decimal(5), in_transit=Decimal(20))

    suggestion = suggest_replenishment(_forecast(), position, POLICY, SIGMA)

    assert suggestion.lead_time_demand == Decimal(30)
    assert suggestion.protection_demand == Decimal(110)
    assert suggestion.safety_stock == Decimal("11.396")
    assert suggestion.reorder_point == Decimal("41.396")  # 30 + 11.396
    assert suggestion.order_up_to == Decimal("121.396")  # 110 + 11.396
    assert suggestion.inventory_position == Decimal(65)  # 50 − 5 + 20
    assert suggestion.suggested_quantity == Decimal("56.396")  # 121.396 − 65
    assert not suggestion.reorder_due  # 65 > 41.396
    assert (suggestion.sku, suggestion.location_id, suggestion.as_of) == ("SKU00001", "S001", START)


def test_the_order_is_rounded_up_to_whole_packs() -> None:
    position = StockPosition(on_hand=Decimal(50), reserved=Decimal(5), in_transit=Decimal(20))
    policy = ReplenishmentPolicy(lead_time_days=3, review_period_days=7, pack_size=Decimal(12))

    suggestion = suggest_replenishment(_forecast(), position, policy, SIGMA)

    assert suggestion.suggested_quantity == Decimal(60)  # 56.396 → 5 cases of 12
    assert round_up_to_pack(Decimal(24), Decimal(12)) == Decimal(24)
    assert round_up_to_pack(Decimal("0.001"), Decimal(12)) == Decimal(12)


def test_nothing_is_ordered_when_the_position_is_above_the_order_up_to_level() -> None:
    position = StockPosition(on_hand=Decimal(200))

    suggestion = suggest_replenishment(_forecast(), position, POLICY, SIGMA)

    assert suggestion.suggested_quantity == 0


def test_a_position_at_the_reorder_point_is_due_for_an_order() -> None:
    position = StockPosition(on_hand=Decimal("41.396"))

    suggestion = suggest_replenishment(_forecast(), position, POLICY, SIGMA)

    assert suggestion.reorder_due
    assert suggestion.suggested_quantity == Decimal(80)  # 121.396 − 41.396


def test_a_forecast_shorter_than_lead_time_and_review_period_is_refused() -> None:
    with pytest.raises(ValueError, match="lead time \\+ review period"):
        suggest_replenishment(_forecast(DAILY[:9]), StockPosition(on_hand=Decimal(10)), POLICY, SIGMA)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lead_time_days", -1),
        ("review_period_days", -1),
        ("service_level", Decimal(1)),
        ("service_level", Decimal(0)),
        ("pack_size", Decimal(0)),
        ("overstock_cover_days", Decimal(0)),
    ],
)
def test_an_impossible_policy_is_refused(field: str, value: object) -> None:
    arguments: dict[str, object] = {"lead_time_days": 3, field: value}

    with pytest.raises(ValueError, match="must"):
        ReplenishmentPolicy(**arguments)  # type: ignore[arg-type]


def test_available_to_promise_at_or_below_the_reorder_point_raises_a_low_stock_alert() -> None:
    # ATP = 45 − 5 − 0 = 40 ≤ reorder point 41.396
    position = StockPosition(on_hand=Decimal(45), reserved=Decimal(5), in_transit=Decimal(100))
    suggestion = suggest_replenishment(_forecast(), position, POLICY, SIGMA)

    alerts = stock_alerts(suggestion, position, _forecast(), POLICY)

    assert [alert.kind for alert in alerts] == [AlertKind.LOW_STOCK]
    assert alerts[0].available_to_promise == Decimal(40)
    assert alerts[0].reorder_point == Decimal("41.396")


def test_safety_stock_held_back_from_available_to_promise_counts_towards_low_stock() -> None:
    position = StockPosition(on_hand=Decimal(60), reserved=Decimal(5), safety_stock=Decimal(15))  # ATP 40
    suggestion = suggest_replenishment(_forecast(), position, POLICY, SIGMA)

    assert [alert.kind for alert in stock_alerts(suggestion, position, _forecast(), POLICY)] == [AlertKind.LOW_STOCK]


def test_more_days_of_cover_than_the_threshold_raises_an_overstock_alert() -> None:
    # Average forecast 150 / 14 = 10.714 a day: 700 units cover 65.3 days > 60, 600 cover 56.0.
    over = StockPosition(on_hand=Decimal(700))
    fine = StockPosition(on_hand=Decimal(600))

    over_alerts = stock_alerts(suggest_replenishment(_forecast(), over, POLICY, SIGMA), over, _forecast(), POLICY)
    fine_alerts = stock_alerts(suggest_replenishment(_forecast(), fine, POLICY, SIGMA), fine, _forecast(), POLICY)

    assert [alert.kind for alert in over_alerts] == [AlertKind.OVERSTOCK]
    assert over_alerts[0].days_of_cover == Decimal("65.3")
    assert over_alerts[0].overstock_cover_days == Decimal(60)
    assert fine_alerts == []
    assert days_of_cover(Decimal(600), _forecast()) == Decimal("56.0")


def test_stock_that_nobody_is_expected_to_buy_is_overstock_and_not_low_stock() -> None:
    no_demand = _forecast([0] * 14)
    stocked = StockPosition(on_hand=Decimal(3))
    empty = StockPosition(on_hand=Decimal(0))

    stocked_alerts = stock_alerts(
        suggest_replenishment(no_demand, stocked, POLICY, SIGMA * 0), stocked, no_demand, POLICY
    )
    empty_alerts = stock_alerts(suggest_replenishment(no_demand, empty, POLICY, SIGMA * 0), empty, no_demand, POLICY)

    assert [(alert.kind, alert.days_of_cover) for alert in stocked_alerts] == [(AlertKind.OVERSTOCK, None)]
    assert empty_alerts == []


def test_an_oversold_item_without_forecast_demand_is_still_low_on_stock() -> None:
    no_demand = _forecast([0] * 14)
    oversold = StockPosition(on_hand=Decimal(-2))

    alerts = stock_alerts(suggest_replenishment(no_demand, oversold, POLICY, Decimal(0)), oversold, no_demand, POLICY)

    assert [alert.kind for alert in alerts] == [AlertKind.LOW_STOCK]


def test_a_run_reports_only_a_changed_order_quantity_and_an_alert_not_raised_already() -> None:
    low = StockPosition(on_hand=Decimal(20))
    suggestion = suggest_replenishment(_forecast(), low, POLICY, SIGMA)  # orders 101.396
    alert = stock_alerts(suggestion, low, _forecast(), POLICY)[0]

    first = news_since(None, suggestion, alert)
    unchanged = news_since(LastReported.of(suggestion, alert), suggestion, alert)
    moved = news_since(LastReported(Decimal(90), AlertKind.OVERSTOCK), suggestion, alert)

    assert (first.suggestion, first.alert) == (suggestion, alert)
    assert not unchanged
    assert (moved.suggestion, moved.alert) == (suggestion, alert)


def test_nothing_to_order_is_news_only_when_it_withdraws_an_earlier_suggestion() -> None:
    plenty = StockPosition(on_hand=Decimal(200))
    suggestion = suggest_replenishment(_forecast(), plenty, POLICY, SIGMA)

    assert not news_since(None, suggestion, None)
    assert news_since(LastReported(Decimal(40)), suggestion, None).suggestion == suggestion
    # An alert that cleared is not news; it is raised again when it comes back.
    assert not news_since(LastReported(Decimal(0), AlertKind.LOW_STOCK), suggestion, None)
    assert LastReported.of(suggestion, None) == LastReported(Decimal(0), None)
