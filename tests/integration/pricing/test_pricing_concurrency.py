"""Concurrent writers on the same SKUs and stores try hard to break the POS price book.

Whatever interleaving PostgreSQL picks, afterwards every book entry is what the rules say
now, versions only move forward, every label wants what the tills charge, each scheduled
change is applied exactly once (and in effective order) by however many schedulers, no
label is pushed twice by two push rounds, and a POS that only ever asks for deltas ends
with exactly the book a full download gives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

import grpc
from retail.common.v1 import money_pb2, paging_pb2
from retail.pricing.v1 import events_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc
from sqlalchemy import text

from servicekit.db import UnitOfWork, units_of_work
from services.pricing.adapters import label_store
from services.pricing.bootstrap import PricingApp, label_policy
from services.pricing.domain.rules import MEMBER_TIERS
from services.pricing.entrypoints.wire import map_book_entry_of
from services.pricing.service_layer.book import label_content
from services.pricing.service_layer.labels import LabelSync, StationAnswers, Stations
from services.pricing.service_layer.schedule import Scheduler
from services.pricing.settings import PricingSettings
from tests.integration.pricing.conftest import (
    HQ,
    Clock,
    cny,
    put_item,
    put_store,
    request_id,
    set_prices,
    stamp,
    store_manager,
)
from tests.support.grpc_status import reasons_of
from tools.esl_simulators import running
from tools.esl_simulators.batch import BatchSimulator

CALL_TIMEOUT = 60  # seconds; the machine is small and shared, a slow answer is not a wrong one
ONE = money_pb2.Decimal(value="1")


# -- reading what the service says ---------------------------------------------------------------


async def read_book(
    stub: pb_grpc.PricingServiceAsyncStub, store_id: str, *, since: int = 0, page_size: int = 1000
) -> tuple[int, list[pb.PriceBookEntry]]:
    """Every page of a store's book (or delta since a version), and the version to ask the next
    delta from: the first page's. Later pages are read later and may already hold newer entries,
    which the next delta simply repeats; keeping a later page's version could skip changes to
    SKUs of earlier pages."""
    entries: list[pb.PriceBookEntry] = []
    version: int | None = None
    token = ""
    while True:
        page = await stub.GetPriceBook(
            pb.GetPriceBookRequest(
                store_id=store_id,
                since_version=since,
                page=paging_pb2.PageRequest(page_size=page_size, page_token=token),
            ),
            timeout=CALL_TIMEOUT,
        )
        assert page.delta == (since > 0)
        if version is None:
            version = page.version
        entries.extend(page.entries)
        token = page.page.next_page_token
        if not token:
            return version, entries


async def all_labels(stub: pb_grpc.PricingServiceAsyncStub, store_id: str) -> list[pb.Label]:
    answer = await stub.ListLabels(
        pb.ListLabelsRequest(store_id=store_id, page=paging_pb2.PageRequest(page_size=1000)), timeout=CALL_TIMEOUT
    )
    assert not answer.page.next_page_token
    return list(answer.labels)


def unit_of_work_over(app: PricingApp) -> Callable[[], UnitOfWork]:
    """Units of work over the service's database, for a second scheduler or pusher (another replica)."""
    return units_of_work(app.connected.engine)


async def price_changed_events(app: PricingApp, store_id: str) -> list[events_pb2.PriceChanged]:
    """The store's PriceChanged events in the outbox, in the order the relay publishes them."""
    async with unit_of_work_over(app)() as uow:
        payloads = (
            await uow.session.execute(
                text("SELECT payload FROM outbox WHERE subject = :subject ORDER BY id"),
                {"subject": f"retail.pricing.v1.price_changed.{store_id}"},
            )
        ).scalars()
        return [events_pb2.PriceChanged.FromString(payload) for payload in payloads]


def failures_of(outcomes: Iterable[object]) -> list[str]:
    """What went wrong in a burst of calls, readably (an RPC error with its code and reason)."""
    found = []
    for outcome in outcomes:
        if isinstance(outcome, grpc.aio.AioRpcError):
            found.append(f"{outcome.code().name} {reasons_of(outcome)}: {outcome.details()}")
        elif isinstance(outcome, BaseException):
            found.append(f"{type(outcome).__name__}: {outcome}")
    return found


