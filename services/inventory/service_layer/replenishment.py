"""Demand forecasts, replenishment suggestions, stock alerts and stock KPIs of a location.

Backtesting every forecasting method on every SKU of a location and fitting what serves
each costs seconds of CPU (a location of 5,000 SKUs with 18 months of history: about
12 s on one core, see ``bench/forecast_accuracy.py``), so each fit is cached per location
under the business day and a fingerprint of the location's sales before that day: the
same day and the same history reuse the fit; a new day, a late sale or an import refits.
Callers asking for the same fit at once share one computation (single flight), and it
runs on a thread pool, never on the event loop.

Replenishment plans with the served forecast's expected demand and sizes safety stock
from its 95% prediction interval (how far demand may run above the mean over the lead
time), both calibrated on the SKU's own backtest.

A replenishment run plans every selling location and publishes, through the outbox, only
what changed since the last run: a new order quantity (``ReplenishmentSuggested``) and
a low-stock or overstock finding that was not already raised (``StockAlertRaised``).
What was last reported is stored per SKU and location in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial

from servicekit.db import UnitOfWork
from servicekit.errors import FailedPrecondition, InvalidArgument, NotFound
from services.inventory.adapters import planning_store, stock_store
from services.inventory.adapters.planning_store import PlanningLevel, SalesVersion
from services.inventory.adapters.replenishment_messages import alert_event, map_suggestion, suggestion_event
from services.inventory.domain.forecasting import (
    MAX_BRIDGE_DAYS,
    MAX_HORIZON_DAYS,
    DemandHistory,
    Forecast,
    LocationBacktest,
    LocationForecasts,
    SeriesBacktest,
    fit_location_forecasts,
)
from services.inventory.domain.kpis import (
    DailyStockRecord,
    DiscrepancyTally,
    LocationKpis,
    category_kpis,
    location_kpis,
)
from services.inventory.domain.model import UnknownLocation, UnknownSku
from services.inventory.domain.replenishment import (
    DEFAULT_OVERSTOCK_COVER_DAYS,
    DEFAULT_REVIEW_PERIOD_DAYS,
    DEFAULT_SERVICE_LEVEL,
    LastReported,
    ReplenishmentPolicy,
    ReplenishmentSuggestion,
    StockAlert,
    days_of_cover,
    news_since,
    stock_alerts,
    suggest_replenishment,
)
from services.inventory.service_layer.handlers import CHINA_STANDARD_TIME

log = logging.getLogger("inventory.replenishment")

COVER_HORIZON_DAYS = 28  # days of cover are counted at the average forecast of the next four weeks
MAX_KPI_DAYS = 366
EARLIEST_KPI_DAY = date(2000, 1, 1)  # no stock ledger reaches back further
DEFAULT_KPI_DAYS = 30
ZERO = Decimal(0)


class NotASellingLocation(FailedPrecondition):
    """Warehouses sell nothing themselves: their demand is the stores' orders, not forecast here."""

    reason = "not-a-selling-location"


class SkuNotCarried(NotFound):
    reason = "sku-not-carried"


class SalesHistoryTooOld(FailedPrecondition):
    reason = "sales-history-too-old"


@dataclass(frozen=True)
class PlanningPolicy:
    """How SKUs are replenished where the item itself says nothing (lead time comes from the item when known)."""

    default_lead_time_days: int = 2
    review_period_days: int = DEFAULT_REVIEW_PERIOD_DAYS
    service_level: Decimal = DEFAULT_SERVICE_LEVEL
    overstock_cover_days: Decimal = DEFAULT_OVERSTOCK_COVER_DAYS

    def for_level(self, level: PlanningLevel) -> ReplenishmentPolicy:
        """Pieces are ordered whole; loose goods (by weight) to the gram."""
        lead_time = self.default_lead_time_days if level.lead_time_days is None else level.lead_time_days
        return ReplenishmentPolicy(
            lead_time_days=lead_time,
            review_period_days=self.review_period_days,
            service_level=self.service_level,
            pack_size=None if level.sold_by_weight else Decimal(1),
            overstock_cover_days=self.overstock_cover_days,
        )


