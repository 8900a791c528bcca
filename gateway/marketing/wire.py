"""Marketing HTTP ↔ protobuf (retail.marketing.v1), named ``map_*`` functions."""

from __future__ import annotations

import json
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from retail.common.v1 import money_pb2
from retail.marketing.v1 import marketing_service_pb2 as pb

from gateway.http.money import yuan_text
from gateway.marketing.schemas import (
    CampaignIn,
    CampaignOut,
    ConflictOut,
    CouponOut,
    GroupOut,
    HoldOut,
    IntervalOut,
    ModelRunOut,
    OfferIn,
    OfferOut,
    ProgressOut,
    ReportOut,
    SegmentOut,
    SnapshotOut,
    TermsIn,
    TermsOut,
    UpliftBacktestOut,
    UpliftModelOut,
)
from servicekit.protowire import from_wire, moment, optional, timestamp, to_wire

CURRENCY = "CNY"


def money(amount: str) -> money_pb2.Money:
    """A validated yuan string (at most two decimals) as whole fen."""
    return money_pb2.Money(currency_code=CURRENCY, minor_units=int(Decimal(amount).scaleb(2)))


def yuan(value: money_pb2.Money | int | float) -> str:
    """Fen (whole, or a mean) as yuan rounded half up to the fen."""
    fen = value.minor_units if isinstance(value, money_pb2.Money) else value
    if isinstance(fen, int):
        return yuan_text(fen)
    return str((Decimal(str(fen)) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _moment(stamp: Timestamp, present: bool) -> Any:
    return moment(stamp) if present else None


def map_offer_in(offer: OfferIn) -> pb.Offer:
    return pb.Offer(
        kind=to_wire(pb.DiscountKind, "DISCOUNT_KIND", offer.kind),
        skus=offer.skus,
        categories=offer.categories,
        min_spend=money(offer.min_spend),
        stacking_group=offer.stacking_group,
        exclusive=offer.exclusive,
        stacks_with=offer.stacks_with,
        amount_off=optional(money, offer.amount_off),
        percent_off_bp=offer.percent_off_bp or 0,
        max_discount=optional(money, offer.max_discount),
    )


def map_terms_in(terms: TermsIn) -> pb.CouponTerms:
    return pb.CouponTerms(
        valid_from=timestamp(terms.valid_from),
        valid_until=timestamp(terms.valid_until),
        store_ids=terms.store_ids,
        channels=[to_wire(pb.SalesChannel, "SALES_CHANNEL", channel) for channel in terms.channels],
        per_member_limit=terms.per_member_limit,
    )


def map_campaign_in(body: CampaignIn) -> dict[str, Any]:
    """The fields of a CreateCampaignRequest a body gives (request id and actor are the route's)."""
    budget = pb.Budget(max_coupons=body.max_coupons or 0, max_discount=optional(money, body.max_discount))
    return {
        "name": body.name,
        "snapshot_id": body.snapshot_id,
        "offer": map_offer_in(body.offer),
        "terms": map_terms_in(body.terms),
        "budget": budget,
        "control_fraction_bp": body.control_fraction_bp,
        "frequency_cap_per_7_days": body.frequency_cap_per_7_days,
        "store_id": body.store_id or "",
        "attribution_days": body.attribution_days,
        "contact_channels": body.contact_channels,
        "target": body.target,
        "target_percent": body.target_percent or 0,
    }


def map_offer(offer: pb.Offer) -> OfferOut:
    return OfferOut(
        kind=from_wire(pb.DiscountKind, "DISCOUNT_KIND", offer.kind),
        amount_off=yuan(offer.amount_off) if offer.HasField("amount_off") else None,
        percent_off_bp=offer.percent_off_bp or None,
        skus=list(offer.skus),
        categories=list(offer.categories),
        min_spend=yuan(offer.min_spend),
        max_discount=yuan(offer.max_discount) if offer.HasField("max_discount") else None,
        stacking_group=offer.stacking_group,
        exclusive=offer.exclusive,
        stacks_with=list(offer.stacks_with),
    )


def map_terms(terms: pb.CouponTerms) -> TermsOut:
    return TermsOut(
        valid_from=moment(terms.valid_from),
        valid_until=moment(terms.valid_until),
        store_ids=list(terms.store_ids),
        channels=[from_wire(pb.SalesChannel, "SALES_CHANNEL", channel) for channel in terms.channels],
        per_member_limit=terms.per_member_limit,
    )


def map_snapshot(snapshot: pb.SegmentSnapshot) -> SnapshotOut:
    return SnapshotOut(
        snapshot_id=snapshot.snapshot_id,
        segment_id=snapshot.segment_id,
        as_of=moment(snapshot.as_of),
        members=snapshot.members,
        members_by_stage=dict(snapshot.members_by_stage),
    )


def map_segment(segment: pb.Segment) -> SegmentOut:
    return SegmentOut(
        segment_id=segment.segment_id,
        name=segment.name,
        description=segment.description,
        rule=json.loads(segment.rule_json),
        created_at=moment(segment.created_at),
        created_by=segment.created_by,
        latest_snapshot=map_snapshot(segment.latest_snapshot) if segment.HasField("latest_snapshot") else None,
    )


def map_progress(progress: pb.LaunchProgress) -> ProgressOut:
    return ProgressOut(
        audience=progress.audience,
        excluded_no_consent=progress.excluded_no_consent,
        excluded_erased=progress.excluded_erased,
        excluded_frequency_cap=progress.excluded_frequency_cap,
        excluded_budget=progress.excluded_budget,
        excluded_not_targeted=progress.excluded_not_targeted,
        treatment=progress.treatment,
        control=progress.control,
        issued=progress.issued,
    )


def map_campaign(campaign: pb.Campaign) -> CampaignOut:
    return CampaignOut(
        campaign_id=campaign.campaign_id,
        name=campaign.name,
        status=from_wire(pb.CampaignStatus, "CAMPAIGN_STATUS", campaign.status),
        snapshot_id=campaign.snapshot_id,
        offer=map_offer(campaign.offer),
        terms=map_terms(campaign.terms),
        contact_channels=list(campaign.contact_channels),
        control_fraction_bp=campaign.control_fraction_bp,
        max_coupons=campaign.budget.max_coupons or None,
        max_discount=yuan(campaign.budget.max_discount) if campaign.budget.HasField("max_discount") else None,
        frequency_cap_per_7_days=campaign.frequency_cap_per_7_days,
        store_id=campaign.store_id or None,
        attribution_days=campaign.attribution_days,
        created_by=campaign.created_by,
        approved_by=campaign.approved_by or None,
        created_at=moment(campaign.created_at),
        launched_at=_moment(campaign.launched_at, campaign.HasField("launched_at")),
        progress=map_progress(campaign.progress),
        spent=yuan(campaign.spent),
        held=yuan(campaign.held),
        target=campaign.target or "everyone",
        target_percent=campaign.target_percent or None,
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def map_interval(interval: pb.Interval) -> IntervalOut:
    return IntervalOut(value=_finite(interval.value), low=_finite(interval.low), high=_finite(interval.high))


def map_group(group: pb.GroupOutcome) -> GroupOut:
    return GroupOut(
        members=group.members,
        conversion_rate=group.conversion_rate,
        revenue_per_member=yuan(group.revenue_per_member_fen),
        margin_per_member=yuan(group.margin_per_member_fen),
        average_basket=yuan(group.average_basket_fen),
        repurchase_rate=group.repurchase_rate,
    )


def map_report(report: pb.GetCampaignReportResponse) -> ReportOut:
    return ReportOut(
        campaign_id=report.campaign_id,
        window_start=moment(report.window_start),
        window_end=moment(report.window_end),
        final=report.final,
        treatment=map_group(report.treatment),
        control=map_group(report.control),
        incremental_revenue_fen=map_interval(report.incremental_revenue_fen),
        incremental_margin_fen=map_interval(report.incremental_margin_fen),
        coupon_cost=yuan(report.coupon_cost),
        roi=map_interval(report.roi) if report.HasField("roi") else None,
        redemptions=report.redemptions,
        redemption_conflicts=report.redemption_conflicts,
    )


def map_coupon(coupon: pb.Coupon) -> CouponOut:
    return CouponOut(
        code=coupon.code,
        member_id=coupon.member_id or None,
        campaign_id=coupon.campaign_id,
        status=from_wire(pb.CouponStatus, "COUPON_STATUS", coupon.status) or "active",
        offer=map_offer(coupon.offer) if coupon.HasField("offer") else None,
        terms=map_terms(coupon.terms) if coupon.HasField("terms") else None,
        issued_at=_moment(coupon.issued_at, coupon.HasField("issued_at")),
        use_limit=coupon.use_limit,
        used=coupon.used,
    )


def map_hold(hold: pb.HoldCouponResponse) -> HoldOut:
    return HoldOut(
        hold_id=hold.hold_id,
        code=hold.code,
        status=from_wire(pb.HoldStatus, "HOLD_STATUS", hold.status),
        discount=yuan(hold.discount),
        line_discounts=[yuan(line) for line in hold.line_discounts],
        expires_at=moment(hold.expires_at),
    )


def map_conflict(conflict: pb.RedemptionConflict) -> ConflictOut:
    return ConflictOut(
        code=conflict.code,
        sale_id=conflict.sale_id,
        store_id=conflict.store_id,
        member_id=conflict.member_id or None,
        discount=yuan(conflict.discount),
        redeemed_by_sale_id=conflict.redeemed_by_sale_id or None,
        occurred_at=moment(conflict.occurred_at),
        campaign_id=conflict.campaign_id or None,
        reason=conflict.reason,
    )


def map_model_run(run: pb.ModelRun) -> ModelRunOut:
    return ModelRunOut(
        model_version=run.model_version,
        status=run.status,
        horizon_days=run.horizon_days or None,
        requested_by=run.requested_by,
        requested_at=moment(run.requested_at),
        finished_at=_moment(run.finished_at, run.HasField("finished_at")),
        as_of=run.as_of or None,
        training_members=run.training_members,
        served_model=run.served_model or None,
        backtest=json.loads(run.backtest_json) if run.backtest_json else None,
        error=run.error or None,
        serving=run.serving,
    )


def map_uplift_model(answer: pb.GetUpliftModelResponse) -> UpliftModelOut:
    """Serving when a run serves; otherwise unavailable, saying why (the latest run's error or state)."""
    latest = map_model_run(answer.latest) if answer.HasField("latest") else None
    if answer.HasField("serving"):
        serving = answer.serving
        return UpliftModelOut(
            status="serving",
            model_version=serving.model_version,
            trained_at=_moment(serving.finished_at, serving.HasField("finished_at")),
            training_members=serving.training_members,
            backtest=UpliftBacktestOut.model_validate(json.loads(serving.backtest_json)),
            latest=latest,
        )
    if latest is None:
        cause = "no uplift model has been trained"
    elif latest.status in ("queued", "training"):
        cause = f"the first uplift model is {latest.status}"
    else:
        cause = latest.error or "the latest training did not produce a model"
    return UpliftModelOut(status="unavailable", reason=f"uplift-model-unavailable: {cause}", latest=latest)
