"""A legacy CRM's members and their purchase history, imported in batches of up to 1,000.

The request runs once (``replay`` / ``keep_reply``); inside it, each member is imported once
per external id: an external id imported before answers its member and changes nothing; a
member one of whose identities already belongs to a member is linked to that member (never a
duplicate); a member that breaks a rule is rejected with its reason while the others import.
Imported purchases are sale facts marked imported: they count for purchase profiles, lifecycle
and KPIs, never for points (no ledger entry), stock or tier spend. Other contexts learn them from
``PurchasesImported``; a created member is announced as any registration is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from servicekit.db import UnitOfWork
from servicekit.errors import DomainError, InvalidArgument
from servicekit.idempotency import keep_reply, replay
from services.member.adapters import import_store, loyalty_store, member_store
from services.member.adapters import integration_events as events
from services.member.adapters.personal_data import PersonalDataCodec
from services.member.domain.identities import identity_hash
from services.member.domain.model import Channel, Consent, check_preferences, check_store_id
from services.member.service_layer.commands import (
    ImportMembers,
    ImportResult,
    MemberAnswers,
    MemberToImport,
    UnreadableMember,
)
from services.member.service_layer.tier_review import TierReview

MAX_IMPORT_MEMBERS = 1000
MAX_EXTERNAL_ID_LENGTH = 64
MAX_IMPORT_IDENTITIES = 10
MAX_IMPORT_PURCHASES = 1000
MAX_IMPORT_LINES = 200

CREATED, EXISTING, REJECTED = "created", "existing", "rejected"


class ImportRejected(InvalidArgument):
    """One member of an import breaks a rule: that member is rejected, the others still import."""


class MemberImports:
    """Imports legacy members with their purchases (what the gRPC servicer calls)."""

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
        self._answer = answers.imported
        self._clock = clock

    async def import_members(self, command: ImportMembers) -> list[ImportResult]:
        """One result per member of the request, in its order."""
        if not command.members:
            raise InvalidArgument("an import names at least one member", reason="nothing-to-import")
        if len(command.members) > MAX_IMPORT_MEMBERS:
            raise InvalidArgument(f"an import has at most {MAX_IMPORT_MEMBERS} members", reason="too-many-members")
        async with self._uow() as uow:
            if (first := await replay(uow.session, command.request, self._answer)) is not None:
                return first
            now = self._clock()
            seen: set[str] = set()
            results = []
            for member in command.members:
                results.append(await self._import_one(uow, member, seen, command.actor.client_id, now))
            await keep_reply(uow.session, command.request, self._answer, results)
            await uow.commit()
            return results

    async def _import_one(
        self, uow: UnitOfWork, member: MemberToImport | UnreadableMember, seen: set[str], by: str, now: datetime
    ) -> ImportResult:
        external_id = member.external_id
        if isinstance(member, UnreadableMember):
            return ImportResult(external_id, "", REJECTED, member.reason, member.message)
        try:
            _check(member, now)
            if external_id in seen:
                raise ImportRejected(
                    f"external_id {external_id!r} appears more than once in the request", reason="duplicate-external-id"
                )
            seen.add(external_id)
            return await self._import_checked(uow, member, by, now)
        except DomainError as error:
            return ImportResult(external_id, "", REJECTED, error.reason, error.message)

    async def _import_checked(self, uow: UnitOfWork, member: MemberToImport, by: str, now: datetime) -> ImportResult:
        session = uow.session
        await import_store.guard_external_id(session, member.external_id)
        if (known := await import_store.imported_member(session, member.external_id)) is not None:
            return ImportResult(member.external_id, await member_store.survivor_of(session, known) or known, EXISTING)
        hashes = {identity_hash(self._lookup_key, identity): identity for identity in member.identities}
        for lookup in sorted(hashes):
            await member_store.guard_identity(session, lookup)
        owners = {lookup: await member_store.find_identity(session, lookup) for lookup in sorted(hashes)}
        owner_ids = sorted({owner.member_id for owner in owners.values() if owner is not None})
        if len(owner_ids) > 1:
            raise ImportRejected(
                f"the identities belong to different members ({', '.join(owner_ids)})",
                reason="identities-of-different-members",
            )
        if owner_ids:
            member_id, created = owner_ids[0], False
            owner = await member_store.read_member(session, member_id, lock=True)
            if owner is None or owner.status != "active":
                raise ImportRejected(f"member {member_id} is not active", reason="member-not-active")
        else:
            member_id, created = await self._create(uow, member, by, now), True
        for lookup, identity in hashes.items():
            if owners[lookup] is None:
                await member_store.insert_identity(
                    session,
                    identity_hash=lookup,
                    member_id=member_id,
                    identity_type=identity.type.value,
                    value_sealed=self._codec.seal_identity(lookup, identity),
                    linked_at=now,
                    linked_by=by,
                )
                if not created:
                    uow.publish(events.identity_linked(member_id, identity.type.value, now))
        await import_store.record_import(
            session, external_id=member.external_id, member_id=member_id, created=created, at=now, by=by
        )
        kept = await self._purchases(uow, member, member_id, now)
        if kept:
            await self._tiers.reevaluate(uow, member_id, now, upgrade_only=True)
        return ImportResult(member.external_id, member_id, CREATED if created else EXISTING, purchases_imported=kept)

    async def _create(self, uow: UnitOfWork, member: MemberToImport, by: str, now: datetime) -> str:
        """A new member, a member since its first purchase when that came before the import."""
        session = uow.session
        registered_at = min([now, *(purchase.occurred_at for purchase in member.purchases)])
        channel = Channel.STORE if member.store_id else Channel.APP
        member_id = await member_store.next_member_id(session)
        await member_store.insert_member(
            session,
            member_id=member_id,
            registered_at=registered_at,
            channel=channel.value,
            home_store_id=member.store_id or None,
            sealed=self._codec.seal_profile(member_id, member.profile),
            gender=member.profile.gender.value if member.profile.gender else None,
            preferences=member.preferences,
            tier=self._tiers.policies.tiers.lowest.code,
        )
        decided = [
            Consent(channel_, granted, now, by)
            for channel_, granted in {channel_: granted for channel_, granted in member.consents}.items()
        ]
        for consent in decided:
            await member_store.record_consent(session, member_id, consent)
        first_identity = member.identities[0]
        uow.publish(
            events.member_registered(
                member_id, channel.value, first_identity.type.value, member.store_id, registered_at
            ),
            *events.consents_changed(member_id, [], decided, now),
        )
        return member_id

    async def _purchases(self, uow: UnitOfWork, member: MemberToImport, member_id: str, now: datetime) -> int:
        """Keep the member's purchases as imported sale facts and announce them; how many were kept."""
        session = uow.session
        skus = sorted({line.sku for purchase in member.purchases for line in purchase.lines})
        categories = await loyalty_store.item_categories(session, skus)
        facts = []
        for number, purchase in enumerate(member.purchases, start=1):
            purchase_id = f"import:{member.external_id}:{number}"
            if await import_store.record_imported_sale(
                session,
                sale_id=purchase_id,
                member_id=member_id,
                store_id=purchase.store_id,
                occurred_at=purchase.occurred_at,
                amount_minor=purchase.amount_minor,
                categories=[categories[line.sku][0] for line in purchase.lines if line.sku in categories],
            ):
                facts.append(
                    events.ImportedPurchaseFact(
                        purchase_id,
                        purchase.occurred_at,
                        purchase.amount_minor,
                        purchase.store_id,
                        [(line.sku, line.quantity, line.amount_minor) for line in purchase.lines],
                    )
                )
        if facts:
            uow.publish(events.purchases_imported(member_id, facts, now))
        return len(facts)


