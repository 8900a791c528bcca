"""Protobuf ↔ marketing's domain: the journal entries and events it reads (named ``map_*`` functions)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from retail.common.v1 import identifiers_pb2, money_pb2
from retail.marketing.v1 import marketing_service_pb2 as pb
from retail.member.v1 import events_pb2 as member_events_pb2
from retail.member.v1 import member_service_pb2 as member_pb2
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.errors import InvalidArgument, PermissionDenied
from servicekit.idempotency import RequestFingerprint
from servicekit.protowire import from_wire, moment, optional, timestamp
from services.marketing.adapters.campaign_store import Progress, StoredCampaign
from services.marketing.adapters.coupon_store import CouponView
from services.marketing.adapters.integration_events import (
    CURRENCY,
    map_offer,
    map_progress,
    map_terms,
    money,
)
from services.marketing.adapters.model_store import ModelRun
from services.marketing.adapters.segment_store import StoredSegment, StoredSnapshot
from services.marketing.domain.campaign_report import Estimate, GroupSummary
from services.marketing.domain.campaigns import DEFAULT_ATTRIBUTION_DAYS, CampaignDraft, CampaignStatus, Target
from services.marketing.domain.codes import CouponCode
from services.marketing.domain.discounts import MAX_LINES
from services.marketing.domain.offers import MAX_FEN, Channel, CouponTerms, DiscountKind, Offer
from services.marketing.domain.sales import ImportedPurchase, JournalSale, SaleLine
from services.marketing.domain.segments import InvalidRule, Rule, parse_rule
from services.marketing.service_layer.models import Propensity
from services.marketing.service_layer.redemptions import BasketItem, HoldCoupon, HoldResult
from services.marketing.service_layer.reports import CampaignReport

CHANNELS = {
    pb.SALES_CHANNEL_APP: Channel.APP,
    pb.SALES_CHANNEL_MINI_PROGRAM: Channel.MINI_PROGRAM,
    pb.SALES_CHANNEL_STORE: Channel.STORE,
}
HOLD_STATUSES = {
    "held": pb.HOLD_STATUS_HELD,
    "redeemed": pb.HOLD_STATUS_REDEEMED,
    "released": pb.HOLD_STATUS_RELEASED,
    "lapsed": pb.HOLD_STATUS_LAPSED,
}
CAMPAIGN_STATUSES = {
    CampaignStatus.DRAFT: pb.CAMPAIGN_STATUS_DRAFT,
    CampaignStatus.APPROVED: pb.CAMPAIGN_STATUS_APPROVED,
    CampaignStatus.LAUNCHING: pb.CAMPAIGN_STATUS_LAUNCHING,
    CampaignStatus.RUNNING: pb.CAMPAIGN_STATUS_RUNNING,
    CampaignStatus.ENDED: pb.CAMPAIGN_STATUS_ENDED,
}

SALES_CHANNELS = {
    sales_pb2.SALES_CHANNEL_STORE: Channel.STORE,
    sales_pb2.SALES_CHANNEL_APP: Channel.APP,
    sales_pb2.SALES_CHANNEL_MINI_PROGRAM: Channel.MINI_PROGRAM,
}


def map_moment(message: sales_pb2.SaleRecorded) -> datetime:
    if message.HasField("occurred_at"):
        return message.occurred_at.ToDatetime(tzinfo=UTC)
    return message.recorded_at.ToDatetime(tzinfo=UTC)


# What purchase_line.quantity (numeric(14, 3)) holds: a larger one could never be stored, and the sale would be
# retried for ever instead of kept.
MAX_QUANTITY = Decimal(10) ** 11


def map_quantity(text: str) -> Decimal:
    """A line's quantity; one a till sent unreadable or out of range counts as zero (its money still counts)."""
    try:
        quantity = Decimal(text)
    except InvalidOperation:
        return Decimal(0)
    return quantity if quantity.is_finite() and Decimal(0) <= quantity < MAX_QUANTITY else Decimal(0)


def map_journal_sale(message: sales_pb2.SaleRecorded, member_id: str | None) -> JournalSale:
    """A journal entry as marketing reads it; gross = what the line cost before its discounts."""
    return JournalSale(
        sale_id=message.sale_id,
        is_return=message.kind == sales_pb2.SALE_KIND_RETURN,
        store_id=message.location_id,
        channel=SALES_CHANNELS.get(message.channel, Channel.STORE),
        member_id=member_id,
        occurred_at=map_moment(message),
        lines=tuple(
            SaleLine(
                sku=line.sku,
                quantity=map_quantity(line.quantity.value),
                gross_fen=line.line_total.minor_units + line.discount.minor_units,
                net_fen=line.line_total.minor_units,
            )
            for line in message.lines
        ),
        coupon_codes=tuple(message.coupon_codes),
        original_sale_id=message.original_sale_id,
    )


