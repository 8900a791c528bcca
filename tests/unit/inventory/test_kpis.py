"""Stock KPIs on small hand-made examples."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.inventory.domain.kpis import (
    DailyStockRecord,
    days_of_cover,
    location_kpis,
    location_sell_through_rate,
    shrink_rate,
    sku_kpis,
    sku_sell_through_rate,
    stock_out_rate,
)

DAY = date(2026, 10, 1)


def _records(sold: list[int], closing: list[int], shrink: list[int] | None = None) -> list[DailyStockRecord]:
    shrink = shrink or [0] * len(sold)
    return [
        DailyStockRecord(DAY + timedelta(days=index), Decimal(units), Decimal(stock), Decimal(lost))
        for index, (units, stock, lost) in enumerate(zip(sold, closing, shrink, strict=True))
    ]


def test_stock_out_rate_is_the_share_of_days_closing_at_or_below_zero() -> None:
    assert stock_out_rate([Decimal(3), Decimal(0), Decimal(-1), Decimal(2)]) == Decimal("0.5000")
    assert stock_out_rate([Decimal(1)] * 3) == 0
    with pytest.raises(ValueError, match="at least one day"):
        stock_out_rate([])


def test_sku_sell_through_is_units_sold_over_units_sold_plus_closing_stock() -> None:
    assert sku_sell_through_rate(Decimal(30), Decimal(10)) == Decimal("0.7500")
    assert sku_sell_through_rate(Decimal(5), Decimal(-3)) == Decimal(1)  # an oversold shelf holds nothing
    assert sku_sell_through_rate(Decimal(0), Decimal(0)) is None


def test_location_sell_through_is_the_share_of_carried_skus_that_sold() -> None:
    sold = {"SKU1": Decimal(3), "SKU2": Decimal(0), "SKU3": Decimal("0.250"), "SKU4": Decimal(0)}

    assert location_sell_through_rate(sold) == Decimal("0.5000")
    assert location_sell_through_rate({}) is None


def test_days_of_cover_is_average_stock_over_average_daily_sales() -> None:
    assert days_of_cover(Decimal(40), Decimal("2.5")) == Decimal("16.0")
    assert days_of_cover(Decimal(40), Decimal(0)) is None


def test_shrink_rate_is_shrink_over_sales_plus_shrink() -> None:
    assert shrink_rate(Decimal(2), Decimal(38)) == Decimal("0.0500")
    assert shrink_rate(Decimal("12.50"), Decimal("487.50")) == Decimal("0.0250")  # as a value share at cost
    assert shrink_rate(Decimal(0), Decimal(0)) is None


def test_sku_kpis_over_a_period() -> None:
    # Closing stock 10, 6, 0, -1, 12 → two stock-out days of five; average stock (10+6+0+0+12)/5 = 5.6.
    records = _records(sold=[2, 4, 6, 1, 3], closing=[10, 6, 0, -1, 12], shrink=[0, 0, 0, 0, 1])

    kpis = sku_kpis("SKU00001", "S001", list(reversed(records)))

    assert (kpis.start, kpis.end, kpis.days) == (DAY, DAY + timedelta(days=4), 5)
    assert kpis.units_sold == 16
    assert kpis.closing_stock == 12
    assert kpis.stock_out_rate == Decimal("0.4000")
    assert kpis.sell_through_rate == Decimal("0.5714")  # 16 / (16 + 12)
    assert kpis.days_of_cover == Decimal("1.8")  # 5.6 / (16 / 5)
    assert kpis.shrink_rate == Decimal("0.0588")  # 1 / (16 + 1)


def test_two_records_for_one_day_are_refused() -> None:
    records = _records(sold=[1], closing=[1]) * 2

    with pytest.raises(ValueError, match="more than one record a day"):
        sku_kpis("SKU00001", "S001", records)


def test_location_kpis_summarise_every_carried_sku() -> None:
    kpis = location_kpis(
        "S001",
        {
            "SKU2": _records(sold=[0, 0], closing=[5, 5]),  # carried, never sold
            "SKU1": _records(sold=[4, 2], closing=[0, 6], shrink=[1, 0]),
        },
    )

    assert [sku.sku for sku in kpis.by_sku] == ["SKU1", "SKU2"]
    assert (kpis.skus_carried, kpis.skus_sold) == (2, 1)
    assert kpis.sell_through_rate == Decimal("0.5000")  # 动销率: one of two SKUs sold
    assert kpis.stock_out_rate == Decimal("0.2500")  # one SKU-day of four
    # Average stock 3 + 5 = 8 over average sales 6 / 2 days = 3 a day.
    assert kpis.days_of_cover == Decimal("2.7")
    assert kpis.shrink_rate == Decimal("0.1429")  # 1 / (6 + 1)
    assert (kpis.start, kpis.end) == (DAY, DAY + timedelta(days=1))
