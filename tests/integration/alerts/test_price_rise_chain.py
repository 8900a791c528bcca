"""Issue 18's "done when", end to end on the real services, nothing hand-made on the streams.

Pricing (its gRPC API, its scheduler, its relay) describes a category C of six SKUs and a
distractor category D, prices them in stores S001 and S002, and on business day D0 headquarters
raises every SKU of C at S001 by 30% with a price change effective at once (distractors: D raised
by 10% at S001, C cut at S002). Inventory learns the SKUs and their categories from pricing's
ItemChanged, imports eight weeks of daily sales at S001 through its ImportSalesHistory API — C
selling under a third of its usual on D0 — and, once D0 has closed and the grace has passed,
its sales-anomaly run raises SalesAnomalyDetected through its outbox and relay. The alerts
service, consuming PRICING and INVENTORY, raises one sales-anomaly alert whose first cause is
that price rise, and its delivery worker posts it to a WeCom robot on 127.0.0.1. One hand clock
drives all three services.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import grpc
import pytest
from retail.alerts.v1 import alerts_service_pb2 as pb
from retail.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from retail.common.v1 import identifiers_pb2, money_pb2
from retail.inventory.v1 import inventory_service_pb2 as inventory_pb
from retail.inventory.v1 import inventory_service_pb2_grpc as inventory_grpc
from retail.pricing.v1 import pricing_service_pb2 as pricing_pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pricing_grpc

from servicekit.protowire import timestamp
from servicekit.settings import load_settings, to_plain_url
from services.alerts.bootstrap import AlertsApp
from services.alerts.bootstrap import build as build_alerts
from services.inventory.bootstrap import InventoryApp
from services.inventory.bootstrap import build as build_inventory
from services.inventory.migrate import VERSIONS as INVENTORY_VERSIONS
from services.inventory.service_layer.replenishment import DemandFits
from services.inventory.service_layer.sales_anomalies import DayNotClosed, SalesAnomalyDetector
from services.inventory.settings import InventorySettings
from services.pricing.bootstrap import PricingApp
from services.pricing.bootstrap import build as build_pricing
from services.pricing.migrate import VERSIONS as PRICING_VERSIONS
from services.pricing.settings import PricingSettings
from tests.conftest import Infra, create_database_from, service_template
from tests.integration.alerts.conftest import alerts_settings, fetch
from tests.integration.alerts.support import HQ, Robot, eventually, rid, running_robot
from tests.support.clock import HandClock

SHANGHAI = timedelta(hours=8)
DAY = date(2026, 12, 3)  # D0, a Thursday: the day of the price rise
HISTORY_WEEKS = 8
WEEKDAY_SHAPE = (0.9, 0.9, 0.95, 1.0, 1.1, 1.25, 1.2)  # Monday .. Sunday
C_BASE_UNITS = 8.0  # per SKU and day: about 50 units a day for the category
D_BASE_UNITS = 12.0
ON_THE_DAY = 0.3  # C's share of its usual units on D0

PRICING_HQ = identifiers_pb2.Actor(
    client_id="hq-pricing",
    client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
    staff_role=identifiers_pb2.STAFF_ROLE_HEADQUARTERS,
)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A moment given in the chain's business time (UTC+8)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - SHANGHAI


def cny(fen: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="CNY", minor_units=fen)


def barcode(seed: str) -> str:
    """A valid EAN-13 (GS1 China prefix 690) for any text."""
    body = "690" + f"{uuid.uuid5(uuid.NAMESPACE_OID, seed).int % 10**9:09d}"
    total = sum(int(digit) * (3 if position % 2 else 1) for position, digit in enumerate(body))
    return body + str((10 - total % 10) % 10)


@pytest.fixture
def robot() -> Iterator[Robot]:
    with running_robot() as robot:
        yield robot


@pytest.fixture(scope="session")
def pricing_template_beside_alerts(infra: Infra, kit_template: str) -> str:
    return service_template(infra, kit_template, PRICING_VERSIONS)


@pytest.fixture(scope="session")
def inventory_template_beside_alerts(infra: Infra, kit_template: str) -> str:
    return service_template(infra, kit_template, INVENTORY_VERSIONS)


@pytest.fixture
def clock() -> HandClock:
    """The one clock of the three services: eight weeks before D0, when the catalogue is set up."""
    return HandClock(local(DAY - timedelta(weeks=HISTORY_WEEKS, days=1), 9))


@pytest.fixture
async def pricing(
    infra: Infra, pricing_template_beside_alerts: str, nats_url: str, unique: str, clock: HandClock
) -> AsyncIterator[PricingApp]:
    settings = load_settings(
        PricingSettings,
        app_env="test",
        database_url=create_database_from(infra, pricing_template_beside_alerts),
        nats_url=nats_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        inventory_consumer_durable=f"pricing-inventory-{unique}",
        schedule_poll_seconds=60,  # the test runs the schedule itself, on the hand clock
    )
    app = build_pricing(settings, clock=clock)
    await app.server.start()
    yield app
    await app.server.stop()
    await app.close()


@pytest.fixture
def inventory_url(infra: Infra, inventory_template_beside_alerts: str) -> str:
    return create_database_from(infra, inventory_template_beside_alerts)


@pytest.fixture
async def inventory(inventory_url: str, nats_url: str, unique: str) -> AsyncIterator[InventoryApp]:
    settings = InventorySettings(
        app_env="test",
        database_url=inventory_url,
        nats_url=nats_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        catalogue_consumer_durable=f"inventory-catalogue-{unique}",
        supply_consumer_durable=f"inventory-supply-{unique}",
        replenishment_interval_seconds=0,  # the test runs the anomaly detector itself, on the hand clock
    )
    app = build_inventory(settings)
    await app.server.start()
    yield app
    await app.server.stop()
    await app.close()


@pytest.fixture
async def alerts(alerts_url: str, nats_url: str, unique: str, clock: HandClock) -> AsyncIterator[AlertsApp]:
    # Its consumers and its webhook delivery worker run by themselves.
    app = build_alerts(alerts_settings(alerts_url, nats_url, unique, delivery_poll_seconds=0.1), clock=clock)
    await app.server.start()
    yield app
    await app.server.stop()
    await app.close()


async def rows(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


def daily_units(base: float, day: date, rng: random.Random) -> int:
    return max(0, round(base * WEEKDAY_SHAPE[day.weekday()] * rng.uniform(0.85, 1.15)))


async def test_a_thirty_percent_price_rise_in_one_store_raises_one_alert_with_that_cause_at_the_webhook(
    pricing: PricingApp,
    inventory: InventoryApp,
    alerts: AlertsApp,
    inventory_url: str,
    alerts_url: str,
    robot: Robot,
    clock: HandClock,
    unique: str,
) -> None:
    store, other_store = f"S001-{unique}", f"S002-{unique}"
    category, other_category = f"C{unique}", f"D{unique}"
    c_skus = [f"C{unique}-{n}" for n in range(6)]
    d_skus = [f"D{unique}-{n}" for n in range(3)]
    base_fen = {sku: 1000 + 100 * n for skus in (c_skus, d_skus) for n, sku in enumerate(skus)}

    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{pricing.server.bound_port}") as pricing_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{inventory.server.bound_port}") as inventory_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{alerts.server.bound_port}") as alerts_channel,
    ):
        prices = pricing_grpc.PricingServiceStub(pricing_channel)
        stock = inventory_grpc.InventoryServiceStub(inventory_channel)
        feed = pb_grpc.AlertsServiceStub(alerts_channel)  # type: ignore[no-untyped-call]

        # Headquarters' WeCom robot for every alert of the chain.
        await feed.PutWebhook(
            pb.PutWebhookRequest(
                request_id=rid(),
                actor=HQ,
                webhook=pb.Webhook(name="ops", url=f"{robot.url}/wecom", format=pb.WEBHOOK_FORMAT_WECOM),
            )
        )

        # 1. Pricing: two stores, the catalogue and its base prices, eight weeks before D0.
        for store_id in (store, other_store):
            await prices.PutStore(
                pricing_pb.PutStoreRequest(
                    request_id=rid(),
                    store=pricing_pb.Store(store_id=store_id, name=store_id, currency_code="CNY"),
                    actor=PRICING_HQ,
                ),
                timeout=10,
            )
        for sku_category, skus in ((category, c_skus), (other_category, d_skus)):
            for sku in skus:
                item = pricing_pb.Item(
                    sku=sku,
                    name=f"Item {sku}",
                    category=sku_category,
                    barcode=barcode(sku),
                    unit=pricing_pb.UNIT_PIECE,
                    cost=cny(500),
                    supplier_id="SUP001",
                    store_ids=[store, other_store],
                    active=True,
                )
                await prices.PutItem(
                    pricing_pb.PutItemRequest(request_id=rid(), item=item, actor=PRICING_HQ), timeout=10
                )
                await prices.SetPrices(
                    pricing_pb.SetPricesRequest(
                        request_id=rid(), sku=sku, currency_code="CNY", base_price=cny(base_fen[sku]), actor=PRICING_HQ
                    ),
                    timeout=10,
                )

        # 2. Inventory knows the SKUs and their categories from pricing's ItemChanged alone.
        async def catalogued() -> bool:
            found = await rows(
                inventory_url, "SELECT sku, category FROM catalogue_item WHERE sku = ANY ($1::text[])", c_skus + d_skus
            )
            return len(found) == len(c_skus) + len(d_skus)

        await eventually(catalogued)
        # Locations are set up in inventory's database (it has no API for them).
        await rows(
            inventory_url,
            "INSERT INTO location (location_id, name, kind, channels) VALUES ($1, $1, 'store', $2)",
            store,
            ["store", "click_and_collect"],
        )
        rng = random.Random(18)
        lines = []
        for back in range(HISTORY_WEEKS * 7, -1, -1):
            day = DAY - timedelta(days=back)
            for sku in c_skus:
                units = daily_units(C_BASE_UNITS, day, rng)
                if day == DAY:
                    units = round(C_BASE_UNITS * WEEKDAY_SHAPE[day.weekday()] * ON_THE_DAY)
                lines.append(inventory_pb.SalesHistoryLine(sku=sku, date=day.isoformat(), quantity=dec(units)))
            for sku in d_skus:
                units = daily_units(D_BASE_UNITS, day, rng)
                lines.append(inventory_pb.SalesHistoryLine(sku=sku, date=day.isoformat(), quantity=dec(units)))
        imported = await stock.ImportSalesHistory(
            inventory_pb.ImportSalesHistoryRequest(request_id=rid(), location_id=store, lines=lines), timeout=30
        )
        assert imported.imported_lines == len(lines)

        # 3. D0, 08:00 in the stores: the rise at S001, effective at once, and the distractors.
        clock.now = local(DAY, 8)
        rise = {sku: base_fen[sku] * 13 // 10 for sku in c_skus}  # +30%, whole fen
        changes = {}
        for sku, store_id, price in [
            *((sku, store, rise[sku]) for sku in c_skus),
            *((sku, store, base_fen[sku] * 11 // 10) for sku in d_skus),  # D +10% at S001: normal sales
            *((sku, other_store, base_fen[sku] * 9 // 10) for sku in c_skus),  # C cut at S002
        ]:
            scheduled = await prices.SchedulePriceChange(
                pricing_pb.SchedulePriceChangeRequest(
                    request_id=rid(),
                    sku=sku,
                    price=cny(price),
                    effective_at=timestamp(clock.now),
                    store_ids=[store_id],
                    actor=PRICING_HQ,
                ),
                timeout=10,
            )
            changes[scheduled.change.change_id] = (sku, store_id)
        await pricing.services.scheduler.run_due()  # (its own round may have taken some: one a minute)

        # The alerts service has projected the catalogue and the changes (it learns them as they happen).
        async def projected() -> bool:
            seen = await rows(
                alerts_url, "SELECT change_id FROM price_change WHERE change_id = ANY ($1::text[])", list(changes)
            )
            return len(seen) == len(changes)

        await eventually(projected)

        # 4. D0 has closed; the detector judges it only once the grace for late tills has passed.
        detector = SalesAnomalyDetector(
            inventory.connected.unit_of_work,
            DemandFits(inventory.connected.unit_of_work, inventory.fit_executor),
            clock=clock,
        )
        clock.now = local(DAY, 23, 30)
        with pytest.raises(DayNotClosed):
            await detector.evaluate(store, DAY)
        clock.now = local(DAY + timedelta(days=1), 0, 30)
        early = await detector.run([store])
        assert DAY not in {day for _, day in early.evaluated}  # within the grace
        clock.now = local(DAY + timedelta(days=1), 2, 30)
        settled = await detector.run([store])
        assert (store, DAY) in settled.evaluated
        assert [(found.category, found.business_date, found.direction.value) for found in settled.raised] == [
            (category, DAY, "below")
        ]
        assert early.raised == []

        # 5. One alert, its first cause the rise at S001 on C's SKUs, and one POST to the robot.
        async def anomaly_alerts() -> list[pb.Alert]:
            # This test's stores only: the streams may carry other tests' events, and the alerts they raise.
            answer = await feed.ListAlerts(
                pb.ListAlertsRequest(actor=HQ, store_id=store, kinds=[pb.ALERT_KIND_SALES_ANOMALY])
            )
            return list(answer.alerts)

        (alert,) = await eventually(anomaly_alerts)
        assert (alert.store_id, alert.subject) == (store, category)
        assert (alert.facts["business_date"], alert.facts["direction"]) == (DAY.isoformat(), "below")
        first = alert.causes[0]
        assert first.kind == pb.CAUSE_KIND_PRICE_CHANGE
        assert first.score == pytest.approx(1.0)
        assert first.facts["skus"].split(",") == sorted(c_skus)  # not D's rise, not S002's cut
        assert first.facts["change_id"] in changes
        assert changes[first.facts["change_id"]] == (first.facts["sku"], store)
        assert int(first.facts["to"]) == rise[first.facts["sku"]]
        assert first.occurred_at.ToDatetime(tzinfo=UTC) == local(DAY, 8)
        others = {cause.kind for cause in alert.causes[1:]}
        assert pb.CAUSE_KIND_PRICE_CHANGE not in others

        async def posted() -> list[tuple[str, int, dict[str, Any]]]:
            delivered = await fetch(
                alerts_url, "SELECT state FROM webhook_delivery WHERE alert_id = $1", alert.alert_id
            )
            if [row["state"] for row in delivered] != ["delivered"]:
                return []
            return [post for post in robot.received if category in post[2]["markdown"]["content"]]

        ((path, status, body),) = await eventually(posted)
        assert (path, status) == ("/wecom", 200)
        assert body["msgtype"] == "markdown"
        content = body["markdown"]["content"]
        assert f"{category} sold" in content
        assert f"Till price raised on 6 of 6 SKUs of {category}" in content
        assert content.index("Till price raised") < content.index("[open]")
        assert content.splitlines()[4].startswith("1. Till price raised")

        for store_id, expected in ((store, [alert.alert_id]), (other_store, [])):
            store_alerts = await feed.ListAlerts(pb.ListAlertsRequest(actor=HQ, store_id=store_id))
            assert [a.alert_id for a in store_alerts.alerts] == expected


def dec(units: int) -> money_pb2.Decimal:
    return money_pb2.Decimal(value=str(Decimal(units)))
