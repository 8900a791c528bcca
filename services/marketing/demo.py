"""The marketing service's part of the demo retailer: what it knows of members, items and their
purchases, three segments, one running campaign with a control group, and a few coupon uses.

Members, items and the purchase history are derived from :class:`~demodata.DemoRetailer` exactly
as the member and pricing demo loaders derive theirs (same ids, tiers, consents, categories,
costs and sale ids), standing in for the events those services would send: it never reads
another service's database. Lifecycle stages use the member context's own rule (its default
thresholds, as of now), so both services agree on a member's stage. The history is kept as
imported purchases (:meth:`Projections.import_purchases`, a bulk import, not the SALES journal).

Everything after that goes through marketing's own application services, with fixed request
ids: the member tags are refreshed; three segments are saved; the first is frozen and a campaign
with a 10% control group is created by one person, approved by another, launched and carried to
``running`` by the background launch; then a handful of today's demo sales
(``MKTDEMO0001``…) redeem treatment members' coupons through the SALES journal handler, and one
more sale re-uses a redeemed code, which becomes a redemption conflict. Loading twice changes
nothing: the projections are loaded only while the demo's segments are not saved yet, and
every command and sale is answered by what it did the first time (so a load interrupted
half way is finished by the next).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text

from demodata import Channel as DemoChannel
from demodata import DemoRetailer, Member, Sale
from servicekit.db import UnitOfWork, create_engine, units_of_work
from servicekit.idempotency import RequestFingerprint
from services.marketing.domain.campaigns import CampaignDraft, CampaignStatus
from services.marketing.domain.offers import Channel, CouponTerms, DiscountKind, Offer
from services.marketing.domain.sales import JournalSale, SaleLine
from services.marketing.domain.segments import parse_rule
from services.marketing.service_layer.campaigns import ApproveCampaign, Campaigns, CreateCampaign, LaunchCampaign
from services.marketing.service_layer.projections import Projections
from services.marketing.service_layer.redemptions import TEXT, CouponRedemptions
from services.marketing.service_layer.scoring import Scoring
from services.marketing.service_layer.segments import CreateSegment, Segments, SnapshotSegment
from services.member.domain.lifecycle import LifecyclePolicy, PurchaseRecord, lifecycle_stage, purchase_facts

DEMO_AUTHOR = "demo-marketer"
DEMO_APPROVER = "demo-manager"
CAMPAIGN_NAME = "Gold members: 10 yuan off 50"
CONTROL_FRACTION_BP = 1_000
REDEMPTIONS = 5
DEMO_SALE_PREFIX = "MKTDEMO"
DAIRY_DEPARTMENT = "C03"
_TIERS = {"normal": "basic", "silver": "silver", "gold": "gold", "platinum": "platinum"}
_CHANNELS = {
    DemoChannel.STORE: Channel.STORE,
    DemoChannel.MINI_PROGRAM: Channel.MINI_PROGRAM,
    DemoChannel.ONLINE: Channel.APP,
    DemoChannel.CLICK_AND_COLLECT: Channel.APP,
}
_CHUNK = 2_000
_HUNDRED = Decimal(100)


def _fen(amount: Decimal) -> int:
    return int(amount * _HUNDRED)


def _request(label: str) -> RequestFingerprint:
    """A fixed request id per demo command, so a repeated load is answered by the first one."""
    request_id = f"marketing-demo:{label}"
    return RequestFingerprint(request_id, "demo", hashlib.sha256(request_id.encode()).digest())


def segment_rules(retailer: DemoRetailer) -> list[tuple[str, str, dict[str, Any]]]:
    """The demo's segments: (name, description, rule). The first is the campaign's audience."""
    dairy = sorted(c.category_code for c in retailer.categories if c.parent_code == DAIRY_DEPARTMENT)
    return [
        (
            "Gold members",
            "Gold and platinum members.",
            {"attribute": "tier", "op": "in", "value": ["gold", "platinum"]},
        ),
        (
            "Dairy buyers at risk",
            "Bought dairy in the last half year and are now at risk or sleeping.",
            {
                "all": [
                    {"attribute": "category_bought", "window_days": 180, "op": "in", "value": dairy},
                    {"attribute": "engagement", "op": "in", "value": ["at_risk", "sleeping"]},
                ]
            },
        ),
        (
            "Lapsed big spenders",
            "Spent 500 yuan or more in the last year but have not bought for 30 days.",
            {
                "all": [
                    {"attribute": "spend_fen", "window_days": 365, "op": ">=", "value": 50_000},
                    {"attribute": "days_since_last_purchase", "op": ">=", "value": 30},
                ]
            },
        ),
    ]


async def load_demo(
    database_url: str,
    retailer: DemoRetailer,
    state_dir: Path | None = None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Load marketing's part of the demo retailer; idempotent."""
    now = clock()
    engine = create_engine(database_url, pool_size=2, max_overflow=0, application_name="demo-loader")
    unit_of_work = units_of_work(engine)
    redemptions = CouponRedemptions(unit_of_work, clock=lambda: now)
    projections = Projections(redemptions)
    segments = Segments(unit_of_work, segment_codec=TEXT, snapshot_codec=TEXT, clock=lambda: now)
    campaigns = Campaigns(unit_of_work, clock=lambda: now)
    scoring = Scoring(unit_of_work, clock=lambda: now)
    try:
        # The projections stand in for other services' events: loaded once, never over what
        # those events changed since (the demo's segments are saved only after them).
        loaded = any(s.created_by == DEMO_AUTHOR for s in await segments.list(after=None, limit=200))
        members = list(retailer.iter_members())
        sales, purchases = _history(retailer)
        if not loaded:
            await _load_items(projections, unit_of_work, retailer)
            await _load_members(projections, unit_of_work, members, purchases, now)
            await _import_history(projections, unit_of_work, sales)
        tagged = await scoring.refresh()
        saved = []
        for number, (name, description, rule) in enumerate(segment_rules(retailer), start=1):
            command = CreateSegment(_request(f"segment-{number}"), name, description, parse_rule(rule), DEMO_AUTHOR)
            saved.append(await segments.create(command))
        sizes = {segment.name: (await segments.preview(segment.rule))[0].members for segment in saved}
        snapshot = await segments.snapshot(SnapshotSegment(_request("snapshot-1"), saved[0].segment_id))
        campaign_id = await _run_campaign(campaigns, snapshot.snapshot_id, now)
        progress = (await campaigns.progress([await campaigns.get(campaign_id)]))[campaign_id]
        redeemed, conflicts = await _redeem(projections, unit_of_work, retailer, campaign_id, now)
    finally:
        await engine.dispose()
    return {
        "items": len(retailer.skus),
        "projections_loaded_before": loaded,
        "members": len(members),
        "purchases": len(sales),
        "members_tagged": tagged,
        "segments": sizes,
        "campaign": {
            "campaign_id": campaign_id,
            "name": CAMPAIGN_NAME,
            "audience": snapshot.members,
            "issued": progress.issued,
        },
        "redemptions": redeemed,
        "redemption_conflicts": conflicts,
    }


