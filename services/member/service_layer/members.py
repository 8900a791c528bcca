"""Member commands and questions: register, resolve, read (masked, none or audited clear),
update, link an identity (which may merge), undo a merge, erase.

Personal data is sealed before it reaches a statement and opened only to build an answer;
nothing here logs it. Each command's handler owns its unit of work: it claims the request id
(``replay``), makes the change, keeps the answer (``keep_reply``) and commits; reads open their own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text

from servicekit.db import UnitOfWork
from servicekit.errors import DomainError, InvalidArgument
from servicekit.idempotency import keep_reply, replay
from services.member.adapters import integration_events as events
from services.member.adapters import loyalty_store, member_store
from services.member.adapters.member_store import MemberRow
from services.member.adapters.personal_data import PersonalDataCodec
from services.member.domain.identities import ChannelIdentity, identity_hash
from services.member.domain.model import (
    MAX_PREFERENCES,
    MAX_TAGS,
    Actor,
    Consent,
    ConsentChannel,
    ContactDetails,
    IdentityAlreadyLinked,
    IdentityNotFound,
    LinkedIdentity,
    MemberNotFound,
    PersonalData,
    PersonalDataView,
    Profile,
    ShownIdentity,
    check_member_id,
    check_preferences,
    check_store_id,
    check_tags,
)
from services.member.service_layer.commands import (
    EraseMember,
    LinkIdentity,
    MemberAnswers,
    MemberUpdated,
    Registered,
    RegisterMember,
    UndoMerge,
    UpdateMember,
)
from services.member.service_layer.loyalty import ensure_active, readable
from services.member.service_layer.merges import MergeOutcome, Merges, UndoOutcome
from services.member.service_layer.tier_review import PurchaseProfile, TierReview, TierStatus

MAX_PURPOSE_LENGTH = 200
# Identities one ResolveMembers call may ask about (the gateway sends at most its batch size).
MAX_RESOLVED_AT_ONCE = 500
MAX_REASON_LENGTH = 200


@dataclass(frozen=True)
class LinkOutcome:
    member_id: str
    merge: MergeOutcome | None


@dataclass(frozen=True)
class MemberView:
    member_id: str
    status: str
    registered_at: datetime
    registration_channel: str
    home_store_id: str
    tier: TierStatus
    points_balance: int
    tags: list[str]
    preferences: dict[str, str]
    contact: ContactDetails | None
    identities: list[ShownIdentity]
    consents: list[Consent]
    lifecycle_stage: str
    purchases: PurchaseProfile
    view: PersonalDataView


@dataclass(frozen=True)
class ErasureOutcome:
    member_id: str
    erased_at: datetime
    also_erased: list[str]


class MemberService:
    """The member application service: what the gRPC servicer calls."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        codec: PersonalDataCodec,
        lookup_key: bytes,
        tiers: TierReview,
        answers: MemberAnswers,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = unit_of_work
        self._codec = codec
        self._lookup_key = lookup_key
        self._tiers = tiers
        self._answers = answers
        self._clock = clock
        self.merges = Merges(codec, tiers, clock=clock)

    def lookup_hash(self, identity: ChannelIdentity) -> bytes:
        return identity_hash(self._lookup_key, identity)

    # -- commands ------------------------------------------------------------------------------
    async def register(self, command: RegisterMember) -> Registered:
        """The identity's owner if it has one, else a new member."""
        async with self._uow() as uow:
            if (first := await replay(uow.session, command.request, self._answers.registered)) is not None:
                return first
            answer = await self._register(uow, command=command)
            await keep_reply(uow.session, command.request, self._answers.registered, answer)
            await uow.commit()
            return answer

    async def update(self, command: UpdateMember) -> MemberUpdated:
        """Change profile, preferences, tags and consent; answers what changed."""
        async with self._uow() as uow:
            if (first := await replay(uow.session, command.request, self._answers.updated)) is not None:
                return first
            answer = await self._update(uow, command=command)
            await keep_reply(uow.session, command.request, self._answers.updated, answer)
            await uow.commit()
            return answer

    async def link_identity(self, command: LinkIdentity) -> LinkOutcome:
        """Link an identity; one owned by another member merges the two."""
        async with self._uow() as uow:
            if (first := await replay(uow.session, command.request, self._answers.linked)) is not None:
                return first
            answer = await self._link_identity(uow, command=command)
            await keep_reply(uow.session, command.request, self._answers.linked, answer)
            await uow.commit()
            return answer

    async def undo_merge(self, command: UndoMerge) -> UndoOutcome:
        """Put both members of a merge back exactly as they were."""
        async with self._uow() as uow:
            if (first := await replay(uow.session, command.request, self._answers.undone)) is not None:
                return first
            answer = await self._undo_merge(uow, command=command)
            await keep_reply(uow.session, command.request, self._answers.undone, answer)
            await uow.commit()
            return answer

    async def erase(self, command: EraseMember) -> ErasureOutcome:
        """Erase a member's personal data everywhere this service keeps it."""
        async with self._uow() as uow:
            if (first := await replay(uow.session, command.request, self._answers.erased)) is not None:
                return first
            answer = await self._erase(uow, command=command)
            await keep_reply(uow.session, command.request, self._answers.erased, answer)
            await uow.commit()
            return answer

    async def _register(self, uow: UnitOfWork, *, command: RegisterMember) -> Registered:
        check_store_id(command.store_id)
        check_preferences(command.preferences)
        if len(command.preferences) > MAX_PREFERENCES:
            raise InvalidArgument(f"at most {MAX_PREFERENCES} preferences", reason="invalid-preference")
        session = uow.session
        lookup = self.lookup_hash(command.identity)
        await member_store.guard_identity(session, lookup)
        owner = await member_store.find_identity(session, lookup)
        if owner is not None:
            return Registered(owner.member_id, False)
        now = self._clock()
        member_id = await member_store.next_member_id(session)
        await member_store.insert_member(
            session,
            member_id=member_id,
            registered_at=now,
            channel=command.channel.value,
            home_store_id=command.store_id or None,
            sealed=self._codec.seal_profile(member_id, command.profile),
            gender=command.profile.gender.value if command.profile.gender else None,
            preferences=command.preferences,
            tier=self._tiers.policies.tiers.lowest.code,
        )
        await member_store.insert_identity(
            session,
            identity_hash=lookup,
            member_id=member_id,
            identity_type=command.identity.type.value,
            value_sealed=self._codec.seal_identity(lookup, command.identity),
            linked_at=now,
            linked_by=command.actor.client_id,
        )
        decided = [
            Consent(channel, granted, now, command.actor.client_id)
            for channel, granted in _distinct_consents(command.consents)
        ]
        for consent in decided:
            await member_store.record_consent(session, member_id, consent)
        uow.publish(
            events.member_registered(
                member_id, command.channel.value, command.identity.type.value, command.store_id, now
            ),
            *events.consents_changed(member_id, [], decided, now),
        )
        return Registered(member_id, True)

    async def _update(self, uow: UnitOfWork, *, command: UpdateMember) -> MemberUpdated:
        """Change profile, preferences, tags and consent; returns what changed."""
        check_member_id(command.member_id)
        session = uow.session
        member = await member_store.read_member(session, command.member_id, lock=True)
        ensure_active(member, command.member_id)
        assert member is not None
        given = {name for name in ("name", "birthday", "address", "gender") if getattr(command, name) is not None}
        if given & command.clear:
            raise InvalidArgument(
                f"{sorted(given & command.clear)} cannot be set and cleared at once",
                reason="conflicting-profile-change",
            )
        if not (
            given
            or command.clear
            or command.set_preferences
            or command.remove_preferences
            or command.add_tags
            or command.remove_tags
            or command.consents
        ):
            raise InvalidArgument("the request changes nothing", reason="nothing-to-change")
        check_preferences(command.set_preferences)
        check_tags([*command.add_tags, *command.remove_tags])
        now = self._clock()
        changed: list[str] = []
        columns: dict[str, object] = {}
        sealed = self._codec.seal_profile(
            member.member_id, Profile(name=command.name, birthday=command.birthday, address=command.address)
        )
        for name in ("name", "birthday", "address"):
            if name in given:
                columns[f"{name}_sealed"] = sealed[name]
                changed.append(name)
            elif name in command.clear and member.sealed_profile[name] is not None:
                columns[f"{name}_sealed"] = None
                changed.append(name)
        if command.gender is not None and command.gender.value != member.gender:
            columns["gender"] = command.gender.value
            changed.append("gender")
        elif "gender" in command.clear and member.gender is not None:
            columns["gender"] = None
            changed.append("gender")
        if command.set_preferences or command.remove_preferences:
            preferences = {k: v for k, v in member.preferences.items() if k not in command.remove_preferences}
            preferences |= command.set_preferences
            if len(preferences) > MAX_PREFERENCES:
                raise InvalidArgument(f"at most {MAX_PREFERENCES} preferences", reason="invalid-preference")
            if preferences != member.preferences:
                columns["preferences"] = preferences
                changed.append("preferences")
        if columns:
            await member_store.update_profile(session, member.member_id, columns)
        removed = await member_store.remove_tags(session, member.member_id, list(command.remove_tags))
        added = await member_store.add_tags(session, member.member_id, list(command.add_tags), now)
        if len(await member_store.tags_of(session, member.member_id)) > MAX_TAGS:
            raise InvalidArgument(f"a member has at most {MAX_TAGS} tags", reason="too-many-tags")
        if added or removed:
            changed.append("tags")
        current = {
            consent.channel: consent.granted for consent in await member_store.consents_of(session, member.member_id)
        }
        for channel, granted in _distinct_consents(command.consents):
            # Every decision is history, also one that confirms the current state.
            await member_store.record_consent(
                session, member.member_id, Consent(channel, granted, now, command.actor.client_id)
            )
            if current.get(channel) != granted:
                changed.append(f"consent.{channel.value}")
                uow.publish(events.consent_changed(member.member_id, channel.value, granted, now))
        return MemberUpdated(command.member_id, changed)

    async def _link_identity(self, uow: UnitOfWork, *, command: LinkIdentity) -> LinkOutcome:
        member_id, identity, survivor_member_id = command.member_id, command.identity, command.survivor_member_id
        actor = command.actor
        check_member_id(member_id)
        if survivor_member_id:
            check_member_id(survivor_member_id)
        session = uow.session
        lookup = self.lookup_hash(identity)
        await member_store.guard_identity(session, lookup)
        owner = await member_store.find_identity(session, lookup)
        if owner is not None and owner.member_id == member_id:
            raise IdentityAlreadyLinked(f"member {member_id} already has this {identity.type.value}")
        if owner is not None:
            merge = await self.merges.merge(uow, member_id, owner.member_id, survivor_member_id, actor)
            return LinkOutcome(merge.survivor_id, merge)
        if survivor_member_id and survivor_member_id != member_id:
            raise InvalidArgument(
                "survivor_member_id names a member that takes no part in a merge", reason="invalid-survivor"
            )
        member = await member_store.read_member(session, member_id, lock=True)
        ensure_active(member, member_id)
        now = self._clock()
        await member_store.insert_identity(
            session,
            identity_hash=lookup,
            member_id=member_id,
            identity_type=identity.type.value,
            value_sealed=self._codec.seal_identity(lookup, identity),
            linked_at=now,
            linked_by=actor.client_id,
        )
        uow.publish(events.identity_linked(member_id, identity.type.value, now))
        return LinkOutcome(member_id, None)

    async def _undo_merge(self, uow: UnitOfWork, *, command: UndoMerge) -> UndoOutcome:
        return await self.merges.undo(uow, command.merge_id, command.actor)

    async def _erase(self, uow: UnitOfWork, *, command: EraseMember) -> ErasureOutcome:
        """Erase the member's personal data and identities, and those of members merged into it.

        What stays is anonymous: the member id with its tier, points ledger amounts and sale
        facts (for KPIs), and audit rows of who did what. Erasing twice answers the first erasure.
        """
        member_id, reason, actor = command.member_id, command.reason, command.actor
        check_member_id(member_id)
        if len(reason) > MAX_REASON_LENGTH:
            raise InvalidArgument(f"a reason has at most {MAX_REASON_LENGTH} characters", reason="invalid-reason")
        session = uow.session
        member = await member_store.read_member(session, member_id, lock=True)
        if member is None:
            raise MemberNotFound(f"member {member_id} does not exist")
        if member.status == "erased":
            erased_at = (
                await session.execute(
                    text("SELECT erased_at FROM member_erasure WHERE member_id = :id"), {"id": member_id}
                )
            ).scalar_one()
            return ErasureOutcome(member_id, erased_at, [])
        ensure_active(member, member_id)
        absorbed = [
            row.member_id
            for row in await session.execute(
                text(
                    "WITH RECURSIVE absorbed(member_id) AS (SELECT member_id FROM member WHERE merged_into = :id "
                    "UNION SELECT m.member_id FROM member m JOIN absorbed a ON m.merged_into = a.member_id) "
                    "SELECT member_id FROM absorbed ORDER BY member_id"
                ),
                {"id": member_id},
            )
        ]
        everyone = [member_id, *absorbed]
        await member_store.lock_members(session, everyone)
        now = self._clock()
        ids = {"ids": everyone}
        for statement in (
            "DELETE FROM member_identity WHERE member_id = ANY (CAST(:ids AS text[]))",
            "DELETE FROM member_tag WHERE member_id = ANY (CAST(:ids AS text[]))",
            "DELETE FROM member_consent WHERE member_id = ANY (CAST(:ids AS text[]))",
            "DELETE FROM consent_event WHERE member_id = ANY (CAST(:ids AS text[]))",
            # A merge record keeps identity hashes and consent of both members: nothing to undo any more.
            "UPDATE member_merge SET moved = '{\"erased\": true}'::jsonb "
            "WHERE survivor_id = ANY (CAST(:ids AS text[])) "
            "OR absorbed_id = ANY (CAST(:ids AS text[]))",
            "UPDATE points_entry SET reference = '', reason = '' WHERE member_id = ANY (CAST(:ids AS text[])) "
            "AND (reference <> '' OR reason <> '')",
            "UPDATE member SET name_sealed = NULL, birthday_sealed = NULL, address_sealed = NULL, gender = NULL, "
            "preferences = '{}', status = 'erased', merged_into = NULL, erased_at = :at, updated_at = :at "
            "WHERE member_id = ANY (CAST(:ids AS text[]))",
        ):
            await session.execute(text(statement), ids | {"at": now} if ":at" in statement else ids)
        for erased in everyone:
            await session.execute(
                text(
                    "INSERT INTO member_erasure (member_id, erased_at, erased_by, reason) VALUES (:id, :at, :by, :why)"
                ),
                {"id": erased, "at": now, "by": actor.client_id, "why": reason},
            )
            uow.publish(events.member_erased(erased, now))
        return ErasureOutcome(member_id, now, absorbed)

    # -- questions -----------------------------------------------------------------------------
    async def resolve(self, identity: ChannelIdentity) -> str:
        [answer] = await self.resolve_many([identity])
        if isinstance(answer, DomainError):
            raise answer
        return answer

    async def resolve_many(self, identities: Sequence[ChannelIdentity | DomainError]) -> list[str | DomainError]:
        """:meth:`resolve` for several identities in one statement: per identity, in order, its
        member id or the refusal ``resolve`` would raise (an identity already refused while it
        was read, e.g. malformed, stays refused)."""
        if len(identities) > MAX_RESOLVED_AT_ONCE:
            raise InvalidArgument(f"at most {MAX_RESOLVED_AT_ONCE} identities at once", details={"field": "identities"})
        hashes = [
            self.lookup_hash(identity) if isinstance(identity, ChannelIdentity) else None for identity in identities
        ]
        async with self._uow().read() as session:  # one statement: no transaction needed
            owners = await member_store.identity_owners(session, sorted({h for h in hashes if h is not None}))
        answers: list[str | DomainError] = []
        for identity, lookup_hash in zip(identities, hashes, strict=True):
            if isinstance(identity, DomainError):
                answers.append(identity)
            elif lookup_hash in owners:
                answers.append(owners[lookup_hash])
            else:
                answers.append(IdentityNotFound(f"no member has this {identity.type.value}"))
        return answers

    async def find_by_lookup_hash(self, lookup_hash: bytes) -> str:
        """The member a journal's lookup hash belongs to (for the contexts that read the journal)."""
        if len(lookup_hash) != 32:
            raise InvalidArgument("a lookup hash is 32 bytes (HMAC-SHA256)", details={"field": "identity_hash"})
        async with self._uow().read() as session:
            owner = await member_store.find_identity(session, lookup_hash)
        if owner is None:
            raise IdentityNotFound("no member has this identity")
        return owner.member_id

    async def get(
        self, member_id: str, view: PersonalDataView, *, actor: Actor | None = None, purpose: str = ""
    ) -> MemberView:
        """The member in the requested view; a clear view is recorded in the audit, in the same transaction."""
        check_member_id(member_id)
        actor = actor or Actor()
        if view is PersonalDataView.CLEAR:
            if not actor.client_id:
                raise InvalidArgument("the clear view needs the actor asking for it", reason="actor-missing")
            if not purpose.strip() or len(purpose) > MAX_PURPOSE_LENGTH:
                raise InvalidArgument(
                    f"the clear view needs a purpose of 1 to {MAX_PURPOSE_LENGTH} characters", reason="purpose-missing"
                )
        async with self._uow() as uow:
            member = await readable(uow, member_id)
            answer = await self._view(uow, member, view)
            if view is PersonalDataView.CLEAR:
                await member_store.record_personal_data_access(
                    uow.session,
                    member_id=member.member_id,
                    client_id=actor.client_id,
                    client_kind=actor.client_kind,
                    staff_role=actor.staff_role,
                    store_id=actor.store_id,
                    purpose=purpose.strip(),
                    fields=_shown_fields(answer),
                    at=self._clock(),
                )
                await uow.commit()
        return answer

    async def _view(self, uow: UnitOfWork, member: MemberRow, view: PersonalDataView) -> MemberView:
        session = uow.session
        now = self._clock()
        rows = await member_store.identities_of(session, [member.member_id])
        if view is PersonalDataView.NONE:
            # Nothing is opened for a view that shows none of it: only which kinds of identity exist.
            contact = None
            shown = [ShownIdentity(row.identity_type, "", "", row.linked_at) for row in rows]
        else:
            personal = PersonalData(
                self._codec.open_profile(member.member_id, member.sealed_profile, member.gender),
                [
                    LinkedIdentity(
                        self._codec.open_identity(row.identity_hash, row.identity_type, row.value_sealed), row.linked_at
                    )
                    for row in rows
                ],
            )
            contact, shown = personal.contact(view), personal.shown_identities(view)
        purchases = await loyalty_store.member_purchases(session, member.member_id)
        return MemberView(
            member_id=member.member_id,
            status=member.status,
            registered_at=member.registered_at,
            registration_channel=member.registration_channel,
            home_store_id=member.home_store_id or "",
            tier=await self._tiers.tier_status(uow, member, now),
            points_balance=member.points_balance,
            tags=await member_store.tags_of(session, member.member_id),
            preferences=member.preferences,
            contact=contact,
            identities=shown,
            consents=await member_store.consents_of(session, member.member_id),
            lifecycle_stage=self._tiers.stage_of(member.registered_at, purchases, now),
            purchases=self._tiers.purchase_profile(purchases, now),
            view=view,
        )


def _shown_fields(view: MemberView) -> list[str]:
    contact = view.contact
    if contact is None:
        return []
    fields = [name for name in ("name", "phone", "birthday", "email") if getattr(contact, name)]
    if contact.address is not None:
        fields.append("address")
    if view.identities:
        fields.append("identities")
    return fields


def _distinct_consents(choices: Sequence[tuple[ConsentChannel, bool]]) -> list[tuple[ConsentChannel, bool]]:
    """One decision per channel (the last given wins)."""
    return list({channel: granted for channel, granted in choices}.items())
