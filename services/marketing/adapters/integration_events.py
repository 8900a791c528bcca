"""The marketing context's integration events: facts mapped to outbox rows on the MARKETING stream.

Subjects are ``retail.marketing.v1.<event>``. A coupon's events share one aggregate
(``coupon:<code>``), so the relay publishes them in the order they happened.
"""

from __future__ import annotations

from datetime import datetime

from retail.common.v1 import money_pb2
from retail.marketing.v1 import events_pb2, marketing_service_pb2

from servicekit.messaging import StreamSpec
from servicekit.outbox import OutboxEvent
from servicekit.protowire import timestamp
from services.marketing.adapters.campaign_store import Progress, StoredCampaign
from services.marketing.adapters.coupon_store import ConflictRow, RedemptionRow
from services.marketing.domain.campaigns import ExclusionReason
from services.marketing.domain.offers import Channel, CouponTerms, DiscountKind, Offer

SUBJECT_PREFIX = "retail.marketing.v1"
CURRENCY = "CNY"
MARKETING_STREAM = StreamSpec(
    name="MARKETING", subjects=[f"{SUBJECT_PREFIX}.>"], description="Facts of the marketing context"
)


def money(fen: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code=CURRENCY, minor_units=fen)


def coupon_redeemed(redemption: RedemptionRow) -> OutboxEvent:
    message = events_pb2.CouponRedeemed(
        code=redemption.code,
        campaign_id=redemption.campaign_id,
        member_id=redemption.member_id or "",
        sale_id=redemption.sale_id,
        store_id=redemption.store_id,
        discount=money(redemption.discount_fen),
        occurred_at=timestamp(redemption.occurred_at),
    )
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.coupon_redeemed",
        message,
        aggregate_id=f"coupon:{redemption.code}",
        occurred_at=redemption.occurred_at,
    )


def coupon_use_given_back(code: str, campaign_id: str, sale_id: str, at: datetime) -> OutboxEvent:
    message = events_pb2.CouponUseGivenBack(
        code=code, campaign_id=campaign_id, sale_id=sale_id, occurred_at=timestamp(at)
    )
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.coupon_use_given_back", message, aggregate_id=f"coupon:{code}", occurred_at=at
    )


def map_conflict(conflict: ConflictRow) -> marketing_service_pb2.RedemptionConflict:
    """A recorded conflict as its event carries it and the conflicts' list answers it."""
    return marketing_service_pb2.RedemptionConflict(
        code=conflict.code,
        sale_id=conflict.sale_id,
        store_id=conflict.store_id,
        member_id=conflict.member_id or "",
        discount=money(conflict.discount_fen),
        redeemed_by_sale_id=conflict.redeemed_by_sale_id or "",
        occurred_at=timestamp(conflict.occurred_at),
        campaign_id=conflict.campaign_id or "",
        reason=conflict.reason,
    )


def redemption_conflict_recorded(conflict: ConflictRow) -> OutboxEvent:
    message = events_pb2.RedemptionConflictRecorded(conflict=map_conflict(conflict))
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.redemption_conflict_recorded",
        message,
        aggregate_id=f"coupon:{conflict.code}",
        occurred_at=conflict.occurred_at,
    )


SALES_CHANNELS = {
    Channel.APP: marketing_service_pb2.SALES_CHANNEL_APP,
    Channel.MINI_PROGRAM: marketing_service_pb2.SALES_CHANNEL_MINI_PROGRAM,
    Channel.STORE: marketing_service_pb2.SALES_CHANNEL_STORE,
}
DISCOUNT_KINDS = {
    DiscountKind.AMOUNT_OFF: marketing_service_pb2.DISCOUNT_KIND_AMOUNT_OFF,
    DiscountKind.PERCENT_OFF: marketing_service_pb2.DISCOUNT_KIND_PERCENT_OFF,
}


def map_offer(offer: Offer) -> marketing_service_pb2.Offer:
    message = marketing_service_pb2.Offer(
        kind=DISCOUNT_KINDS[offer.kind],
        skus=sorted(offer.skus),
        categories=sorted(offer.categories),
        min_spend=money(offer.min_spend_fen),
        stacking_group=offer.stacking_group,
        exclusive=offer.exclusive,
        stacks_with=sorted(offer.stacks_with),
    )
    if offer.kind is DiscountKind.AMOUNT_OFF:
        message.amount_off.CopyFrom(money(offer.value))
    else:
        message.percent_off_bp = offer.value
    if offer.max_discount_fen is not None:
        message.max_discount.CopyFrom(money(offer.max_discount_fen))
    return message


def map_terms(terms: CouponTerms) -> marketing_service_pb2.CouponTerms:
    return marketing_service_pb2.CouponTerms(
        valid_from=timestamp(terms.valid_from),
        valid_until=timestamp(terms.valid_until),
        store_ids=sorted(terms.stores),
        channels=sorted(SALES_CHANNELS[channel] for channel in terms.channels),
        per_member_limit=terms.per_member_limit,
    )


def coupons_issued(
    campaign_id: str, offer: Offer, terms: CouponTerms, coupons: list[tuple[str, str]], at: datetime
) -> list[OutboxEvent]:
    """One CouponIssued per (code, member), the offer and terms mapped once for the batch."""
    offer_message, terms_message = map_offer(offer), map_terms(terms)
    return [
        OutboxEvent.of(
            f"{SUBJECT_PREFIX}.coupon_issued",
            events_pb2.CouponIssued(
                code=code,
                member_id=member_id,
                campaign_id=campaign_id,
                offer=offer_message,
                terms=terms_message,
                occurred_at=timestamp(at),
            ),
            aggregate_id=f"coupon:{code}",
            occurred_at=at,
        )
        for code, member_id in coupons
    ]


def map_progress(progress: Progress) -> marketing_service_pb2.LaunchProgress:
    return marketing_service_pb2.LaunchProgress(
        audience=progress.audience,
        excluded_no_consent=progress.excluded.get(ExclusionReason.NO_CONSENT, 0),
        excluded_erased=progress.excluded.get(ExclusionReason.ERASED, 0),
        excluded_frequency_cap=progress.excluded.get(ExclusionReason.FREQUENCY_CAP, 0),
        excluded_budget=progress.excluded.get(ExclusionReason.BUDGET, 0),
        excluded_not_targeted=progress.excluded.get(ExclusionReason.NOT_TARGETED, 0),
        treatment=progress.treatment,
        control=progress.control,
        issued=progress.issued,
    )


def campaign_launched(campaign: StoredCampaign, progress: Progress, at: datetime) -> OutboxEvent:
    """The launch finished: what it did, and the campaign's name, terms (valid_until: when it ends) and store."""
    message = events_pb2.CampaignLaunched(
        campaign_id=campaign.campaign_id,
        progress=map_progress(progress),
        occurred_at=timestamp(at),
        name=campaign.name,
        terms=map_terms(campaign.terms),
        store_id=campaign.store_id or "",
    )
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.campaign_launched",
        message,
        aggregate_id=f"campaign:{campaign.campaign_id}",
        occurred_at=at,
    )