async def _load_items(projections: Projections, unit_of_work: Callable[[], UnitOfWork], retailer: DemoRetailer) -> None:
    """Each SKU's category and cost, as pricing's item events carry them (version 0: any real event wins)."""
    async with unit_of_work() as uow:
        for sku in retailer.skus:
            await projections.item_changed(
                uow,
                sku=sku.sku_code,
                category=sku.category_code,
                cost_fen=_fen(sku.cost_price),
                version=0,
                at=datetime.combine(retailer.history_start, datetime.min.time(), tzinfo=UTC),
            )
        await uow.commit()


def _journal_sale(sale: Sale, member_id: str) -> JournalSale:
    lines = tuple(
        SaleLine(line.sku_code, line.quantity, _fen(line.gross_amount), _fen(line.net_amount)) for line in sale.lines
    )
    return JournalSale(
        sale.sale_id, False, sale.location_id, _CHANNELS[sale.channel], member_id, sale.occurred_at, lines
    )


def _history(retailer: DemoRetailer) -> tuple[list[JournalSale], dict[str, list[PurchaseRecord]]]:
    """Every member sale of the history, and per member their purchase records (as the member loader has them)."""
    categories = {sku.sku_code: sku.category_code for sku in retailer.skus}
    purchases: dict[str, list[PurchaseRecord]] = defaultdict(list)
    sales: list[JournalSale] = []
    for sale in retailer.iter_sales():
        if sale.member_id is None:
            continue
        bought = tuple(sorted({categories[line.sku_code] for line in sale.lines if line.sku_code in categories}))
        purchases[sale.member_id].append(
            PurchaseRecord(sale.sale_id, sale.occurred_at, sale.location_id, _fen(sale.total_amount), bought)
        )
        sales.append(_journal_sale(sale, sale.member_id))
    return sales, purchases


async def _import_history(
    projections: Projections, unit_of_work: Callable[[], UnitOfWork], sales: Sequence[JournalSale]
) -> int:
    imported = 0
    for start in range(0, len(sales), _CHUNK):
        async with unit_of_work() as uow:
            imported += await projections.import_purchases(uow, sales[start : start + _CHUNK])
            await uow.commit()
    return imported


