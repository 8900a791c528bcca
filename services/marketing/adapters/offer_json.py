"""Offers and coupon terms as the JSON stored on a campaign row (and read back exactly)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.marketing.domain.offers import Channel, CouponTerms, DiscountKind, Offer


def offer_to_json(offer: Offer) -> dict[str, Any]:
    return {
        "kind": offer.kind.value,
        "value": offer.value,
        "skus": sorted(offer.skus),
        "categories": sorted(offer.categories),
        "min_spend_fen": offer.min_spend_fen,
        "max_discount_fen": offer.max_discount_fen,
        "stacking_group": offer.stacking_group,
        "exclusive": offer.exclusive,
        "stacks_with": sorted(offer.stacks_with),
    }


def offer_from_json(data: dict[str, Any]) -> Offer:
    return Offer(
        kind=DiscountKind(data["kind"]),
        value=int(data["value"]),
        skus=frozenset(data["skus"]),
        categories=frozenset(data["categories"]),
        min_spend_fen=int(data["min_spend_fen"]),
        max_discount_fen=None if data["max_discount_fen"] is None else int(data["max_discount_fen"]),
        stacking_group=data["stacking_group"],
        exclusive=bool(data["exclusive"]),
        stacks_with=frozenset(data["stacks_with"]),
    )


def terms_to_json(terms: CouponTerms) -> dict[str, Any]:
    return {
        "valid_from": terms.valid_from.isoformat(),
        "valid_until": terms.valid_until.isoformat(),
        "stores": sorted(terms.stores),
        "channels": sorted(channel.value for channel in terms.channels),
        "per_member_limit": terms.per_member_limit,
        "total_issue_limit": terms.total_issue_limit,
    }


def terms_from_json(data: dict[str, Any]) -> CouponTerms:
    return CouponTerms(
        valid_from=datetime.fromisoformat(data["valid_from"]),
        valid_until=datetime.fromisoformat(data["valid_until"]),
        stores=frozenset(data["stores"]),
        channels=frozenset(Channel(channel) for channel in data["channels"]),
        per_member_limit=int(data["per_member_limit"]),
        total_issue_limit=None if data["total_issue_limit"] is None else int(data["total_issue_limit"]),
    )
