"""Merging two members who proved to be one person, and undoing it exactly.

A merge moves everything of the absorbed member to the survivor: identities, the points
ledger (entries and lots, with balance and debt), sale facts, tags, consent and its
history, and profile fields the survivor lacks; the survivor keeps the better tier. The
merge record stores exactly what moved and what the survivor looked like before, so an
undo puts both members back as they were. An undo is refused precisely when that is no
longer possible: twice, after the survivor was merged again or erased, or when points
that moved have been spent, expired or reversed since.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from servicekit.db import UnitOfWork
from services.member.adapters import integration_events as events
from services.member.adapters import loyalty_store, member_store
from services.member.adapters.member_store import MemberRow
from services.member.adapters.personal_data import PersonalDataCodec
from services.member.domain.model import (
    PROFILE_FIELDS,
    Actor,
    Consent,
    ConsentChannel,
    MergeAlreadyUndone,
    MergeCandidate,
    MergeDiverged,
    MergedMemberErased,
    MergeNotFound,
    SurvivorMergedAgain,
    choose_survivor,
    merged_consents,
)
from services.member.domain.points import plan_debt_settlement
from services.member.service_layer.loyalty import ensure_active
from services.member.service_layer.tier_review import TierReview


@dataclass(frozen=True)
class MergeOutcome:
    merge_id: str
    survivor_id: str
    absorbed_id: str
    rule: str
    points_moved: int
    merged_at: datetime


@dataclass(frozen=True)
class UndoOutcome:
    merge_id: str
    survivor_id: str
    restored_id: str
    undone_at: datetime


class Merges:
    def __init__(
        self, codec: PersonalDataCodec, tiers: TierReview, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._codec = codec
        self._tiers = tiers
        self._clock = clock

    async def merge(self, uow: UnitOfWork, linking_id: str, owner_id: str, chosen: str, actor: Actor) -> MergeOutcome:
        """Merge the member an identity is being linked to with the identity's owner."""
        session = uow.session
        rows = await member_store.lock_members(session, [linking_id, owner_id])
        for member_id in (linking_id, owner_id):
            ensure_active(rows.get(member_id), member_id)
        survivor_c, absorbed_c, rule = choose_survivor(
            await self._candidate(uow, rows[linking_id]), await self._candidate(uow, rows[owner_id]), chosen
        )
        survivor, absorbed = rows[survivor_c.member_id], rows[absorbed_c.member_id]
        s_id, a_id = survivor.member_id, absorbed.member_id
        now = self._clock()
        moved: dict[str, Any] = {}

        identities = await member_store.identities_of(session, [a_id])
        moved["identities"] = [row.identity_hash.hex() for row in identities]
        await member_store.repoint(
            session,
            "member_identity",
            "identity_hash",
            [row.identity_hash for row in identities],
            s_id,
            key_type="bytea",
        )

        changes: dict[str, Any] = {}
        filled = []
        for field_name in PROFILE_FIELDS:
            if field_name == "gender":
                if survivor.gender is None and absorbed.gender is not None:
                    changes["gender"] = absorbed.gender
                    filled.append(field_name)
                continue
            if survivor.sealed_profile[field_name] is None and absorbed.sealed_profile[field_name] is not None:
                changes[f"{field_name}_sealed"] = self._codec.reseal_field(
                    a_id, s_id, field_name, absorbed.sealed_profile[field_name]
                )
                filled.append(field_name)
        added_preferences = sorted(set(absorbed.preferences) - set(survivor.preferences))
        if added_preferences:
            changes["preferences"] = survivor.preferences | {
                key: absorbed.preferences[key] for key in added_preferences
            }
        if changes:
            await member_store.update_profile(session, s_id, changes)
        moved["profile_filled"] = filled
        moved["preferences_added"] = added_preferences
        moved["home_store_filled"] = survivor.home_store_id is None and absorbed.home_store_id is not None
        if moved["home_store_filled"]:
            await session.execute(
                text("UPDATE member SET home_store_id = :store WHERE member_id = :id"),
                {"store": absorbed.home_store_id, "id": s_id},
            )

        absorbed_tags = await member_store.tags_of(session, a_id)
        moved["tags_absorbed"] = absorbed_tags
        moved["tags_added"] = await member_store.add_tags(session, s_id, absorbed_tags, now)
        await member_store.remove_tags(session, a_id, absorbed_tags)

        survivor_consents = await member_store.consents_of(session, s_id)
        absorbed_consents = await member_store.consents_of(session, a_id)
        combined = merged_consents(survivor_consents, absorbed_consents)
        await member_store.replace_consents(session, s_id, combined)
        await member_store.replace_consents(session, a_id, [])
        uow.publish(*events.consents_changed(s_id, survivor_consents, combined, now))
        moved["consents_survivor_before"] = [_consent_json(c) for c in survivor_consents]
        moved["consents_absorbed"] = [_consent_json(c) for c in absorbed_consents]
        moved["consents_after"] = [_consent_json(c) for c in combined]
        moved["consent_events"] = await _ids(uow, "SELECT id FROM consent_event WHERE member_id = :id", a_id)
        await member_store.repoint(session, "consent_event", "id", moved["consent_events"], s_id, key_type="bigint")

        moved["points"] = await self._move_points(uow, survivor, absorbed, now)
        moved["sales"] = [
            row[0]
            for row in (
                await session.execute(
                    text("SELECT sale_id FROM sale_fact WHERE member_id = :id ORDER BY sale_id"), {"id": a_id}
                )
            )
        ]
        await member_store.repoint(session, "sale_fact", "sale_id", moved["sales"], s_id, key_type="text")

        await member_store.set_merged(session, a_id, s_id)
        tiers = self._tiers.policies.tiers
        moved["tier_before"] = {"tier": survivor.tier, "since": survivor.tier_since.isoformat()}
        moved["lifecycle_before"] = survivor.lifecycle_stage
        tier_changes = []
        if tiers.rank(absorbed.tier) > tiers.rank(survivor.tier):
            spend = await self._tiers.rolling_spend(uow, s_id, now)
            await loyalty_store.set_tier(session, s_id, absorbed.tier, absorbed.tier_since)
            tier_changes.append(
                await loyalty_store.record_tier_change(
                    session,
                    s_id,
                    from_tier=survivor.tier,
                    to_tier=absorbed.tier,
                    reason="merge",
                    spend_minor=spend,
                    at=now,
                )
            )
            uow.publish(events.tier_changed(s_id, survivor.tier, absorbed.tier, "merge", spend, now))
        tier_changes += await self._tiers.reevaluate(uow, s_id, now, upgrade_only=True)
        moved["tier_changes"] = tier_changes
        after = await member_store.read_member(session, s_id)
        assert after is not None
        moved["tier_after"] = {"tier": after.tier, "since": after.tier_since.isoformat()}
        moved["lifecycle_after"] = after.lifecycle_stage

        merge_id = str(uuid.uuid4())
        await member_store.insert_merge(
            session,
            merge_id=merge_id,
            survivor_id=s_id,
            absorbed_id=a_id,
            rule=rule.value,
            moved=moved,
            merged_at=now,
            merged_by=actor.client_id,
        )
        uow.publish(events.member_merged(merge_id, s_id, a_id, rule.value, now))
        return MergeOutcome(merge_id, s_id, a_id, rule.value, int(moved["points"]["balance"]), now)

    async def _candidate(self, uow: UnitOfWork, member: MemberRow) -> MergeCandidate:
        identities = await member_store.identities_of(uow.session, [member.member_id])
        consents = await member_store.consents_of(uow.session, member.member_id)
        filled = sum(value is not None for value in member.sealed_profile.values()) + (member.gender is not None)
        return MergeCandidate(member.member_id, member.registered_at, filled, len(identities), len(consents))

    async def _move_points(self, uow: UnitOfWork, survivor: MemberRow, absorbed: MemberRow, now: datetime) -> Any:
        session = uow.session
        s_id, a_id = survivor.member_id, absorbed.member_id
        entries = await _ids(uow, "SELECT entry_id FROM points_entry WHERE member_id = :id", a_id)
        lots = await _ids(uow, "SELECT lot_id FROM points_lot WHERE member_id = :id", a_id)
        await member_store.repoint(session, "points_entry", "entry_id", entries, s_id, key_type="bigint")
        await member_store.repoint(session, "points_lot", "lot_id", lots, s_id, key_type="bigint")
        await session.execute(
            text(
                "UPDATE member SET points_balance = points_balance + :balance, points_debt = points_debt + :debt "
                "WHERE member_id = :survivor"
            ),
            {"survivor": s_id, "balance": absorbed.points_balance, "debt": absorbed.points_debt},
        )
        await session.execute(
            text("UPDATE member SET points_balance = 0, points_debt = 0 WHERE member_id = :id"), {"id": a_id}
        )
        settlement: dict[str, Any] | None = None
        settled_lots: list[int] = []
        debt = survivor.points_debt + absorbed.points_debt
        change = plan_debt_settlement(await loyalty_store.open_lots(session, s_id), debt) if debt else None
        if change is not None:
            entry_id = await loyalty_store.apply_change(session, s_id, change, recorded_at=now)
            settlement = {"entry_id": entry_id, "draws": [[int(d.lot_id), d.points] for d in change.draws]}
            settled_lots = [int(d.lot_id) for d in change.draws]
        touched = set(lots) | set(settled_lots)
        remaining = await _lot_remaining(uow, sorted(touched))
        return {
            "entries": entries,
            "lots": lots,
            "balance": absorbed.points_balance,
            "debt": absorbed.points_debt,
            "survivor_debt_before": survivor.points_debt,
            "settlement": settlement,
            "lots_after": {str(lot): points for lot, points in remaining.items()},
        }

    async def undo(self, uow: UnitOfWork, merge_id: str, actor: Actor) -> UndoOutcome:
        session = uow.session
        try:
            uuid.UUID(merge_id)
        except ValueError:
            raise MergeNotFound(f"merge {merge_id[:64]!r} does not exist") from None
        merge = await member_store.read_merge(session, merge_id, lock=True)
        if merge is None:
            raise MergeNotFound(f"merge {merge_id} does not exist")
        if merge.status == "undone":
            raise MergeAlreadyUndone(f"merge {merge_id} was already undone")
        rows = await member_store.lock_members(session, [merge.survivor_id, merge.absorbed_id])
        survivor, absorbed = rows[merge.survivor_id], rows[merge.absorbed_id]
        if survivor.status == "erased" or absorbed.status == "erased":
            raise MergedMemberErased(f"a member of merge {merge_id} was erased; nothing can be restored")
        if survivor.status == "merged":
            raise SurvivorMergedAgain(
                f"the survivor {survivor.member_id} was merged into {survivor.merged_into} after this merge; "
                "undo that merge first",
                details={"merged_into": survivor.merged_into},
            )
        moved = merge.moved
        s_id, a_id = survivor.member_id, absorbed.member_id
        await self._ensure_unchanged(uow, merge_id, s_id, moved)
        now = self._clock()

        await member_store.repoint(
            session,
            "member_identity",
            "identity_hash",
            [bytes.fromhex(h) for h in moved["identities"]],
            a_id,
            key_type="bytea",
        )
        changes: dict[str, Any] = {}
        for field_name in moved["profile_filled"]:
            changes["gender" if field_name == "gender" else f"{field_name}_sealed"] = None
        if moved["preferences_added"]:
            changes["preferences"] = {
                key: value for key, value in survivor.preferences.items() if key not in moved["preferences_added"]
            }
        if changes:
            await member_store.update_profile(session, s_id, changes)
        if moved["home_store_filled"]:
            await session.execute(text("UPDATE member SET home_store_id = NULL WHERE member_id = :id"), {"id": s_id})

        await member_store.remove_tags(session, s_id, moved["tags_added"])
        await member_store.add_tags(session, a_id, moved["tags_absorbed"], merge.merged_at)

        current = {c.channel: c for c in await member_store.consents_of(session, s_id)}
        after = {c.channel: c for c in map(_consent_of, moved["consents_after"])}
        before = {c.channel: c for c in map(_consent_of, moved["consents_survivor_before"])}
        restored = []
        for channel in ConsentChannel:
            if current.get(channel) != after.get(channel):
                if channel in current:
                    restored.append(current[channel])  # decided again since the merge: that decision stands
            elif channel in before:
                restored.append(before[channel])
        await member_store.replace_consents(session, s_id, restored)
        absorbed_restored = [_consent_of(c) for c in moved["consents_absorbed"]]
        await member_store.replace_consents(session, a_id, absorbed_restored)
        uow.publish(
            *events.consents_changed(s_id, current.values(), restored, now),
            *events.consents_changed(a_id, [], absorbed_restored, now),
        )
        await member_store.repoint(session, "consent_event", "id", moved["consent_events"], a_id, key_type="bigint")

        await self._restore_points(uow, s_id, a_id, moved["points"])
        await member_store.repoint(session, "sale_fact", "sale_id", moved["sales"], a_id, key_type="text")

        await member_store.set_merged(session, a_id, None)
        current_row = await member_store.read_member(session, s_id)
        assert current_row is not None
        if {"tier": current_row.tier, "since": current_row.tier_since.isoformat()} == moved["tier_after"]:
            before_tier = moved["tier_before"]
            await loyalty_store.set_tier(
                session, s_id, before_tier["tier"], datetime.fromisoformat(before_tier["since"])
            )
            if moved["tier_changes"]:
                await session.execute(
                    text("DELETE FROM tier_change WHERE id = ANY (CAST(:ids AS bigint[]))"),
                    {"ids": moved["tier_changes"]},
                )
            if current_row.tier != before_tier["tier"]:
                spend = await self._tiers.rolling_spend(uow, s_id, now)
                uow.publish(events.tier_changed(s_id, current_row.tier, before_tier["tier"], "downgrade", spend, now))
        if current_row.lifecycle_stage == moved["lifecycle_after"] != moved["lifecycle_before"]:
            await loyalty_store.set_lifecycle_stage(session, s_id, moved["lifecycle_before"])
            uow.publish(events.lifecycle_changed(s_id, current_row.lifecycle_stage, moved["lifecycle_before"], now))

        await member_store.mark_merge_undone(session, merge_id, now, actor.client_id)
        uow.publish(events.merge_undone(merge_id, s_id, a_id, now))
        return UndoOutcome(merge_id, s_id, a_id, now)

    async def _ensure_unchanged(self, uow: UnitOfWork, merge_id: str, survivor_id: str, moved: Any) -> None:
        """Refuse an undo that could not restore the absorbed member exactly."""
        points = moved["points"]
        recorded = {int(lot): remaining for lot, remaining in points["lots_after"].items()}
        now_remaining = await _lot_remaining(uow, sorted(recorded))
        changed_lots = sorted(lot for lot, remaining in recorded.items() if now_remaining.get(lot) != remaining)
        owners = await uow.session.execute(
            text(
                "SELECT (SELECT count(*) FROM member_identity WHERE identity_hash = ANY (CAST(:hashes AS bytea[])) "
                "AND member_id <> :survivor) AS identities, "
                "(SELECT count(*) FROM sale_fact WHERE sale_id = ANY (CAST(:sales AS text[])) "
                "AND member_id IS DISTINCT FROM :survivor) AS sales"
            ),
            {
                "hashes": [bytes.fromhex(h) for h in moved["identities"]],
                "sales": moved["sales"],
                "survivor": survivor_id,
            },
        )
        moved_away = owners.one()
        if changed_lots or moved_away.identities or moved_away.sales:
            raise MergeDiverged(
                f"merge {merge_id} can no longer be undone exactly: points that moved with it were spent, "
                "expired or reversed since, or what moved has moved on",
                details={
                    "changed_lots": len(changed_lots),
                    "identities_moved_on": int(moved_away.identities),
                    "sales_moved_on": int(moved_away.sales),
                },
            )

    async def _restore_points(self, uow: UnitOfWork, s_id: str, a_id: str, points: Any) -> None:
        session = uow.session
        settlement = points["settlement"]
        if settlement is not None:
            for lot_id, drawn in settlement["draws"]:
                await session.execute(
                    text("UPDATE points_lot SET remaining = remaining + :points WHERE lot_id = :lot"),
                    {"lot": lot_id, "points": drawn},
                )
            await session.execute(text("DELETE FROM points_draw WHERE entry_id = :id"), {"id": settlement["entry_id"]})
            await session.execute(text("DELETE FROM points_entry WHERE entry_id = :id"), {"id": settlement["entry_id"]})
            settled = sum(drawn for _, drawn in settlement["draws"])
        else:
            settled = 0
        await member_store.repoint(session, "points_entry", "entry_id", points["entries"], a_id, key_type="bigint")
        await member_store.repoint(session, "points_lot", "lot_id", points["lots"], a_id, key_type="bigint")
        # Debt the survivor took on after the merge stays with it; the merge's share goes back.
        await session.execute(
            text(
                "UPDATE member SET points_debt = points_debt + :settled - :absorbed_debt, "
                "points_balance = (SELECT coalesce(sum(points), 0) FROM points_entry WHERE member_id = :survivor) "
                "WHERE member_id = :survivor"
            ),
            {"survivor": s_id, "settled": settled, "absorbed_debt": points["debt"]},
        )
        await session.execute(
            text(
                "UPDATE member SET points_debt = :debt, "
                "points_balance = (SELECT coalesce(sum(points), 0) FROM points_entry WHERE member_id = :absorbed) "
                "WHERE member_id = :absorbed"
            ),
            {"absorbed": a_id, "debt": points["debt"]},
        )


async def _ids(uow: UnitOfWork, query: str, member_id: str) -> list[int]:
    return [int(row[0]) for row in await uow.session.execute(text(query + " ORDER BY 1"), {"id": member_id})]


async def _lot_remaining(uow: UnitOfWork, lot_ids: list[int]) -> dict[int, int]:
    if not lot_ids:
        return {}
    rows = await uow.session.execute(
        text("SELECT lot_id, remaining FROM points_lot WHERE lot_id = ANY (CAST(:ids AS bigint[]))"), {"ids": lot_ids}
    )
    return {int(row.lot_id): int(row.remaining) for row in rows}


def _consent_json(consent: Consent) -> dict[str, Any]:
    return {
        "channel": consent.channel.value,
        "granted": consent.granted,
        "updated_at": consent.updated_at.isoformat(),
        "source": consent.source,
    }


def _consent_of(data: dict[str, Any]) -> Consent:
    return Consent(
        ConsentChannel(data["channel"]), data["granted"], datetime.fromisoformat(data["updated_at"]), data["source"]
    )
