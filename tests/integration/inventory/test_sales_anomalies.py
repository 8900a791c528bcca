"""Sales anomalies: store × category days outside their band, raised once through the outbox to NATS."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from retail.inventory.v1 import events_pb2
from scipy.stats import gamma

from servicekit.db import UnitOfWork
from servicekit.messaging import StreamSpec, ensure_stream
from servicekit.settings import to_plain_url
from services.inventory.bootstrap import InventoryApp, build
from services.inventory.domain.sales_anomalies import AnomalyPolicy, anomaly_id
from services.inventory.entrypoints.sales_consumer import INVENTORY_STREAM
from services.inventory.service_layer.handlers import CHINA_STANDARD_TIME
from services.inventory.service_layer.replenishment import DemandFits
from services.inventory.service_layer.sales_anomalies import DayNotClosed, SalesAnomalyDetector
from services.inventory.settings import InventorySettings
from tests.integration.inventory.conftest import outbox_events
from tests.support.clock import HandClock
from tests.support.messaging import jetstream, read_all, receive

WEEKDAY_SHAPE = (0.8, 0.8, 0.9, 0.9, 1.1, 1.4, 1.3)  # Monday .. Sunday
HISTORY_DAYS = 91
Z_975 = 1.959963984540054


async def execute(url: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        rows: list[asyncpg.Record] = await connection.fetch(statement, *args)
    finally:
        await connection.close()
    return rows


def typical(base: float, day: date) -> int:
    return round(base * WEEKDAY_SHAPE[day.weekday()])


def history(base: float, last_day: date, *, seed: int, sparse: bool = False) -> dict[date, Decimal]:
    """``HISTORY_DAYS`` days ending on ``last_day``: a weekly rhythm with ±15% noise (or a slow mover)."""
    rng = random.Random(seed)
    daily = {}
    for back in range(1, HISTORY_DAYS + 1):
        day = last_day - timedelta(days=back - 1)
        if sparse:
            daily[day] = Decimal(1 if rng.random() < 0.2 else 0)
        else:
            daily[day] = Decimal(max(0, round(base * WEEKDAY_SHAPE[day.weekday()] * rng.uniform(0.85, 1.15))))
    return daily


class Store:
    """A store with catalogue items in leaf categories and their daily sales up to the day under test."""

    def __init__(self, url: str, day: date) -> None:
        self.url = url
        self.day = day
        self.location = f"T{uuid.uuid4().hex[:8].upper()}"
        self.skus: dict[str, list[str]] = {}

    async def open(self) -> None:
        await execute(
            self.url,
            "INSERT INTO location (location_id, name, kind, channels) VALUES ($1, $1, 'store', $2)",
            self.location,
            ["store"],
        )

    async def category(
        self,
        category: str,
        bases: list[float],
        on_day: float | None,
        *,
        seed: int,
        sparse: bool = False,
        catalogued: bool = True,
    ) -> None:
        """SKUs of ``category`` selling about ``bases`` a day; on the day under test ``on_day`` × their usual
        (``None``: the SKUs' sales of that day as generated), or ``on_day`` units of the one sparse SKU."""
        for index, base in enumerate(bases):
            sku = f"{self.location}-{category}-{index}"
            self.skus.setdefault(category, []).append(sku)
            if catalogued:
                await execute(
                    self.url,
                    "INSERT INTO catalogue_item (sku, name, category, active, version, updated_at) "
                    "VALUES ($1, $1, $2, true, 1, now())",
                    sku,
                    category,
                )
            else:  # pricing has not described it yet: inventory's own item record says its category
                await execute(self.url, "INSERT INTO item (sku, name, category_id) VALUES ($1, $1, $2)", sku, category)
            daily = history(base, self.day, seed=seed * 100 + index, sparse=sparse)
            if sparse and on_day is not None:
                daily[self.day] = Decimal(on_day)
            elif on_day is not None:
                daily[self.day] = Decimal(round(typical(base, self.day) * on_day))
            await execute(
                self.url,
                "INSERT INTO daily_sales (location_id, sku, day, source, quantity) "
                "SELECT $1, $2, day, 'import', quantity FROM unnest($3::date[], $4::numeric[]) AS v(day, quantity)",
                self.location,
                sku,
                list(daily),
                list(daily.values()),
            )

    async def sold_on_day(self, category: str) -> Decimal:
        rows = await execute(
            self.url,
            "SELECT coalesce(sum(quantity), 0) AS n FROM daily_sales WHERE location_id = $1 AND day = $2 "
            "AND sku = ANY ($3::text[])",
            self.location,
            self.day,
            self.skus[category],
        )
        return Decimal(rows[0]["n"])


async def usual_store(url: str, day: date) -> Store:
    """MILK sells a third of its usual, SNACKS three times theirs, BREAD as usual, SPICE (a slow mover) 4 units.

    SNACKS are known by inventory's item records only (not yet by the catalogue projection)."""
    store = Store(url, day)
    await store.open()
    await store.category("MILK", [14, 10, 12], 0.3, seed=1)
    await store.category("SNACKS", [8, 6], 3.0, seed=2, catalogued=False)
    await store.category("BREAD", [15, 9], 1.0, seed=3)
    await store.category("SPICE", [1], 4, seed=4, sparse=True)
    return store


@pytest.fixture
async def fits(unit_of_work: Callable[[], UnitOfWork]) -> AsyncIterator[Callable[[], DemandFits]]:
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-fit")
    yield lambda: DemandFits(unit_of_work, executor)
    executor.shutdown(wait=True)


@pytest.fixture
def detector(
    unit_of_work: Callable[[], UnitOfWork], fits: Callable[[], DemandFits], clock: HandClock
) -> SalesAnomalyDetector:
    return SalesAnomalyDetector(unit_of_work, fits(), clock=clock)


def yesterday(clock: HandClock) -> date:
    return clock.now.astimezone(CHINA_STANDARD_TIME).date() - timedelta(days=1)


async def test_a_category_far_below_or_above_its_forecast_band_is_raised_with_its_figures(
    detector: SalesAnomalyDetector, fits: Callable[[], DemandFits], inventory_url: str, clock: HandClock
) -> None:
    day = yesterday(clock)
    store = await usual_store(inventory_url, day)

    raised = await detector.evaluate(store.location, day)

    assert sorted((finding.category, finding.direction.value) for finding in raised) == [
        ("MILK", "below"),
        ("SNACKS", "above"),
    ]  # BREAD sold as usual, SPICE sells too little to judge
    events = {
        written.message.category: written
        for written in await outbox_events(inventory_url, events_pb2.SalesAnomalyDetected)
    }
    assert set(events) == {"MILK", "SNACKS"}
    # The band is the SKUs' forecasts for the day (fitted on the days before it), taken as independent.
    demand = await fits().of(store.location, day)
    assert demand.forecasts is not None
    for category, direction in (
        ("MILK", events_pb2.SALES_ANOMALY_DIRECTION_BELOW),
        ("SNACKS", events_pb2.SALES_ANOMALY_DIRECTION_ABOVE),
    ):
        message = events[category].message
        forecasts = [demand.forecasts.forecast(sku, 1) for sku in store.skus[category]]
        intervals = [forecast.intervals[0] for forecast in forecasts if forecast is not None]
        assert len(intervals) == len(store.skus[category])
        mean = sum(float(interval.mean) for interval in intervals)
        variance = sum((float(interval.upper_95 - interval.lower_95) / (2 * Z_975)) ** 2 for interval in intervals)
        band = gamma(mean * mean / variance, scale=variance / mean)
        assert message.method == "forecast"
        assert message.direction == direction
        assert Decimal(message.actual_units.value) == await store.sold_on_day(category)
        assert float(message.expected_units.value) == pytest.approx(mean, abs=0.002)
        assert float(message.lower_units.value) == pytest.approx(band.ppf(0.005), abs=0.002)
        assert float(message.upper_units.value) == pytest.approx(band.ppf(0.995), abs=0.002)
        assert list(message.skus) == sorted(store.skus[category])
        assert (message.location_id, message.business_date) == (store.location, day.isoformat())
        assert message.occurred_at.ToDatetime().replace(tzinfo=clock.now.tzinfo) == clock.now
        assert events[category].subject == f"retail.inventory.v1.sales_anomaly_detected.{store.location}"
        assert events[category].aggregate_id == f"{category}@{store.location}"
    milk = events["MILK"].message
    assert Decimal(milk.actual_units.value) < Decimal(milk.lower_units.value) < Decimal(milk.expected_units.value)
    snacks = events["SNACKS"].message
    assert Decimal(snacks.actual_units.value) > Decimal(snacks.upper_units.value) > Decimal(snacks.expected_units.value)


async def test_a_normal_day_and_a_sparse_category_raise_nothing_and_an_open_day_is_not_judged(
    detector: SalesAnomalyDetector, inventory_url: str, clock: HandClock
) -> None:
    day = yesterday(clock)
    store = Store(inventory_url, day)
    await store.open()
    await store.category("BREAD", [15, 9], None, seed=3)  # the day as generated: ±15% around usual
    await store.category("WATER", [40, 25, 30], 0.9, seed=5)
    await store.category("SPICE", [1], 6, seed=4, sparse=True)  # six times its busiest day, on tiny volume
    await store.category("SAFFRON", [1], 0, seed=6, sparse=True)

    assert await detector.evaluate(store.location, day) == []
    assert await outbox_events(inventory_url, events_pb2.SalesAnomalyDetected) == []
    with pytest.raises(DayNotClosed):
        await detector.evaluate(store.location, day + timedelta(days=1))


async def test_a_category_without_enough_history_before_the_day_raises_nothing(
    detector: SalesAnomalyDetector, inventory_url: str, clock: HandClock
) -> None:
    day = yesterday(clock)
    store = Store(inventory_url, day)
    await store.open()
    await store.category("BREAD", [15, 9], 1.0, seed=3)
    await execute(
        inventory_url,
        "INSERT INTO catalogue_item (sku, name, category, active, version, updated_at) "
        "VALUES ('NEW-1', 'new', 'NEWCAT', true, 1, now())",
    )
    await execute(
        inventory_url,
        "INSERT INTO daily_sales (location_id, sku, day, source, quantity) VALUES ($1, 'NEW-1', $2, 'journal', 500)",
        store.location,
        day,
    )

    # A category launched three weeks ago, selling ten times its usual on the day.
    for offset in range(21):
        await execute(
            inventory_url,
            "INSERT INTO daily_sales (location_id, sku, day, source, quantity) VALUES ($1, $2, $3, 'journal', $4)",
            store.location,
            "NEW-2",
            day - timedelta(days=offset),
            300 if offset == 0 else 30,
        )
    await execute(
        inventory_url,
        "INSERT INTO catalogue_item (sku, name, category, active, version, updated_at) "
        "VALUES ('NEW-2', 'new', 'RECENT', true, 1, now())",
    )

    assert await detector.evaluate(store.location, day) == []


async def test_without_forecasts_the_same_weekday_of_previous_weeks_is_the_band(
    unit_of_work: Callable[[], UnitOfWork], inventory_url: str, clock: HandClock
) -> None:
    day = yesterday(clock)
    store = await usual_store(inventory_url, day)
    seasonal = SalesAnomalyDetector(unit_of_work, None, AnomalyPolicy(baseline_weeks=6), clock=clock)

    raised = {finding.category: finding for finding in await seasonal.evaluate(store.location, day)}

    assert sorted(raised) == ["MILK", "SNACKS"]
    weeks = [day - timedelta(weeks=week) for week in range(1, 7)]
    rows = await execute(
        inventory_url,
        "SELECT day, sum(quantity) AS n FROM daily_sales WHERE location_id = $1 AND sku = ANY ($2::text[]) "
        "AND day = ANY ($3::date[]) GROUP BY day",
        store.location,
        store.skus["MILK"],
        weeks,
    )
    totals = [float(row["n"]) for row in rows]
    assert len(totals) == 6
    mean = sum(totals) / 6
    variance = max(sum((total - mean) ** 2 for total in totals) / 5, mean) * (1 + 1 / 6)
    band = gamma(mean * mean / variance, scale=variance / mean)
    milk = raised["MILK"]
    assert milk.band.method == "seasonal_baseline"
    assert float(milk.band.expected) == pytest.approx(mean, abs=0.002)
    assert float(milk.band.lower) == pytest.approx(band.ppf(0.005), abs=0.002)
    assert float(milk.band.upper) == pytest.approx(band.ppf(0.995), abs=0.002)
    assert milk.actual == await store.sold_on_day("MILK") < milk.band.lower


async def test_reruns_and_concurrent_replicas_raise_each_finding_once(
    unit_of_work: Callable[[], UnitOfWork], fits: Callable[[], DemandFits], inventory_url: str, clock: HandClock
) -> None:
    day = yesterday(clock)
    store = await usual_store(inventory_url, day)
    replicas = [SalesAnomalyDetector(unit_of_work, fits(), clock=clock) for _ in range(3)]

    together = await asyncio.gather(*(replica.evaluate(store.location, day) for replica in replicas))
    again = await replicas[0].evaluate(store.location, day)
    runs = await asyncio.gather(*(replica.run([store.location]) for replica in replicas))
    clock.advance(hours=1)
    later = await replicas[1].run([store.location])

    assert sorted(finding.category for findings in together for finding in findings) == ["MILK", "SNACKS"]
    assert again == []
    assert [finding for run in runs for finding in run.raised] == []
    assert later.evaluated == []
    assert later.raised == []
    events = await outbox_events(inventory_url, events_pb2.SalesAnomalyDetected)
    assert sorted(written.message.category for written in events) == ["MILK", "SNACKS"]
    stored = await execute(inventory_url, "SELECT category FROM sales_anomaly WHERE location_id = $1", store.location)
    assert sorted(row["category"] for row in stored) == ["MILK", "SNACKS"]


async def test_the_periodic_run_judges_the_closed_days_it_has_not_yet_after_the_grace(
    detector: SalesAnomalyDetector, inventory_url: str, clock: HandClock
) -> None:
    day = yesterday(clock)
    store = await usual_store(inventory_url, day)
    # Just after the day closed: still within the grace for tills replaying it.
    clock.now = datetime.combine(day + timedelta(days=1), datetime.min.time(), CHINA_STANDARD_TIME) + timedelta(
        minutes=30
    )
    early = await detector.run([store.location])
    clock.advance(hours=2)
    settled = await detector.run([store.location])
    clock.advance(hours=1)
    next_hour = await detector.run([store.location])

    assert [evaluated for evaluated in early.evaluated] == [
        (store.location, day - timedelta(days=3)),
        (store.location, day - timedelta(days=2)),
        (store.location, day - timedelta(days=1)),
    ]
    assert early.raised == []  # usual days
    assert settled.evaluated == [(store.location, day)]
    assert sorted(finding.category for finding in settled.raised) == ["MILK", "SNACKS"]
    assert (next_hour.evaluated, next_hour.raised) == ([], [])


async def published(url: str) -> None:
    """Wait until the relay has published every outbox row to JetStream."""
    async with asyncio.timeout(30):
        while (await execute(url, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"))[0]["n"]:
            await asyncio.sleep(0.05)


async def test_the_service_publishes_the_anomaly_on_its_stream_with_the_contract_fields(
    app: InventoryApp, inventory_url: str, nats_url: str
) -> None:
    day = app.sales_anomalies.today() - timedelta(days=1)
    store = await usual_store(inventory_url, day)

    raised = await app.sales_anomalies.evaluate(store.location, day)

    assert len(raised) == 2
    await published(inventory_url)
    async with jetstream(nats_url) as (_, js):
        received = await read_all(js, "INVENTORY", f"retail.inventory.v1.sales_anomaly_detected.{store.location}")
    messages = {}
    for _, headers, payload in received:
        message = events_pb2.SalesAnomalyDetected.FromString(payload)
        messages[message.category] = message
        assert "retail.inventory.v1.SalesAnomalyDetected" in json.dumps(headers)
        assert headers["Nats-Msg-Id"] == message.anomaly_id
    assert sorted(messages) == ["MILK", "SNACKS"]
    milk = messages["MILK"]
    finding = next(finding for finding in raised if finding.category == "MILK")
    assert milk.anomaly_id == finding.anomaly_id == anomaly_id(store.location, "MILK", day)  # stable per place and day
    assert (milk.location_id, milk.business_date, milk.method) == (store.location, day.isoformat(), "forecast")
    assert milk.direction == events_pb2.SALES_ANOMALY_DIRECTION_BELOW
    assert Decimal(milk.actual_units.value) == await store.sold_on_day("MILK")
    assert Decimal(milk.actual_units.value) < Decimal(milk.lower_units.value)
    assert Decimal(milk.lower_units.value) < Decimal(milk.expected_units.value) < Decimal(milk.upper_units.value)
    assert list(milk.skus) == sorted(store.skus["MILK"])
    assert milk.HasField("occurred_at")
    assert messages["SNACKS"].direction == events_pb2.SALES_ANOMALY_DIRECTION_ABOVE


async def test_the_services_periodic_replenishment_run_raises_the_anomalies_of_the_last_closed_day(
    inventory_url: str, nats_url: str
) -> None:
    policy = AnomalyPolicy()
    settled = (datetime.now(CHINA_STANDARD_TIME) - policy.closing_grace).date()
    day = settled - timedelta(days=1)  # the last day the run judges now
    store = await usual_store(inventory_url, day)
    settings = InventorySettings(
        app_env="test",
        database_url=inventory_url,
        nats_url=nats_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        replenishment_interval_seconds=0.5,
    )
    async with jetstream(nats_url) as (_, js):
        await ensure_stream(js, StreamSpec("SALES", ["retail.sales.v1.>"]))  # the gateway's
        await ensure_stream(js, INVENTORY_STREAM)  # the service declares it too, maybe after the first run
    app = build(settings)
    await app.server.start()
    try:
        async with jetstream(nats_url) as (_, js):
            received = await receive(js, "INVENTORY", f"retail.inventory.v1.sales_anomaly_detected.{store.location}", 2)
    finally:
        await app.server.stop()
        await app.close()
    messages = [events_pb2.SalesAnomalyDetected.FromString(message.data) for message in received]
    assert sorted((message.category, message.business_date) for message in messages) == [
        ("MILK", day.isoformat()),
        ("SNACKS", day.isoformat()),
    ]
    evaluated = await execute(
        inventory_url, "SELECT business_date FROM sales_anomaly_evaluation WHERE location_id = $1", store.location
    )
    assert sorted(row["business_date"] for row in evaluated) == [day - timedelta(days=back) for back in (2, 1, 0)]
