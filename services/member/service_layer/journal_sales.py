"""Sales from the SALES journal: each is kept once as a purchase fact, earns once, and a return
reverses at most what its sale earned.

Sales arrive at least once and in any order. Each is kept once as a sale fact (by sale id,
whatever the consumer's inbox says); a return that arrives before its sale waits and is
reversed when the sale comes. Every change of points locks the member row first, which
serialises it with redemptions, adjustments and merges of the same member.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from services.member.adapters import integration_events as events
from services.member.adapters import loyalty_store, member_store, sales_batch
from services.member.adapters.member_store import MemberRow
from services.member.domain.model import check_member_id
from services.member.domain.points import PurchaseLine, plan_earn, plan_reversal, points_earned, reversal_points
from services.member.service_layer.loyalty import LoyaltyPolicies
from services.member.service_layer.tier_review import TierReview


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


class SalesJournal:
    """Applies the journal's sales and returns to members' points (the SALES consumer calls it)."""

    def __init__(
        self,
        policies: LoyaltyPolicies,
        tiers: TierReview,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.policies = policies
        self._tiers = tiers
        self._clock = clock
        # Per transaction (a consumer's batch): SKU → (category, department), and the SKUs asked about.
        self._categories_seen: weakref.WeakKeyDictionary[UnitOfWork, tuple[dict[str, tuple[str, str]], set[str]]] = (
            weakref.WeakKeyDictionary()
        )

    async def apply_sale(self, uow: UnitOfWork, sale: JournalSale) -> None:
        """Keep the sale once, and earn or reverse the member's points for it.

        A sale and every return of it serialise on the sale's id, so a return never misses
        its sale arriving at the same moment. The member row is locked before the fact is
        kept, so a merge running at the same time sees the fact or moves it.
        """
        session = uow.session
        original = None
        candidate: str | None = None
        if not sale.is_return and sale.member is not None and sale.member.identity_hash and not sale.member.member_id:
            # The commonest entry (a till's sale naming its member by phone or card): guarded and its
            # member found in one round trip.
            candidate = await guard_sale_and_find_owner(uow, sale.sale_id, sale.member.identity_hash)
        else:
            await guard_sale(uow, sale.original_sale_id if sale.is_return and sale.original_sale_id else sale.sale_id)
            if sale.is_return and sale.original_sale_id:
                original = await loyalty_store.read_sale_fact(session, sale.original_sale_id)
            candidate = original.member_id if original is not None and original.member_id else None
            if candidate is None:
                candidate = await self._member_of(uow, sale.member)
        member = await self._lock_current(uow, candidate) if candidate else None
        categories = await self._item_categories(uow, [sku for sku, _ in sale.lines])
        if not sale.is_return and member is not None and member.status == "active":
            await self._keep_and_earn(uow, member, sale, categories)
            return
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
        # An active member's sale took _keep_and_earn: what is left here is a return of a kept sale.
        assert sale.is_return
        assert original is not None
        await self._reverse(uow, member, sale.sale_id, sale.total_minor, original, now)
        # Reversing changes points only: the locked row still holds the member's tier and stage.
        await self._tiers.reevaluate(
            uow, member.member_id, max(now, sale.occurred_at), upgrade_only=True, member=member
        )

    async def apply_sales(self, uow: UnitOfWork, sales: Sequence[JournalSale]) -> None:
        """:meth:`apply_sale` for each sale in turn, with the commonest entries applied set-based.

        The same effects as one :meth:`apply_sale` after the other. Every sale is guarded and every
        member it names resolved and locked up front, a few statements for the whole batch. A sale
        of an active member, kept for the first time and awaited by no return, then joins a group
        applied at once (the facts, earns, lots and balances in one statement, the tiers and stages
        of the group's members read in one more and written only where they moved); a group has
        each member at most once, so each of its sales earns at the tier its member holds. Anything
        else — a return, a sale naming nobody or a merged member, a repeat — ends the group, goes
        through :meth:`apply_sale`, and the next group starts after it, so a member's entries apply in
        journal order.
        """
        session = uow.session
        unique: list[JournalSale] = []
        seen: set[str] = set()
        for sale in sales:
            if sale.sale_id not in seen:  # a second delivery of a sale in the batch changes nothing
                seen.add(sale.sale_id)
                unique.append(sale)
        await guard_sales(uow, [guard_key(sale) for sale in unique])
        candidates = await self._candidates(uow, unique)
        members = await member_store.lock_members(session, {member for member in candidates.values() if member})
        kept, waiting = await sales_batch.kept_and_waiting(session, [sale.sale_id for sale in unique])
        returned = {sale.original_sale_id for sale in unique if sale.is_return and sale.original_sale_id}
        categories = await self._item_categories(uow, sorted({sku for sale in unique for sku, _ in sale.lines}))
        group: list[tuple[JournalSale, str]] = []
        fresh_rows = True  # the locked rows are current until a sale goes through apply_sale
        for sale in unique:
            if sale.sale_id in kept:
                continue  # applied before: a redelivery or a replay of the journal
            member_id = candidates.get(sale.sale_id)
            member = members.get(member_id) if member_id else None
            together = (
                not sale.is_return
                and member is not None
                and member.status == "active"
                and sale.sale_id not in waiting
                and sale.sale_id not in returned
            )
            if together and member_id not in {grouped for _, grouped in group}:
                assert member_id is not None
                group.append((sale, member_id))
                continue
            if group:
                members = await self._earn_together(uow, group, members, categories, fresh_rows)
                fresh_rows, group = False, []
            if together:
                assert member_id is not None
                group.append((sale, member_id))
                continue
            await self.apply_sale(uow, sale)
            fresh_rows = False
        if group:
            await self._earn_together(uow, group, members, categories, fresh_rows)

    async def _candidates(self, uow: UnitOfWork, sales: Sequence[JournalSale]) -> dict[str, str | None]:
        """Sale id → the member a sale (not a return) names, as :meth:`apply_sale` finds it before
        following merges: phone and card hashes resolved in one read, ids taken as they are."""
        hashes = sorted(
            {
                sale.member.identity_hash
                for sale in sales
                if not sale.is_return and sale.member is not None and sale.member.identity_hash
            }
        )
        owners = await member_store.identity_owners(uow.session, hashes)
        candidates: dict[str, str | None] = {}
        for sale in sales:
            reference = sale.member
            if sale.is_return or reference is None:
                continue
            if reference.member_id:
                try:
                    check_member_id(reference.member_id)
                except InvalidArgument:
                    continue
                candidates[sale.sale_id] = reference.member_id
            elif reference.identity_hash:
                candidates[sale.sale_id] = owners.get(reference.identity_hash)
        return candidates

    async def _earn_together(
        self,
        uow: UnitOfWork,
        group: Sequence[tuple[JournalSale, str]],
        members: dict[str, MemberRow],
        categories: dict[str, tuple[str, str]],
        fresh_rows: bool,
    ) -> dict[str, MemberRow]:
        """Keep and earn a group of active members' sales (one per member) at once; returns the locked
        rows as they stand afterwards (to be read again before the next group)."""
        session = uow.session
        if not fresh_rows:  # an entry applied one by one may have moved these members' points or tier
            members = {**members, **await member_store.lock_members(session, [m for _, m in group])}
        now = self._clock()
        earning: list[sales_batch.EarningSale] = []
        for sale, member_id in group:
            member = members[member_id]
            points = self._points_for(member, sale, categories)
            earn = None
            if points > 0:
                earn = plan_earn(
                    points, lot_id="", earned_at=sale.occurred_at, debt=member.points_debt, policy=self.policies.points
                )
            earning.append(
                sales_batch.EarningSale(
                    sale_id=sale.sale_id,
                    member_id=member_id,
                    store_id=sale.store_id,
                    occurred_at=sale.occurred_at,
                    amount_minor=max(sale.total_minor, 0),
                    original_sale_id=sale.original_sale_id,
                    categories=[categories[sku][0] for sku, _ in sale.lines if sku in categories],
                    earn=earn,
                )
            )
        kept = await sales_batch.keep_earning_sales(session, earning, recorded_at=now)
        if kept != len(earning):
            # Every sale here was guarded and found not kept: anything else is a bug, and the consumer
            # then applies the batch one sale at a time.
            raise RuntimeError(f"{len(earning) - kept} of {len(earning)} sales were kept meanwhile")
        for item in earning:
            if item.earn is not None:
                assert item.earn.new_lot is not None
                member = members[item.member_id]
                uow.publish(
                    events.points_earned(
                        item.member_id,
                        item.earn.delta,
                        item.sale_id,
                        member.points_balance + item.earn.delta,
                        item.earn.new_lot.expires_at,
                        now,
                    )
                )
        # A till's clock may run a little ahead: the sale counts for the tier it qualifies for now.
        await self._tiers.reevaluate_after_sales(
            uow, [(members[member_id], max(now, sale.occurred_at)) for sale, member_id in group]
        )
        return members

    async def _keep_and_earn(
        self, uow: UnitOfWork, member: MemberRow, sale: JournalSale, categories: dict[str, tuple[str, str]]
    ) -> None:
        """An active member's sale: kept once, its points earned, returns that overtook it reversed, tier and
        stage brought up to date. The fact and the earn are written in one statement (the member is locked)."""
        session = uow.session
        now = self._clock()
        points = self._points_for(member, sale, categories)
        earn = None
        if points > 0:
            # The lot's id is drawn from the lot sequence by the statement that books it.
            earn = plan_earn(
                points, lot_id="", earned_at=sale.occurred_at, debt=member.points_debt, policy=self.policies.points
            )
        kept = await loyalty_store.keep_earning_sale(
            session,
            sale_id=sale.sale_id,
            member_id=member.member_id,
            store_id=sale.store_id,
            occurred_at=sale.occurred_at,
            amount_minor=max(sale.total_minor, 0),
            original_sale_id=sale.original_sale_id,
            categories=[categories[sku][0] for sku, _ in sale.lines if sku in categories],
            earn=earn,
            recorded_at=now,
        )
        if not kept.kept:
            return  # applied before: a redelivery or a replay of the journal
        if earn is not None:
            assert earn.new_lot is not None
            uow.publish(
                events.points_earned(
                    member.member_id, points, sale.sale_id, member.points_balance + points, earn.new_lot.expires_at, now
                )
            )
        if kept.returns_waiting:
            for pending in await loyalty_store.pending_returns_of(session, sale.sale_id):
                sale_fact = await loyalty_store.read_sale_fact(session, sale.sale_id)
                current = await member_store.read_member(session, member.member_id)
                assert sale_fact is not None
                assert current is not None
                await self._reverse(uow, current, pending.sale_id, pending.amount_minor, sale_fact, now)
        # A till's clock may run a little ahead: the sale counts for the tier it qualifies for now.
        # Earning and reversing change points only: the locked row still holds the member's tier and stage.
        await self._tiers.reevaluate(
            uow, member.member_id, max(now, sale.occurred_at), upgrade_only=True, member=member
        )

    async def _item_categories(self, uow: UnitOfWork, skus: Sequence[str]) -> dict[str, tuple[str, str]]:
        """SKU → (category, department), read once per transaction for each SKU.

        A consumer applies a fetched batch of sales in one transaction; its sales repeat the
        same SKUs. The projection is fed by another consumer in transactions of its own, so
        which of its commits a batch sees is a race either way: reading a SKU once per batch
        is the same as that batch having run a moment earlier.
        """
        known, asked = self._categories_seen.setdefault(uow, ({}, set()))
        missing = sorted(set(skus) - asked)
        if missing:
            known.update(await loyalty_store.item_categories(uow.session, missing))
            asked.update(missing)
        return {sku: known[sku] for sku in skus if sku in known}

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

    def _points_for(self, member: MemberRow, sale: JournalSale, categories: dict[str, tuple[str, str]]) -> int:
        eligible = max(sale.total_minor - sale.points_paid_minor, 0)
        lines = []
        for sku, amount in sale.lines:
            share = amount * eligible // sale.total_minor if sale.total_minor > 0 else 0
            category = self._category_for(*categories[sku]) if sku in categories else None
            lines.append(PurchaseLine(sku, category, max(share, 0)))
        return points_earned(lines, member.tier, self.policies.points)

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


def guard_key(sale: JournalSale) -> str:
    """What :meth:`SalesJournal.apply_sale` guards: a return its sale, anything else itself."""
    return sale.original_sale_id if sale.is_return and sale.original_sale_id else sale.sale_id


async def guard_sales(uow: UnitOfWork, keys: Sequence[str]) -> None:
    """:func:`guard_sale` for many sales in one statement, in one order (two batches never deadlock on them)."""
    await uow.session.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
            "FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS g(k, n)"
        ),
        {"keys": sorted(set(keys))},
    )


async def guard_sale(uow: UnitOfWork, sale_id: str) -> None:
    """Serialise every transaction applying this sale or a return of it (until it ends)."""
    await uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": sale_id})


async def guard_sale_and_find_owner(uow: UnitOfWork, sale_id: str, identity_hash: bytes) -> str | None:
    """:func:`guard_sale` and the member owning ``identity_hash`` (None: nobody), in one statement.

    The identity is read without a lock, as :func:`member_store.find_identity` reads it: a merge that
    moves it meanwhile is followed when the owner's row is locked.
    """
    row = (
        await uow.session.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtextextended(:key, 0)) AS guarded, "
                "(SELECT member_id FROM member_identity WHERE identity_hash = :hash) AS member_id"
            ),
            {"key": sale_id, "hash": identity_hash},
        )
    ).one()
    return str(row.member_id) if row.member_id is not None else None
