"""Shelf labels on an OpenEPaperLink access point that behaves as the firmware does: what the
service records and what the parity audit reports always agree with what the tag shows."""

from __future__ import annotations

import uuid

from retail.pricing.v1 import pricing_service_pb2 as pb
from retail.pricing.v1 import pricing_service_pb2_grpc as pb_grpc

from services.pricing.adapters.esl.openepaperlink import expected_hash, tag_type_of
from services.pricing.bootstrap import PricingApp
from tests.integration.pricing.conftest import Clock, put_item, put_label, put_store, set_prices
from tools.esl_simulators import Mode, running
from tools.esl_simulators.openepaperlink import TAG_TYPES, OpenEPaperLinkSimulator, generate_macs

MINUTE = 60.0


async def shown_price(app: PricingApp, simulator: OpenEPaperLinkSimulator, store_id: str, mac: str) -> int | None:
    """The price the tag shows, found by comparing its hash with the pictures of the label's
    desired and acknowledged contents (``None``: it shows neither)."""
    shown = simulator.shown(mac)
    if shown is None:
        return None
    tag_type = tag_type_of(0x01, TAG_TYPES[0x01])
    assert tag_type is not None
    [row] = [r for r in await app.services.labels.list_labels(store_id, "", "", 100) if r.label_id == mac]
    assert row.desired is not None
    if shown.hash == expected_hash(row.desired, tag_type):
        return row.desired.price_fen
    return -1


async def audit(stub: pb_grpc.PricingServiceAsyncStub, store_id: str) -> dict[str, tuple[int, int]]:
    """label → (reason, till price) of every mismatch the parity audit reports."""
    answer = await stub.ListLabelMismatches(pb.ListLabelMismatchesRequest(store_id=store_id), timeout=10)
    return {m.label.label_id: (m.reason, m.pos_price.minor_units) for m in answer.mismatches}


async def label(stub: pb_grpc.PricingServiceAsyncStub, store_id: str, mac: str) -> pb.Label:
    answer = await stub.ListLabels(pb.ListLabelsRequest(store_id=store_id), timeout=10)
    [found] = [entry for entry in answer.labels if entry.label_id == mac]
    return found


async def test_a_price_reverted_before_the_tag_checked_in_is_audited_truthfully_at_every_step(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    [mac] = generate_macs(1, prefix=uuid.uuid4().int & 0xFFFF)
    simulator = OpenEPaperLinkSimulator([mac])
    labels = app.services.labels
    async with running(simulator) as url:
        await put_store(app, "S101", station_kind="openepaperlink", station_url=url)
        await put_item(app, "SKU-R", cost_fen=100, name="东方树叶 乌龙茶")
        await set_prices(app, "SKU-R", 1000)  # X
        await put_label(stub, "S101", mac, "SKU-R")
        await labels.push_due()
        simulator.tick()
        await labels.poll_sent()
        assert (await label(stub, "S101", mac)).state == pb.LABEL_SYNC_STATE_ACKNOWLEDGED
        x_picture = simulator.shown(mac)
        assert x_picture is not None
        assert await audit(stub, "S101") == {}

        # Y: pushed, drawn once the tag's check-in is near, queued; the tag still shows X.
        await set_prices(app, "SKU-R", 900)
        await labels.push_due()
        simulator.advance(6 * MINUTE)
        assert simulator.pending(mac) == 1
        await labels.poll_sent()
        assert await audit(stub, "S101") == {mac: (pb.MISMATCH_REASON_PRICE_DIFFERS, 900)}  # shows 10.00, tills 9.00

        # Back to X before the tag checked in: the AP would drop X as identical and deliver Y.
        await set_prices(app, "SKU-R", 1000)
        await labels.push_due()
        await labels.poll_sent()
        reverted = await label(stub, "S101", mac)
        # Every check-in from now on: the audit says "matches" only while the tag shows X.
        for _ in range(4):
            simulator.tick()
            clock.advance(seconds=10)
            await labels.poll_sent()
            await labels.push_due()
            shown = simulator.shown(mac)
            assert shown is not None
            found = await audit(stub, "S101")
            current = await label(stub, "S101", mac)
            if shown.hash != x_picture.hash:  # the label shows Y, the tills charge X
                assert current.state != pb.LABEL_SYNC_STATE_ACKNOWLEDGED
                assert found != {}
        assert await shown_price(app, simulator, "S101", mac) == 1000
        assert (await label(stub, "S101", mac)).state == pb.LABEL_SYNC_STATE_ACKNOWLEDGED
        assert await audit(stub, "S101") == {}
        assert reverted.state == pb.LABEL_SYNC_STATE_ACKNOWLEDGED  # confirmed at once: X shown, queue emptied


async def test_a_retry_of_content_the_tag_already_took_is_acknowledged_not_given_up(
    app: PricingApp, stub: pb_grpc.PricingServiceAsyncStub, clock: Clock
) -> None:
    [mac] = generate_macs(1, prefix=uuid.uuid4().int & 0xFFFF)
    simulator = OpenEPaperLinkSimulator([mac])
    labels = app.services.labels
    async with running(simulator) as url:
        await put_store(app, "S102", station_kind="openepaperlink", station_url=url)
        await put_item(app, "SKU-T", cost_fen=100)
        await set_prices(app, "SKU-T", 700)
        await put_label(stub, "S102", mac, "SKU-T")
        await labels.push_due()
        simulator.tick()  # the tag takes it ...
        simulator.mode = Mode.FAILING  # ... but the AP does not answer the status rounds
        clock.advance(seconds=121)
        await labels.poll_sent()
        timed_out = await label(stub, "S102", mac)
        assert timed_out.state == pb.LABEL_SYNC_STATE_FAILED
        assert "not acknowledged in time" in timed_out.last_error

        simulator.mode = Mode.NORMAL
        clock.advance(seconds=5)
        assert await labels.push_due() == 1  # the retry: the AP drops the identical image
        simulator.tick()
        await labels.poll_sent()

        retried = await label(stub, "S102", mac)
        assert retried.state == pb.LABEL_SYNC_STATE_ACKNOWLEDGED
        assert retried.acknowledged_price.minor_units == 700
        assert simulator.skipped == 1
        assert await shown_price(app, simulator, "S102", mac) == 700
        assert await audit(stub, "S102") == {}
