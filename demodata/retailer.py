"""The demo retailer: every part of the demo data, built from one seed and one scale."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from demodata._random import hashed_bytes
from demodata.catalogue import build_catalogue
from demodata.clients import build_clients
from demodata.locations import CHAIN_NAME, STORE_FORMAT_TRAFFIC, build_locations
from demodata.members import MemberRoll, member_index
from demodata.model import (
    Category,
    DailySales,
    DemoClient,
    Holiday,
    Location,
    Member,
    Promotion,
    Sale,
    Sku,
    StockLevel,
    StoreFormat,
    Supplier,
)
from demodata.promotions import build_promotions
from demodata.retail_calendar import MAKE_UP_WORKDAYS, TradingCalendar, holidays_between
from demodata.sales import DemandModel, SalesHistory, aggregate_daily_sales
from demodata.scale import DemoScale
from demodata.stock import build_stock_levels
from demodata.suppliers import assign_suppliers

DEFAULT_SEED = 20261124


class DemoRetailer:
    """A Chinese supermarket chain, deterministic in ``seed`` and ``scale`` (whose ``end_date``,
    default yesterday, anchors the history: pin it where records must not move).

    Construction builds the small reference data at once (locations, catalogue,
    suppliers, promotions, clients: milliseconds, also at benchmark scale). Members are
    computed on request from their index, sales one day at a time while you iterate:
    nothing large is ever held in memory, and asking twice gives equal records.
    """

    def __init__(self, seed: int = DEFAULT_SEED, scale: DemoScale | None = None) -> None:
        self.seed = seed
        self.scale = scale or DemoScale.demo()
        self.chain_name = CHAIN_NAME
        self.history_start: date = self.scale.history_start
        self.history_end: date = self.scale.end_date

        stores, warehouse, online = build_locations(seed, self.scale.store_count)
        self.stores: tuple[Location, ...] = stores
        self.warehouses: tuple[Location, ...] = (warehouse,)
        self.online_locations: tuple[Location, ...] = (online,)
        self.locations: tuple[Location, ...] = (*stores, warehouse, online)

        draft = build_catalogue(seed, self.scale.sku_count)
        self.categories: tuple[Category, ...] = draft.categories
        self.suppliers: tuple[Supplier, ...]
        self.skus: tuple[Sku, ...]
        self.suppliers, self.skus = assign_suppliers(seed, self.scale.supplier_count, draft.departments, draft.skus)

        # Festival food reaches the shelves weeks before its occasion: the calendar runs past the history.
        self.holidays: tuple[Holiday, ...] = holidays_between(self.history_start, self.history_end + timedelta(days=60))
        self.make_up_workdays: tuple[date, ...] = MAKE_UP_WORKDAYS
        self.promotions: tuple[Promotion, ...] = build_promotions(
            seed, self.scale.promotion_count, self.history_start, self.scale.history_days, self.skus, stores, online
        )
        self.clients: tuple[DemoClient, ...] = build_clients(seed, stores, self.suppliers)
        self.wechat_app_id = "wx" + hashed_bytes(seed, "wechat-app-id", size=8).hex()
        """The mini-program's appid, the namespace of every member's WeChat openid."""

        self._locations_by_id = {location.location_id: location for location in self.locations}
        self._skus_by_code = {sku.sku_code: sku for sku in self.skus}
        self._suppliers_by_id = {supplier.supplier_id: supplier for supplier in self.suppliers}
        traffic = tuple(STORE_FORMAT_TRAFFIC[store.store_format or StoreFormat.SUPERMARKET] for store in stores)
        self._members = MemberRoll(
            seed, self.scale.member_count, self.scale.members_since, self.scale.end_date, stores, traffic
        )
        self.calendar = TradingCalendar(self.holidays, self.make_up_workdays)
        """Which days are days off, which holidays fall on a day, and how busy a day is expected to be."""
        self._demand = DemandModel(
            self.scale, stores, online, self.skus, draft.popularity, self.promotions, self.calendar
        )
        self._sales = SalesHistory(seed, self._demand, self._members, stores, online)

    def __repr__(self) -> str:
        return f"DemoRetailer(seed={self.seed}, scale={self.scale!r})"

    # -- reference data ---------------------------------------------------------------------

    def location(self, location_id: str) -> Location:
        """The location with this id (``S001``, ``W01``, ``ONLINE01``); ``KeyError`` if unknown."""
        return self._locations_by_id[location_id]

    def sku(self, sku_code: str) -> Sku:
        return self._skus_by_code[sku_code]

    def supplier(self, supplier_id: str) -> Supplier:
        return self._suppliers_by_id[supplier_id]

    # -- members ----------------------------------------------------------------------------

    @property
    def member_count(self) -> int:
        return self._members.count

    def member(self, index: int) -> Member:
        """Member ``index`` (0-based; id ``M{index + 1:07d}``), computed directly in O(1)."""
        return self._members.member(index)

    def member_by_id(self, member_id: str) -> Member:
        """The member with id ``M0000001``...; ``IndexError`` beyond ``member_count``."""
        return self._members.member(member_index(member_id))

    def iter_members(self, start: int = 0, stop: int | None = None) -> Iterator[Member]:
        """Members ``start..stop-1`` in id order (which is registration order), streamed."""
        for index in range(start, self.member_count if stop is None else min(stop, self.member_count)):
            yield self._members.member(index)

    def members_registered_before(self, day: date) -> int:
        """How many members had joined before ``day``: exactly ids ``M0000001`` up to that count."""
        return self._members.registered_before(day)

    # -- sales ------------------------------------------------------------------------------

    @property
    def selling_locations(self) -> tuple[Location, ...]:
        """The stores and the online shop: the locations that have sales."""
        return self._sales.selling_locations

    def iter_sales(self, start: date | None = None, end: date | None = None) -> Iterator[Sale]:
        """Receipts in time order over ``start..end`` (inclusive, default the whole history), streamed by day."""
        return self._sales.iter_sales(start, end)

    def sales_on(self, day: date) -> list[Sale]:
        """All receipts of one business day, by time; each day is generated independently."""
        return self._sales.sales_on(day)

    def daily_sales(self, start: date | None = None, end: date | None = None) -> Iterator[DailySales]:
        """Per (business date, location, SKU) totals of :meth:`iter_sales`, day by day.

        Only combinations that sold are listed. It regenerates the receipts; when you
        already iterate them, roll them up with :func:`demodata.aggregate_daily_sales`.
        """
        return aggregate_daily_sales(self.iter_sales(start, end))

    def expected_daily_quantity(self, location_id: str) -> dict[str, float]:
        """The demand model's units (kg for loose goods) per SKU on an ordinary day at a selling location."""
        return self._demand.expected_daily_quantity(self.location(location_id), self.history_end)

    # -- stock ------------------------------------------------------------------------------

    def stock_levels(self) -> Iterator[StockLevel]:
        """Stock on hand per location and SKU as of the end of the history (after all its sales)."""
        return build_stock_levels(
            self.seed, self._demand, self.selling_locations, self.warehouses[0], self.skus, self.suppliers
        )
