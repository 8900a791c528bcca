"""Forecasts, replenishment and stock KPIs end to end: PostgreSQL history, gRPC, the outbox to NATS, the gateway."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

import asyncpg
import grpc
import pytest
from retail.inventory.v1 import events_pb2
from retail.inventory.v1 import inventory_service_pb2 as pb
from retail.inventory.v1 import inventory_service_pb2_grpc as pb_grpc

from demodata import DemoRetailer, DemoScale
from gateway.domain.clients import ClientKind, StaffRole
from gateway.settings import GatewaySettings
from servicekit.settings import to_plain_url
from services.inventory.bootstrap import InventoryApp
from services.inventory.demo import load_demo
from services.inventory.service_layer.handlers import CHINA_STANDARD_TIME
from tests.integration.inventory.conftest import stock
from tests.support.gateway import RunningGateway, assert_problem, gateway_schema, gateway_settings, running_gateway
from tests.support.messaging import jetstream, read_all

__all__ = ["gateway_schema", "gateway_settings"]

WEEKDAY_SHAPE = (0.8, 0.8, 0.9, 0.9, 1.1, 1.4, 1.3)  # Monday .. Sunday


@pytest.fixture
async def gateway(app: InventoryApp, gateway_settings: Callable[..., GatewaySettings]) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(gateway_backends=f"inventory=127.0.0.1:{app.server.bound_port}")
    async with running_gateway(settings) as running:
        yield running


def today() -> date:
    return datetime.now(CHINA_STANDARD_TIME).date()


def demand(base: float, *, days: int = 63, seed: int = 1) -> dict[date, Decimal]:
    """Demo-like daily sales ending yesterday: a weekly rhythm and noise."""
    rng = random.Random(seed)
    end = today() - timedelta(days=1)
    history = {}
    for back in range(days):
        day = end - timedelta(days=back)
        history[day] = Decimal(max(0, round(base * WEEKDAY_SHAPE[day.weekday()] + rng.gauss(0, base * 0.15))))
    return history


async def execute(url: str, statement: str, *args: Any) -> Any:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        return await connection.fetch(statement, *args)
    finally:
        await connection.close()


async def sold(url: str, location_id: str, sku: str, daily: dict[date, Decimal], source: str = "import") -> None:
    await execute(
        url,
        "INSERT INTO daily_sales (location_id, sku, day, source, quantity) "
        "SELECT $1, $2, day, $3, quantity FROM unnest($4::date[], $5::numeric[]) AS v(day, quantity)",
        location_id,
        sku,
        source,
        list(daily),
        list(daily.values()),
    )


async def move(
    url: str,
    sku: str,
    location_id: str,
    kind: str,
    *,
    on_hand: int = 0,
    reserved: int = 0,
    in_transit: int = 0,
    at: datetime | None = None,
) -> None:
    """One ledger movement and the balance it changes, as the service would write them."""
    await execute(
        url,
        "WITH moved AS (UPDATE stock_level SET on_hand = on_hand + $4, reserved = reserved + $5, "
        "in_transit = in_transit + $6 WHERE sku = $1 AND location_id = $2 RETURNING sku) "
        "INSERT INTO stock_movement (sku, location_id, kind, on_hand_delta, reserved_delta, in_transit_delta, "
        "recorded_at) SELECT $1, $2, $3, $4, $5, $6, coalesce($7, now()) FROM moved",
        sku,
        location_id,
        kind,
        on_hand,
        reserved,
        in_transit,
        at,
    )


def new_location() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}"


def decimal(text: str | None) -> Decimal:
    assert text is not None
    return Decimal(text)


async def test_the_demo_history_is_loaded_and_a_forecast_is_backtested_on_it(
    app: InventoryApp, inventory_url: str
) -> None:
    yesterday = today() - timedelta(days=1)
    scale = dataclasses.replace(
        DemoScale.demo(),
        store_count=1,
        sku_count=40,
        supplier_count=2,
        member_count=200,
        history_days=63,
        end_date=yesterday,
        promotion_count=3,
        online_orders_per_day=5,
    )
    retailer = DemoRetailer(scale=scale)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in retailer.daily_sales():
        if row.location_id == "S001":
            totals[row.sku_code] += row.quantity
    best_seller = max(totals, key=lambda sku: totals[sku])

    loaded = await load_demo(inventory_url, retailer)
    again = await load_demo(inventory_url, retailer)

    stored = await execute(inventory_url, "SELECT count(*) AS rows FROM daily_sales WHERE source = 'import'")
    assert loaded["sales_history_rows"] == again["sales_history_rows"] == stored[0]["rows"] > 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        answer = await pb_grpc.InventoryServiceStub(channel).GetForecast(
            pb.GetForecastRequest(location_id="S001", sku=best_seller, horizon_days=14), timeout=60
        )
    assert [day.date for day in answer.forecast] == [(today() + timedelta(days=n)).isoformat() for n in range(14)]
    assert sum(Decimal(day.quantity.value) for day in answer.forecast) > 0
    assert answer.history_end_date == yesterday.isoformat()
    assert answer.supplier_id == retailer.sku(best_seller).supplier_id
    backtest = answer.backtest
    assert (backtest.metric, backtest.horizon_days, len(backtest.origin_dates)) == ("wape", 14, 4)
    errors = [
        backtest.model_error,
        backtest.baseline_error,
        backtest.location_model_error,
        backtest.location_baseline_error,
    ]
    assert all(Decimal(error.value).is_finite() and Decimal(error.value) >= 0 for error in errors)
    assert backtest.HasField("model_error")
    assert backtest.HasField("baseline_error")


async def test_concurrent_callers_share_one_fit_and_a_late_sale_refits(app: InventoryApp, inventory_url: str) -> None:
    location = new_location()
    for n, sku in enumerate((f"{location}-A", f"{location}-B")):
        await stock(inventory_url, sku, {location: Decimal(20)})
        await sold(inventory_url, location, sku, demand(5 + 5 * n, seed=n))
    before = app.planner.fits.fits_computed

    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        stub = pb_grpc.InventoryServiceStub(channel)
        answers = await asyncio.gather(
            *(
                stub.GetForecast(
                    pb.GetForecastRequest(location_id=location, sku=f"{location}-A", horizon_days=7), timeout=60
                )
                for _ in range(4)
            ),
            stub.ListReplenishment(pb.ListReplenishmentRequest(location_id=location), timeout=60),
        )
        assert app.planner.fits.fits_computed == before + 1
        assert len({answer.SerializeToString() for answer in answers[:4]}) == 1
        cached = await app.planner.fits.of(location, today())
        assert app.planner.fits.fits_computed == before + 1

        await sold(inventory_url, location, f"{location}-A", {today() - timedelta(days=1): Decimal(3)}, "journal")
        refitted = await app.planner.fits.of(location, today())
    assert app.planner.fits.fits_computed == before + 2
    assert refitted is not cached


async def steady_and_slow(url: str, location: str, *, supplier_id: str | None = None) -> tuple[str, str]:
    """A steady seller about to run short (lead time 3 days) and a slow one with far too much stock."""
    steady, slow = f"{location}-STEADY", f"{location}-SLOW"
    await stock(url, steady, {location: Decimal(20)}, supplier_id=supplier_id)
    await stock(url, slow, {location: Decimal(500)})
    await execute(url, "UPDATE item SET lead_time_days = 3 WHERE sku = $1", steady)
    await move(url, steady, location, "reservation", reserved=2)
    await move(url, steady, location, "transfer_out", in_transit=5)
    await sold(url, location, steady, demand(10, seed=3))
    await sold(url, location, slow, demand(1, seed=4))
    return steady, slow


async def test_replenishment_suggestions_show_their_math_and_alerts_through_the_gateway(
    gateway: RunningGateway, inventory_url: str
) -> None:
    location, elsewhere = new_location(), new_location()
    steady, slow = await steady_and_slow(inventory_url, location, supplier_id="SUPX")
    await stock(inventory_url, f"{elsewhere}-X", {elsewhere: Decimal(1)})
    manager = await gateway.client_headers(ClientKind.STAFF, store_id=location, staff_role=StaffRole.STORE_MANAGER)

    answer = await gateway.http.get(f"/v1/locations/{location}/replenishment", headers=manager)

    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["as_of_date"] == today().isoformat()
    suggestions = {suggestion["sku"]: suggestion for suggestion in page["suggestions"]}
    assert list(suggestions) == [slow, steady]
    ordered = suggestions[steady]
    assert (ordered["lead_time_days"], ordered["review_period_days"], ordered["supplier_id"]) == (3, 7, "SUPX")
    assert (ordered["on_hand"], ordered["reserved"], ordered["in_transit"]) == ("20", "2", "5")
    assert decimal(ordered["inventory_position"]) == 20 - 2 + 5
    assert decimal(ordered["reorder_point"]) == decimal(ordered["lead_time_forecast"]) + decimal(
        ordered["safety_stock"]
    )
    assert decimal(ordered["order_up_to"]) == decimal(ordered["protection_forecast"]) + decimal(ordered["safety_stock"])
    shortfall = decimal(ordered["order_up_to"]) - decimal(ordered["inventory_position"])
    assert decimal(ordered["suggested_quantity"]) == shortfall.to_integral_value(ROUND_CEILING) > 0  # whole pieces
    assert 20 < decimal(ordered["lead_time_forecast"]) < 45  # three days of about ten a day
    assert decimal(ordered["safety_stock"]) > 0
    assert decimal(ordered["daily_error_std"]) > 0
    assert ordered["reorder_due"] is True
    assert suggestions[slow]["suggested_quantity"] == "0"
    assert {(alert["sku"], alert["kind"]) for alert in page["alerts"]} == {(steady, "low_stock"), (slow, "overstock")}

    first = await gateway.http.get(f"/v1/locations/{location}/replenishment?page_size=1", headers=manager)
    assert [s["sku"] for s in first.json()["suggestions"]] == [slow]
    token = first.json()["next_page_token"]
    second = await gateway.http.get(
        f"/v1/locations/{location}/replenishment?page_size=1&page_token={token}", headers=manager
    )
    assert ([s["sku"] for s in second.json()["suggestions"]], second.json()["next_page_token"]) == ([steady], None)

    # Ownership: another store's staff may not look; a store guide lacks the scope; headquarters sees every store;
    # a supplier sees its own SKUs anywhere, and another supplier's SKU does not exist for it.
    assert_problem(
        await gateway.http.get(f"/v1/locations/{elsewhere}/replenishment", headers=manager), 403, "forbidden"
    )
    assert_problem(await gateway.http.get(f"/v1/locations/{elsewhere}/kpis", headers=manager), 403, "forbidden")
    assert_problem(
        await gateway.http.get(f"/v1/locations/{elsewhere}/skus/{elsewhere}-X/forecast", headers=manager),
        403,
        "forbidden",
    )
    guide = await gateway.client_headers(ClientKind.STAFF, store_id=location, staff_role=StaffRole.STORE_GUIDE)
    assert (await gateway.http.get(f"/v1/locations/{location}/replenishment", headers=guide)).status_code == 403
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)
    assert (await gateway.http.get(f"/v1/locations/{elsewhere}/replenishment", headers=headquarters)).status_code == 200
    supplier = await gateway.client_headers(ClientKind.SUPPLIER_USER, supplier_id="SUPX")
    own = await gateway.http.get(f"/v1/locations/{location}/replenishment", headers=supplier)
    assert [s["sku"] for s in own.json()["suggestions"]] == [steady]
    assert (await gateway.http.get(f"/v1/locations/{location}/skus/{steady}/forecast", headers=supplier)).is_success
    assert_problem(
        await gateway.http.get(f"/v1/locations/{location}/skus/{slow}/forecast", headers=supplier), 404, "not-found"
    )


async def test_a_forecast_over_http_reports_the_model_and_the_baseline_error(
    gateway: RunningGateway, inventory_url: str
) -> None:
    location = new_location()
    steady, _ = await steady_and_slow(inventory_url, location)
    manager = await gateway.client_headers(ClientKind.STAFF, store_id=location, staff_role=StaffRole.STORE_MANAGER)

    answer = await gateway.http.get(f"/v1/locations/{location}/skus/{steady}/forecast?horizon_days=90", headers=manager)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["forecast"]) == 90
    assert body["forecast"][0]["date"] == today().isoformat()
    assert body["history_end_date"] == (today() - timedelta(days=1)).isoformat()
    backtest = body["backtest"]
    assert backtest["metric"] == "wape"
    errors = ("model_error", "baseline_error", "location_model_error", "location_baseline_error")
    for error in (*errors, "location_recent_mean_error"):
        assert decimal(backtest[error]).is_finite()
        assert decimal(backtest[error]) >= 0
    # The method that served, with its MAE and WAPE beside both baselines' (and it lost to neither).
    assert (backtest["horizon_days"], len(backtest["origin_dates"])) == (28, 4)
    served, naive, recent = backtest["served"], backtest["seasonal_naive"], backtest["recent_mean"]
    assert served["method"] == backtest["method"] != ""
    assert (naive["method"], recent["method"]) == ("seasonal_naive", "mean_28d")
    assert decimal(served["mae"]) <= min(decimal(naive["mae"]), decimal(recent["mae"]))
    assert decimal(served["wape"]) == decimal(backtest["model_error"])
    assert decimal(naive["wape"]) == decimal(backtest["baseline_error"])
    assert backtest["point_estimate"] in ("mean", "median")
    # Nine weeks of history: too short to backtest the global model (it needs six weeks before the earliest origin).
    assert {candidate["method"] for candidate in backtest["candidates"]} >= {"ets_damped_trend", "tsb", "mean_56d"}
    assert 0 <= decimal(backtest["coverage_80"]) <= decimal(backtest["coverage_95"]) <= 1
    for day in body["forecast"]:
        assert (
            decimal(day["lower_95"]) <= decimal(day["lower_80"]) <= decimal(day["upper_80"]) <= decimal(day["upper_95"])
        )
        assert decimal(day["lower_80"]) <= decimal(day["expected_quantity"]) <= decimal(day["upper_80"])
    # A horizon in another band is chosen on a backtest of that horizon.
    week = (
        await gateway.http.get(f"/v1/locations/{location}/skus/{steady}/forecast?horizon_days=7", headers=manager)
    ).json()
    assert (len(week["forecast"]), week["backtest"]["horizon_days"]) == (7, 7)


async def test_safety_stock_is_sized_from_the_forecast_interval_over_the_lead_time(
    gateway: RunningGateway, inventory_url: str
) -> None:
    location = new_location()
    steady, _ = await steady_and_slow(inventory_url, location)
    manager = await gateway.client_headers(ClientKind.STAFF, store_id=location, staff_role=StaffRole.STORE_MANAGER)

    path = f"/v1/locations/{location}/skus/{steady}/forecast?horizon_days=28"
    forecast = (await gateway.http.get(path, headers=manager)).json()["forecast"]
    page = (await gateway.http.get(f"/v1/locations/{location}/replenishment", headers=manager)).json()

    ordered = next(suggestion for suggestion in page["suggestions"] if suggestion["sku"] == steady)
    lead_days = forecast[: ordered["lead_time_days"]]
    assert decimal(ordered["lead_time_forecast"]) == sum(decimal(day["expected_quantity"]) for day in lead_days)
    # σ per day is how far the 95% interval reaches above the expected demand, ÷ 1.96 (rounded to the gram).
    sigmas = [
        ((decimal(day["upper_95"]) - decimal(day["expected_quantity"])) / Decimal("1.959964")).quantize(
            Decimal("0.001")
        )
        for day in lead_days
    ]
    sigma = (sum((value * value for value in sigmas), Decimal(0)) / len(sigmas)).sqrt()
    assert abs(decimal(ordered["daily_error_std"]) - sigma) <= Decimal("0.002")
    z = Decimal("1.6448536")  # service level 0.95
    expected_buffer = z * decimal(ordered["daily_error_std"]) * Decimal(ordered["lead_time_days"]).sqrt()
    assert abs(decimal(ordered["safety_stock"]) - expected_buffer) <= Decimal("0.002")
    assert decimal(ordered["safety_stock"]) > 0


async def test_bad_input_is_refused_with_a_precise_problem(
    gateway: RunningGateway, app: InventoryApp, inventory_url: str
) -> None:
    location = new_location()
    steady, _ = await steady_and_slow(inventory_url, location)
    await stock(inventory_url, f"{location}-ELSEWHERE", {"W01": Decimal(5)})
    await execute(inventory_url, "UPDATE location SET kind = 'warehouse' WHERE location_id = 'W01'")
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)

    async def get(path: str) -> Any:
        return await gateway.http.get(path, headers=headquarters)

    forecast = f"/v1/locations/{location}/skus/{steady}/forecast"
    assert_problem(await get(f"{forecast}?horizon_days=0"), 422, "validation-error")
    assert_problem(await get(f"{forecast}?horizon_days=91"), 422, "validation-error")
    unknown_location = assert_problem(await get(f"/v1/locations/NOWHERE/skus/{steady}/forecast"), 404, "not-found")
    unknown_sku = assert_problem(await get(f"/v1/locations/{location}/skus/NOSUCHSKU/forecast"), 404, "not-found")
    not_carried = assert_problem(
        await get(f"/v1/locations/{location}/skus/{location}-ELSEWHERE/forecast"), 404, "not-found"
    )
    warehouse = assert_problem(await get("/v1/locations/W01/replenishment"), 409, "failed-precondition")
    assert [unknown_location["reason"], unknown_sku["reason"], not_carried["reason"], warehouse["reason"]] == [
        "unknown-location",
        "unknown-sku",
        "sku-not-carried",
        "not-a-selling-location",
    ]
    assert_problem(await get("/v1/locations/NOWHERE/kpis"), 404, "not-found")
    tomorrow = today() + timedelta(days=1)
    assert_problem(await get(f"/v1/locations/{location}/kpis?to={tomorrow}"), 422, "invalid-argument")
    assert_problem(
        await get(f"/v1/locations/{location}/kpis?from={today()}&to={today() - timedelta(days=1)}"),
        422,
        "invalid-argument",
    )
    assert_problem(await get(f"/v1/locations/{location}/kpis?from=2020-01-01&to={today()}"), 422, "invalid-argument")
    assert_problem(await get(f"/v1/locations/{location}/kpis?to=0001-01-01"), 422, "invalid-argument")

    # The service itself refuses what the gateway would have caught, with the same precision.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
        stub = pb_grpc.InventoryServiceStub(channel)
        for horizon_days in (0, 91):
            with pytest.raises(grpc.aio.AioRpcError) as out_of_range:
                await stub.GetForecast(
                    pb.GetForecastRequest(location_id=location, sku=steady, horizon_days=horizon_days), timeout=10
                )
            assert out_of_range.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.GetForecast(pb.GetForecastRequest(location_id="NOWHERE", sku=steady, horizon_days=7), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as bad_date:
            await stub.GetStockKpis(pb.GetStockKpisRequest(location_id=location, from_date="24.11.2026"), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    trailers: Any = unknown.value.trailing_metadata()
    assert ("retail-error-reason", "unknown-location") in [(str(key), str(value)) for key, value in trailers]
    assert bad_date.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def published(url: str) -> None:
    """Wait until the relay has published every outbox row to JetStream."""
    async with asyncio.timeout(30):
        while (await execute(url, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"))[0]["n"]:
            await asyncio.sleep(0.05)


async def test_a_replenishment_run_publishes_each_change_once_and_nothing_when_nothing_changed(
    app: InventoryApp, inventory_url: str, nats_url: str
) -> None:
    location = new_location()
    steady, slow = await steady_and_slow(inventory_url, location)

    first = await app.planner.run([location])
    unchanged = await app.planner.run([location])
    await move(inventory_url, steady, location, "count_adjustment", on_hand=-10)  # ten fewer on the shelf
    after_count = await app.planner.run([location])

    assert (first.locations, first.suggestions_published, first.alerts_published) == ([location], 1, 2)
    assert (unchanged.suggestions_published, unchanged.alerts_published) == (0, 0)
    assert (after_count.suggestions_published, after_count.alerts_published) == (1, 0)  # still low: not raised again
    await published(inventory_url)
    async with jetstream(nats_url) as (_, js):
        suggested = await read_all(js, "INVENTORY", f"retail.inventory.v1.replenishment_suggested.{location}")
        alerted = await read_all(js, "INVENTORY", f"retail.inventory.v1.stock_alert_raised.{location}")
    suggestions = [events_pb2.ReplenishmentSuggested.FromString(payload) for _, _, payload in suggested]
    alerts = [events_pb2.StockAlertRaised.FromString(payload) for _, _, payload in alerted]
    assert [(event.location_id, event.suggestion.sku) for event in suggestions] == [(location, steady)] * 2
    before, after = (Decimal(event.suggestion.suggested_quantity.value) for event in suggestions)
    assert after == before + 10  # the order makes up for the ten counted short
    assert decimal(suggestions[1].suggestion.inventory_position.value) == 20 - 10 - 2 + 5
    assert sorted((event.alert.sku, event.alert.kind) for event in alerts) == [
        (slow, pb.STOCK_ALERT_KIND_OVERSTOCK),
        (steady, pb.STOCK_ALERT_KIND_LOW_STOCK),
    ]
    assert all(event.as_of_date == today().isoformat() for event in alerts)
    headers = [json.dumps(headers, sort_keys=True) for _, headers, _ in suggested]
    assert all("retail.inventory.v1.ReplenishmentSuggested" in header for header in headers)


async def carried(url: str, sku: str, location_id: str) -> None:
    """An item with an empty stock level at a store, its ledger still to be written."""
    await stock(url, sku, {})
    await execute(
        url,
        "INSERT INTO location (location_id, name, kind) VALUES ($1, $1, 'store') ON CONFLICT DO NOTHING",
        location_id,
    )
    await execute(url, "INSERT INTO stock_level (sku, location_id) VALUES ($1, $2)", sku, location_id)


async def test_stock_kpis_come_from_the_ledger_and_the_daily_sales(gateway: RunningGateway, inventory_url: str) -> None:
    location = new_location()
    seller, sleeper = f"{location}-SELLER", f"{location}-SLEEPER"
    start = today() - timedelta(days=4)

    def noon(day: date) -> datetime:
        return datetime.combine(day, time(12), tzinfo=CHINA_STANDARD_TIME)

    for sku in (seller, sleeper):
        await carried(inventory_url, sku, location)
    await execute(inventory_url, "UPDATE item SET category_id = 'fresh' WHERE sku = $1", seller)
    await execute(inventory_url, "UPDATE item SET category_id = 'dry' WHERE sku = $1", sleeper)
    await move(inventory_url, seller, location, "opening_balance", on_hand=10, at=noon(start))
    await move(inventory_url, sleeper, location, "opening_balance", on_hand=5, at=noon(start))
    # Closing stock of the seller: 6, 0 (sold out), 8 (received 10), 7 (counted one short), 4.
    for offset, kind, delta in (
        (0, "sale", -4),
        (1, "sale", -6),
        (2, "receipt", 10),
        (2, "sale", -2),
        (3, "count_adjustment", -1),
        (4, "sale", -3),
    ):
        await move(inventory_url, seller, location, kind, on_hand=delta, at=noon(start + timedelta(days=offset)))
    await sold(
        inventory_url,
        location,
        seller,
        {
            start: Decimal(4),
            start + timedelta(days=1): Decimal(6),
            start + timedelta(days=2): Decimal(2),
            today(): Decimal(3),
        },
        "journal",
    )
    headquarters = await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS)

    answer = await gateway.http.get(f"/v1/locations/{location}/kpis?from={start}&to={today()}", headers=headquarters)

    assert answer.status_code == 200, answer.text
    kpis = answer.json()
    assert (kpis["skus_carried"], kpis["skus_sold"], kpis["sell_through_rate"]) == (2, 1, "0.5")  # 动销率
    assert kpis["stock_out_rate"] == "0.1"  # one of ten SKU-days closed empty
    by_sku = {row["sku"]: row for row in kpis["skus"]}
    seller_kpis = by_sku[seller]
    assert (seller_kpis["days"], seller_kpis["units_sold"], seller_kpis["closing_stock"]) == (5, "15", "4")
    assert seller_kpis["stock_out_rate"] == "0.2"
    assert seller_kpis["sell_through_rate"] == "0.7895"  # 15 / (15 + 4)
    assert seller_kpis["days_of_cover"] == "1.7"  # average stock 5 / 3 sold a day
    assert (seller_kpis["shrink"], seller_kpis["shrink_rate"]) == ("1", "0.0625")  # 1 / (15 + 1)
    assert (by_sku[sleeper]["units_sold"], by_sku[sleeper]["days_of_cover"]) == ("0", None)

    # Per category: the seller's alone, and the sleeper's, overstocked (stock left, nothing sold).
    by_category = {row["category_id"]: row for row in kpis["categories"]}
    assert set(by_category) == {"fresh", "dry"}
    fresh, dry = by_category["fresh"], by_category["dry"]
    assert (fresh["skus_carried"], fresh["skus_sold"], fresh["sell_through_rate"]) == (1, 1, "1")
    assert (fresh["stock_out_rate"], fresh["days_of_cover"], fresh["shrink_rate"]) == ("0.2", "1.7", "0.0625")
    assert (fresh["overstocked_skus"], fresh["overstock_rate"]) == (0, "0")
    assert (dry["skus_carried"], dry["skus_sold"], dry["sell_through_rate"], dry["days_of_cover"]) == (1, 0, "0", None)
    assert (dry["overstocked_skus"], dry["overstock_rate"]) == (1, "1")
    # A store manager of another store sees none of it.
    other = await gateway.client_headers(ClientKind.STAFF, store_id="S777", staff_role=StaffRole.STORE_MANAGER)
    assert_problem(await gateway.http.get(f"/v1/locations/{location}/kpis", headers=other), 403, "forbidden")

    one = await gateway.http.get(f"/v1/locations/{location}/kpis?sku={sleeper}", headers=headquarters)
    assert [row["sku"] for row in one.json()["skus"]] == [sleeper]
    assert (one.json()["from_date"], one.json()["to_date"]) == (str(today() - timedelta(days=29)), str(today()))
