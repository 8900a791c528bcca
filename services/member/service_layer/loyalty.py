"""What the loyalty handlers share: their policies, and how they find the member a call is about.

The handlers around the pure rules in ``domain/`` are split by what they do:
:mod:`~services.member.service_layer.journal_sales` (sales from the journal earn and reverse),
:mod:`~services.member.service_layer.points_book` (redemption, adjustment, expiry),
:mod:`~services.member.service_layer.tier_review` (tiers and lifecycle stages),
:mod:`~services.member.service_layer.loyalty_queries` (points and tier history read models) and
:mod:`~services.member.service_layer.member_kpis` (KPIs). ``bootstrap.py`` wires them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone

from servicekit.db import UnitOfWork
from services.member.adapters import member_store
from services.member.adapters.member_store import MemberRow
from services.member.domain.lifecycle import DEFAULT_LIFECYCLE_POLICY, LifecyclePolicy
from services.member.domain.model import MemberErased, MemberMerged, MemberNotFound, check_member_id
from services.member.domain.points import DEFAULT_POINTS_POLICY, PointsPolicy
from services.member.domain.tiers import DEFAULT_TIER_POLICY, TierPolicy

# The chain trades in China: a day of KPIs is a local calendar day.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class LoyaltyPolicies:
    points: PointsPolicy = DEFAULT_POINTS_POLICY
    tiers: TierPolicy = DEFAULT_TIER_POLICY
    lifecycle: LifecyclePolicy = DEFAULT_LIFECYCLE_POLICY


async def lock_active(uow: UnitOfWork, member_id: str) -> MemberRow:
    """The member, row-locked; refused when unknown, erased or merged into another."""
    check_member_id(member_id)
    member = await member_store.read_member(uow.session, member_id, lock=True)
    ensure_active(member, member_id)
    assert member is not None
    return member


async def readable(uow: UnitOfWork, member_id: str) -> MemberRow:
    """The member a read about ``member_id`` answers with: merged ids follow to their survivor."""
    survivor = await member_store.survivor_of(uow.session, member_id)
    member = await member_store.read_member(uow.session, survivor) if survivor else None
    if member is None:
        raise MemberNotFound(f"member {member_id} does not exist")
    if member.status == "erased":
        raise MemberErased(f"member {member_id} was erased")
    return member


def ensure_active(member: MemberRow | None, member_id: str) -> None:
    """Refuse a command on an unknown, erased or merged member, precisely."""
    if member is None:
        raise MemberNotFound(f"member {member_id} does not exist")
    if member.status == "erased":
        raise MemberErased(f"member {member_id} was erased")
    if member.status == "merged":
        raise MemberMerged(
            f"member {member_id} was merged into {member.merged_into}; use that member",
            details={"merged_into": member.merged_into},
        )