def map_imported_purchases(message: member_events_pb2.PurchasesImported) -> list[ImportedPurchase]:
    """A member's imported history: each purchase a sale of theirs, by its stable purchase id."""
    return [
        ImportedPurchase(
            JournalSale(
                sale_id=p.purchase_id,
                is_return=False,
                store_id=p.store_id,
                channel=Channel.STORE,
                member_id=message.member_id,
                occurred_at=moment(p.occurred_at),
                lines=tuple(
                    SaleLine(
                        line.sku, map_quantity(line.quantity.value), line.amount.minor_units, line.amount.minor_units
                    )
                    for line in p.lines
                ),
            ),
            max(p.amount.minor_units, 0),
        )
        for p in message.purchases
    ]


def map_tier(tier: int) -> str:
    return from_wire(member_pb2.MemberTier, "MEMBER_TIER", tier)


def map_stage(stage: int) -> str:
    return from_wire(member_pb2.LifecycleStage, "LIFECYCLE_STAGE", stage)


def map_consent_channel(channel: int) -> str:
    return from_wire(member_pb2.ConsentChannel, "CONSENT_CHANNEL", channel)


# ---- requests → commands ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks, as the gateway vouched for it."""

    client_id: str
    kind: str  # app, pos_terminal, supplier_user, staff
    role: str  # store_guide, store_manager, headquarters ('' for non-staff)
    store_id: str

    @property
    def headquarters(self) -> bool:
        return self.kind == "staff" and self.role == "headquarters"

    @property
    def store_bound(self) -> bool:
        """A POS terminal or store staff: acts for its own store only."""
        return self.kind == "pos_terminal" or (self.kind == "staff" and self.role != "headquarters")


def map_actor(message: identifiers_pb2.Actor) -> Actor:
    return Actor(
        client_id=message.client_id[:200],
        kind=from_wire(identifiers_pb2.ClientKind, "CLIENT_KIND", message.client_kind),
        role=from_wire(identifiers_pb2.StaffRole, "STAFF_ROLE", message.staff_role),
        store_id=message.store_id,
    )


def map_fen(message: money_pb2.Money, field: str, *, allow_zero: bool = True) -> int:
    if message.currency_code and message.currency_code != CURRENCY:
        raise InvalidArgument(
            f"{field} is in {message.currency_code}, expected {CURRENCY}",
            reason="currency-mismatch",
            details={"field": field},
        )
    value = message.minor_units
    if value < 0 or value > MAX_FEN or (value == 0 and not allow_zero):
        raise InvalidArgument(f"{field} is {'1' if not allow_zero else '0'} to {MAX_FEN} fen", details={"field": field})
    return value


def map_optional_fen(message: Any, field: str) -> int | None:
    return map_fen(getattr(message, field), field, allow_zero=False) if message.HasField(field) else None


def map_offer_request(message: pb.Offer) -> Offer:
    if message.kind == pb.DISCOUNT_KIND_AMOUNT_OFF:
        kind, value = DiscountKind.AMOUNT_OFF, map_fen(message.amount_off, "offer.amount_off", allow_zero=False)
    elif message.kind == pb.DISCOUNT_KIND_PERCENT_OFF:
        kind, value = DiscountKind.PERCENT_OFF, message.percent_off_bp
    else:
        raise InvalidArgument("offer.kind is required", details={"field": "offer.kind"})
    return Offer(
        kind=kind,
        value=value,
        skus=frozenset(message.skus),
        categories=frozenset(message.categories),
        min_spend_fen=map_fen(message.min_spend, "offer.min_spend"),
        max_discount_fen=map_optional_fen(message, "max_discount"),
        stacking_group=message.stacking_group or "default",
        exclusive=message.exclusive,
        stacks_with=frozenset(message.stacks_with),
    )


def map_channel(number: int, field: str) -> Channel:
    for wire_number, channel in CHANNELS.items():
        if wire_number == number:
            return channel
    raise InvalidArgument(f"{field} is required", details={"field": field})


def map_terms_request(message: pb.CouponTerms) -> CouponTerms:
    if not message.HasField("valid_from") or not message.HasField("valid_until"):
        raise InvalidArgument("terms.valid_from and terms.valid_until are required", details={"field": "terms"})
    return CouponTerms(
        valid_from=moment(message.valid_from),
        valid_until=moment(message.valid_until),
        stores=frozenset(message.store_ids),
        channels=frozenset(map_channel(c, "terms.channels") for c in message.channels) or frozenset(Channel),
        per_member_limit=message.per_member_limit or 1,
    )


