"""PostgreSQL persistence of members, identities, tags, consent, merges and personal-data audits.

Every call takes the unit of work's session. Members are row-locked (``FOR UPDATE``) in
member-id order, so two commands touching the same pair of members never deadlock; an
identity about to be created is guarded by a transaction-level advisory lock on its hash,
so two registrations with the same identity serialise instead of racing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.member.domain.model import Consent, ConsentChannel, format_member_id

_MEMBER_COLUMNS = (
    "member_id, status, merged_into, registered_at, registration_channel, home_store_id, name_sealed, "
    "birthday_sealed, address_sealed, gender, preferences, tier, tier_since, points_balance, points_debt, "
    "lifecycle_stage"
)


@dataclass(frozen=True)
class MemberRow:
    member_id: str
    status: str
    merged_into: str | None
    registered_at: datetime
    registration_channel: str
    home_store_id: str | None
    name_sealed: bytes | None
    birthday_sealed: bytes | None
    address_sealed: bytes | None
    gender: str | None
    preferences: dict[str, str]
    tier: str
    tier_since: datetime
    points_balance: int
    points_debt: int
    lifecycle_stage: str

    @property
    def sealed_profile(self) -> dict[str, bytes | None]:
        return {"name": self.name_sealed, "birthday": self.birthday_sealed, "address": self.address_sealed}


@dataclass(frozen=True)
class IdentityRow:
    identity_hash: bytes
    member_id: str
    identity_type: str
    value_sealed: bytes
    linked_at: datetime


def _member(row: Any) -> MemberRow:
    preferences = row.preferences
    if isinstance(preferences, str):
        preferences = json.loads(preferences)
    return MemberRow(
        member_id=row.member_id,
        status=row.status,
        merged_into=row.merged_into,
        registered_at=row.registered_at,
        registration_channel=row.registration_channel,
        home_store_id=row.home_store_id,
        name_sealed=_bytes(row.name_sealed),
        birthday_sealed=_bytes(row.birthday_sealed),
        address_sealed=_bytes(row.address_sealed),
        gender=row.gender,
        preferences=dict(preferences or {}),
        tier=row.tier,
        tier_since=row.tier_since,
        points_balance=row.points_balance,
        points_debt=row.points_debt,
        lifecycle_stage=row.lifecycle_stage,
    )


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


async def next_member_id(session: AsyncSession) -> str:
    number = (await session.execute(text("SELECT nextval('member_number')"))).scalar_one()
    return format_member_id(int(number))


async def insert_member(
    session: AsyncSession,
    *,
    member_id: str,
    registered_at: datetime,
    channel: str,
    home_store_id: str | None,
    sealed: dict[str, bytes | None],
    gender: str | None,
    preferences: dict[str, str],
    tier: str,
) -> None:
    await session.execute(
        text(
            "INSERT INTO member (member_id, registered_at, registration_channel, home_store_id, name_sealed, "
            "birthday_sealed, address_sealed, gender, preferences, tier, tier_since) VALUES (:id, :at, :channel, "
            ":store, :name, :birthday, :address, :gender, CAST(:preferences AS jsonb), :tier, :at)"
        ),
        {
            "id": member_id,
            "at": registered_at,
            "channel": channel,
            "store": home_store_id or None,
            "name": sealed.get("name"),
            "birthday": sealed.get("birthday"),
            "address": sealed.get("address"),
            "gender": gender,
            "preferences": json.dumps(preferences),
            "tier": tier,
        },
    )


async def read_member(session: AsyncSession, member_id: str, *, lock: bool = False) -> MemberRow | None:
    row = (
        await session.execute(
            text(f"SELECT {_MEMBER_COLUMNS} FROM member WHERE member_id = :id" + (" FOR UPDATE" if lock else "")),
            {"id": member_id},
        )
    ).first()
    return _member(row) if row is not None else None


async def lock_members(session: AsyncSession, member_ids: Iterable[str]) -> dict[str, MemberRow]:
    """Row-lock members in id order (the one order every command uses)."""
    ids = sorted(set(member_ids))
    rows = await session.execute(
        text(
            f"SELECT {_MEMBER_COLUMNS} FROM member WHERE member_id = ANY (CAST(:ids AS text[])) "
            "ORDER BY member_id FOR UPDATE"
        ),
        {"ids": ids},
    )
    return {row.member_id: _member(row) for row in rows}


async def identity_owners(session: AsyncSession, hashes: Sequence[bytes]) -> dict[bytes, str]:
    """Lookup hash → the member owning it, for the hashes someone owns (read as :func:`find_identity` reads)."""
    if not hashes:
        return {}
    rows = await session.execute(
        text(
            "SELECT identity_hash, member_id FROM member_identity WHERE identity_hash = ANY (CAST(:hashes AS bytea[]))"
        ),
        {"hashes": list(hashes)},
    )
    return {bytes(row.identity_hash): row.member_id for row in rows}


async def survivor_of(session: AsyncSession, member_id: str) -> str | None:
    """Follow ``merged_into`` to the member that absorbed this one (itself when not merged)."""
    row = (
        await session.execute(
            text(
                "WITH RECURSIVE chain(member_id, merged_into, depth) AS ("
                " SELECT member_id, merged_into, 0 FROM member WHERE member_id = :id"
                " UNION ALL SELECT m.member_id, m.merged_into, c.depth + 1 FROM member m"
                " JOIN chain c ON m.member_id = c.merged_into WHERE c.depth < 100)"
                " SELECT member_id FROM chain ORDER BY depth DESC LIMIT 1"
            ),
            {"id": member_id},
        )
    ).first()
    return row.member_id if row is not None else None


_PROFILE_COLUMNS = frozenset({"name_sealed", "birthday_sealed", "address_sealed", "gender", "preferences"})


async def update_profile(session: AsyncSession, member_id: str, changes: dict[str, Any]) -> None:
    """Write profile columns (``name_sealed``, ..., ``gender``, ``preferences``); ``None`` clears one."""
    unknown = set(changes) - _PROFILE_COLUMNS
    if unknown:
        raise ValueError(f"not profile columns: {sorted(unknown)}")
    assignments = ["updated_at = now()"]
    values: dict[str, Any] = {"id": member_id}
    for column, value in sorted(changes.items()):
        if column == "preferences":
            assignments.append("preferences = CAST(:preferences AS jsonb)")
            values[column] = json.dumps(value, sort_keys=True)
        else:
            assignments.append(f"{column} = :{column}")
            values[column] = value
    await session.execute(text(f"UPDATE member SET {', '.join(assignments)} WHERE member_id = :id"), values)


# ---- identities ---------------------------------------------------------------------------------


async def guard_identity(session: AsyncSession, identity_hash: bytes) -> None:
    """Serialise every transaction about to create or move this identity (until it ends)."""
    key = int.from_bytes(identity_hash[:8], "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def find_identity(session: AsyncSession, identity_hash: bytes) -> IdentityRow | None:
    row = (
        await session.execute(
            text(
                "SELECT identity_hash, member_id, identity_type, value_sealed, linked_at FROM member_identity "
                "WHERE identity_hash = :hash"
            ),
            {"hash": identity_hash},
        )
    ).first()
    return _identity(row) if row is not None else None


async def insert_identity(
    session: AsyncSession,
    *,
    identity_hash: bytes,
    member_id: str,
    identity_type: str,
    value_sealed: bytes,
    linked_at: datetime,
    linked_by: str,
) -> None:
    await session.execute(
        text(
            "INSERT INTO member_identity (identity_hash, member_id, identity_type, value_sealed, linked_at, linked_by) "
            "VALUES (:hash, :member, :type, :sealed, :at, :by)"
        ),
        {
            "hash": identity_hash,
            "member": member_id,
            "type": identity_type,
            "sealed": value_sealed,
            "at": linked_at,
            "by": linked_by,
        },
    )


async def identities_of(session: AsyncSession, member_ids: Sequence[str]) -> list[IdentityRow]:
    rows = await session.execute(
        text(
            "SELECT identity_hash, member_id, identity_type, value_sealed, linked_at FROM member_identity "
            "WHERE member_id = ANY (CAST(:ids AS text[])) ORDER BY linked_at, identity_hash"
        ),
        {"ids": list(member_ids)},
    )
    return [_identity(row) for row in rows]


def _identity(row: Any) -> IdentityRow:
    return IdentityRow(
        bytes(row.identity_hash), row.member_id, row.identity_type, bytes(row.value_sealed), row.linked_at
    )


# ---- tags and consent ---------------------------------------------------------------------------


async def tags_of(session: AsyncSession, member_id: str) -> list[str]:
    rows = await session.execute(
        text("SELECT tag FROM member_tag WHERE member_id = :id ORDER BY tag"), {"id": member_id}
    )
    return [row.tag for row in rows]


async def add_tags(session: AsyncSession, member_id: str, tags: Sequence[str], at: datetime) -> list[str]:
    """Add tags; returns those that were new."""
    if not tags:
        return []
    rows = await session.execute(
        text(
            "INSERT INTO member_tag (member_id, tag, added_at) SELECT :id, tag, :at FROM unnest(CAST(:tags AS text[])) "
            "AS t(tag) ON CONFLICT DO NOTHING RETURNING tag"
        ),
        {"id": member_id, "tags": sorted(set(tags)), "at": at},
    )
    return sorted(row.tag for row in rows)


async def remove_tags(session: AsyncSession, member_id: str, tags: Sequence[str]) -> list[str]:
    if not tags:
        return []
    rows = await session.execute(
        text("DELETE FROM member_tag WHERE member_id = :id AND tag = ANY (CAST(:tags AS text[])) RETURNING tag"),
        {"id": member_id, "tags": list(tags)},
    )
    return sorted(row.tag for row in rows)


async def consents_of(session: AsyncSession, member_id: str) -> list[Consent]:
    rows = await session.execute(
        text("SELECT channel, granted, updated_at, source FROM member_consent WHERE member_id = :id"),
        {"id": member_id},
    )
    order = list(ConsentChannel)
    consents = [Consent(ConsentChannel(row.channel), row.granted, row.updated_at, row.source) for row in rows]
    return sorted(consents, key=lambda consent: order.index(consent.channel))


async def record_consent(session: AsyncSession, member_id: str, consent: Consent) -> None:
    """The current decision per channel, and the decision in the history."""
    values = {
        "id": member_id,
        "channel": consent.channel.value,
        "granted": consent.granted,
        "at": consent.updated_at,
        "source": consent.source,
    }
    await session.execute(
        text(
            "INSERT INTO member_consent (member_id, channel, granted, updated_at, source) "
            "VALUES (:id, :channel, :granted, :at, :source) ON CONFLICT (member_id, channel) DO UPDATE "
            "SET granted = EXCLUDED.granted, updated_at = EXCLUDED.updated_at, source = EXCLUDED.source"
        ),
        values,
    )
    await session.execute(
        text(
            "INSERT INTO consent_event (member_id, channel, granted, source, recorded_at) "
            "VALUES (:id, :channel, :granted, :source, :at)"
        ),
        values,
    )


async def replace_consents(session: AsyncSession, member_id: str, consents: Sequence[Consent]) -> None:
    """Set a member's current consent rows to exactly these (history untouched)."""
    await session.execute(text("DELETE FROM member_consent WHERE member_id = :id"), {"id": member_id})
    for consent in consents:
        await session.execute(
            text(
                "INSERT INTO member_consent (member_id, channel, granted, updated_at, source) "
                "VALUES (:id, :channel, :granted, :at, :source)"
            ),
            {
                "id": member_id,
                "channel": consent.channel.value,
                "granted": consent.granted,
                "at": consent.updated_at,
                "source": consent.source,
            },
        )