@dataclass(frozen=True)
class LocationDemand:
    """One location's demand as fitted on one business day.

    ``forecasts`` serve up to :data:`MAX_HORIZON_DAYS` days from ``today`` for every SKU
    that ever sold there (``None`` without any history); a SKU that never sold is expected
    to sell nothing. ``history_end`` is the last day with sales.
    """

    location_id: str
    today: date
    history_end: date | None
    forecasts: LocationForecasts | None

    def forecast(self, sku: str, horizon_days: int) -> Forecast:
        known = self.forecasts.forecast(sku, horizon_days) if self.forecasts is not None else None
        if known is None:
            daily = [(self.today + timedelta(days=step), ZERO) for step in range(horizon_days)]
            return Forecast(sku, self.location_id, self.today, daily)
        return known

    def backtest(self, sku: str, horizon_days: int) -> SeriesBacktest | None:
        """The backtest that chose the method serving ``sku`` for this horizon."""
        return self.forecasts.backtest(sku, horizon_days) if self.forecasts is not None else None

    def location_backtest(self, horizon_days: int) -> LocationBacktest | None:
        return self.forecasts.location_backtest(horizon_days) if self.forecasts is not None else None


def fit_location_demand(location_id: str, histories: Sequence[DemandHistory], today: date) -> LocationDemand:
    """Backtest, choose and fit what serves every SKU of one location from ``today`` (pure CPU: off the event loop)."""
    if not histories:
        return LocationDemand(location_id, today, None, None)
    history_end = max(day for history in histories for day in history.daily)
    forecasts = fit_location_forecasts(histories, start=history_end + timedelta(days=1), first_day=today)
    return LocationDemand(location_id, today, history_end, forecasts)


@dataclass(frozen=True)
class FitKey:
    location_id: str
    today: date
    sales: SalesVersion


class DemandFits:
    """Per-location cache of demand fits with single flight; fits run on ``executor``."""

    def __init__(self, unit_of_work: Callable[[], UnitOfWork], executor: Executor) -> None:
        self._uow = unit_of_work
        self._executor = executor
        self._fits: dict[str, tuple[FitKey, LocationDemand]] = {}
        self._in_flight: dict[FitKey, asyncio.Future[LocationDemand]] = {}
        self.fits_computed = 0

    async def of(self, location_id: str, today: date) -> LocationDemand:
        """The location's demand as of ``today``: cached, joined while being fitted, or fitted now."""
        async with self._uow() as uow:
            version = await planning_store.sales_version(uow.session, location_id, today)
        key = FitKey(location_id, today, version)
        cached = self._fits.get(location_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        if version.last_day is not None and (today - version.last_day).days - 1 > MAX_BRIDGE_DAYS:
            raise SalesHistoryTooOld(
                f"the sales history of {location_id} ends on {version.last_day}, more than {MAX_BRIDGE_DAYS} days "
                "ago: import recent sales before forecasting"
            )
        flight = self._in_flight.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fit(key))
            self._in_flight[key] = flight
            flight.add_done_callback(partial(self._landed, key))
        # A caller that gives up (deadline, cancellation) leaves the fit running for the others.
        return await asyncio.shield(flight)

    async def _fit(self, key: FitKey) -> LocationDemand:
        async with self._uow() as uow:
            daily = await planning_store.daily_sales_by_sku(uow.session, key.location_id, key.today)
        histories = [DemandHistory(sku, key.location_id, days) for sku, days in sorted(daily.items())]
        loop = asyncio.get_running_loop()
        demand = await loop.run_in_executor(self._executor, fit_location_demand, key.location_id, histories, key.today)
        self.fits_computed += 1
        self._fits[key.location_id] = (key, demand)
        log.info("demand fitted", extra={"location_id": key.location_id, "skus": len(histories)})
        return demand

    def _landed(self, key: FitKey, flight: asyncio.Future[LocationDemand]) -> None:
        self._in_flight.pop(key, None)
        if not flight.cancelled() and flight.exception() is not None:
            log.warning("demand fit failed", extra={"location_id": key.location_id, "error": str(flight.exception())})


@dataclass(frozen=True)
class ForecastAnswer:
    forecast: Forecast
    supplier_id: str
    backtest: SeriesBacktest | None
    location_backtest: LocationBacktest | None
    history_end: date | None


@dataclass(frozen=True)
class PlannedLevel:
    """One SKU at one location: its stock, what to order, and whether it needs attention."""

    level: PlanningLevel
    suggestion: ReplenishmentSuggestion
    alert: StockAlert | None
    days_of_cover: Decimal | None


@dataclass(frozen=True)
class ReplenishmentPage:
    location_id: str
    as_of: date
    levels: list[PlannedLevel]
    more: bool


@dataclass
class RunReport:
    """What one replenishment run did."""

    locations: list[str] = field(default_factory=list)
    suggestions_published: int = 0
    alerts_published: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # location → why it was not planned