def map_campaign_draft(message: pb.CreateCampaignRequest, actor: Actor) -> CampaignDraft:
    store_id = message.store_id or None
    if actor.store_bound and store_id != actor.store_id:
        raise PermissionDenied("a store's staff create campaigns for their own store only", reason="not-your-store")
    terms = map_terms_request(message.terms)
    if store_id is not None and not terms.stores:
        terms = CouponTerms(
            terms.valid_from, terms.valid_until, frozenset({store_id}), terms.channels, terms.per_member_limit
        )
    return CampaignDraft(
        name=message.name,
        snapshot_id=message.snapshot_id,
        offer=map_offer_request(message.offer),
        terms=terms,
        control_fraction_bp=message.control_fraction_bp,
        contact_channels=frozenset(message.contact_channels),
        max_coupons=message.budget.max_coupons or None,
        max_discount_fen=map_optional_fen(message.budget, "max_discount"),
        frequency_cap=message.frequency_cap_per_7_days,
        store_id=store_id,
        attribution_days=message.attribution_days or DEFAULT_ATTRIBUTION_DAYS,
        target=map_target(message.target),
        target_percent=message.target_percent or None,
    )


def map_target(name: str) -> Target:
    try:
        return Target(name or Target.EVERYONE.value)
    except ValueError:
        raise InvalidArgument(
            f"target is one of {', '.join(t.value for t in Target)}", details={"field": "target"}
        ) from None


def map_hold(message: pb.HoldCouponRequest, actor: Actor, request: RequestFingerprint) -> HoldCoupon:
    channel = map_channel(message.channel, "channel")
    store_id = message.store_id or None
    if channel is Channel.STORE and store_id is None:
        raise InvalidArgument("store_id is required in a store", details={"field": "store_id"})
    if actor.kind == "pos_terminal" and store_id != actor.store_id:
        raise PermissionDenied("a terminal holds coupons in its own store only", reason="not-your-store")
    if not message.member_id:
        raise InvalidArgument("member_id is required", details={"field": "member_id"})
    if not 0 < len(message.lines) <= MAX_LINES:
        raise InvalidArgument(f"a basket has 1 to {MAX_LINES} lines", details={"field": "lines"})
    if message.hold_seconds and not 30 <= message.hold_seconds <= 86_400:
        raise InvalidArgument("hold_seconds is 30 to 86400", details={"field": "hold_seconds"})
    return HoldCoupon(
        request=request,
        code=message.code,
        member_id=message.member_id,
        store_id=store_id,
        channel=channel,
        lines=tuple(
            BasketItem(line.sku, map_fen(line.amount, f"lines[{index}].amount"))
            for index, line in enumerate(message.lines)
        ),
        client_id=actor.client_id,
        with_codes=tuple(message.with_codes),
        hold_for=timedelta(seconds=message.hold_seconds) if message.hold_seconds else None,
    )


# ---- domain → responses ----------------------------------------------------------------------------------------


def map_hold_response(result: HoldResult) -> pb.HoldCouponResponse:
    return pb.HoldCouponResponse(
        hold_id=result.hold_id,
        code=result.code,
        status=HOLD_STATUSES[result.status],
        discount=money(result.discount_fen),
        line_discounts=[money(fen) for fen in result.line_discounts_fen],
        expires_at=timestamp(result.expires_at),
    )


def map_hold_result(message: pb.HoldCouponResponse) -> HoldResult:
    return HoldResult(
        hold_id=message.hold_id,
        code=message.code,
        status=next(name for name, number in HOLD_STATUSES.items() if number == message.status),
        discount_fen=message.discount.minor_units,
        line_discounts_fen=tuple(line.minor_units for line in message.line_discounts),
        expires_at=moment(message.expires_at),
    )


def map_campaign(campaign: StoredCampaign, progress: Progress) -> pb.Campaign:
    return pb.Campaign(
        campaign_id=campaign.campaign_id,
        name=campaign.name,
        status=CAMPAIGN_STATUSES[campaign.status],
        snapshot_id=campaign.snapshot_id,
        offer=map_offer(campaign.offer),
        terms=map_terms(campaign.terms),
        budget=pb.Budget(
            max_coupons=campaign.max_coupons or 0, max_discount=optional(money, campaign.max_discount_fen)
        ),
        control_fraction_bp=campaign.control_fraction_bp,
        frequency_cap_per_7_days=campaign.frequency_cap,
        store_id=campaign.store_id or "",
        created_by=campaign.created_by,
        approved_by=campaign.approved_by or "",
        created_at=timestamp(campaign.created_at),
        progress=map_progress(progress),
        spent=money(campaign.spent_fen),
        held=money(campaign.held_fen),
        attribution_days=campaign.attribution_days,
        contact_channels=sorted(campaign.contact_channels),
        target=campaign.target.value,
        target_percent=campaign.target_percent or 0,
        launched_at=optional(timestamp, campaign.launched_at),
    )