# ---- merges -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeRow:
    merge_id: str
    survivor_id: str
    absorbed_id: str
    rule: str
    status: str
    moved: dict[str, Any]
    merged_at: datetime


async def insert_merge(
    session: AsyncSession,
    *,
    merge_id: str,
    survivor_id: str,
    absorbed_id: str,
    rule: str,
    moved: dict[str, Any],
    merged_at: datetime,
    merged_by: str,
) -> None:
    await session.execute(
        text(
            "INSERT INTO member_merge (merge_id, survivor_id, absorbed_id, rule, moved, merged_at, merged_by) "
            "VALUES (:id, :survivor, :absorbed, :rule, CAST(:moved AS jsonb), :at, :by)"
        ),
        {
            "id": merge_id,
            "survivor": survivor_id,
            "absorbed": absorbed_id,
            "rule": rule,
            "moved": json.dumps(moved, sort_keys=True),
            "at": merged_at,
            "by": merged_by,
        },
    )


async def read_merge(session: AsyncSession, merge_id: str, *, lock: bool = False) -> MergeRow | None:
    row = (
        await session.execute(
            text(
                "SELECT merge_id, survivor_id, absorbed_id, rule, status, moved, merged_at FROM member_merge "
                "WHERE merge_id = CAST(:id AS uuid)" + (" FOR UPDATE" if lock else "")
            ),
            {"id": merge_id},
        )
    ).first()
    if row is None:
        return None
    moved = row.moved if not isinstance(row.moved, str) else json.loads(row.moved)
    return MergeRow(str(row.merge_id), row.survivor_id, row.absorbed_id, row.rule, row.status, moved, row.merged_at)