class ReplenishmentPlanner:
    """Forecasts, replenishment and KPIs of locations: what the gRPC servicer and the periodic run call."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        fits: DemandFits,
        policy: PlanningPolicy | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = unit_of_work
        self.fits = fits
        self._policy = policy or PlanningPolicy()
        self._clock = clock

    def today(self) -> date:
        """The chain's business day now."""
        return self._clock().astimezone(CHINA_STANDARD_TIME).date()

    # -- questions ---------------------------------------------------------------------------
    async def forecast(self, location_id: str, sku: str, horizon_days: int) -> ForecastAnswer:
        """One SKU's daily forecast at a selling location from today on, with the backtest that chose its method."""
        if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
            raise InvalidArgument(
                f"horizon_days must be between 1 and {MAX_HORIZON_DAYS}, not {horizon_days}", reason="invalid-horizon"
            )
        async with self._uow() as uow:
            await self._ensure_selling(uow, location_id)
            if not await stock_store.known_sku(uow.session, sku):
                raise UnknownSku(f"SKU {sku} does not exist")
            if not await planning_store.carries(uow.session, location_id, sku):
                raise SkuNotCarried(f"SKU {sku} is neither stocked nor sold at {location_id}")
            supplier_id = await stock_store.supplier_of(uow.session, sku)
        demand = await self.fits.of(location_id, self.today())
        return ForecastAnswer(
            demand.forecast(sku, horizon_days),
            supplier_id,
            demand.backtest(sku, horizon_days),
            demand.location_backtest(horizon_days),
            demand.history_end,
        )

    async def replenishment(
        self, location_id: str, *, after_sku: str = "", limit: int = 100, supplier_id: str = ""
    ) -> ReplenishmentPage:
        """A page of a selling location's suggestions and alerts, by SKU."""
        async with self._uow() as uow:
            await self._ensure_selling(uow, location_id)
        today = self.today()
        demand = await self.fits.of(location_id, today)
        async with self._uow() as uow:
            levels = await planning_store.planning_levels(
                uow.session, location_id, after_sku=after_sku, limit=limit + 1, supplier_id=supplier_id
            )
        planned = [self._plan(demand, level) for level in levels[:limit]]
        return ReplenishmentPage(location_id, today, planned, more=len(levels) > limit)

    async def stock_kpis(
        self,
        location_id: str,
        *,
        sku: str = "",
        start: date | None = None,
        end: date | None = None,
        supplier_id: str = "",
    ) -> tuple[date, date, LocationKpis | None, list[DiscrepancyTally]]:
        """KPIs of a location (or one SKU there) over ``start``..``end`` (``None`` when nothing was
        carried), and the discrepancies its sales of the period left, per kind.

        A SKU counts from the first day its ledger knows its stock: history imported from
        before says what sold but not what stood on the shelf.
        """
        today = self.today()
        end = end or today
        if min(end, start or end) < EARLIEST_KPI_DAY:
            raise InvalidArgument(f"the period cannot start before {EARLIEST_KPI_DAY}", reason="invalid-period")
        start = start or max(EARLIEST_KPI_DAY, end - timedelta(days=DEFAULT_KPI_DAYS - 1))
        if end > today:
            raise InvalidArgument(f"the period cannot end after today ({today})", reason="invalid-period")
        if start > end:
            raise InvalidArgument(f"the period starts ({start}) after it ends ({end})", reason="invalid-period")
        if (end - start).days + 1 > MAX_KPI_DAYS:
            raise InvalidArgument(f"the period may be at most {MAX_KPI_DAYS} days", reason="invalid-period")
        async with self._uow() as uow:
            if await planning_store.location_kind(uow.session, location_id) is None:
                raise UnknownLocation(f"location {location_id} does not exist")
            if sku and not await stock_store.known_sku(uow.session, sku):
                raise UnknownSku(f"SKU {sku} does not exist")
            ledgers = await planning_store.ledger_by_day(
                uow.session, location_id, start, end, CHINA_STANDARD_TIME, sku=sku, supplier_id=supplier_id
            )
            sold = await planning_store.sales_by_day(
                uow.session, location_id, start, end, sku=sku, supplier_id=supplier_id
            )
            discrepancies = await planning_store.discrepancy_tallies(
                uow.session, location_id, start, end, CHINA_STANDARD_TIME, sku=sku, supplier_id=supplier_id
            )
            categories = await planning_store.categories_of(uow.session, list(ledgers))
        records = {
            sku_code: daily_stock_records(ledger, sold.get(sku_code, {}), start, end)
            for sku_code, ledger in ledgers.items()
        }
        records = {sku_code: days for sku_code, days in records.items() if days}
        if not records:
            return start, end, None, discrepancies
        by_category = category_kpis(location_id, records, categories, self._policy.overstock_cover_days)
        return start, end, replace(location_kpis(location_id, records), by_category=by_category), discrepancies

    # -- the replenishment run ------------------------------------------------------------------
    async def run(self, location_ids: Sequence[str] | None = None) -> RunReport:
        """Plan every selling location (or the ones given) and publish what changed since the last run."""
        report = RunReport()
        if location_ids is None:
            async with self._uow() as uow:
                location_ids = await planning_store.selling_locations(uow.session)
        # Fit every location at once: the executor runs as many side by side as it has threads.
        # A failure here comes back, and is reported, when its location is planned.
        today = self.today()
        await asyncio.gather(
            *(self.fits.of(location_id, today) for location_id in location_ids), return_exceptions=True
        )
        for location_id in location_ids:
            try:
                suggested, alerted = await self.run_location(location_id)
            except (FailedPrecondition, NotFound) as refusal:
                report.skipped[location_id] = refusal.message
                continue
            report.locations.append(location_id)
            report.suggestions_published += suggested
            report.alerts_published += alerted
        return report

    async def run_location(self, location_id: str) -> tuple[int, int]:
        """Plan one location; returns how many suggestions and alerts were published."""
        async with self._uow() as uow:
            await self._ensure_selling(uow, location_id)
        today = self.today()
        demand = await self.fits.of(location_id, today)
        now = self._clock()
        suggested = alerted = 0
        async with self._uow() as uow:
            # Under the lock, so a concurrent run (another replica) sees this one's report and stays quiet.
            await planning_store.lock_location_reports(uow.session, location_id)
            last = await planning_store.last_reports(uow.session, location_id)
            changed: dict[str, LastReported] = {}
            for level in await planning_store.planning_levels(uow.session, location_id):
                planned = self._plan(demand, level)
                previous = last.get(level.sku)
                news = news_since(previous, planned.suggestion, planned.alert)
                if news.suggestion is not None:
                    wire = map_suggestion(news.suggestion, level.position, level.supplier_id, planned.days_of_cover)
                    uow.publish(suggestion_event(wire, location_id, now))
                    suggested += 1
                if news.alert is not None:
                    uow.publish(alert_event(news.alert, now))
                    alerted += 1
                reported = LastReported.of(planned.suggestion, planned.alert)
                if reported != previous:
                    changed[level.sku] = reported
            await planning_store.save_reports(uow.session, location_id, today, changed)
            await uow.commit()
        log.info(
            "replenishment planned",
            extra={"location_id": location_id, "suggestions_published": suggested, "alerts_published": alerted},
        )
        return suggested, alerted

    # -- helpers -------------------------------------------------------------------------------------
    def _plan(self, demand: LocationDemand, level: PlanningLevel) -> PlannedLevel:
        policy = self._policy.for_level(level)
        forecast = demand.forecast(level.sku, max(policy.protection_days, COVER_HORIZON_DAYS))
        # Safety stock covers demand above its mean over the lead time, as the calibrated interval says it may run.
        error_std = forecast.upper_error_std(policy.lead_time_days)
        suggestion = suggest_replenishment(forecast, level.position, policy, error_std)
        alerts = stock_alerts(suggestion, level.position, forecast, policy)
        cover = days_of_cover(level.position.on_hand - level.position.reserved, forecast)
        return PlannedLevel(level, suggestion, alerts[0] if alerts else None, cover)

    async def _ensure_selling(self, uow: UnitOfWork, location_id: str) -> None:
        kind = await planning_store.location_kind(uow.session, location_id)
        if kind is None:
            raise UnknownLocation(f"location {location_id} does not exist")
        if kind not in planning_store.SELLING_KINDS:
            raise NotASellingLocation(
                f"{location_id} is a {kind}: demand is forecast and replenishment planned for stores and online "
                "locations"
            )


def daily_stock_records(
    ledger: planning_store.SkuLedger, sold: Mapping[date, Decimal], start: date, end: date
) -> list[DailyStockRecord]:
    """One record per day from ``start`` (or the SKU's first ledger day) to ``end``, closing stock from the ledger.

    Days net of returns that sold less than nothing count as nothing sold.
    """
    changes = {day.day: day for day in ledger.days}
    on_hand = ledger.opening_on_hand
    records = []
    day = start
    while day <= end:
        change = changes.get(day)
        if change is not None:
            on_hand += change.on_hand_delta
        if day >= ledger.first_day:
            records.append(
                DailyStockRecord(
                    day=day,
                    units_sold=max(ZERO, sold.get(day, ZERO)),
                    closing_on_hand=on_hand,
                    shrink=change.shrink if change is not None else ZERO,
                )
            )
        day += timedelta(days=1)
    return records