async def assert_book_is_what_the_rules_say(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, store_ids: Sequence[str], skus: Sequence[str]
) -> dict[str, int]:
    """For every store: each entry equals the effective price asked now (for non-members and every
    tier), no entry is newer than the store's version, the last PriceChanged of each SKU says what
    the entry says, and every label wants exactly the entry's content. Returns the versions."""
    versions: dict[str, int] = {}
    for store_id in store_ids:
        version, entries = await read_book(stub, store_id)
        versions[store_id] = version
        book = {entry.sku: entry for entry in entries}
        assert sorted(book) == sorted(skus), store_id
        assert all(0 < entry.version <= version for entry in entries), (store_id, version)
        for tier in ("", *MEMBER_TIERS):
            basket = await stub.PriceBasket(
                pb.PriceBasketRequest(
                    question=pb.PriceQuestion(store_id=store_id, member_tier=tier),
                    lines=[pb.BasketLine(sku=sku, quantity=ONE) for sku in skus],
                ),
                timeout=CALL_TIMEOUT,
            )
            for line in basket.lines:
                entry = book[line.sku]
                if tier:  # a member pays the tier's price; the entry's regular price is everyone's
                    assert entry.member_prices.get(tier, entry.unit_price) == line.unit_price, (
                        store_id,
                        line.sku,
                        tier,
                    )
                else:
                    assert (entry.unit_price, entry.regular_price) == (line.unit_price, line.regular_price), (
                        store_id,
                        line.sku,
                    )

        last_event: dict[str, events_pb2.PriceChanged] = {}
        for event in await price_changed_events(app, store_id):
            previous = last_event.get(event.sku)
            assert previous is None or previous.price_book_version < event.price_book_version, (store_id, event.sku)
            last_event[event.sku] = event
        for sku, entry in book.items():
            event = last_event[sku]
            assert (event.price_book_version, event.new_unit_price.minor_units) == (
                entry.version,
                entry.unit_price.minor_units,
            ), (store_id, sku)

        async with unit_of_work_over(app)() as uow:
            labels = await label_store.list_labels(uow.session, store_id, "", "", 10_000)
        for label in labels:
            wanted = label_content(map_book_entry_of(book[label.sku]), label.template)
            assert wanted is not None
            assert (label.desired_digest, label.desired_price_fen) == (wanted.digest(), wanted.price_fen), (
                store_id,
                label.label_id,
                label.sku,
            )
    return versions


# -- the tests ---------------------------------------------------------------------------------------


