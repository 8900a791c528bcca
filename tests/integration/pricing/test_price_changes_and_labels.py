"""A scheduled price change end to end: the POS price-book delta, the effective-price API and
every acknowledged shelf label agree; an offline label catches up; a failing station is
retried, then reported — never silently marked done."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import UTC, timedelta

import grpc
import pytest
from retail.common.v1 import money_pb2, paging_pb2
from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.pricing.adapters.esl.openepaperlink import expected_hash, tag_type_of
from services.pricing.bootstrap import PricingApp, label_policy
from services.pricing.service_layer.labels import LabelSync, Stations
from services.pricing.settings import PricingSettings
from tests.integration.pricing.conftest import (
    HQ,
    Clock,
    cny,
    put_item,
    put_label,
    put_store,
    request_id,
    set_prices,
    stamp,
    start_pricing_app,
    store_manager,
)
from tests.support.grpc_status import refused
from tools.esl_simulators import Mode, running
from tools.esl_simulators.batch import BatchSimulator
from tools.esl_simulators.openepaperlink import TAG_TYPES, OpenEPaperLinkSimulator, generate_macs


async def book(stub: pb_grpc.PricingServiceAsyncStub, store_id: str, since: int = 0) -> pb.GetPriceBookResponse:
    """The whole book (or delta), every page."""
    answer = pb.GetPriceBookResponse()
    token = ""
    while True:
        page = await stub.GetPriceBook(
            pb.GetPriceBookRequest(
                store_id=store_id, since_version=since, page=paging_pb2.PageRequest(page_size=2, page_token=token)
            ),
            timeout=10,
        )
        if not answer.store_id:  # the first page's version: later pages may be newer
            answer.store_id, answer.version, answer.delta = page.store_id, page.version, page.delta
        answer.entries.extend(page.entries)
        token = page.page.next_page_token
        if not token:
            return answer


def as_prices(entries: Iterable[pb.PriceBookEntry]) -> dict[str, int]:
    return {entry.sku: entry.unit_price.minor_units for entry in entries if not entry.removed}


async def effective(stub: pb_grpc.PricingServiceAsyncStub, sku: str, store_id: str) -> int:
    answer = await stub.GetEffectivePrice(
        pb.GetEffectivePriceRequest(sku=sku, question=pb.PriceQuestion(store_id=store_id)), timeout=10
    )
    return answer.price.unit_price.minor_units


async def labels_of(
    stub: pb_grpc.PricingServiceAsyncStub,
    store_id: str,
    state: pb.LabelSyncState.ValueType = pb.LABEL_SYNC_STATE_UNSPECIFIED,
) -> list[pb.Label]:
    answer = await stub.ListLabels(pb.ListLabelsRequest(store_id=store_id, state=state), timeout=10)
    return list(answer.labels)


async def oepl_shows_desired(app: PricingApp, simulator: OpenEPaperLinkSimulator, store_id: str, mac: str) -> bool:
    """Whether the tag shows the picture the adapter draws for the label's desired content."""
    [row] = [r for r in await app.services.labels.list_labels(store_id, "", "", 100) if r.label_id == mac]
    shown = simulator.shown(mac)
    tag_type = tag_type_of(0x01, TAG_TYPES[0x01])
    assert row.desired is not None
    assert tag_type is not None
    return shown is not None and shown.hash == expected_hash(row.desired, tag_type)


async def sync_until_settled(app: PricingApp, *simulators: OpenEPaperLinkSimulator | BatchSimulator) -> None:
    """Drive the rounds a running service repeats: push, radio check-in, poll — until nothing moves."""
    labels = app.services.labels
    for _ in range(10):
        pushed = await labels.push_due()
        for simulator in simulators:
            simulator.tick()
        polled = await labels.poll_sent()
        if not pushed and not polled:
            return


