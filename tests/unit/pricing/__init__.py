"""Pricing domain unit tests; the builders below give rules and contexts readable defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.pricing.domain.promotions import Mechanic
from services.pricing.domain.rules import CHAIN_WIDE, Channel, PriceContext, PriceRule, RuleKind, Scope

SKU = "SKU-1001"
STORE = "S001"
GROUP = "G-EAST"
NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def regular(rule_id: str, price_fen: int, scope: Scope = CHAIN_WIDE, **fields: Any) -> PriceRule:
    return PriceRule(rule_id=rule_id, sku=SKU, kind=RuleKind.REGULAR, scope=scope, price_fen=price_fen, **fields)


def promotion(rule_id: str, mechanic: Mechanic, scope: Scope = CHAIN_WIDE, **fields: Any) -> PriceRule:
    return PriceRule(rule_id=rule_id, sku=SKU, kind=RuleKind.PROMOTION, scope=scope, mechanic=mechanic, **fields)


def context(**fields: Any) -> PriceContext:
    values: dict[str, Any] = {
        "sku": SKU,
        "store_id": STORE,
        "store_groups": frozenset({GROUP}),
        "channel": Channel.STORE,
        "member_tier": None,
        "at": NOW,
        "currency": "CNY",
    }
    values.update(fields)
    return PriceContext(**values)