async def test_concurrent_price_writers_schedulers_labels_and_store_changes_leave_a_consistent_book(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    stores = {"S1": ["EAST"], "S2": ["WEST"], "S3": []}
    skus = [f"K-{n}" for n in range(5)]
    for store_id, groups in stores.items():
        await put_store(app, store_id, price_groups=groups)
    for sku in skus:
        await put_item(app, sku, cost_fen=100)
        await set_prices(app, sku, 1000)
    label_ids = {store_id: [f"L-{store_id}-{n}" for n in range(6)] for store_id in stores}
    for store_id, ids in label_ids.items():
        for n, label_id in enumerate(ids):
            link = pb.PutLabelRequest(
                request_id=request_id(), store_id=store_id, label_id=label_id, sku=skus[n % len(skus)], actor=HQ
            )
            await stub.PutLabel(link, timeout=CALL_TIMEOUT)
    versions = await assert_book_is_what_the_rules_say(app, stub, list(stores), skus)
    rng = random.Random(20240611)

    def set_prices_call(sku: str) -> Awaitable[Any]:
        base = rng.randrange(600, 3000, 10)
        return stub.SetPrices(
            pb.SetPricesRequest(
                request_id=request_id(),
                sku=sku,
                currency_code="CNY",
                base_price=cny(base),
                actor=HQ,
                overrides=[
                    pb.RegularPrice(scope=pb.RuleScope(store_group="EAST"), price=cny(base - 50)),
                    pb.RegularPrice(scope=pb.RuleScope(member_tier="gold"), price=cny(base - 100)),
                ],
                promotions=[
                    pb.Promotion(
                        name="week",
                        scope=pb.RuleScope(store_group="WEST"),
                        percent_off=money_pb2.Decimal(value=str(rng.choice((5, 10, 15)))),
                        valid_from=stamp(clock.now()),
                        valid_to=stamp(clock.now() + timedelta(days=7)),
                    )
                ],
            ),
            timeout=CALL_TIMEOUT,
        )

    def schedule_call() -> Awaitable[Any]:
        sku, store_id = rng.choice(skus), rng.choice([*stores, ""])
        return stub.SchedulePriceChange(
            pb.SchedulePriceChangeRequest(
                request_id=request_id(),
                sku=sku,
                price=cny(rng.randrange(600, 3000, 10)),
                effective_at=stamp(clock.now()),
                store_ids=[store_id] if store_id else [],
                actor=store_manager(store_id) if store_id else HQ,
            ),
            timeout=CALL_TIMEOUT,
        )

    def relink_call() -> Awaitable[Any]:
        store_id = rng.choice(list(stores))
        return stub.PutLabel(
            pb.PutLabelRequest(
                request_id=request_id(),
                store_id=store_id,
                label_id=rng.choice(label_ids[store_id]),
                sku=rng.choice(skus),
                actor=HQ,
            ),
            timeout=CALL_TIMEOUT,
        )

    def regroup_call(store_id: str) -> Awaitable[Any]:
        stores[store_id] = rng.choice([["EAST"], ["WEST"], [], ["EAST", "WEST"]])
        return stub.PutStore(
            pb.PutStoreRequest(
                request_id=request_id(),
                actor=HQ,
                store=pb.Store(
                    store_id=store_id, name=f"Store {store_id}", price_groups=stores[store_id], currency_code="CNY"
                ),
            ),
            timeout=CALL_TIMEOUT,
        )

    for _ in range(3):
        burst: list[Awaitable[Any]] = [
            *(set_prices_call(skus[n % len(skus)]) for n in range(20)),
            *(schedule_call() for _ in range(8)),
            *(app.services.scheduler.run_due() for _ in range(3)),
            *(relink_call() for _ in range(12)),
            regroup_call("S2"),
            regroup_call("S3"),
        ]
        rng.shuffle(burst)
        outcomes = await asyncio.gather(*burst, return_exceptions=True)
        assert failures_of(outcomes) == []  # every call is valid: none may fail, least of all on a deadlock
        await app.services.scheduler.run_due()  # the changes and store regroupings that came after the last round
        after = await assert_book_is_what_the_rules_say(app, stub, list(stores), skus)
        assert all(after[store_id] > versions[store_id] for store_id in stores), (versions, after)
        versions = after


async def test_labels_relinked_while_their_skus_are_repriced_want_their_own_skus_price(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub
) -> None:
    await put_store(app, "S1")
    skus = ["K-A", "K-B", "K-C"]
    for sku in skus:
        await put_item(app, sku, cost_fen=100)
        await set_prices(app, sku, 1000)
    label_ids = [f"L-{n}" for n in range(8)]
    rng = random.Random(11)
    for round_ in range(8):
        burst: list[Awaitable[Any]] = []
        for n in range(24):
            burst.append(
                stub.SetPrices(
                    pb.SetPricesRequest(
                        request_id=request_id(),
                        sku=skus[n % len(skus)],
                        currency_code="CNY",
                        base_price=cny(rng.randrange(600, 3000, 10)),
                        actor=HQ,
                    ),
                    timeout=CALL_TIMEOUT,
                )
            )
            burst.append(
                stub.PutLabel(
                    pb.PutLabelRequest(
                        request_id=request_id(),
                        store_id="S1",
                        label_id=label_ids[(n + round_) % len(label_ids)],
                        sku=rng.choice(skus),
                        actor=HQ,
                    ),
                    timeout=CALL_TIMEOUT,
                )
            )
        assert failures_of(await asyncio.gather(*burst, return_exceptions=True)) == []
        await assert_book_is_what_the_rules_say(app, stub, ["S1"], skus)


async def test_two_schedulers_apply_each_of_200_due_changes_exactly_once(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    skus = [f"Q-{n:03d}" for n in range(100)]
    for store_id in ("S1", "S2"):
        await put_store(app, store_id)
    await in_parallel([put_item(app, sku, cost_fen=100) for sku in skus])
    await in_parallel([set_prices(app, sku, 1000) for sku in skus])
    before = {store_id: (await read_book(stub, store_id))[0] for store_id in ("S1", "S2")}

    # One change per store and SKU, moments interleaved so that both stores' changes of a SKU
    # are neighbours in the queue (and often land in different batches of different schedulers).
    start = clock.now() + timedelta(minutes=1)
    wanted: dict[tuple[str, str], tuple[int, str]] = {}

    async def schedule(position: int, sku: str, store_id: str, price: int) -> None:
        answer = await stub.SchedulePriceChange(
            pb.SchedulePriceChangeRequest(
                request_id=request_id(),
                sku=sku,
                price=cny(price),
                store_ids=[store_id],
                effective_at=stamp(start + timedelta(milliseconds=position)),
                actor=HQ,
            ),
            timeout=CALL_TIMEOUT,
        )
        wanted[(store_id, sku)] = (price, answer.change.change_id)

    await in_parallel(
        [
            schedule(2 * n + side, sku, store_id, price)
            for n, sku in enumerate(skus)
            for side, (store_id, price) in enumerate((("S1", 800 + n), ("S2", 700 + n)))
        ]
    )
    assert len({change_id for _, change_id in wanted.values()}) == 200

    clock.advance(minutes=2)
    replicas = [Scheduler(unit_of_work_over(app), batch=9, clock=clock) for _ in range(2)]
    changed = await asyncio.gather(*(replica.run_due() for replica in replicas), app.services.scheduler.run_due())
    assert sum(changed) == 200

    listed = await stub.ListPriceChanges(
        pb.ListPriceChangesRequest(page=paging_pb2.PageRequest(page_size=500)), timeout=CALL_TIMEOUT
    )
    assert len(listed.changes) == 200
    assert {change.state for change in listed.changes} == {pb.PRICE_CHANGE_STATE_APPLIED}

    for store_id in ("S1", "S2"):
        events = [event for event in await price_changed_events(app, store_id) if event.change_id]
        # Exactly one event per change, naming that change, with its price and the price it replaced.
        assert sorted(
            (event.sku, event.change_id, event.old_unit_price.minor_units, event.new_unit_price.minor_units)
            for event in events
        ) == sorted(
            (sku, change_id, 1000, price) for (store, sku), (price, change_id) in wanted.items() if store == store_id
        )
        version, entries = await read_book(stub, store_id)
        # Versions: every step after the one before is used by some event, none is skipped or beyond the book.
        assert {event.price_book_version for event in events} == set(range(before[store_id] + 1, version + 1))
        by_event = {event.sku: event.price_book_version for event in events}
        assert {entry.sku: (entry.unit_price.minor_units, entry.version) for entry in entries} == {
            sku: (price, by_event[sku]) for (store, sku), (price, _) in wanted.items() if store == store_id
        }


async def test_a_price_changed_event_names_a_change_only_in_the_stores_it_covers(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    await put_store(app, "S1")
    await put_store(app, "S2", price_groups=["WEST"])
    await put_item(app, "K-1", cost_fen=100)
    moment = clock.now() + timedelta(hours=1)
    # S2's promotion starts at the very moment S1's own price changes: one round moves both.
    await set_prices(
        app,
        "K-1",
        1000,
        promotions=[
            pb.Promotion(
                name="west",
                scope=pb.RuleScope(store_group="WEST"),
                percent_off=money_pb2.Decimal(value="10"),
                valid_from=stamp(moment),
                valid_to=stamp(moment + timedelta(days=7)),
            )
        ],
    )
    local = await stub.SchedulePriceChange(
        pb.SchedulePriceChangeRequest(
            request_id=request_id(),
            sku="K-1",
            price=cny(800),
            store_ids=["S1"],
            effective_at=stamp(moment),
            actor=store_manager("S1"),
        ),
        timeout=CALL_TIMEOUT,
    )
    clock.advance(hours=1)
    assert await app.services.scheduler.run_due() == 2
    moved = {
        store_id: [
            (e.change_id, e.old_unit_price.minor_units, e.new_unit_price.minor_units)
            for e in await price_changed_events(app, store_id)
        ][-1]
        for store_id in ("S1", "S2")
    }
    assert moved == {"S1": (local.change.change_id, 1000, 800), "S2": ("", 1000, 900)}


async def test_two_schedulers_keep_the_later_of_successive_changes_of_a_sku(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    skus = [f"R-{n:02d}" for n in range(40)]
    await put_store(app, "S1")
    await in_parallel([put_item(app, sku, cost_fen=100) for sku in skus])
    await in_parallel([set_prices(app, sku, 1000) for sku in skus])
    start = clock.now() + timedelta(minutes=1)
    last: dict[str, int] = {}
    requests = []
    for n, sku in enumerate(skus):
        for step in range(3):  # three successive chain-wide prices of one SKU, neighbours in the queue
            price = 900 - 100 * step + n
            requests.append(
                stub.SchedulePriceChange(
                    pb.SchedulePriceChangeRequest(
                        request_id=request_id(),
                        sku=sku,
                        price=cny(price),
                        actor=HQ,
                        effective_at=stamp(start + timedelta(milliseconds=3 * n + step)),
                    ),
                    timeout=CALL_TIMEOUT,
                )
            )
            last[sku] = price
    await in_parallel(requests)

    clock.advance(minutes=2)
    replicas = [Scheduler(unit_of_work_over(app), batch=size, clock=clock) for size in (2, 4, 5)]
    await asyncio.gather(*(replica.run_due() for replica in replicas))

    _, entries = await read_book(stub, "S1")
    assert {entry.sku: entry.unit_price.minor_units for entry in entries} == last
    basket = await stub.PriceBasket(
        pb.PriceBasketRequest(
            question=pb.PriceQuestion(store_id="S1"), lines=[pb.BasketLine(sku=sku, quantity=ONE) for sku in skus]
        ),
        timeout=CALL_TIMEOUT,
    )
    assert {line.sku: line.unit_price.minor_units for line in basket.lines} == last


async def test_two_push_rounds_at_once_never_push_a_label_twice(
    app: PricingApp,
    stub: pb_grpc.PricingServiceAsyncStub,
    clock: Clock,
    pricing_settings: Callable[..., PricingSettings],
) -> None:
    label_ids = [f"P-{n:03d}" for n in range(150)]
    vendor = BatchSimulator(label_ids)
    async with running(vendor) as url:
        await put_store(app, "S1", station_kind="batch", station_url=url)
        skus = [f"K-{n}" for n in range(10)]
        for n, sku in enumerate(skus):
            await put_item(app, sku, cost_fen=100)
            await set_prices(app, sku, 500 + 10 * n)
        await in_parallel(
            [
                stub.PutLabel(
                    pb.PutLabelRequest(
                        request_id=request_id(), store_id="S1", label_id=label_id, sku=skus[n % len(skus)], actor=HQ
                    ),
                    timeout=CALL_TIMEOUT,
                )
                for n, label_id in enumerate(label_ids)
            ]
        )

        # Two replicas, each with its own station connections, claiming small batches as fast as they can.
        policy = dataclasses.replace(label_policy(pricing_settings()), push_batch=16)
        stations = [Stations(policy) for _ in range(2)]
        replicas = [LabelSync(unit_of_work_over(app), own, policy, clock=clock) for own in stations]

        async def drain(replica: LabelSync) -> int:
            pushed = 0
            while claimed := await replica.push_due():
                pushed += claimed
            return pushed

        try:
            pushed = await asyncio.gather(*(drain(replica) for replica in replicas))
        finally:
            for own in stations:
                await own.close()
        assert sum(pushed) == len(label_ids)
        assert vendor.updates_received == len(label_ids)

        vendor.tick()
        await app.services.labels.poll_sent()
        labels = await all_labels(stub, "S1")
        assert {(label.state, label.attempts) for label in labels} == {(pb.LABEL_SYNC_STATE_ACKNOWLEDGED, 1)}
        assert len(labels) == len(label_ids)
        assert await app.services.labels.push_due() == 0
        assert vendor.updates_received == len(label_ids)


async def test_answers_recorded_at_once_about_the_same_labels_in_opposite_orders_never_deadlock(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub
) -> None:
    """A push round records its stores' tickets while an acknowledgement round records the same
    labels' statuses, each listing them in its own order (a round in claim order, a poll by
    label). Were each to lock rows as it met them, PostgreSQL would roll one back as a deadlock
    and a push round's answers would be lost, its labels waiting out the acknowledgement timeout.
    Every recording takes its labels' locks in one order, so all of them commit, each whole."""
    stores = {"S1": [f"D-{n:03d}" for n in range(150)], "S2": [f"E-{n:03d}" for n in range(150)]}
    vendors = {store_id: BatchSimulator(label_ids) for store_id, label_ids in stores.items()}
    async with running(vendors["S1"]) as first_url, running(vendors["S2"]) as second_url:
        await put_store(app, "S1", station_kind="batch", station_url=first_url)
        await put_store(app, "S2", station_kind="batch", station_url=second_url)
        await put_item(app, "K-D", cost_fen=100)
        await set_prices(app, "K-D", 500)
        await in_parallel(
            [
                stub.PutLabel(
                    pb.PutLabelRequest(
                        request_id=request_id(), store_id=store_id, label_id=label_id, sku="K-D", actor=HQ
                    ),
                    timeout=CALL_TIMEOUT,
                )
                for store_id, label_ids in stores.items()
                for label_id in label_ids
            ]
        )
        assert await app.services.labels.push_due() == 300
        async with unit_of_work_over(app)() as uow:
            [digest] = (await uow.session.execute(text("SELECT DISTINCT sent_digest FROM label"))).scalars().all()

        def answers(name: str, battery: int, store_order: list[str], reverse: bool) -> list[StationAnswers]:
            return [
                StationAnswers(
                    store_id,
                    tickets=[(label_id, digest, name) for label_id in sorted(stores[store_id], reverse=reverse)],
                    statuses=[
                        (label_id, True, battery, None) for label_id in sorted(stores[store_id], reverse=not reverse)
                    ],
                )
                for store_id in store_order
            ]

        for attempt in range(10):
            await asyncio.gather(
                app.services.labels.record_answers(answers(f"A{attempt}", 3000 + attempt, ["S1", "S2"], False)),
                app.services.labels.record_answers(answers(f"B{attempt}", 2000 + attempt, ["S2", "S1"], True)),
            )
        async with unit_of_work_over(app)() as uow:
            rows = (await uow.session.execute(text("SELECT ticket, battery_mv FROM label"))).all()
        # Both recordings of the last attempt committed; whichever came second wrote every label whole.
        assert len(rows) == 300
        assert {(row.ticket, row.battery_mv) for row in rows} <= {("A9", 3009), ("B9", 2009)}
        assert len({row.ticket for row in rows}) == 1


async def test_a_pos_applying_deltas_during_concurrent_changes_ends_with_the_full_book(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    await put_store(app, "S1", price_groups=["EAST"])
    skus = [f"D-{n:02d}" for n in range(24)]
    for sku in skus:
        await put_item(app, sku, cost_fen=100)
        await set_prices(app, sku, 1000)
    rng = random.Random(7)

    async def writer(operations: int) -> None:
        for _ in range(operations):
            sku = rng.choice(skus)
            what = rng.random()
            if what < 0.5:
                await set_prices(app, sku, rng.randrange(500, 2000, 10))
            elif what < 0.8:
                await stub.SchedulePriceChange(
                    pb.SchedulePriceChangeRequest(
                        request_id=request_id(),
                        sku=sku,
                        price=cny(rng.randrange(500, 2000, 10)),
                        effective_at=stamp(clock.now()),
                        actor=HQ,
                    ),
                    timeout=CALL_TIMEOUT,
                )
                await app.services.scheduler.run_due()
            else:  # delisted, or listed again: the delta must carry the removal and the return
                await put_item(app, sku, cost_fen=100, active=rng.random() < 0.5)

    version, entries = await read_book(stub, "S1", page_size=5)
    held = {entry.sku: entry for entry in entries}
    seen = [version]
    writers = asyncio.gather(*(writer(25) for _ in range(4)))
    while True:
        finished = writers.done()
        version, delta = await read_book(stub, "S1", since=seen[-1], page_size=5)
        for entry in delta:
            if entry.removed:
                held.pop(entry.sku, None)
            else:
                held[entry.sku] = entry
        seen.append(version)
        if finished:
            break
    await writers

    assert seen == sorted(seen)
    assert len(set(seen)) > 5  # the POS really did follow the book while it changed
    final_version, final = await read_book(stub, "S1")
    assert final_version == seen[-1]
    assert {sku: entry.SerializeToString(deterministic=True) for sku, entry in held.items()} == {
        entry.sku: entry.SerializeToString(deterministic=True) for entry in final
    }


async def in_parallel(calls: Sequence[Awaitable[Any]], width: int = 8) -> list[Any]:
    """Run the calls at most ``width`` at a time (set-up, not the subject of a test)."""
    gate = asyncio.Semaphore(width)

    async def one(call: Awaitable[Any]) -> Any:
        async with gate:
            return await call

    return await asyncio.gather(*(one(call) for call in calls))