def map_segment(segment: StoredSegment, latest: StoredSnapshot | None) -> pb.Segment:
    return pb.Segment(
        segment_id=segment.segment_id,
        name=segment.name,
        description=segment.description,
        rule_json=json.dumps(segment.rule.to_json(), ensure_ascii=False, sort_keys=True),
        created_at=timestamp(segment.created_at),
        created_by=segment.created_by,
        latest_snapshot=optional(map_snapshot, latest),
    )


def map_snapshot(snapshot: StoredSnapshot) -> pb.SegmentSnapshot:
    return pb.SegmentSnapshot(
        snapshot_id=snapshot.snapshot_id,
        segment_id=snapshot.segment_id,
        as_of=timestamp(snapshot.as_of),
        members=snapshot.members,
        members_by_stage=snapshot.by_stage,
    )


def map_rule(rule_json: str) -> Rule:
    try:
        node = json.loads(rule_json)
    except (json.JSONDecodeError, RecursionError):
        raise InvalidRule("", "rule_json is not JSON") from None
    return parse_rule(node)


def map_coupon(coupon: CouponView, now: datetime) -> pb.Coupon:
    if coupon.state == "void":
        status = pb.COUPON_STATUS_VOID
    elif coupon.used >= coupon.use_limit:
        status = pb.COUPON_STATUS_REDEEMED
    elif coupon.held and coupon.used + coupon.held >= coupon.use_limit:
        status = pb.COUPON_STATUS_HELD
    elif now >= coupon.terms.valid_until:
        status = pb.COUPON_STATUS_EXPIRED
    else:
        status = pb.COUPON_STATUS_ACTIVE
    return pb.Coupon(
        code=CouponCode(coupon.code, personal=coupon.member_id is not None).display,
        member_id=coupon.member_id or "",
        campaign_id=coupon.campaign_id,
        status=status,
        offer=map_offer(coupon.offer),
        terms=map_terms(coupon.terms),
        issued_at=timestamp(coupon.issued_at),
        use_limit=coupon.use_limit,
        used=coupon.used,
    )


def map_interval(estimate: Estimate) -> pb.Interval:
    return pb.Interval(value=estimate.value, low=estimate.low, high=estimate.high)


def map_group(summary: GroupSummary) -> pb.GroupOutcome:
    return pb.GroupOutcome(
        members=summary.members,
        conversion_rate=summary.conversion_rate,
        revenue_per_member_fen=summary.revenue_per_member_fen,
        margin_per_member_fen=summary.margin_per_member_fen,
        average_basket_fen=summary.average_basket_fen,
        repurchase_rate=summary.repurchase_rate,
    )


def map_report(report: CampaignReport) -> pb.GetCampaignReportResponse:
    result = report.result
    return pb.GetCampaignReportResponse(
        campaign_id=report.campaign_id,
        window_start=timestamp(report.window_start),
        window_end=timestamp(report.window_end),
        treatment=map_group(result.treatment),
        control=map_group(result.control),
        incremental_revenue_fen=map_interval(result.incremental_revenue_fen),
        incremental_margin_fen=map_interval(result.incremental_margin_fen),
        coupon_cost=money(result.coupon_cost_fen),
        redemptions=report.redemptions,
        redemption_conflicts=report.redemption_conflicts,
        final=report.final,
        roi=optional(map_interval, result.roi),
    )


def map_model_run(run: ModelRun) -> pb.ModelRun:
    return pb.ModelRun(
        model_version=run.model_version,
        status=run.status,
        horizon_days=run.horizon_days or 0,
        requested_by=run.requested_by,
        requested_at=timestamp(run.requested_at),
        as_of=run.as_of.isoformat() if run.as_of else "",
        training_members=run.training_members or 0,
        served_model=run.served_model or "",
        backtest_json=json.dumps(run.backtest, sort_keys=True) if run.backtest is not None else "",
        error=run.error or "",
        serving=run.serving,
        finished_at=optional(timestamp, run.finished_at),
    )


def map_propensity(propensity: Propensity) -> pb.GetMemberPropensityResponse:
    return pb.GetMemberPropensityResponse(
        member_id=propensity.member_id,
        horizon_days=propensity.horizon_days,
        expected_purchases=propensity.expected_purchases,
        p_active=propensity.p_active,
        churn_risk=propensity.churn_risk,
        model_version=propensity.model_version,
        model=propensity.model,
        as_of=propensity.as_of.isoformat(),
    )
