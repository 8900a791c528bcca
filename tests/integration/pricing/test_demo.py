"""The demo retailer's catalogue and prices load once into pricing, with every store's book materialised."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING

from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc

from demodata import CHINA_STANDARD_TIME, DemoRetailer, DemoScale
from services.pricing.demo import current_promotions, fen, load_demo
from tests.integration.pricing.conftest import Clock

if TYPE_CHECKING:
    Stub = pb_grpc.PricingServiceAsyncStub


def small_retailer(clock: Clock) -> DemoRetailer:
    """Two stores and 40 SKUs whose history ends yesterday (as `make run` loads it), promotions running and planned."""
    yesterday = clock.now().astimezone(CHINA_STANDARD_TIME).date() - timedelta(days=1)
    scale = dataclasses.replace(
        DemoScale.demo(end_date=yesterday),
        store_count=2,
        sku_count=40,
        supplier_count=2,
        member_count=0,
        history_days=30,
        promotion_count=12,
        online_orders_per_day=5,
    )
    return DemoRetailer(scale=scale)


async def book_of(stub: Stub, store_id: str) -> pb.GetPriceBookResponse:
    answer: pb.GetPriceBookResponse = await stub.GetPriceBook(pb.GetPriceBookRequest(store_id=store_id))
    return answer


async def test_demo_prices_load_once_into_every_store_book(stub: Stub, pricing_url: str, clock: Clock) -> None:
    retailer = small_retailer(clock)
    promotions = current_promotions(retailer, clock.now())

    loaded = await load_demo(pricing_url, retailer, clock=clock, label_station_url="")

    assert (loaded["stores_changed"], loaded["items_changed"], loaded["skus_repriced"]) == (2, 40, 40)
    assert loaded["promotion_rules"] == sum(len(drafts) for drafts in promotions.values())
    for store in retailer.stores:
        book = await book_of(stub, store.location_id)
        assert [entry.sku for entry in book.entries] == [sku.sku_code for sku in retailer.skus]
        for entry in book.entries:
            demo_sku = retailer.sku(entry.sku)
            assert (entry.regular_price.currency_code, entry.regular_price.minor_units) == (
                "CNY",
                fen(demo_sku.base_price),
            )
            assert (entry.name, entry.barcode) == (demo_sku.name, demo_sku.barcode)


async def test_an_unpromoted_sku_costs_its_demo_base_price(stub: Stub, pricing_url: str, clock: Clock) -> None:
    retailer = small_retailer(clock)
    promotions = current_promotions(retailer, clock.now())
    await load_demo(pricing_url, retailer, clock=clock, label_station_url="")
    sku = next(sku for sku in retailer.skus if sku.sku_code not in promotions)

    answer = await stub.GetEffectivePrice(
        pb.GetEffectivePriceRequest(sku=sku.sku_code, question=pb.PriceQuestion(store_id="S002"))
    )

    assert answer.price.unit_price.minor_units == fen(sku.base_price) == answer.price.regular_price.minor_units
    assert not answer.price.promotion_applied


async def test_a_running_demo_promotion_takes_its_percentage_off(stub: Stub, pricing_url: str, clock: Clock) -> None:
    retailer = small_retailer(clock)
    today = clock.now().astimezone(CHINA_STANDARD_TIME).date()
    running = [p for p in retailer.promotions if p.start <= today <= p.end and "S001" in p.location_ids]
    assert running, "the seed places a promotion at S001 on the day after the history"
    await load_demo(pricing_url, retailer, clock=clock, label_station_url="")

    answer = await stub.GetEffectivePrice(
        pb.GetEffectivePriceRequest(sku=running[0].sku_code, question=pb.PriceQuestion(store_id="S001"))
    )

    assert answer.price.promotion_applied
    assert answer.price.unit_price.minor_units == fen(running[0].promo_price)
    assert answer.price.regular_price.minor_units == fen(retailer.sku(running[0].sku_code).base_price)


async def test_loading_twice_changes_nothing(stub: Stub, pricing_url: str, clock: Clock) -> None:
    retailer = small_retailer(clock)
    await load_demo(pricing_url, retailer, clock=clock, label_station_url="")
    books = {store.location_id: await book_of(stub, store.location_id) for store in retailer.stores}
    prices = await stub.GetPrices(pb.GetPricesRequest(sku="SKU00001"))

    again = await load_demo(pricing_url, retailer, clock=clock, label_station_url="")

    assert (again["stores_changed"], again["items_changed"], again["skus_repriced"]) == (0, 0, 0)
    assert again["book_entries_changed"] == 0
    assert again["book_entries"] == sum(len(book.entries) for book in books.values()) > 0
    for store_id, book in books.items():
        assert await book_of(stub, store_id) == book
    assert await stub.GetPrices(pb.GetPricesRequest(sku="SKU00001")) == prices
