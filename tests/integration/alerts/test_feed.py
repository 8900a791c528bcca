"""The feed from other contexts' events: a sales anomaly raised with its likely cause ranked first,
stock, label, statement and coupon findings, deduplication (also of concurrent findings), and the
AlertRaised event on ALERTS only when an alert opens."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from retail.alerts.v1 import alerts_service_pb2 as pb
from retail.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from retail.alerts.v1 import events_pb2 as alerts_events
from retail.common.v1 import money_pb2
from retail.inventory.v1 import events_pb2 as inventory_events
from retail.inventory.v1 import inventory_service_pb2 as inventory_pb
from retail.marketing.v1 import events_pb2 as marketing_events
from retail.marketing.v1 import marketing_service_pb2 as marketing_pb
from retail.pricing.v1 import events_pb2 as pricing_events
from retail.pricing.v1 import pricing_service_pb2 as pricing_pb
from retail.supply.v1 import events_pb2 as supply_events
from retail.supply.v1 import supply_service_pb2 as supply_pb
from sqlalchemy import text

from servicekit.db import UnitOfWork
from servicekit.protowire import timestamp
from services.alerts.bootstrap import AlertsApp
from services.alerts.domain.alerts import AlertKind, Finding, Severity
from tests.integration.alerts.conftest import fetch
from tests.integration.alerts.support import HQ, eventually, publish
from tests.support.messaging import jetstream, receive

SHANGHAI = timedelta(hours=8)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of December 2026 given in the chain's business time (UTC+8)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC) - SHANGHAI


def cny(fen: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="CNY", minor_units=fen)


def price_changed(store: str, sku: str, old: int, new: int, version: int, at: datetime) -> pricing_events.PriceChanged:
    return pricing_events.PriceChanged(
        store_id=store,
        sku=sku,
        old_unit_price=cny(old),
        new_unit_price=cny(new),
        regular_price=cny(new),
        price_book_version=version,
        change_id=f"CH-{store}-{version}",
        effective_at=timestamp(at),
        occurred_at=timestamp(at),
    )


async def alerts_of(stub: pb_grpc.AlertsServiceAsyncStub, store: str, kind: pb.AlertKind.ValueType) -> list[pb.Alert]:
    answer = await stub.ListAlerts(pb.ListAlertsRequest(actor=HQ, store_id=store, kinds=[kind]))
    return list(answer.alerts)


async def test_a_thirty_percent_price_rise_on_a_category_is_the_first_cause_of_its_sales_anomaly(
    stub: pb_grpc.AlertsServiceAsyncStub, app: AlertsApp, alerts_url: str, nats_url: str, unique: str
) -> None:
    store, other_store = f"S{unique}", f"T{unique}"
    category, other_category = f"DAIRY{unique}", f"SNACK{unique}"
    dairy = [f"D{unique}{n}" for n in range(8)]
    snacks = [f"N{unique}{n}" for n in range(4)]
    items = [
        pricing_events.ItemChanged(item=pricing_pb.Item(sku=sku, name=sku, category=cat, version=1))
        for sku, cat in [*((s, category) for s in dairy), *((s, other_category) for s in snacks)]
    ]
    await publish(nats_url, "retail.pricing.v1.item_changed", *items)
    day_morning = local(3, 8, 30)
    # The cause: every dairy SKU raised by 30% in the store; distractors: snacks in the store, dairy elsewhere.
    await publish(
        nats_url,
        f"retail.pricing.v1.price_changed.{store}",
        *(price_changed(store, sku, 1000, 1300, 10 + n, day_morning) for n, sku in enumerate(dairy)),
        *(price_changed(store, sku, 1000, 1500, 30 + n, day_morning) for n, sku in enumerate(snacks)),
    )
    await publish(
        nats_url,
        f"retail.pricing.v1.price_changed.{other_store}",
        *(price_changed(other_store, sku, 1000, 2000, 10 + n, day_morning) for n, sku in enumerate(dairy)),
    )
    # A weaker distractor: one dairy SKU out of stock for two hours.
    await publish(
        nats_url,
        f"retail.inventory.v1.stock_level_changed.{store}",
        inventory_events.StockLevelChanged(
            sku=dairy[0],
            location_id=store,
            on_hand=money_pb2.Decimal(value="0"),
            available_to_promise=money_pb2.Decimal(value="0"),
            occurred_at=timestamp(local(3, 15)),
        ),
        inventory_events.StockLevelChanged(
            sku=dairy[0],
            location_id=store,
            on_hand=money_pb2.Decimal(value="24"),
            available_to_promise=money_pb2.Decimal(value="20"),
            occurred_at=timestamp(local(3, 17)),
        ),
    )

    ours = [*dairy, *snacks]  # the streams may hold other tests' events: count this test's own

    async def projected() -> bool:
        prices = await fetch(alerts_url, "SELECT count(*) AS n FROM price_change WHERE sku = ANY($1)", ours)
        spells = await fetch(
            alerts_url, "SELECT count(*) AS n FROM stock_out WHERE until IS NOT NULL AND sku = ANY($1)", ours
        )
        categories = await fetch(alerts_url, "SELECT count(*) AS n FROM sku_category WHERE sku = ANY($1)", ours)
        return (prices[0]["n"], spells[0]["n"], categories[0]["n"]) == (20, 1, 12)

    await eventually(projected)
    anomaly = inventory_events.SalesAnomalyDetected(
        anomaly_id=f"AN{unique}",
        location_id=store,
        category=category,
        business_date="2026-12-03",
        actual_units=money_pb2.Decimal(value="41"),
        expected_units=money_pb2.Decimal(value="100"),
        lower_units=money_pb2.Decimal(value="72"),
        upper_units=money_pb2.Decimal(value="128"),
        method="forecast",
        direction=inventory_events.SALES_ANOMALY_DIRECTION_BELOW,
        skus=dairy,
        occurred_at=timestamp(local(4, 2)),
    )
    await publish(nats_url, f"retail.inventory.v1.sales_anomaly_detected.{store}", anomaly)

    (alert,) = await eventually(lambda: alerts_of(stub, store, pb.ALERT_KIND_SALES_ANOMALY))
    assert alert.subject == category
    assert alert.facts["business_date"] == "2026-12-03"
    assert alert.facts["direction"] == "below"
    causes = list(alert.causes)
    assert causes[0].kind == pb.CAUSE_KIND_PRICE_CHANGE
    assert causes[0].score == pytest.approx(1.0)
    assert set(causes[0].facts["skus"].split(",")) == set(dairy)  # no snack, no other store's change
    assert (causes[0].facts["from"], causes[0].facts["to"]) == ("1000", "1300")
    assert [cause.kind for cause in causes[1:]] == [pb.CAUSE_KIND_STOCK_OUT]
    assert causes[1].score < causes[0].score

    # The alert went out on ALERTS under the store's subject, with its causes.
    async with jetstream(nats_url) as (_, js):
        (message,) = await receive(js, "ALERTS", f"retail.alerts.v1.alert_raised.{store}", 1)
    raised = alerts_events.AlertRaised.FromString(message.data)
    assert raised.alert.alert_id == alert.alert_id
    assert raised.alert.causes[0].kind == pb.CAUSE_KIND_PRICE_CHANGE


def stock_alert(store: str, sku: str, inventory_alert_id: str, available: str) -> inventory_events.StockAlertRaised:
    return inventory_events.StockAlertRaised(
        alert_id=inventory_alert_id,
        location_id=store,
        alert=inventory_pb.StockAlert(
            sku=sku,
            kind=inventory_pb.STOCK_ALERT_KIND_LOW_STOCK,
            available_to_promise=money_pb2.Decimal(value=available),
            reorder_point=money_pb2.Decimal(value="12"),
        ),
        as_of_date="2026-12-03",
        occurred_at=timestamp(local(3, 9)),
    )


async def test_a_repeated_stock_finding_bumps_the_open_alert_and_raises_one_event(
    stub: pb_grpc.AlertsServiceAsyncStub, app: AlertsApp, alerts_url: str, nats_url: str, unique: str
) -> None:
    store, sku = f"S{unique}", f"MILK{unique}"
    subject = f"retail.inventory.v1.stock_alert_raised.{store}"
    await publish(nats_url, subject, stock_alert(store, sku, "IA1", "5"))
    (first,) = await eventually(lambda: alerts_of(stub, store, pb.ALERT_KIND_LOW_STOCK))
    await publish(nats_url, subject, stock_alert(store, sku, "IA2", "3"))

    async def bumped() -> list[pb.Alert]:
        found = await alerts_of(stub, store, pb.ALERT_KIND_LOW_STOCK)
        return found if found and found[0].occurrences == 2 else []

    (alert,) = await eventually(bumped)
    assert alert.alert_id == first.alert_id
    assert alert.severity == pb.SEVERITY_WARNING
    assert alert.facts["available_to_promise"] == "3"  # the latest figures
    assert alert.dedup_key == f"low_stock|{store}|{sku}"
    assert alert.link == f"/stock?store={store}&sku={sku}"
    raised = await fetch(alerts_url, "SELECT subject FROM outbox WHERE event_type = 'retail.alerts.v1.AlertRaised'")
    assert [row["subject"] for row in raised] == [f"retail.alerts.v1.alert_raised.{store}"]


async def test_concurrent_identical_findings_open_exactly_one_alert(
    app: AlertsApp, unit_of_work: Callable[[], UnitOfWork], alerts_url: str, unique: str
) -> None:
    finding = Finding(
        AlertKind.LOW_STOCK,
        Severity.WARNING,
        f"S{unique}",
        "",
        f"EGG{unique}",
        "eggs are low",
        {"available_to_promise": "1"},
        "",
        local(3, 9),
    )
    started, ready = asyncio.Event(), asyncio.Semaphore(0)

    async def raise_once() -> bool:
        async with unit_of_work() as uow:
            await uow.session.execute(text("SELECT 1"))  # its transaction is open on its own connection
            ready.release()
            await started.wait()
            raised = await app.services.findings.raise_finding(uow, finding)
            await uow.commit()
            return raised.opened

    racers = [asyncio.create_task(raise_once()) for _ in range(8)]
    for _ in racers:
        await ready.acquire()  # every racer has its transaction open and waits at the start line
    started.set()
    opened = await asyncio.gather(*racers)
    assert sorted(opened) == [False] * 7 + [True]
    rows = await fetch(alerts_url, "SELECT occurrences, state FROM alert WHERE subject = $1", f"EGG{unique}")
    assert [(row["occurrences"], row["state"]) for row in rows] == [(8, "open")]
    events = await fetch(
        alerts_url, "SELECT count(*) AS n FROM outbox WHERE event_type = 'retail.alerts.v1.AlertRaised'"
    )
    assert events[0]["n"] == 1


async def test_labels_coupons_and_statements_raise_their_alerts(
    stub: pb_grpc.AlertsServiceAsyncStub, app: AlertsApp, alerts_url: str, nats_url: str, unique: str
) -> None:
    store, supplier = f"S{unique}", f"SUP{unique}"
    await publish(
        nats_url,
        f"retail.pricing.v1.label_sync_given_up.{store}",
        pricing_events.LabelSyncGivenUp(
            store_id=store,
            label_id="L-7",
            sku="SKU1",
            attempts=6,
            last_error="timeout",
            occurred_at=timestamp(local(3, 9)),
        ),
    )
    await publish(
        nats_url,
        "retail.marketing.v1.redemption_conflict_recorded",
        marketing_events.RedemptionConflictRecorded(
            conflict=marketing_pb.RedemptionConflict(
                code=f"CPN{unique}",
                sale_id="SALE9",
                store_id=store,
                campaign_id="C1",
                reason="already-redeemed",
                occurred_at=timestamp(local(3, 9)),
            )
        ),
    )
    await publish(
        nats_url,
        "retail.supply.v1.statement_status_changed",
        supply_events.StatementStatusChanged(
            statement_id=f"ST{unique}A",
            supplier_id=supplier,
            from_status=supply_pb.STATEMENT_STATUS_ISSUED,
            to_status=supply_pb.STATEMENT_STATUS_CONFIRMED,
            occurred_at=timestamp(local(3, 9)),
        ),
        supply_events.StatementStatusChanged(
            statement_id=f"ST{unique}B",
            supplier_id=supplier,
            from_status=supply_pb.STATEMENT_STATUS_ISSUED,
            to_status=supply_pb.STATEMENT_STATUS_DISPUTED,
            period_start="2026-11-01",
            actor_id="portal-x",
            occurred_at=timestamp(local(3, 9)),
        ),
    )
    await publish(
        nats_url,
        "retail.marketing.v1.campaign_launched",
        marketing_events.CampaignLaunched(
            campaign_id=f"C{unique}",
            name="Dairy week",
            store_id=store,
            terms=marketing_pb.CouponTerms(valid_until=timestamp(local(6, 0))),
            occurred_at=timestamp(local(1, 9)),
        ),
    )

    async def all_there() -> list[pb.Alert]:
        answer = await stub.ListAlerts(pb.ListAlertsRequest(actor=HQ))
        mine = [a for a in answer.alerts if unique in a.dedup_key]
        return mine if len(mine) == 3 else []

    alerts = {alert.kind: alert for alert in await eventually(all_there)}
    label = alerts[pb.ALERT_KIND_LABEL_SYNC_GIVEN_UP]
    assert (label.store_id, label.subject, label.facts["sku"]) == (store, "L-7", "SKU1")
    conflict = alerts[pb.ALERT_KIND_REDEMPTION_CONFLICT]
    assert (conflict.store_id, conflict.subject) == (store, f"CPN{unique}")
    dispute = alerts[pb.ALERT_KIND_STATEMENT_DISPUTED]
    assert (dispute.store_id, dispute.supplier_id, dispute.subject) == ("", supplier, f"ST{unique}B")

    async def campaign() -> list[object]:
        return await fetch(
            alerts_url, "SELECT name, store_id, ends_at FROM campaign WHERE campaign_id = $1", f"C{unique}"
        )

    (row,) = await eventually(campaign)
    assert (row["name"], row["store_id"], row["ends_at"]) == ("Dairy week", store, local(6, 0))
    labels = await fetch(alerts_url, "SELECT sku FROM label_given_up WHERE store_id = $1", store)
    assert [r["sku"] for r in labels] == ["SKU1"]
