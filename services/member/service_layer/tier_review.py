"""Tiers and lifecycle stages: upgraded after a purchase, reviewed (and downgraded after the
grace period) by the background roll, and a member's standing for its read model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from servicekit.db import UnitOfWork
from services.member.adapters import integration_events as events
from services.member.adapters import loyalty_store, member_store, sales_batch
from services.member.adapters.member_store import MemberRow
from services.member.domain.lifecycle import (
    PurchaseFacts,
    PurchaseRecord,
    RfmScores,
    favourite_categories,
    favourite_hours,
    favourite_stores,
    lifecycle_stage,
    purchase_facts,
    rfm_scores,
)
from services.member.domain.tiers import Tier, qualifying_tier, rolling_spend, tier_after_purchase, tier_at_review
from services.member.service_layer.loyalty import CHINA_STANDARD_TIME, LoyaltyPolicies


@dataclass(frozen=True)
class TierStatus:
    tier: str
    qualifying_spend_minor: int
    next_tier: str
    spend_to_next_minor: int
    grace_until: datetime | None


@dataclass(frozen=True)
class PurchaseProfile:
    facts: PurchaseFacts
    rfm: RfmScores | None
    recency_days: int
    favourite_categories: list[str] = field(default_factory=list)
    favourite_stores: list[str] = field(default_factory=list)
    favourite_hours: list[int] = field(default_factory=list)


class TierReview:
    """Keeps members' tiers and lifecycle stages in step with their purchases."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        policies: LoyaltyPolicies,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = unit_of_work
        self.policies = policies
        self._clock = clock

    async def reevaluate(
        self, uow: UnitOfWork, member_id: str, now: datetime, *, upgrade_only: bool, member: MemberRow | None = None
    ) -> list[int]:
        """Tier and lifecycle stage from the member's facts (member row locked by the caller).

        After a sale only upgrades happen; a review also downgrades after the grace period.
        ``member`` is the locked row when the caller holds it with its tier and stage current
        (read again otherwise). Returns the ids of tier history rows written.
        """
        session = uow.session
        if member is None:
            member = await member_store.read_member(session, member_id)
        assert member is not None
        # The member's purchases and the spend in the tier window, in one read.
        purchases, spend_rows = await loyalty_store.purchases_and_spend(
            session, member_id, now - timedelta(days=self.policies.tiers.window_days)
        )
        spend = rolling_spend(spend_rows, now, self.policies.tiers)
        stage = self.stage_of(member.registered_at, purchases, now)
        return await self._settle(uow, member, spend, stage, now, upgrade_only=upgrade_only)

    async def reevaluate_after_sales(self, uow: UnitOfWork, members: Sequence[tuple[MemberRow, datetime]]) -> None:
        """:meth:`reevaluate` with ``upgrade_only`` for many members at once (rows locked by the caller,
        each with its tier and stage current): their figures read in one statement, and only a member
        whose tier or stage moved is written to."""
        if not members:
            return
        standings = await sales_batch.standings(
            uow.session,
            [
                (
                    member.member_id,
                    now,
                    now - timedelta(days=self.policies.tiers.window_days),
                    now - timedelta(days=self.policies.lifecycle.window_days),
                )
                for member, now in members
            ],
        )
        for member, now in members:
            standing = standings[member.member_id]
            # lifecycle_stage reads the last purchase and the purchases in the window of the facts.
            facts = PurchaseFacts(
                last_purchase_at=standing.last_purchase_at, purchases_in_window=standing.purchases_in_window
            )
            stage = lifecycle_stage(member.registered_at, facts, now, self.policies.lifecycle).value
            await self._settle(uow, member, standing.tier_spend_minor, stage, now, upgrade_only=True)

    async def _settle(
        self, uow: UnitOfWork, member: MemberRow, spend: int, stage: str, now: datetime, *, upgrade_only: bool
    ) -> list[int]:
        """Write the member's tier and stage where they moved (history row and events)."""
        session = uow.session
        member_id = member.member_id
        written: list[int] = []
        tiers = self.policies.tiers
        target = (
            tier_after_purchase(member.tier, spend, tiers)
            if upgrade_only
            else tier_at_review(member.tier, spend, member.tier_since, now, tiers)
        )
        if target.code != member.tier:
            reason = "upgrade" if tiers.rank(target.code) > tiers.rank(member.tier) else "downgrade"
            await loyalty_store.set_tier(session, member_id, target.code, now)
            written.append(
                await loyalty_store.record_tier_change(
                    session,
                    member_id,
                    from_tier=member.tier,
                    to_tier=target.code,
                    reason=reason,
                    spend_minor=spend,
                    at=now,
                )
            )
            uow.publish(events.tier_changed(member_id, member.tier, target.code, reason, spend, now))
        if stage != member.lifecycle_stage:
            await loyalty_store.set_lifecycle_stage(session, member_id, stage)
            uow.publish(events.lifecycle_changed(member_id, member.lifecycle_stage, stage, now))
        return written

    def stage_of(self, registered_at: datetime, purchases: Sequence[PurchaseRecord], now: datetime) -> str:
        facts = purchase_facts(purchases, now, self.policies.lifecycle)
        return lifecycle_stage(registered_at, facts, now, self.policies.lifecycle).value

    async def rolling_spend(self, uow: UnitOfWork, member_id: str, now: datetime) -> int:
        start = now - timedelta(days=self.policies.tiers.window_days)
        return rolling_spend(await loyalty_store.spend_since(uow.session, member_id, start), now, self.policies.tiers)

    async def review(self, *, after_member_id: str = "", batch: int = 500) -> str:
        """Review tiers and lifecycle stages of the next ``batch`` active members (one transaction
        per member); returns the last member id reviewed, ``""`` when the roll is done."""
        now = self._clock()
        async with self._uow() as uow:
            rows = await uow.session.execute(
                text(
                    "SELECT member_id FROM member WHERE status = 'active' AND member_id > :after "
                    "ORDER BY member_id LIMIT :limit"
                ),
                {"after": after_member_id, "limit": batch},
            )
            ids = [row.member_id for row in rows]
        for member_id in ids:
            async with self._uow() as uow:
                member = await member_store.read_member(uow.session, member_id, lock=True)
                if member is None or member.status != "active":
                    continue
                await self.reevaluate(uow, member_id, now, upgrade_only=False, member=member)
                await uow.commit()
        return ids[-1] if len(ids) == batch else ""

    async def tier_status(self, uow: UnitOfWork, member: MemberRow, now: datetime) -> TierStatus:
        tiers = self.policies.tiers
        spend = await self.rolling_spend(uow, member.member_id, now)
        rank = tiers.rank(member.tier)
        following: Tier | None = tiers.tiers[rank + 1] if rank + 1 < len(tiers.tiers) else None
        grace_until = None
        if tiers.rank(qualifying_tier(spend, tiers).code) < rank:
            grace_until = member.tier_since + timedelta(days=tiers.grace_days)
        return TierStatus(
            tier=member.tier,
            qualifying_spend_minor=spend,
            next_tier=following.code if following else "",
            spend_to_next_minor=max(following.threshold_minor - spend, 0) if following else 0,
            grace_until=grace_until,
        )

    def purchase_profile(self, purchases: Sequence[PurchaseRecord], now: datetime) -> PurchaseProfile:
        facts = purchase_facts(purchases, now, self.policies.lifecycle)
        if facts.last_purchase_at is None:
            return PurchaseProfile(facts, None, 0)
        return PurchaseProfile(
            facts=facts,
            rfm=rfm_scores(facts, now),
            recency_days=max(0, (now - facts.last_purchase_at).days),
            favourite_categories=[f.key for f in favourite_categories(purchases)],
            favourite_stores=[f.key for f in favourite_stores(purchases)],
            favourite_hours=[f.key for f in favourite_hours(purchases, tz=CHINA_STANDARD_TIME)],
        )
