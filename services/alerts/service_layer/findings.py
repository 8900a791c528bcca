"""Findings in, alerts out: what the consumers and the terminal watch raise, deduplicated.

Every finding goes through :meth:`Findings.raise_finding` in the caller's unit of work (the
consumer's, with its inbox row; or the terminal watch's own): it opens an alert or bumps the
open one with the same dedup key. Only a new alert writes ``AlertRaised`` to the outbox and a
delivery row per matching webhook — all in that one transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from services.alerts.adapters import alert_store, projection_store
from services.alerts.adapters.alert_store import Raised
from services.alerts.adapters.integration_events import alert_raised
from services.alerts.domain.alerts import AlertKind, Finding, Severity
from services.alerts.domain.causes import Anomaly, Direction, Evidence, rank_causes
from services.alerts.domain.opening_hours import StoreHours
from services.alerts.domain.webhooks import body, matching


def new_alert_id() -> str:
    return f"AL{secrets.token_hex(8).upper()}"


@dataclass(frozen=True)
class StockFinding:
    alert_id: str
    location_id: str
    sku: str
    overstock: bool
    available: str
    reorder_point: str
    days_of_cover: str
    as_of_date: str
    at: datetime


class Findings:
    def __init__(
        self,
        hours: StoreHours,
        *,
        pos_silence: timedelta = timedelta(minutes=30),
        clock: Clock = utc_now,
        new_id: Callable[[], str] = new_alert_id,
    ) -> None:
        self.hours = hours
        self.pos_silence = pos_silence
        self._clock = clock
        self._new_id = new_id

    async def raise_finding(self, uow: UnitOfWork, finding: Finding) -> Raised:
        raised = await alert_store.raise_finding(uow.session, self._new_id(), finding)
        if raised.opened:
            uow.publish(alert_raised(raised.alert, finding.seen_at))
            webhooks = [stored.webhook for stored in await alert_store.list_webhooks(uow.session)]
            bodies = [(w.webhook_id, body(w.format, raised.alert)) for w in matching(webhooks, raised.alert)]
            await alert_store.add_deliveries(uow.session, raised.alert.alert_id, bodies, self._clock())
        return raised

    # ---- the contexts' findings ----------------------------------------------------------------------------------

    async def stock_alert(self, uow: UnitOfWork, found: StockFinding) -> Raised:
        kind = AlertKind.OVERSTOCK if found.overstock else AlertKind.LOW_STOCK
        if found.overstock:
            summary = f"{found.sku} is overstocked at {found.location_id} ({found.days_of_cover or '?'} days of cover)"
        else:
            summary = (
                f"{found.sku} is low at {found.location_id}: {found.available} available, "
                f"reorder point {found.reorder_point}"
            )
        facts = {
            "sku": found.sku,
            "available_to_promise": found.available,
            "reorder_point": found.reorder_point,
            "days_of_cover": found.days_of_cover,
            "as_of_date": found.as_of_date,
            "inventory_alert_id": found.alert_id,
        }
        return await self.raise_finding(
            uow,
            Finding(
                kind,
                Severity.INFO if found.overstock else Severity.WARNING,
                found.location_id,
                "",
                found.sku,
                summary,
                facts,
                f"/stock?store={found.location_id}&sku={found.sku}",
                found.at,
            ),
        )

    async def sales_anomaly(self, uow: UnitOfWork, anomaly: Anomaly, at: datetime) -> Raised:
        """Rank the likely causes from the projections as they are now, and raise the anomaly with them."""
        evidence = await self.evidence(uow, anomaly, at)
        causes = rank_causes(anomaly, evidence, self.hours, now=max(at, self._clock()))
        way = "below" if anomaly.direction is Direction.BELOW else "above"
        summary = (
            f"{anomaly.category} sold {_number(anomaly.actual)} units at {anomaly.location_id} on "
            f"{anomaly.business_date.isoformat()}, {way} the expected {_number(anomaly.lower)}–{_number(anomaly.upper)}"
        )
        facts = {
            "category": anomaly.category,
            "business_date": anomaly.business_date.isoformat(),
            "direction": way,
            "actual": _number(anomaly.actual),
            "expected": _number(anomaly.expected),
            "lower": _number(anomaly.lower),
            "upper": _number(anomaly.upper),
            "method": anomaly.method,
            "anomaly_id": anomaly.anomaly_id,
        }
        return await self.raise_finding(
            uow,
            Finding(
                AlertKind.SALES_ANOMALY,
                Severity.WARNING,
                anomaly.location_id,
                "",
                anomaly.category,
                summary,
                facts,
                f"/overview?store={anomaly.location_id}&category={anomaly.category}",
                at,
                tuple(causes),
            ),
        )

    async def evidence(self, uow: UnitOfWork, anomaly: Anomaly, now: datetime) -> Evidence:
        session = uow.session
        day_start, day_end = self.hours.day_bounds(anomaly.business_date)
        start = day_end - timedelta(days=7)
        skus = await projection_store.category_skus(session, anomaly.category) | frozenset(anomaly.skus)
        store = anomaly.location_id
        return Evidence(
            category_skus=skus,
            price_changes=await projection_store.price_changes(session, store, skus, start, day_end),
            stock_outs=await projection_store.stock_outs(session, store, skus, day_start, day_end),
            labels=await projection_store.given_up_labels(session, store, skus, start, day_end),
            campaigns=await projection_store.campaigns_ended(session, store, start, day_end),
            silences=await projection_store.silences(
                session, store, day_start, day_end, now, self.pos_silence.total_seconds()
            ),
        )

    async def label_given_up(
        self, uow: UnitOfWork, store_id: str, label_id: str, sku: str, attempts: int, last_error: str, at: datetime
    ) -> Raised:
        await projection_store.label_given_up(uow.session, store_id, label_id, sku, attempts, last_error, at)
        return await self.raise_finding(
            uow,
            Finding(
                AlertKind.LABEL_SYNC_GIVEN_UP,
                Severity.WARNING,
                store_id,
                "",
                label_id,
                f"Shelf label {label_id} ({sku}) at {store_id} gave up syncing after {attempts} attempts",
                {"label_id": label_id, "sku": sku, "attempts": str(attempts), "last_error": last_error[:200]},
                f"/prices?store={store_id}&sku={sku}",
                at,
            ),
        )

    async def redemption_conflict(
        self, uow: UnitOfWork, *, code: str, sale_id: str, store_id: str, campaign_id: str, reason: str, at: datetime
    ) -> Raised:
        return await self.raise_finding(
            uow,
            Finding(
                AlertKind.REDEMPTION_CONFLICT,
                Severity.WARNING,
                store_id,
                "",
                code,
                f"Coupon {code} was redeemed twice (sale {sale_id}): {reason or 'conflict'}",
                {"code": code, "sale_id": sale_id, "campaign_id": campaign_id, "reason": reason},
                f"/campaigns?store={store_id}&campaign={campaign_id}"
                if campaign_id
                else f"/campaigns?store={store_id}",
                at,
            ),
        )

    async def statement_disputed(
        self, uow: UnitOfWork, *, statement_id: str, supplier_id: str, period_start: str, actor_id: str, at: datetime
    ) -> Raised:
        return await self.raise_finding(
            uow,
            Finding(
                AlertKind.STATEMENT_DISPUTED,
                Severity.WARNING,
                "",
                supplier_id,
                statement_id,
                f"Supplier {supplier_id} disputed statement {statement_id}",
                {"statement_id": statement_id, "period_start": period_start, "disputed_by": actor_id},
                f"/suppliers?supplier={supplier_id}&statement={statement_id}",
                at,
            ),
        )


def _number(value: Decimal) -> str:
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