async def _load_members(
    projections: Projections,
    unit_of_work: Callable[[], UnitOfWork],
    members: Iterable[Member],
    purchases: dict[str, list[PurchaseRecord]],
    now: datetime,
) -> None:
    """Registration, tier, lifecycle stage and consents, as the member context's events carry them."""
    policy = LifecyclePolicy()
    chunk: list[Member] = []

    async def flush() -> None:
        async with unit_of_work() as uow:
            for member in chunk:
                at = member.registered_at
                await projections.member_registered(uow, member.member_id, member.home_store_id, at)
                await projections.tier_changed(uow, member.member_id, _TIERS[member.tier.value], at)
                facts = purchase_facts(purchases.get(member.member_id, []), now, policy)
                stage = lifecycle_stage(member.registered_at, facts, now, policy).value
                await projections.lifecycle_changed(uow, member.member_id, stage, now)
                consent = member.consent
                for channel, granted in (
                    ("sms", consent.sms),
                    ("wechat", consent.wechat),
                    ("app_push", consent.app_push),
                ):
                    if granted:
                        await projections.consent_changed(uow, member.member_id, channel, True, consent.updated_at)
            await uow.commit()
        chunk.clear()

    for member in members:
        chunk.append(member)
        if len(chunk) >= _CHUNK:
            await flush()
    if chunk:
        await flush()


async def _run_campaign(campaigns: Campaigns, snapshot_id: str, now: datetime) -> str:
    """Create (one person), approve (another), launch, and run the launch until the campaign is running."""
    start = now - timedelta(days=1)
    draft = CampaignDraft(
        name=CAMPAIGN_NAME,
        snapshot_id=snapshot_id,
        offer=Offer(DiscountKind.AMOUNT_OFF, 1_000, min_spend_fen=5_000),
        terms=CouponTerms(valid_from=start, valid_until=start + timedelta(days=30)),
        control_fraction_bp=CONTROL_FRACTION_BP,
        contact_channels=frozenset({"sms", "wechat", "app_push"}),
        max_discount_fen=5_000_000,
    )
    campaign = await campaigns.create(CreateCampaign(_request("campaign-create"), draft, DEMO_AUTHOR))
    campaign_id = campaign.campaign_id
    await campaigns.approve(ApproveCampaign(_request("campaign-approve"), campaign_id, DEMO_APPROVER))
    await campaigns.launch(LaunchCampaign(_request("campaign-launch"), campaign_id))
    # The running service's launch job may take steps too; each step is safe to race.
    for _ in range(10_000):
        step = await campaigns.run_launches()
        if step == 0 and (await campaigns.get(campaign_id)).status is CampaignStatus.RUNNING:
            return campaign_id
    raise RuntimeError("the demo campaign's launch did not finish")


async def _redeem(
    projections: Projections,
    unit_of_work: Callable[[], UnitOfWork],
    retailer: DemoRetailer,
    campaign_id: str,
    now: datetime,
) -> tuple[list[str], list[str]]:
    """Today's demo sales: a few treatment members redeem their coupon, and one code is used twice."""
    async with unit_of_work() as uow:
        rows = (
            await uow.session.execute(
                text(
                    "SELECT c.member_id, c.code, m.home_store_id FROM coupon c JOIN member m USING (member_id) "
                    "WHERE c.campaign_id = :campaign ORDER BY c.member_id LIMIT :n"
                ),
                {"campaign": campaign_id, "n": REDEMPTIONS},
            )
        ).all()
    stores = [location.location_id for location in retailer.stores]
    # A basket over the offer's minimum spend: the first SKUs of the catalogue, one of each, up to 80 yuan.
    lines: list[SaleLine] = []
    for sku in retailer.skus:
        amount = _fen(sku.base_price)
        lines.append(SaleLine(sku.sku_code, Decimal(1), amount, amount))
        if sum(line.net_fen for line in lines) >= 8_000:
            break
    sales = [
        JournalSale(
            f"{DEMO_SALE_PREFIX}{number:04d}",
            False,
            store_id or stores[0],
            Channel.STORE,
            member_id,
            now - timedelta(minutes=10 * (len(rows) - number + 2)),
            tuple(lines),
            (code,),
        )
        for number, (member_id, code, store_id) in enumerate(rows, start=1)
    ]
    if sales:  # the first code again, later, at another till that priced it offline: a conflict
        first = sales[0]
        sales.append(
            JournalSale(
                f"{DEMO_SALE_PREFIX}{len(sales) + 1:04d}",
                False,
                first.store_id,
                Channel.STORE,
                first.member_id,
                now - timedelta(minutes=5),
                first.lines,
                first.coupon_codes,
            )
        )
    redeemed: list[str] = []
    conflicts: list[str] = []
    for sale in sales:
        async with unit_of_work() as uow:
            outcome = await projections.apply_sale(uow, sale)
            await uow.commit()
        redeemed += [sale.sale_id for _ in outcome.redeemed]
        conflicts += [sale.sale_id for _ in outcome.conflicts]
    return redeemed, conflicts
