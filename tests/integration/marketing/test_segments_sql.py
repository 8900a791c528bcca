"""Segment rules evaluated by PostgreSQL select exactly the members the documented meaning selects."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from servicekit.db import UnitOfWork
from servicekit.settings import to_plain_url
from services.marketing.adapters import segment_store
from services.marketing.adapters.segment_store import StoredSegment
from services.marketing.domain.segments import (
    CONSENT_CHANNELS,
    ENGAGEMENT_STAGES,
    LIFECYCLE_STAGES,
    AllOf,
    AnyOf,
    Condition,
    Not,
    Rule,
    parse_rule,
)

AS_OF = datetime(2026, 12, 1, tzinfo=UTC)
STORES = ["S1", "S2", "S3"]
CATEGORIES = ["dairy", "fruit", "baby", "snacks"]


@dataclass
class Purchase:
    sale_id: str
    store_id: str
    occurred_at: datetime
    net_fen: int
    returned_fen: int
    categories: list[str]


@dataclass
class Member:
    member_id: str
    tier: str
    stage: str
    home_store: str | None
    consent: list[str]
    erased: bool
    merged: bool
    engagement: str | None
    rfm_cell: str | None
    churn_risk: float | None
    purchases: list[Purchase] = field(default_factory=list)


def population(rng: random.Random, size: int) -> list[Member]:
    members = []
    for index in range(size):
        scored = rng.random() < 0.8
        member = Member(
            member_id=f"M{index:04d}",
            tier=rng.choice(["basic", "silver", "gold"]),
            stage=rng.choice(LIFECYCLE_STAGES),
            home_store=rng.choice([*STORES, None]),
            consent=rng.sample(CONSENT_CHANNELS, rng.randint(0, 2)),
            erased=rng.random() < 0.05,
            merged=rng.random() < 0.05,
            engagement=rng.choice(ENGAGEMENT_STAGES) if scored else None,
            rfm_cell=f"{rng.randint(1, 5)}{rng.randint(1, 5)}{rng.randint(1, 5)}" if scored else None,
            churn_risk=round(rng.random(), 2) if scored else None,
        )
        for number in range(rng.choice([0, 0, 1, 1, 2, 3, 6])):
            net = rng.randint(0, 40_000)
            returned = rng.choice([0, 0, 0, net, net // 2])
            member.purchases.append(
                Purchase(
                    sale_id=f"{member.member_id}-{number}",
                    store_id=rng.choice(STORES),
                    occurred_at=AS_OF - timedelta(days=rng.randint(0, 400), hours=rng.randint(0, 23)),
                    net_fen=net,
                    returned_fen=returned,
                    categories=rng.sample(CATEGORIES, rng.randint(1, 2)),
                )
            )
        members.append(member)
    return members


async def load(url: str, members: list[Member]) -> None:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        async with connection.transaction():
            for m in members:
                await connection.execute(
                    "INSERT INTO member (member_id, tier, lifecycle_stage, home_store_id, consent, erased, "
                    "merged_into, registered_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                    m.member_id,
                    m.tier,
                    m.stage,
                    m.home_store,
                    m.consent,
                    m.erased,
                    "M9999" if m.merged else None,
                    AS_OF - timedelta(days=500),
                )
                if m.engagement is not None:
                    await connection.execute(
                        "INSERT INTO member_score (member_id, engagement, rfm_cell, churn_risk, scored_at) "
                        "VALUES ($1, $2, $3, $4, $5)",
                        m.member_id,
                        m.engagement,
                        m.rfm_cell,
                        m.churn_risk,
                        AS_OF,
                    )
                for p in m.purchases:
                    await connection.execute(
                        "INSERT INTO purchase (sale_id, member_id, made_by, store_id, occurred_at, gross_fen, net_fen, "
                        "cost_fen, returned_fen) VALUES ($1, $2, $2, $3, $4, $5, $5, 0, $6)",
                        p.sale_id,
                        m.member_id,
                        p.store_id,
                        p.occurred_at,
                        p.net_fen,
                        p.returned_fen,
                    )
                    for line, category in enumerate(p.categories, start=1):
                        await connection.execute(
                            "INSERT INTO purchase_line (sale_id, line_number, sku, category, quantity, net_fen, "
                            "cost_fen) VALUES ($1, $2, 'SKU', $3, 1, 0, 0)",
                            p.sale_id,
                            line,
                            category,
                        )
    finally:
        await connection.close()


def kept(member: Member, window_days: int | None = None) -> list[Purchase]:
    since = None if window_days is None else AS_OF - timedelta(days=window_days)
    return [
        p
        for p in member.purchases
        if not (p.net_fen > 0 and p.returned_fen >= p.net_fen) and (since is None or p.occurred_at >= since)
    ]


COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def holds(rule: Rule, m: Member) -> bool:
    """The documented meaning of a rule, evaluated in Python."""
    if isinstance(rule, AllOf):
        return all(holds(child, m) for child in rule.rules)
    if isinstance(rule, AnyOf):
        return any(holds(child, m) for child in rule.rules)
    if isinstance(rule, Not):
        return not holds(rule.rule, m)
    return condition(rule, m)


def condition(c: Condition, m: Member) -> bool:
    if c.op in ("in", "not_in"):
        scores = {"engagement": m.engagement, "rfm_cell": m.rfm_cell}
        if c.attribute in scores and scores[c.attribute] is None:
            return False  # unknown: neither in nor not in
        inside = membership(c, m)
        return inside if c.op == "in" else not inside
    if c.attribute == "consent":
        return bool((c.channel in m.consent) == c.value)
    if c.attribute in ("churn_risk", "p_active", "expected_purchases_90d"):
        value = m.churn_risk if c.attribute == "churn_risk" else None
        return value is not None and COMPARE[c.op](value, c.value)
    if c.attribute == "days_since_last_purchase":
        last = max((p.occurred_at for p in kept(m)), default=None)
        days = 2_147_483_647 if last is None else (AS_OF - last).days
        return COMPARE[c.op](days, c.value)
    window = kept(m, c.window_days)
    spend = sum(p.net_fen - p.returned_fen for p in window)
    measure = {
        "purchases": len(window),
        "spend_fen": spend,
        "average_basket_fen": spend // len(window) if window else 0,
    }[c.attribute]
    return COMPARE[c.op](measure, c.value)


def membership(c: Condition, m: Member) -> bool:
    value = {
        "tier": m.tier,
        "lifecycle_stage": m.stage,
        "home_store": m.home_store,
        "engagement": m.engagement,
        "rfm_cell": m.rfm_cell,
    }.get(c.attribute)
    if c.attribute == "store_visited":
        return any(p.store_id in c.value for p in kept(m, c.window_days))
    if c.attribute == "category_bought":
        return any(set(p.categories) & set(c.value) for p in kept(m, c.window_days))
    return value is not None and bool(value in c.value)


def random_condition(rng: random.Random) -> dict[str, Any]:
    attribute = rng.choice(
        [
            "tier",
            "lifecycle_stage",
            "engagement",
            "home_store",
            "store_visited",
            "consent",
            "days_since_last_purchase",
            "purchases",
            "spend_fen",
            "average_basket_fen",
            "category_bought",
            "rfm_cell",
            "churn_risk",
        ]
    )
    op = rng.choice(["in", "not_in"])
    comparison = rng.choice(["=", "!=", "<", "<=", ">", ">="])
    window = rng.choice([7, 30, 90, 365])
    choices: dict[str, Any] = {
        "tier": {"op": op, "value": rng.sample(["basic", "silver", "gold"], 2)},
        "lifecycle_stage": {"op": op, "value": rng.sample(LIFECYCLE_STAGES, 2)},
        "engagement": {"op": op, "value": rng.sample(ENGAGEMENT_STAGES, 2)},
        "home_store": {"op": op, "value": rng.sample(STORES, 1)},
        "store_visited": {"op": op, "value": rng.sample(STORES, 1), "window_days": window},
        "consent": {"op": "=", "value": rng.random() < 0.5, "channel": rng.choice(CONSENT_CHANNELS)},
        "days_since_last_purchase": {"op": comparison, "value": rng.choice([0, 10, 60, 200])},
        "purchases": {"op": comparison, "value": rng.randint(0, 3), "window_days": window},
        "spend_fen": {"op": comparison, "value": rng.choice([0, 10_000, 30_000]), "window_days": window},
        "average_basket_fen": {"op": comparison, "value": rng.choice([0, 15_000]), "window_days": window},
        "category_bought": {"op": op, "value": rng.sample(CATEGORIES, 1), "window_days": window},
        "rfm_cell": {"op": op, "value": [f"{rng.randint(1, 5)}{rng.randint(1, 5)}{rng.randint(1, 5)}", "555"]},
        "churn_risk": {"op": comparison, "value": round(rng.random(), 2)},
    }
    return {"attribute": attribute, **choices[attribute]}


def random_rule(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    if depth >= 2 or rng.random() < 0.4:
        return random_condition(rng)
    kind = rng.choice(["all", "any", "not"])
    if kind == "not":
        return {"not": random_rule(rng, depth + 1)}
    return {kind: [random_rule(rng, depth + 1) for _ in range(rng.randint(1, 3))]}


async def test_every_rule_selects_what_its_documented_meaning_selects(
    marketing_url: str, unit_of_work: Callable[[], UnitOfWork]
) -> None:
    rng = random.Random(20261206)
    members = population(rng, 400)
    await load(marketing_url, members)
    audience = [m for m in members if not m.erased and not m.merged]
    checked = 0
    for index in range(150):
        rule = parse_rule(random_rule(rng))
        expected = {m.member_id for m in audience if holds(rule, m)}
        segment = StoredSegment(f"SEG{index}", "test", "", rule, "test", AS_OF)
        async with unit_of_work() as uow:
            await segment_store.insert_segment(uow.session, segment)
            counted = await segment_store.count(uow.session, rule, AS_OF)
            frozen = await segment_store.snapshot(uow.session, segment, f"SNAP{index}", AS_OF, AS_OF)
            selected = {member_id for member_id, _ in await segment_store.snapshot_members(uow.session, f"SNAP{index}")}
            await uow.commit()
        assert selected == expected, rule.to_json()
        assert counted.members == frozen.members == len(expected)
        assert sum(counted.by_stage.values()) == counted.members
        checked += bool(expected) and len(expected) < len(audience)
    # The random rules were not all trivially empty or everything.
    assert checked > 50