def _check(member: MemberToImport, now: datetime) -> None:
    """Every rule one member of an import must keep (raises the first it breaks)."""
    if not 1 <= len(member.external_id) <= MAX_EXTERNAL_ID_LENGTH or not member.external_id.isprintable():
        raise ImportRejected(
            f"external_id has 1 to {MAX_EXTERNAL_ID_LENGTH} printable characters", reason="invalid-external-id"
        )
    if not member.identities:
        raise ImportRejected("a member has at least one identity", reason="identity-missing")
    if len(member.identities) > MAX_IMPORT_IDENTITIES:
        raise ImportRejected(f"a member has at most {MAX_IMPORT_IDENTITIES} identities", reason="too-many-identities")
    check_store_id(member.store_id)
    check_preferences(member.preferences)
    if len(member.purchases) > MAX_IMPORT_PURCHASES:
        raise ImportRejected(f"a member has at most {MAX_IMPORT_PURCHASES} purchases", reason="too-many-purchases")
    for number, purchase in enumerate(member.purchases, start=1):
        where = f"purchase {number}"
        if purchase.occurred_at > now:
            raise ImportRejected(f"{where} is in the future", reason="purchase-in-future")
        if purchase.amount_minor < 0:
            raise ImportRejected(f"{where} has a negative amount", reason="invalid-purchase-amount")
        check_store_id(purchase.store_id)
        if len(purchase.lines) > MAX_IMPORT_LINES:
            raise ImportRejected(f"{where} has more than {MAX_IMPORT_LINES} lines", reason="too-many-lines")
        for line in purchase.lines:
            if not 1 <= len(line.sku) <= 64 or not line.sku.isprintable():
                raise ImportRejected(
                    f"{where} has a line whose SKU is not 1 to 64 printable characters", reason="invalid-purchase-line"
                )
            if line.quantity <= 0 or line.amount_minor < 0:
                raise ImportRejected(
                    f"{where} has a line with a quantity not above zero or a negative amount",
                    reason="invalid-purchase-line",
                )
