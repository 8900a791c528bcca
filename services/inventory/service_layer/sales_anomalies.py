"""Sales anomalies: each store × leaf category's closed business days against their expected band.

The band of a day is the one the forecasts gave the evening before it: the location's
demand is fitted as of that day (on the sales before it only, a fit of its own, cached
apart from replenishment's fit of today) and each SKU's forecast for the day read with
its calibrated interval; where a forecast does not cover the category, the same weekday
of the previous weeks serves (``domain/sales_anomalies.py`` says how each band is made and
when a day counts).

The periodic replenishment run calls :meth:`SalesAnomalyDetector.run` after planning: it
evaluates every selling location's closed days of the last ``lookback_days`` not yet
evaluated. :meth:`SalesAnomalyDetector.evaluate` evaluates one location's closed day on
request (again, if it was already). Either way a finding is kept under its natural key
(location, category, business day) and ``SalesAnomalyDetected`` written to the outbox in
the same transaction, only by the transaction that kept it: reruns and replicas raise each
finding once. The transaction takes the location's replenishment lock as well, so it
waits for a replenishment run of the location in flight on another replica.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from servicekit.db import UnitOfWork
from servicekit.errors import FailedPrecondition, InvalidArgument, NotFound
from services.inventory.adapters import anomaly_store, planning_store
from services.inventory.adapters.anomaly_messages import anomaly_event
from services.inventory.domain.demand_history import DemandInterval
from services.inventory.domain.model import UnknownLocation
from services.inventory.domain.sales_anomalies import (
    ZERO,
    AnomalyPolicy,
    Band,
    CategoryDay,
    SalesAnomaly,
    detect,
    forecast_band,
    seasonal_band,
)
from services.inventory.service_layer.handlers import CHINA_STANDARD_TIME
from services.inventory.service_layer.replenishment import DemandFits, LocationDemand, SalesHistoryTooOld

log = logging.getLogger("inventory.sales_anomalies")


class DayNotClosed(InvalidArgument):
    reason = "business-day-not-closed"


@dataclass
class AnomalyRunReport:
    """What one evaluation run did."""

    evaluated: list[tuple[str, date]] = field(default_factory=list)  # (location, business day)
    raised: list[SalesAnomaly] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # location → why it was not evaluated


class SalesAnomalyDetector:
    """Finds store × category days outside their band and raises each once through the outbox.

    ``fits`` gives the forecasts; without them (``None``) every band is the seasonal baseline.
    """

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        fits: DemandFits | None,
        policy: AnomalyPolicy | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = unit_of_work
        self.fits = fits
        self.policy = policy or AnomalyPolicy()
        self._clock = clock

    def today(self) -> date:
        """The chain's business day now: every day before it has closed."""
        return self._clock().astimezone(CHINA_STANDARD_TIME).date()

    async def run(self, location_ids: Sequence[str] | None = None) -> AnomalyRunReport:
        """Evaluate the closed days of the last ``lookback_days`` not evaluated yet, at every selling location."""
        report = AnomalyRunReport()
        now = self._clock().astimezone(CHINA_STANDARD_TIME)
        # A day is judged once its close is ``closing_grace`` behind: tills back from an offline spell replay it.
        settled = (now - self.policy.closing_grace).date()
        days = [settled - timedelta(days=back) for back in range(self.policy.lookback_days, 0, -1)]
        async with self._uow() as uow:
            if location_ids is None:
                location_ids = await planning_store.selling_locations(uow.session)
        for location_id in location_ids:
            async with self._uow() as uow:
                done = await anomaly_store.evaluated_days(uow.session, location_id, days)
            for day in days:
                if day in done:
                    continue
                try:
                    report.raised += await self.evaluate(location_id, day)
                except (FailedPrecondition, NotFound) as refusal:
                    report.skipped[location_id] = refusal.message
                    break
                report.evaluated.append((location_id, day))
        return report

    async def evaluate(self, location_id: str, business_date: date) -> list[SalesAnomaly]:
        """Evaluate one closed business day of a selling location; the findings this call raised.

        A finding already raised for a category and day is not raised again.
        """
        if business_date >= self.today():
            raise DayNotClosed(f"{business_date} has not closed yet (today is {self.today()})")
        async with self._uow() as uow:
            kind = await planning_store.location_kind(uow.session, location_id)
            if kind is None:
                raise UnknownLocation(f"location {location_id} does not exist")
            sold_skus = await anomaly_store.skus_sold(uow.session, location_id)
            baseline_days = [business_date - timedelta(weeks=week) for week in range(self.policy.baseline_weeks, 0, -1)]
            sold = await anomaly_store.sales_on(uow.session, location_id, [*baseline_days, business_date])
        if kind not in planning_store.SELLING_KINDS:
            return []
        demand = await self._demand(location_id, business_date) if sold_skus else None
        now = self._clock()
        by_category: dict[str, list[str]] = defaultdict(list)
        first_days: dict[str, date] = {}
        for sold_sku in sold_skus:
            by_category[sold_sku.category].append(sold_sku.sku)
            first_days[sold_sku.category] = min(
                first_days.get(sold_sku.category, sold_sku.first_day), sold_sku.first_day
            )
        findings = []
        for category, skus in sorted(by_category.items()):
            first_day = first_days[category]
            if (business_date - first_day).days < self.policy.min_history_days:
                continue  # too little history before the day to know what to expect of it
            on_day = sold.get(business_date, {})
            day = CategoryDay(location_id, category, business_date, {sku: on_day.get(sku, ZERO) for sku in skus})
            band, expected_skus = self._band(demand, skus, first_day, baseline_days, sold)
            finding = detect(day, band, expected_skus, self.policy, now)
            if finding is not None:
                findings.append(finding)
        raised = []
        async with self._uow() as uow:
            await planning_store.lock_location_reports(uow.session, location_id)
            for finding in findings:
                if await anomaly_store.insert_anomaly(uow.session, finding):
                    uow.publish(anomaly_event(finding))
                    raised.append(finding)
            await anomaly_store.record_evaluation(
                uow.session, location_id, business_date, len(by_category), len(raised), now
            )
            await uow.commit()
        log.info(
            "sales anomalies evaluated",
            extra={
                "location_id": location_id,
                "business_date": business_date.isoformat(),
                "categories": len(by_category),
                "anomalies_raised": len(raised),
            },
        )
        return raised

    def _band(
        self,
        demand: LocationDemand | None,
        skus: list[str],
        first_day: date,
        baseline_days: list[date],
        sold: dict[date, dict[str, Decimal]],
    ) -> tuple[Band | None, set[str]]:
        """The category's band for the day and the SKUs expected to sell: the forecast's when it covers every SKU."""
        intervals = self._forecast_intervals(demand, skus)
        if intervals is not None:
            band = forecast_band(intervals.values(), self.policy.band_probability)
            return band, {sku for sku, interval in intervals.items() if interval.mean > 0}
        weeks = [day for day in baseline_days if day >= first_day]
        totals = [sum((sold.get(day, {}).get(sku, ZERO) for sku in skus), ZERO) for day in weeks]
        expected = {sku for day in weeks for sku in skus if sold.get(day, {}).get(sku, ZERO) > 0}
        return seasonal_band(totals, self.policy), expected

    async def _demand(self, location_id: str, business_date: date) -> LocationDemand | None:
        """The location's demand fitted on the sales before the day (``None``: no forecasts to hand)."""
        if self.fits is None:
            return None
        try:
            return await self.fits.of(location_id, business_date)
        except SalesHistoryTooOld:
            return None

    @staticmethod
    def _forecast_intervals(demand: LocationDemand | None, skus: list[str]) -> dict[str, DemandInterval] | None:
        """Each SKU's calibrated interval for the day (``None``: some SKU that sold before has none)."""
        if demand is None or demand.forecasts is None:
            return None
        intervals = {}
        for sku in skus:
            forecast = demand.forecasts.forecast(sku, 1)
            if forecast is None:
                continue  # first sold on the day itself: nothing was expected of it
            if not forecast.intervals:
                return None
            intervals[sku] = forecast.intervals[0]
        return intervals or None