async def mark_merge_undone(session: AsyncSession, merge_id: str, at: datetime, by: str) -> None:
    await session.execute(
        text("UPDATE member_merge SET status = 'undone', undone_at = :at, undone_by = :by WHERE merge_id = :id"),
        {"id": merge_id, "at": at, "by": by},
    )


async def set_merged(session: AsyncSession, member_id: str, survivor_id: str | None) -> None:
    await session.execute(
        text(
            "UPDATE member SET status = CASE WHEN CAST(:survivor AS text) IS NULL THEN 'active' ELSE 'merged' END, "
            "merged_into = :survivor, updated_at = now() WHERE member_id = :id"
        ),
        {"id": member_id, "survivor": survivor_id},
    )


async def repoint(
    session: AsyncSession, table: str, key_column: str, keys: Sequence[Any], to_member: str, *, key_type: str
) -> int:
    """Give rows (by key) to another member; returns how many moved."""
    if not keys:
        return 0
    result = await session.execute(
        text(f"UPDATE {table} SET member_id = :to WHERE {key_column} = ANY (CAST(:keys AS {key_type}[]))"),
        {"to": to_member, "keys": list(keys)},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]  # SQLAlchemy types execute() as Result, an UPDATE gives a CursorResult


async def record_personal_data_access(
    session: AsyncSession,
    *,
    member_id: str,
    client_id: str,
    client_kind: str,
    staff_role: str,
    store_id: str,
    purpose: str,
    fields: Sequence[str],
    at: datetime,
) -> None:
    await session.execute(
        text(
            "INSERT INTO personal_data_access (member_id, accessed_at, client_id, client_kind, staff_role, store_id, "
            "purpose, fields) VALUES (:member, :at, :client, :kind, :role, :store, :purpose, CAST(:fields AS text[]))"
        ),
        {
            "member": member_id,
            "at": at,
            "client": client_id,
            "kind": client_kind,
            "role": staff_role,
            "store": store_id,
            "purpose": purpose,
            "fields": list(fields),
        },
    )
