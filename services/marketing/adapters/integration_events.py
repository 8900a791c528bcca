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
from services.marketing.adapters.coupon_store import ConflictRow, RedemptionRow

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


def redemption_conflict_recorded(conflict: ConflictRow) -> OutboxEvent:
    message = events_pb2.RedemptionConflictRecorded(
        conflict=marketing_service_pb2.RedemptionConflict(
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
    )
    return OutboxEvent.of(
        f"{SUBJECT_PREFIX}.redemption_conflict_recorded",
        message,
        aggregate_id=f"coupon:{conflict.code}",
        occurred_at=conflict.occurred_at,
    )
