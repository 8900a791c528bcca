"""The OpenEPaperLink adapter against the simulated access point: push, check-in, acknowledge."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from services.pricing.adapters.esl import LabelContent, LabelPush, LabelStation, PushState, open_station
from services.pricing.adapters.esl.openepaperlink import parse_ticket, render_template
from tools.esl_simulators import running
from tools.esl_simulators.openepaperlink import OpenEPaperLinkSimulator, generate_macs


def content(price_fen: int = 1290, *, regular: int | None = None, promotion: str = "") -> LabelContent:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    return LabelContent(
        sku=sku,
        name="Oolong tea 500ml",
        unit="bottle",
        barcode="6901234567892",
        currency="CNY",
        price_fen=price_fen,
        regular_price_fen=regular,
        promotion_text=promotion,
        template="promo" if regular is not None else "standard",
    )


@pytest.fixture
def macs() -> list[str]:
    return generate_macs(4, prefix=uuid.uuid4().int & 0xFFFF)


@pytest.fixture
def simulator(macs: list[str]) -> OpenEPaperLinkSimulator:
    return OpenEPaperLinkSimulator(macs)


@pytest.fixture
async def station(simulator: OpenEPaperLinkSimulator) -> AsyncIterator[LabelStation]:
    async with running(simulator) as base_url:
        adapter = open_station("openepaperlink", base_url, timeout=2.0)
        try:
            yield adapter
        finally:
            await adapter.close()


async def test_pushed_price_is_acknowledged_once_the_tag_checks_in(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, macs: list[str]
) -> None:
    pushes = [LabelPush(mac, content(1000 + i)) for i, mac in enumerate(macs)]

    results = await station.push(pushes)

    assert [r.label_id for r in results] == macs
    assert all(r.state is PushState.ACCEPTED and r.ticket for r in results)
    tickets = [r.ticket for r in results]
    before = await station.status(macs, tickets)
    assert all(s.pending and s.acknowledged_digest is None for s in before)

    assert simulator.tick() == len(macs)

    after = await station.status(macs, tickets)
    assert [s.acknowledged_digest for s in after] == [p.content.digest() for p in pushes]
    assert not any(s.pending for s in after)
    assert all(s.online and s.battery_mv == 2900 and s.last_seen is not None for s in after)
    shown = simulator.displayed(macs[2])
    assert shown is not None
    assert (shown.digest, shown.price_fen) == (pushes[2].content.digest(), 1002)


async def test_acknowledgement_survives_a_restart_of_the_pricing_service(
    simulator: OpenEPaperLinkSimulator, macs: list[str]
) -> None:
    push = LabelPush(macs[0], content())
    async with running(simulator) as base_url:
        first = open_station("openepaperlink", base_url)
        [result] = await first.push([push])
        await first.close()
        simulator.tick()

        restarted = open_station("openepaperlink", base_url)
        try:
            [status] = await restarted.status([macs[0]], [result.ticket])
            [without_ticket] = await restarted.status([macs[0]])
        finally:
            await restarted.close()

    assert status.acknowledged_digest == push.content.digest()
    assert without_ticket.acknowledged_digest is None  # nothing to compare with: unknown, not guessed


async def test_a_newer_upload_makes_the_tag_pending_again(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, macs: list[str]
) -> None:
    old, new = LabelPush(macs[0], content(500)), LabelPush(macs[0], content(450))
    [old_result] = await station.push([old])
    simulator.tick()
    [new_result] = await station.push([new])

    [old_status, new_status] = await station.status([macs[0], macs[0]], [old_result.ticket, new_result.ticket])
    assert new_status.pending
    assert new_status.acknowledged_digest is None
    assert old_status.pending  # the tag is about to change: the old content is no longer a settled state

    simulator.tick()
    [settled] = await station.status([macs[0]], [new_result.ticket])
    assert settled.acknowledged_digest == new.content.digest()
    displayed = simulator.displayed(macs[0])
    assert displayed is not None
    assert displayed.price_fen == 450


async def test_upload_not_yet_rendered_by_the_access_point_is_still_pending(macs: list[str]) -> None:
    simulator = OpenEPaperLinkSimulator(macs, render_on_upload=False)
    push = LabelPush(macs[0], content(120))
    async with running(simulator) as base_url:
        station = open_station("openepaperlink", base_url)
        try:
            [result] = await station.push([push])
            simulator.tick()  # a check-in before the AP rendered our upload delivers nothing
            [unrendered] = await station.status([macs[0]], [result.ticket])
            assert simulator.render() == 1
            simulator.tick()
            [delivered] = await station.status([macs[0]], [result.ticket])
        finally:
            await station.close()

    assert (unrendered.pending, unrendered.acknowledged_digest) == (True, None)
    assert (delivered.pending, delivered.acknowledged_digest) == (False, push.content.digest())


async def test_offline_tag_keeps_the_update_pending_until_it_is_back(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, macs: list[str]
) -> None:
    mac = macs[1]
    simulator.set_online(mac, False, last_seen_ago=3600)
    push = LabelPush(mac, content(799))

    [result] = await station.push([push])
    simulator.tick()

    assert result.state is PushState.ACCEPTED
    [offline] = await station.status([mac], [result.ticket])
    assert (offline.online, offline.pending, offline.acknowledged_digest) == (False, True, None)
    assert simulator.displayed(mac) is None

    simulator.set_online(mac, True)
    simulator.tick()

    [back] = await station.status([mac], [result.ticket])
    assert (back.online, back.pending, back.acknowledged_digest) == (True, False, push.content.digest())


async def test_unknown_tag_fails_alone_and_reports_its_status_as_unknown(
    station: LabelStation, simulator: OpenEPaperLinkSimulator, macs: list[str]
) -> None:
    stranger, malformed = "FFFFFFFFFFFFFFFF", "not-a-mac"

    results = await station.push(
        [LabelPush(stranger, content()), LabelPush(macs[0], content()), LabelPush(malformed, content())]
    )

    assert [r.state for r in results] == [PushState.FAILED, PushState.ACCEPTED, PushState.FAILED]
    assert "unknown" in results[0].error
    assert "MAC" in results[2].error
    statuses = await station.status([stranger, macs[0], malformed])
    assert statuses[0].error
    assert not statuses[0].online
    assert statuses[0].acknowledged_digest is None
    assert statuses[1].error == ""
    assert statuses[1].online
    assert statuses[2].error
    assert simulator.requests["jsonupload"] == 1


def test_ticket_carries_the_digest_and_the_update_count() -> None:
    digest = content().digest()

    ticket = parse_ticket(f"oepl1:{digest}:7")
    assert ticket is not None
    assert ticket.updatecount_before == 7
    assert parse_ticket(digest) is not None
    assert parse_ticket("T00000001") is None
    assert parse_ticket(f"oepl1:{digest}:-1") is None


def test_template_crosses_out_the_regular_price_during_a_promotion() -> None:
    promotion = content(990, regular=1290, promotion="8折")
    promo = render_template(promotion)
    plain = render_template(content(1290))

    texts = [e["text"] for e in promo if isinstance(e.get("text"), list)]
    regular = next(t for t in texts if isinstance(t, list) and t[2] == "12.90")
    strikes = [e["line"] for e in promo if isinstance(e.get("line"), list)]
    assert isinstance(regular, list)
    assert any(
        isinstance(line, list) and line[0] <= regular[0] < line[2] and regular[1] < line[1] < regular[1] + 14
        for line in strikes
    )  # a line through the middle of the 14 px regular price
    assert any(isinstance(t, list) and t[2] == "9.90" and t[4] == 2 for t in texts)  # the promotion price in red
    assert any(isinstance(t, list) and t[2] == "8折" for t in texts)
    plain_lines = [e["line"] for e in plain if isinstance(e.get("line"), list)]
    assert all(isinstance(line, list) and line[1] > 100 for line in plain_lines)  # only the footer rule
    assert promo[0] == {
        "esl": {"digest": promotion.digest(), "sku": promotion.sku, "price_fen": 990, "template": "promo"}
    }
