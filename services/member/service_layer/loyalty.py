"""Points, tiers, purchase facts and lifecycle: the handlers around the pure rules in ``domain/``.

Every change of points follows the same steps: lock the member row, read the lots, let
:mod:`services.member.domain.points` plan the change, book it (one ledger entry, its draws,
maybe a new lot, balance and debt), publish the event, all in the caller's transaction.
The member row lock serialises every change of one member's points, which is what keeps
concurrent redemptions from ever taking a balance below zero.

Sales arrive from the SALES journal, at least once and in any order. Each is kept once as
a sale fact (by sale id, whatever the consumer's inbox says), earns once, and a return
reverses at most what its sale earned; a return that arrives before its sale waits and is
reversed when the sale comes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import text

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from services.member.adapters import integration_events as events
from services.member.adapters import loyalty_store, member_store
from services.member.adapters.member_store import MemberRow
from services.member.domain.kpis import MemberKpis, member_kpis
from services.member.domain.lifecycle import (
    DEFAULT_LIFECYCLE_POLICY,
    LifecyclePolicy,
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
from services.member.domain.model import MemberErased, MemberMerged, MemberNotFound, check_member_id
from services.member.domain.points import (
    DEFAULT_POINTS_POLICY,
    PointsPolicy,
    PurchaseLine,
    plan_adjustment,
    plan_earn,
    plan_expiry,
    plan_redemption,
    plan_reversal,
    points_balance_problems,
    points_earned,
    reversal_points,
)
from services.member.domain.tiers import (
    DEFAULT_TIER_POLICY,
    Tier,
    TierPolicy,
    qualifying_tier,
    rolling_spend,
    tier_after_purchase,
    tier_at_review,
)

log = logging.getLogger("member.loyalty")
# The chain trades in China: a day of KPIs is a local calendar day.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8))
MAX_KPI_DAYS = 366
# Four whole weeks: every weekday counts equally, so periods compare without a weekend bias.
DEFAULT_KPI_DAYS = 28
MAX_POINTS = 10_000_000
EXPIRY_BATCH = 200


@dataclass(frozen=True)
class LoyaltyPolicies:
    points: PointsPolicy = DEFAULT_POINTS_POLICY
    tiers: TierPolicy = DEFAULT_TIER_POLICY
    lifecycle: LifecyclePolicy = DEFAULT_LIFECYCLE_POLICY


@dataclass(frozen=True)
class JournalMember:
    """How a journal entry names its member: by id, or by the keyed hash of a phone or card."""

    member_id: str = ""
    identity_hash: bytes = b""


@dataclass(frozen=True)
class JournalSale:
    """One SALES journal entry, as the member context needs it (amounts in fen)."""

    sale_id: str
    is_return: bool
    store_id: str
    occurred_at: datetime
    lines: Sequence[tuple[str, int]]  # (sku, line total)
    total_minor: int
    points_paid_minor: int = 0
    member: JournalMember | None = None
    original_sale_id: str = ""


@dataclass(frozen=True)
class BookedEntry:
    entry_id: int
    kind: str
    points: int
    reference: str
    reason: str
    recorded_at: datetime
    expires_at: datetime | None
    balance: int


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


@dataclass(frozen=True)
class PointsOverview:
    member_id: str
    balance: int
    expiring: list[tuple[datetime, int]]
    entries: list[loyalty_store.LedgerEntry]
    next_page_token: str


@dataclass(frozen=True)
class LedgerCheckOutcome:
    balance: int
    ledger_total: int
    lots_remaining: int
    debt: int
    problems: list[str]


@dataclass(frozen=True)
class KpiReport:
    store_id: str
    from_date: date
    to_date: date
    kpis: MemberKpis
    new_members: int


class Loyalty:
    """What the gRPC servicer, the SALES consumer and the background sweeps call."""

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

    # -- sales from the journal ----------------------------------------------------------------
    async def apply_sale(self, uow: UnitOfWork, sale: JournalSale) -> None:
        """Keep the sale once, and earn or reverse the member's points for it.

        A sale and every return of it serialise on the sale's id, so a return never misses
        its sale arriving at the same moment. The member row is locked before the fact is
        kept, so a merge running at the same time sees the fact or moves it.
        """
        session = uow.session
        await guard_sale(uow, sale.original_sale_id if sale.is_return and sale.original_sale_id else sale.sale_id)
        original = None
        if sale.is_return and sale.original_sale_id:
            original = await loyalty_store.read_sale_fact(session, sale.original_sale_id)
        candidate = original.member_id if original is not None and original.member_id else None
        if candidate is None:
            candidate = await self._member_of(uow, sale.member)
        member = await self._lock_current(uow, candidate) if candidate else None
        categories = await loyalty_store.item_categories(session, [sku for sku, _ in sale.lines])
        kept = await loyalty_store.record_sale_fact(
            session,
            sale_id=sale.sale_id,
            kind="return" if sale.is_return else "sale",
            member_id=member.member_id if member is not None else candidate,
            store_id=sale.store_id,
            occurred_at=sale.occurred_at,
            amount_minor=max(sale.total_minor, 0),
            original_sale_id=sale.original_sale_id,
            categories=[categories[sku][0] for sku, _ in sale.lines if sku in categories],
        )
        if not kept:
            return  # applied before: a redelivery or a replay of the journal
        if sale.is_return and original is None:
            # The return overtook its sale in the journal: reversed when the sale arrives.
            await loyalty_store.set_sale_points(session, sale.sale_id, points=0, reversal_pending=True)
            return
        if member is None or member.status != "active":
            return  # no member to credit: the fact is all there is
        now = self._clock()
        if sale.is_return:
            assert original is not None
            await self._reverse(uow, member, sale.sale_id, sale.total_minor, original, now)
        else:
            await self._earn(uow, member, sale, categories, now)
            for pending in await loyalty_store.pending_returns_of(session, sale.sale_id):
                sale_fact = await loyalty_store.read_sale_fact(session, sale.sale_id)
                current = await member_store.read_member(session, member.member_id)
                assert sale_fact is not None
                assert current is not None
                await self._reverse(uow, current, pending.sale_id, pending.amount_minor, sale_fact, now)
        # A till's clock may run a little ahead: the sale counts for the tier it qualifies for now.
        await self.reevaluate(uow, member.member_id, max(now, sale.occurred_at), upgrade_only=True)

    async def _lock_current(self, uow: UnitOfWork, member_id: str) -> MemberRow | None:
        """Lock the member, following merges to the survivor (a merge may have just committed)."""
        for _ in range(100):
            member = await member_store.read_member(uow.session, member_id, lock=True)
            if member is None or member.status != "merged" or not member.merged_into:
                return member
            member_id = member.merged_into
        return None

    async def _member_of(self, uow: UnitOfWork, reference: JournalMember | None) -> str | None:
        if reference is None:
            return None
        if reference.member_id:
            try:
                check_member_id(reference.member_id)
            except InvalidArgument:
                return None
            return await member_store.survivor_of(uow.session, reference.member_id)
        if reference.identity_hash:
            owner = await member_store.find_identity(uow.session, reference.identity_hash)
            return owner.member_id if owner is not None else None
        return None

    def _category_for(self, category: str, department: str) -> str:
        multipliers = self.policies.points.category_multipliers
        if category in multipliers or department not in multipliers:
            return category
        return department

    async def _earn(
        self,
        uow: UnitOfWork,
        member: MemberRow,
        sale: JournalSale,
        categories: dict[str, tuple[str, str]],
        now: datetime,
    ) -> None:
        eligible = max(sale.total_minor - sale.points_paid_minor, 0)
        lines = []
        for sku, amount in sale.lines:
            share = amount * eligible // sale.total_minor if sale.total_minor > 0 else 0
            category = self._category_for(*categories[sku]) if sku in categories else None
            lines.append(PurchaseLine(sku, category, max(share, 0)))
        points = points_earned(lines, member.tier, self.policies.points)
        if points <= 0:
            return
        lot_id = await loyalty_store.next_lot_id(uow.session)
        change = plan_earn(
            points, lot_id=lot_id, earned_at=sale.occurred_at, debt=member.points_debt, policy=self.policies.points
        )
        await loyalty_store.apply_change(
            uow.session, member.member_id, change, recorded_at=now, sale_id=sale.sale_id, store_id=sale.store_id
        )
        await loyalty_store.set_sale_points(uow.session, sale.sale_id, points=points, lot_id=lot_id)
        assert change.new_lot is not None
        uow.publish(
            events.points_earned(
                member.member_id, points, sale.sale_id, member.points_balance + points, change.new_lot.expires_at, now
            )
        )

    async def _reverse(
        self,
        uow: UnitOfWork,
        member: MemberRow,
        return_id: str,
        returned_minor: int,
        original: loyalty_store.SaleFactRow,
        now: datetime,
    ) -> None:
        session = uow.session
        points = 0
        if original.points > 0 and returned_minor > 0 and original.amount_minor > 0:
            so_far = await loyalty_store.reversed_so_far(session, original.sale_id)
            points = reversal_points(original.points, so_far, returned_minor, original.amount_minor)
        await loyalty_store.set_sale_points(session, return_id, points=points, member_id=member.member_id)
        if points <= 0:
            return
        own_lot = str(original.lot_id) if original.lot_id is not None else None
        lots = await loyalty_store.open_lots(session, member.member_id, including=own_lot)
        change = plan_reversal(lots, points, own_lot)
        await loyalty_store.apply_change(session, member.member_id, change, recorded_at=now, sale_id=return_id)
        uow.publish(
            events.points_reversed(
                member.member_id, points, return_id, original.sale_id, member.points_balance - points, now
            )
        )

    # -- commands ------------------------------------------------------------------------------
    async def redeem(
        self, uow: UnitOfWork, member_id: str, points: int, *, reference: str, store_id: str
    ) -> BookedEntry:
        """Spend points, soonest-expiring first; due points expire first, in the same transaction."""
        if not 0 < points <= MAX_POINTS:
            raise InvalidArgument(f"points must be between 1 and {MAX_POINTS}", reason="invalid-points-amount")
        member = await self.lock_active(uow, member_id)
        now = self._clock()
        member = await self._expire(uow, member, now)
        lots = await loyalty_store.open_lots(uow.session, member.member_id)
        change = plan_redemption(lots, points, member.points_balance)
        entry_id = await loyalty_store.apply_change(
            uow.session, member.member_id, change, recorded_at=now, reference=reference, store_id=store_id
        )
        balance = member.points_balance + change.delta
        uow.publish(events.points_redeemed(member.member_id, points, reference, balance, now))
        return BookedEntry(entry_id, change.kind.value, change.delta, reference, "", now, None, balance)

    async def adjust(self, uow: UnitOfWork, member_id: str, points: int, *, reason: str) -> BookedEntry:
        """A staff correction with a reason; a negative one never takes the balance below zero."""
        if abs(points) > MAX_POINTS:
            raise InvalidArgument(f"at most {MAX_POINTS} points at once", reason="invalid-points-amount")
        member = await self.lock_active(uow, member_id)
        now = self._clock()
        member = await self._expire(uow, member, now)
        lots = await loyalty_store.open_lots(uow.session, member.member_id)
        lot_id = await loyalty_store.next_lot_id(uow.session) if points > 0 else ""
        change = plan_adjustment(
            lots,
            points,
            balance=member.points_balance,
            debt=member.points_debt,
            reason=reason,
            lot_id=lot_id,
            at=now,
            policy=self.policies.points,
        )
        entry_id = await loyalty_store.apply_change(uow.session, member.member_id, change, recorded_at=now)
        balance = member.points_balance + change.delta
        uow.publish(events.points_adjusted(member.member_id, change.delta, balance, now))
        expires_at = change.new_lot.expires_at if change.new_lot is not None else None
        return BookedEntry(entry_id, change.kind.value, change.delta, "", change.reason, now, expires_at, balance)

    async def lock_active(self, uow: UnitOfWork, member_id: str) -> MemberRow:
        """The member, row-locked; refused when unknown, erased or merged into another."""
        check_member_id(member_id)
        member = await member_store.read_member(uow.session, member_id, lock=True)
        ensure_active(member, member_id)
        assert member is not None
        return member

    async def _expire(self, uow: UnitOfWork, member: MemberRow, now: datetime) -> MemberRow:
        """Expire the member's due lots (member row locked); returns the member afterwards."""
        lots = await loyalty_store.open_lots(uow.session, member.member_id)
        change = plan_expiry(lots, now)
        if change is None:
            return member
        await loyalty_store.apply_change(uow.session, member.member_id, change, recorded_at=now)
        balance = member.points_balance + change.delta
        uow.publish(events.points_expired(member.member_id, -change.delta, balance, now))
        after = await member_store.read_member(uow.session, member.member_id)
        assert after is not None
        return after

    async def expire_due(self, batch: int = EXPIRY_BATCH) -> int:
        """Expire what is due for up to ``batch`` members, one transaction each; returns how many."""
        now = self._clock()
        async with self._uow() as uow:
            due = await loyalty_store.members_with_due_points(uow.session, now, batch)
        for member_id in due:
            async with self._uow() as uow:
                row = (
                    await uow.session.execute(
                        text("SELECT member_id FROM member WHERE member_id = :id FOR UPDATE SKIP LOCKED"),
                        {"id": member_id},
                    )
                ).first()
                if row is None:
                    continue  # busy with a redemption (which expires it itself) or another sweeper
                member = await member_store.read_member(uow.session, member_id)
                assert member is not None
                await self._expire(uow, member, now)
                await uow.commit()
        return len(due)

    # -- tiers and lifecycle -------------------------------------------------------------------
    async def reevaluate(self, uow: UnitOfWork, member_id: str, now: datetime, *, upgrade_only: bool) -> list[int]:
        """Tier and lifecycle stage from the member's facts (member row locked by the caller).

        After a sale only upgrades happen; a review also downgrades after the grace period.
        Returns the ids of tier history rows written.
        """
        session = uow.session
        member = await member_store.read_member(session, member_id)
        assert member is not None
        written: list[int] = []
        spend = await self.rolling_spend(uow, member_id, now)
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
        purchases = await loyalty_store.member_purchases(session, member_id)
        stage = self.stage_of(member.registered_at, purchases, now)
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
                await self.reevaluate(uow, member_id, now, upgrade_only=False)
                await uow.commit()
        return ids[-1] if len(ids) == batch else ""

    # -- questions -----------------------------------------------------------------------------
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

    async def points(self, member_id: str, *, page_token: str, page_size: int) -> PointsOverview:
        check_member_id(member_id)
        before = None
        if page_token:
            if not page_token.isdigit():
                raise InvalidArgument("page_token is not one this service issued", reason="invalid-page-token")
            before = int(page_token)
        async with self._uow() as uow:
            member = await self.readable(uow, member_id)
            entries = await loyalty_store.ledger_page(
                uow.session, member.member_id, before_entry_id=before, limit=page_size + 1
            )
            soon = await loyalty_store.expiring(uow.session, member.member_id)
        page, more = entries[:page_size], len(entries) > page_size
        return PointsOverview(
            member.member_id, member.points_balance, soon, page, str(page[-1].entry_id) if more else ""
        )

    async def readable(self, uow: UnitOfWork, member_id: str) -> MemberRow:
        """The member a read about ``member_id`` answers with: merged ids follow to their survivor."""
        survivor = await member_store.survivor_of(uow.session, member_id)
        member = await member_store.read_member(uow.session, survivor) if survivor else None
        if member is None:
            raise MemberNotFound(f"member {member_id} does not exist")
        if member.status == "erased":
            raise MemberErased(f"member {member_id} was erased")
        return member

    async def check_ledger(self, member_id: str) -> LedgerCheckOutcome:
        check_member_id(member_id)
        async with self._uow() as uow:
            check = await loyalty_store.check_ledger(uow.session, member_id)
        if check is None:
            raise MemberNotFound(f"member {member_id} does not exist")
        problems = points_balance_problems(check.balance, check.ledger_total, check.lots_remaining, check.debt)
        if check.lots_drawn_mismatch:
            problems.append(f"{check.lots_drawn_mismatch} lots differ from their points minus their draws")
        return LedgerCheckOutcome(check.balance, check.ledger_total, check.lots_remaining, check.debt, problems)

    async def tier_changes(self, member_id: str, *, page_token: str, page_size: int) -> tuple[list[Any], str]:
        check_member_id(member_id)
        if page_token and not page_token.isdigit():
            raise InvalidArgument("page_token is not one this service issued", reason="invalid-page-token")
        async with self._uow() as uow:
            member = await self.readable(uow, member_id)
            rows = await loyalty_store.tier_changes(
                uow.session, member.member_id, before_id=int(page_token) if page_token else None, limit=page_size + 1
            )
        page, more = rows[:page_size], len(rows) > page_size
        return list(page), str(page[-1].id) if more else ""

    async def kpis(self, store_id: str, from_date: date | None, to_date: date | None) -> KpiReport:
        """Member KPIs of ``[from_date, to_date]`` (local days) at one store or the chain; by default
        the :data:`DEFAULT_KPI_DAYS` days ending today."""
        today = self._clock().astimezone(CHINA_STANDARD_TIME).date()
        end_day = to_date or today
        start_day = from_date or end_day - timedelta(days=DEFAULT_KPI_DAYS - 1)
        if start_day > end_day:
            raise InvalidArgument("from_date must not be after to_date", reason="invalid-period")
        if (end_day - start_day).days >= MAX_KPI_DAYS:
            raise InvalidArgument(f"a period has at most {MAX_KPI_DAYS} days", reason="invalid-period")
        start = datetime.combine(start_day, datetime.min.time(), CHINA_STANDARD_TIME)
        end = datetime.combine(end_day + timedelta(days=1), datetime.min.time(), CHINA_STANDARD_TIME)
        async with self._uow() as uow:
            facts = await loyalty_store.sale_facts(uow.session, start, end, store_id or None)
            new_members = (
                await uow.session.execute(
                    text(
                        "SELECT count(*) FROM member WHERE registered_at >= :start AND registered_at < :end "
                        "AND (CAST(:store AS text) IS NULL OR home_store_id = :store)"
                    ),
                    {"start": start, "end": end, "store": store_id or None},
                )
            ).scalar_one()
        return KpiReport(
            store_id, start_day, end_day, member_kpis(facts, start, end, store_id or None), int(new_members)
        )


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


async def guard_sale(uow: UnitOfWork, sale_id: str) -> None:
    """Serialise every transaction applying this sale or a return of it (until it ends)."""
    await uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": sale_id})
