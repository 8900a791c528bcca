"""Redemption, staff adjustment and expiry of points: each a change of one member's points.

Every change follows the same steps: lock the member row, read the lots, let
:mod:`services.member.domain.points` plan the change, book it (one ledger entry, its draws,
maybe a new lot, balance and debt), publish the event, all in one transaction. The member
row lock serialises every change of one member's points, which is what keeps concurrent
redemptions from ever taking a balance below zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from servicekit.idempotency import keep_reply, replay
from services.member.adapters import integration_events as events
from services.member.adapters import loyalty_store, member_store
from services.member.adapters.member_store import MemberRow
from services.member.domain.points import plan_adjustment, plan_expiry, plan_redemption
from services.member.service_layer.commands import AdjustPoints, MemberAnswers, RedeemPoints
from services.member.service_layer.loyalty import LoyaltyPolicies, lock_active

MAX_POINTS = 10_000_000
EXPIRY_BATCH = 200


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


class PointsBook:
    """Spends, corrects and expires members' points."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        policies: LoyaltyPolicies,
        answers: MemberAnswers,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = unit_of_work
        self.policies = policies
        self._answers = answers
        self._clock = clock

    async def redeem(self, command: RedeemPoints) -> BookedEntry:
        """Spend points, soonest-expiring first; due points expire first, in the same transaction."""
        async with self._uow() as uow:
            if (first := await replay(uow.session, command.request, self._answers.redeemed)) is not None:
                return first
            answer = await self._redeem(uow, command=command)
            await keep_reply(uow.session, command.request, self._answers.redeemed, answer)
            await uow.commit()
            return answer

    async def adjust(self, command: AdjustPoints) -> BookedEntry:
        """A staff correction with a reason; a negative one never takes the balance below zero."""
        async with self._uow() as uow:
            if (first := await replay(uow.session, command.request, self._answers.adjusted)) is not None:
                return first
            answer = await self._adjust(uow, command=command)
            await keep_reply(uow.session, command.request, self._answers.adjusted, answer)
            await uow.commit()
            return answer

    async def _redeem(self, uow: UnitOfWork, *, command: RedeemPoints) -> BookedEntry:
        member_id, points, reference, store_id = command.member_id, command.points, command.reference, command.store_id
        if not 0 < points <= MAX_POINTS:
            raise InvalidArgument(f"points must be between 1 and {MAX_POINTS}", reason="invalid-points-amount")
        member = await lock_active(uow, member_id)
        now = self._clock()
        member = await expire_points(uow, member, now)
        lots = await loyalty_store.open_lots(uow.session, member.member_id)
        change = plan_redemption(lots, points, member.points_balance)
        entry_id = await loyalty_store.apply_change(
            uow.session, member.member_id, change, recorded_at=now, reference=reference, store_id=store_id
        )
        balance = member.points_balance + change.delta
        uow.publish(events.points_redeemed(member.member_id, points, reference, balance, now))
        return BookedEntry(entry_id, change.kind.value, change.delta, reference, "", now, None, balance)

    async def _adjust(self, uow: UnitOfWork, *, command: AdjustPoints) -> BookedEntry:
        member_id, points, reason = command.member_id, command.points, command.reason
        if abs(points) > MAX_POINTS:
            raise InvalidArgument(f"at most {MAX_POINTS} points at once", reason="invalid-points-amount")
        member = await lock_active(uow, member_id)
        now = self._clock()
        member = await expire_points(uow, member, now)
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
                await expire_points(uow, member, now)
                await uow.commit()
        return len(due)


async def expire_points(uow: UnitOfWork, member: MemberRow, now: datetime) -> MemberRow:
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