async def test_after_a_scheduled_change_fires_the_book_delta_the_api_and_every_label_agree(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    macs = generate_macs(3)
    oepl = OpenEPaperLinkSimulator(macs)
    vendor = BatchSimulator(["B-1", "B-2", "B-3"])
    async with running(oepl) as oepl_url, running(vendor) as vendor_url:
        await put_store(app, "S001", station_kind="openepaperlink", station_url=oepl_url)
        await put_store(app, "S002", station_kind="batch", station_url=vendor_url)
        for sku in ("SKU-A", "SKU-B", "SKU-C"):
            await put_item(app, sku, cost_fen=500)
            await set_prices(app, sku, 1000)
        for mac, sku in zip(macs, ("SKU-A", "SKU-A", "SKU-B"), strict=True):
            await put_label(stub, "S001", mac, sku)
        for label_id, sku in (("B-1", "SKU-A"), ("B-2", "SKU-B"), ("B-3", "SKU-C")):
            await stub.PutLabel(
                pb.PutLabelRequest(
                    request_id=request_id(), store_id="S002", label_id=label_id, sku=sku, actor=store_manager("S002")
                ),
                timeout=10,
            )
        await sync_until_settled(app, oepl, vendor)
        assert {label.state for store in ("S001", "S002") for label in await labels_of(stub, store)} == {
            pb.LABEL_SYNC_STATE_ACKNOWLEDGED
        }
        held = {store: await book(stub, store) for store in ("S001", "S002")}

        # Chain-wide for SKU-A, S002 only for SKU-B, both an hour ahead.
        moment = clock.now() + timedelta(hours=1)
        chain = await stub.SchedulePriceChange(
            pb.SchedulePriceChangeRequest(
                request_id=request_id(), sku="SKU-A", price=cny(880), effective_at=stamp(moment), actor=HQ
            ),
            timeout=10,
        )
        local = await stub.SchedulePriceChange(
            pb.SchedulePriceChangeRequest(
                request_id=request_id(),
                sku="SKU-B",
                price=cny(950),
                effective_at=stamp(moment),
                store_ids=["S002"],
                actor=store_manager("S002"),
            ),
            timeout=10,
        )
        assert chain.change.state == pb.PRICE_CHANGE_STATE_SCHEDULED

        # Not yet: nothing moves before the moment.
        clock.advance(minutes=59)
        assert await app.services.scheduler.run_due() == 0
        assert await effective(stub, "SKU-A", "S001") == 1000

        clock.advance(minutes=1)
        assert await app.services.scheduler.run_due() == 3  # SKU-A in two stores, SKU-B in one
        for store_id, expected in (
            ("S001", {"SKU-A": 880, "SKU-B": 1000, "SKU-C": 1000}),
            ("S002", {"SKU-A": 880, "SKU-B": 950, "SKU-C": 1000}),
        ):
            delta = await book(stub, store_id, since=held[store_id].version)
            assert delta.delta
            assert delta.version == held[store_id].version + 1
            applied = as_prices(held[store_id].entries) | as_prices(delta.entries)
            assert applied == expected == as_prices((await book(stub, store_id)).entries)
            for sku, price in expected.items():
                assert await effective(stub, sku, store_id) == price
        changes = await stub.ListPriceChanges(pb.ListPriceChangesRequest(sku="SKU-B"), timeout=10)
        assert [(c.change_id, c.state) for c in changes.changes] == [
            (local.change.change_id, pb.PRICE_CHANGE_STATE_APPLIED)
        ]

        await sync_until_settled(app, oepl, vendor)
        for store_id, simulator in (("S001", oepl), ("S002", vendor)):
            pos = as_prices((await book(stub, store_id)).entries)
            for label in await labels_of(stub, store_id):
                assert label.state == pb.LABEL_SYNC_STATE_ACKNOWLEDGED
                assert label.acknowledged_price.minor_units == pos[label.sku]
                if isinstance(simulator, OpenEPaperLinkSimulator):  # a picture: compare it with the one drawn
                    assert await oepl_shows_desired(app, simulator, store_id, label.label_id)
                else:
                    shown = simulator.displayed(label.label_id)
                    assert shown is not None
                    assert shown.price_fen == pos[label.sku]
            audit = await stub.ListLabelMismatches(pb.ListLabelMismatchesRequest(store_id=store_id), timeout=10)
            assert (audit.label_count, audit.mismatch_count, audit.mismatch_rate.value) == (3, 0, "0")

        # The events: one PriceChanged per store and SKU, with the store's new version and the change as cause.
        async with app.services.pricing._uow() as uow:
            rows = (
                (
                    await uow.session.execute(
                        text(
                            "SELECT subject FROM outbox WHERE subject LIKE 'retail.pricing.v1.price_changed.%' "
                            "AND occurred_at >= :moment"
                        ),
                        {"moment": moment},
                    )
                )
                .scalars()
                .all()
            )
        assert sorted(rows) == [
            "retail.pricing.v1.price_changed.S001",
            "retail.pricing.v1.price_changed.S002",
            "retail.pricing.v1.price_changed.S002",
        ]


async def test_a_label_offline_during_a_change_catches_up_when_it_returns(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    vendor = BatchSimulator(["L-ON", "L-OFF"])
    async with running(vendor) as url:
        await put_store(app, "S010", station_kind="batch", station_url=url)
        await put_item(app, "SKU-O", cost_fen=100)
        await set_prices(app, "SKU-O", 600)
        for label_id in ("L-ON", "L-OFF"):
            await put_label(stub, "S010", label_id, "SKU-O")
        await sync_until_settled(app, vendor)

        vendor.set_online("L-OFF", False)
        await stub.SchedulePriceChange(
            pb.SchedulePriceChangeRequest(
                request_id=request_id(), sku="SKU-O", price=cny(450), effective_at=stamp(clock.now()), actor=HQ
            ),
            timeout=10,
        )
        await app.services.scheduler.run_due()
        await sync_until_settled(app, vendor)
        states = {label.label_id: label for label in await labels_of(stub, "S010")}
        assert states["L-ON"].state == pb.LABEL_SYNC_STATE_ACKNOWLEDGED
        assert states["L-OFF"].state == pb.LABEL_SYNC_STATE_SENT
        assert states["L-OFF"].acknowledged_price.minor_units == 600  # still shows the old price

        # Past the audit deadline: it is reported, with what the tills charge.
        clock.advance(seconds=301)
        audit = await stub.ListLabelMismatches(pb.ListLabelMismatchesRequest(store_id="S010"), timeout=10)
        assert [(m.label.label_id, m.reason, m.pos_price.minor_units) for m in audit.mismatches] == [
            ("L-OFF", pb.MISMATCH_REASON_PRICE_DIFFERS, 450)
        ]
        assert audit.mismatch_rate.value == "0.5"

        # Retries while it is away run out: given up, and still reported.
        for _ in range(6):
            clock.advance(seconds=200)
            await app.services.labels.poll_sent()
            await app.services.labels.push_due()
        given_up = await labels_of(stub, "S010", pb.LABEL_SYNC_STATE_GIVEN_UP)
        assert [label.label_id for label in given_up] == ["L-OFF"]
        assert given_up[0].last_error

        # It returns: the status round sees it online, it is pushed again and confirms.
        vendor.set_online("L-OFF", True)
        await app.services.labels.refresh_status()
        await sync_until_settled(app, vendor)
        states = {label.label_id: label for label in await labels_of(stub, "S010")}
        assert states["L-OFF"].state == pb.LABEL_SYNC_STATE_ACKNOWLEDGED
        assert states["L-OFF"].acknowledged_price.minor_units == 450
        shown = vendor.displayed("L-OFF")
        assert shown is not None
        assert shown.price_fen == 450
        audit = await stub.ListLabelMismatches(pb.ListLabelMismatchesRequest(store_id="S010"), timeout=10)
        assert (audit.mismatch_count, list(audit.mismatches)) == (0, [])


async def test_a_failing_station_is_retried_with_backoff_then_given_up_reported_and_still_tried_slowly(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    broken = BatchSimulator(["X-1"])
    healthy = BatchSimulator(["H-1"])
    async with running(broken) as broken_url, running(healthy) as healthy_url:
        await put_store(app, "S020", station_kind="batch", station_url=broken_url)
        await put_store(app, "S021", station_kind="batch", station_url=healthy_url)
        await put_item(app, "SKU-F", cost_fen=100)
        await set_prices(app, "SKU-F", 300)
        broken.mode = Mode.FAILING
        await put_label(stub, "S020", "X-1", "SKU-F")
        await put_label(stub, "S021", "H-1", "SKU-F")

        await app.services.labels.push_due()
        healthy.tick()
        await app.services.labels.poll_sent()
        [failed] = await labels_of(stub, "S020")
        assert (failed.state, failed.attempts) == (pb.LABEL_SYNC_STATE_FAILED, 1)
        assert "unavailable" in failed.last_error
        [fine] = await labels_of(stub, "S021")
        assert fine.state == pb.LABEL_SYNC_STATE_ACKNOWLEDGED  # the broken store never held it up

        # Backoff: not retried before its time (5 s, then 10 s).
        assert await app.services.labels.push_due() == 0
        clock.advance(seconds=5)
        assert await app.services.labels.push_due() == 1
        clock.advance(seconds=9)
        assert await app.services.labels.push_due() == 0
        clock.advance(seconds=1)
        assert await app.services.labels.push_due() == 1
        [given_up] = await labels_of(stub, "S020")
        assert (given_up.state, given_up.attempts) == (pb.LABEL_SYNC_STATE_GIVEN_UP, 3)
        assert given_up.acknowledged_price.minor_units == 0
        assert not given_up.HasField("acknowledged_at")
        # Given up, it is still tried, but only once per given-up interval (1,800 s here).
        clock.advance(seconds=1799)
        assert await app.services.labels.push_due() == 0
        clock.advance(seconds=1)
        assert await app.services.labels.push_due() == 1
        [still_given_up] = await labels_of(stub, "S020")
        assert (still_given_up.state, still_given_up.attempts) == (pb.LABEL_SYNC_STATE_GIVEN_UP, 4)
        audit = await stub.ListLabelMismatches(pb.ListLabelMismatchesRequest(store_id="S020"), timeout=10)
        assert [(m.label.label_id, m.reason) for m in audit.mismatches] == [
            ("X-1", pb.MISMATCH_REASON_NOT_ACKNOWLEDGED)
        ]
        async with app.services.pricing._uow() as uow:
            given_up_events = (
                await uow.session.execute(
                    text("SELECT count(*) FROM outbox WHERE subject = 'retail.pricing.v1.label_sync_given_up.S020'")
                )
            ).scalar()
        assert given_up_events == 1, "given up is reported once, not on every slow retry"

        # The station recovers; its label never went offline in the station's eyes, so only the
        # slow retry brings it in step (before SKU-F's price next changes).
        broken.mode = Mode.NORMAL
        clock.advance(seconds=1800)
        assert await app.services.labels.push_due() == 1
        broken.tick()
        await app.services.labels.poll_sent()
        [recovered] = await labels_of(stub, "S020")
        assert (recovered.state, recovered.acknowledged_price.minor_units) == (pb.LABEL_SYNC_STATE_ACKNOWLEDGED, 300)
        audit = await stub.ListLabelMismatches(pb.ListLabelMismatchesRequest(store_id="S020"), timeout=10)
        assert (audit.mismatch_count, list(audit.mismatches)) == (0, [])


async def test_a_station_answering_garbage_or_hanging_never_stalls_the_other_stores(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub
) -> None:
    garbage, hanging, healthy = BatchSimulator(["G-1"]), BatchSimulator(["D-1"]), BatchSimulator(["OK-1"])
    async with running(garbage) as g_url, running(hanging) as d_url, running(healthy) as ok_url:
        for store_id, url in (("S030", g_url), ("S031", d_url), ("S032", ok_url)):
            await put_store(app, store_id, station_kind="batch", station_url=url)
        await put_item(app, "SKU-G", cost_fen=100)
        await set_prices(app, "SKU-G", 300)
        garbage.mode, hanging.mode = Mode.GARBAGE, Mode.DOWN
        for store_id, label_id in (("S030", "G-1"), ("S031", "D-1"), ("S032", "OK-1")):
            await put_label(stub, store_id, label_id, "SKU-G")
        assert await app.services.labels.push_due() == 3
        healthy.tick()
        await app.services.labels.poll_sent()
        states = {store: (await labels_of(stub, store))[0].state for store in ("S030", "S031", "S032")}
        assert states == {
            "S030": pb.LABEL_SYNC_STATE_FAILED,
            "S031": pb.LABEL_SYNC_STATE_FAILED,
            "S032": pb.LABEL_SYNC_STATE_ACKNOWLEDGED,
        }


async def test_bad_input_gets_a_precise_error_and_changes_nothing(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    await put_store(app, "S040")
    await put_store(app, "S041")
    await put_item(app, "SKU-X", cost_fen=500)
    await put_item(app, "SKU-ONLY41", cost_fen=500, store_ids=["S041"])
    before = await set_prices(app, "SKU-X", 1000)
    version = (await book(stub, "S040")).version
    now = clock.now()

    negative = pb.SetPricesRequest(request_id=request_id(), sku="SKU-X", base_price=cny(-1), actor=HQ)
    await refused(stub.SetPrices(negative, timeout=10), grpc.StatusCode.INVALID_ARGUMENT, "invalid-argument")
    overlapping = pb.SetPricesRequest(
        request_id=request_id(),
        sku="SKU-X",
        base_price=cny(1000),
        actor=HQ,
        promotions=[
            pb.Promotion(
                name="a",
                percent_off=money_pb2.Decimal(value="10"),
                valid_from=stamp(now),
                valid_to=stamp(now + timedelta(days=7)),
            ),
            pb.Promotion(
                name="b",
                fixed_price=cny(700),
                valid_from=stamp(now + timedelta(days=3)),
                valid_to=stamp(now + timedelta(days=9)),
            ),
        ],
    )
    message = await refused(
        stub.SetPrices(overlapping, timeout=10), grpc.StatusCode.INVALID_ARGUMENT, "overlapping-rules"
    )
    assert "same priority" in message
    below_cost = pb.SetPricesRequest(request_id=request_id(), sku="SKU-X", base_price=cny(450), actor=HQ)
    await refused(stub.SetPrices(below_cost, timeout=10), grpc.StatusCode.FAILED_PRECONDITION, "below-cost")
    unknown_store = pb.SetPricesRequest(
        request_id=request_id(),
        sku="SKU-X",
        base_price=cny(1000),
        actor=HQ,
        overrides=[pb.RegularPrice(scope=pb.RuleScope(store_id="S999"), price=cny(900))],
    )
    await refused(stub.SetPrices(unknown_store, timeout=10), grpc.StatusCode.NOT_FOUND, "unknown-store")
    past = pb.SchedulePriceChangeRequest(
        request_id=request_id(), sku="SKU-X", price=cny(900), effective_at=stamp(now - timedelta(minutes=1)), actor=HQ
    )
    await refused(stub.SchedulePriceChange(past, timeout=10), grpc.StatusCode.INVALID_ARGUMENT, "effective-at-in-past")
    for label_request, code, reason in (
        (pb.PutLabelRequest(store_id="S040", label_id="L1", sku="NOPE"), grpc.StatusCode.NOT_FOUND, "unknown-sku"),
        (
            pb.PutLabelRequest(store_id="S040", label_id="L1", sku="SKU-ONLY41"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "sku-not-listed",
        ),
        (pb.PutLabelRequest(store_id="S999", label_id="L1", sku="SKU-X"), grpc.StatusCode.NOT_FOUND, "unknown-store"),
    ):
        label_request.request_id = request_id()
        label_request.actor.CopyFrom(HQ)
        await refused(stub.PutLabel(label_request, timeout=10), code, reason)

    after = await stub.GetPrices(pb.GetPricesRequest(sku="SKU-X"), timeout=10)
    assert after.prices == before
    assert (await book(stub, "S040")).version == version
    assert await labels_of(stub, "S040") == []
    assert (await stub.ListPriceChanges(pb.ListPriceChangesRequest(sku="SKU-X"), timeout=10)).changes == []


async def test_a_price_below_cost_with_an_explicit_override_is_accepted_and_audited(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub
) -> None:
    await put_store(app, "S050")
    await put_item(app, "SKU-CLEAR", cost_fen=500)
    await set_prices(app, "SKU-CLEAR", 990)
    prices = await set_prices(app, "SKU-CLEAR", 400, override_reason="clearance: end of season")
    assert prices.base_price.minor_units == 400
    assert await effective(stub, "SKU-CLEAR", "S050") == 400
    async with app.services.pricing._uow() as uow:
        audited = (
            await uow.session.execute(
                text(
                    "SELECT actor, detail ->> 'violation', detail ->> 'reason' FROM price_audit "
                    "WHERE sku = 'SKU-CLEAR' AND action = 'guard_rail_override'"
                )
            )
        ).all()
        events = (
            await uow.session.execute(
                text("SELECT count(*) FROM outbox WHERE subject = 'retail.pricing.v1.price_guard_rail_overridden'")
            )
        ).scalar()
    assert [tuple(row) for row in audited] == [("HQ-PRICING", "below_cost", "clearance: end of season")]
    assert events == 1


async def test_the_book_answers_not_modified_for_the_current_version_and_a_delta_after_a_change(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    await put_store(app, "S060", price_groups=["EAST"])
    for sku in ("P-1", "P-2", "P-3"):
        await put_item(app, sku, cost_fen=100)
        await set_prices(app, sku, 500)
    full = await book(stub, "S060")
    assert as_prices(full.entries) == {"P-1": 500, "P-2": 500, "P-3": 500}
    same = await stub.GetPriceBook(pb.GetPriceBookRequest(store_id="S060", known_version=full.version), timeout=10)
    assert same.not_modified
    assert (list(same.entries), same.version) == ([], full.version)

    # A promotion for the store's group starting in a day: the book moves only when it starts, and back when it ends.
    start = clock.now() + timedelta(days=1)
    await set_prices(
        app,
        "P-2",
        500,
        promotions=[
            pb.Promotion(
                name="8折",
                scope=pb.RuleScope(store_group="EAST"),
                percent_off=money_pb2.Decimal(value="20"),
                valid_from=stamp(start),
                valid_to=stamp(start + timedelta(days=2)),
            )
        ],
    )
    # Nothing is charged differently yet; the entry only learns when it will change.
    announced = await book(stub, "S060", since=full.version)
    assert [
        (entry.sku, entry.unit_price.minor_units, entry.valid_until.ToDatetime(tzinfo=UTC))
        for entry in announced.entries
    ] == [("P-2", 500, start)]
    clock.advance(days=1)
    await app.services.scheduler.run_due()
    delta = await book(stub, "S060", since=announced.version)
    assert [
        (entry.sku, entry.unit_price.minor_units, entry.regular_price.minor_units, entry.promotion.display_text)
        for entry in delta.entries
    ] == [("P-2", 400, 500, "8折")]
    assert await effective(stub, "P-2", "S060") == 400
    clock.advance(days=2)
    await app.services.scheduler.run_due()
    assert as_prices((await book(stub, "S060")).entries)["P-2"] == 500

    # Delisting removes the entry: the delta says so.
    before_delist = (await book(stub, "S060")).version
    await put_item(app, "P-3", cost_fen=100, active=False)
    delta = await book(stub, "S060", since=before_delist)
    assert [(entry.sku, entry.removed) for entry in delta.entries] == [("P-3", True)]
    assert "P-3" not in as_prices((await book(stub, "S060")).entries)


async def test_one_push_round_pushes_every_due_label_a_claim_at_a_time_several_claims_at_once(
    pricing_settings: Callable[..., PricingSettings], clock: Clock
) -> None:
    """Seven labels in two stores, claims of two, two claims pushed at once: one call of push_due
    claims and pushes all seven (four claims), and every label then confirms its content."""
    app = await start_pricing_app(pricing_settings(label_push_batch=2, label_push_rounds=2), clock)
    label_ids = {"S030": [f"A-{n}" for n in range(4)], "S031": [f"B-{n}" for n in range(3)]}
    first, second = BatchSimulator(label_ids["S030"]), BatchSimulator(label_ids["S031"])
    try:
        async with running(first) as first_url, running(second) as second_url:
            await put_store(app, "S030", station_kind="batch", station_url=first_url)
            await put_store(app, "S031", station_kind="batch", station_url=second_url)
            await put_item(app, "SKU-P", cost_fen=100)
            await set_prices(app, "SKU-P", 300)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.server.bound_port}") as channel:
                stub = pb_grpc.PricingServiceStub(channel)
                for store_id, ids in label_ids.items():
                    for label_id in ids:
                        await put_label(stub, store_id, label_id, "SKU-P")
                assert await app.services.labels.push_due() == 7
                assert await app.services.labels.push_due() == 0
                first.tick()
                second.tick()
                await app.services.labels.poll_sent()
                for store_id, count in (("S030", 4), ("S031", 3)):
                    shown = [
                        (label.state, label.acknowledged_price.minor_units) for label in await labels_of(stub, store_id)
                    ]
                    assert shown == [(pb.LABEL_SYNC_STATE_ACKNOWLEDGED, 300)] * count
    finally:
        await app.server.stop()
        await app.close()


async def test_a_status_round_writes_only_the_labels_whose_report_changed(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub
) -> None:
    """Every acknowledgement round asks about every sent label: a report that only says "checked in
    again" is not a row write, until the stored check-in trails by the granularity; a changed
    battery or online state is written at once, and only for its label."""
    station_time = [1_800_000_000.0]
    vendor = BatchSimulator(["L-A", "L-B"], clock=lambda: station_time[0])

    async def rows() -> dict[str, tuple[str, bool, int | None, float | None]]:
        async with app.services.pricing._uow() as uow:
            found = await uow.session.execute(
                text(
                    "SELECT label_id, xmin::text AS version, online, battery_mv, last_seen FROM label "
                    "WHERE store_id = 'S070'"
                )
            )
            return {
                row.label_id: (row.version, row.online, row.battery_mv, row.last_seen and row.last_seen.timestamp())
                for row in found
            }

    async with running(vendor) as url:
        await put_store(app, "S070", station_kind="batch", station_url=url)
        await put_item(app, "SKU-ST", cost_fen=100)
        await set_prices(app, "SKU-ST", 500)
        for label_id in ("L-A", "L-B"):
            await put_label(stub, "S070", label_id, "SKU-ST")
        assert await app.services.labels.refresh_status() == 2
        first = await rows()
        assert {label: row[1:] for label, row in first.items()} == {
            "L-A": (True, 2950, station_time[0]),
            "L-B": (True, 2950, station_time[0]),
        }

        # Checked in again 59 s later: reported, not written.
        station_time[0] += 59
        vendor.tick()
        assert await app.services.labels.refresh_status() == 2
        assert await rows() == first

        # One label's battery drops: that label is written, with the check-in it reports.
        vendor.set_battery("L-A", 2400)
        assert await app.services.labels.refresh_status() == 2
        second = await rows()
        assert second["L-A"][0] != first["L-A"][0]
        assert second["L-A"][1:] == (True, 2400, station_time[0])
        assert second["L-B"] == first["L-B"]

        # A minute after L-B's stored check-in: written.
        station_time[0] += 1
        vendor.tick()
        await app.services.labels.refresh_status()
        third = await rows()
        assert third["L-A"] == second["L-A"]
        assert third["L-B"][0] != first["L-B"][0]
        assert third["L-B"][1:] == (True, 2950, station_time[0])

        # Going offline is written at once.
        vendor.set_online("L-B", False)
        await app.services.labels.refresh_status()
        fourth = await rows()
        assert fourth["L-A"] == third["L-A"]
        assert fourth["L-B"][1] is False


async def stores_with_labels_of(
    app: PricingApp,
    stub: pb_grpc.PricingServiceAsyncStub,
    sku: str,
    stores: dict[str, tuple[str, BatchSimulator]],
) -> None:
    """Each store on its batch station (URL, simulator), ``sku`` at 7.00, and every label of the
    station's showing it."""
    for store_id, (url, _) in stores.items():
        await put_store(app, store_id, station_kind="batch", station_url=url)
    await put_item(app, sku, cost_fen=100)
    await set_prices(app, sku, 700)
    for store_id, (_, station) in stores.items():
        for label_id in station.label_ids:
            await put_label(stub, store_id, label_id, sku)


async def test_a_push_round_records_every_stores_answers_in_one_transaction(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub
) -> None:
    """A round's stores answer together, so their tickets are written by one transaction (one commit
    per round, not one per store): every label row of the round carries the same xmin."""
    first, second = BatchSimulator(["R-1", "R-2"]), BatchSimulator(["Q-1", "Q-2"])
    async with running(first) as first_url, running(second) as second_url:
        await stores_with_labels_of(app, stub, "SKU-R", {"S080": (first_url, first), "S081": (second_url, second)})
        assert await app.services.labels.push_due() == 4
        async with app.services.pricing._uow() as uow:
            rows = (
                await uow.session.execute(
                    text(
                        "SELECT store_id, label_id, state, ticket, xmin::text AS version FROM label "
                        "WHERE store_id IN ('S080', 'S081') ORDER BY store_id, label_id"
                    )
                )
            ).all()
        assert [(row.store_id, row.label_id, row.state) for row in rows] == [
            ("S080", "R-1", "sent"),
            ("S080", "R-2", "sent"),
            ("S081", "Q-1", "sent"),
            ("S081", "Q-2", "sent"),
        ]
        assert all(row.ticket for row in rows)
        assert len({row.version for row in rows}) == 1


async def test_a_round_that_cannot_record_leaves_the_other_rounds_to_finish_their_pushes(
    app: PricingApp,
    stub: pb_grpc.PricingServiceAsyncStub,
    pricing_settings: Callable[..., PricingSettings],
    clock: Clock,
) -> None:
    """Two push rounds at once: the first cannot record its answers (the database refuses them),
    while the second still waits for a hanging station. The second is not cancelled mid-push,
    leaving its labels claimed but never pushed until the acknowledgement timeout: it ends, and
    records its station's silence as failures to retry; the push reports the first's error."""
    fast, hanging = BatchSimulator(["F-1", "F-2"]), BatchSimulator(["H-1", "H-2"])
    hanging.mode = Mode.DOWN
    async with running(fast) as fast_url, running(hanging) as hanging_url:
        await stores_with_labels_of(app, stub, "SKU-F", {"S090": (fast_url, fast), "S091": (hanging_url, hanging)})
        async with app.services.pricing._uow() as uow:
            # S090's labels are claimed first, and its tickets are refused.
            await uow.session.execute(
                text("UPDATE label SET next_attempt_at = next_attempt_at - interval '1 minute' WHERE store_id = 'S090'")
            )
            await uow.session.execute(
                text("""
                    CREATE FUNCTION refuse_s090_tickets() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        IF NEW.store_id = 'S090' AND NEW.ticket <> '' THEN
                            RAISE EXCEPTION 'tickets of S090 refused by the test';
                        END IF;
                        RETURN NEW;
                    END $$
                """)
            )
            await uow.session.execute(
                text("CREATE TRIGGER refuse BEFORE UPDATE ON label FOR EACH ROW EXECUTE FUNCTION refuse_s090_tickets()")
            )
            await uow.commit()
        policy = dataclasses.replace(label_policy(pricing_settings()), push_batch=2)
        stations = Stations(policy)
        try:
            with pytest.raises(DBAPIError, match="refused by the test"):
                await LabelSync(
                    app.services.pricing._uow, stations, policy, clock=app.services.labels._clock
                ).push_due()
        finally:
            await stations.close()
        assert fast.updates_received == 2
        hanging_labels = await labels_of(stub, "S091")
        assert {label.state for label in hanging_labels} == {pb.LABEL_SYNC_STATE_FAILED}
        assert all("station unavailable" in label.last_error for label in hanging_labels)
