"""How big the demo retailer is: the presets and the limits the id formats impose."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from demodata.model import CHINA_STANDARD_TIME


def yesterday_in_china() -> date:
    """The default last business day of the sales history: yesterday, in the chain's time zone.

    A demo loaded today then has sales up to last night, so "the last 28 days" shows data.
    Pass ``end_date`` explicitly wherever the records must not move (tests pin it).
    """
    return (datetime.now(CHINA_STANDARD_TIME) - timedelta(days=1)).date()


@dataclass(frozen=True, slots=True)
class DemoScale:
    """Sizes of the demo retailer.

    Use :meth:`demo` for the local stack and unit tests (everything in a few seconds),
    :meth:`benchmark` for load tests, or ``dataclasses.replace(DemoScale.demo(), ...)``
    for anything in between. Traffic is per *average* store: hypermarkets see more,
    community stores less. Volumes are scaled down from a real chain (a real store rings
    up thousands of receipts a day) so the demo stays fast; the shapes are realistic.
    The history is the ``history_days`` days ending on ``end_date`` (default yesterday):
    the same seed, scale and end date always give identical records.
    """

    store_count: int = 8
    sku_count: int = 300
    supplier_count: int = 5
    member_count: int = 3_000
    history_days: int = 180
    end_date: date = field(default_factory=yesterday_in_china)
    members_since: date = date(2019, 1, 1)
    receipts_per_store_day: float = 40.0
    online_orders_per_day: float = 60.0
    promotion_count: int = 40

    def __post_init__(self) -> None:
        limits = {
            "store_count": (self.store_count, 1, 999),  # S001..S999
            "sku_count": (self.sku_count, 40, 99_999),  # every leaf category gets SKUs; SKU00001..SKU99999
            "supplier_count": (self.supplier_count, 1, 999),  # SUP001..SUP999
            "member_count": (self.member_count, 0, 9_999_999),  # M0000001..M9999999
            "history_days": (self.history_days, 1, 3_650),
            "promotion_count": (self.promotion_count, 0, 9_999),  # PROMO0001..PROMO9999
        }
        for name, (value, lowest, highest) in limits.items():
            if not lowest <= value <= highest:
                raise ValueError(f"{name} must be between {lowest} and {highest}, not {value}")
        if self.supplier_count > self.sku_count:
            raise ValueError("every supplier needs at least one SKU: supplier_count must not exceed sku_count")
        if not 0 < self.receipts_per_store_day <= 5_000 or not 0 <= self.online_orders_per_day <= 20_000:
            # a location-day's receipts are numbered with five digits
            raise ValueError("receipts_per_store_day must be in (0, 5000] and online_orders_per_day in [0, 20000]")
        if self.members_since > self.history_start:
            raise ValueError("members_since must not be after the first day of the sales history")

    @property
    def history_start(self) -> date:
        """The first business day of the sales history."""
        return self.end_date - timedelta(days=self.history_days - 1)

    @classmethod
    def demo(cls, end_date: date | None = None) -> DemoScale:
        """8 stores, 300 SKUs, 5 suppliers, 3,000 members, 180 days ending ``end_date`` (default yesterday)."""
        return cls() if end_date is None else cls(end_date=end_date)

    @classmethod
    def benchmark(cls, end_date: date | None = None) -> DemoScale:
        """40 stores, 3,000 SKUs, 12 suppliers, 1,000,000 members, a year of busier days.

        Members stream in constant memory; generating the whole year of sales takes
        minutes, so benchmarks usually take a date range of it.
        """
        return cls(
            store_count=40,
            sku_count=3_000,
            supplier_count=12,
            member_count=1_000_000,
            history_days=365,
            receipts_per_store_day=150.0,
            online_orders_per_day=800.0,
            promotion_count=300,
            end_date=end_date or yesterday_in_china(),
        )
