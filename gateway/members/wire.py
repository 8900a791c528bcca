"""HTTP ↔ protobuf for the members routes: the messages a request becomes and the ``map_*`` answers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from retail.common.v1 import identifiers_pb2, money_pb2
from retail.member.v1 import member_service_pb2 as pb

from gateway.domain.clients import ClientKind, StaffRole
from gateway.domain.scopes import (
    MEMBERS_PII_READ,
)
from gateway.http.money import yuan_text
from gateway.members.schemas import (
    AddressIn,
    AddressOut,
    ConsentChannelName,
    ConsentOut,
    ContactOut,
    IdentityIn,
    IdentityOut,
    ImportedMemberIn,
    ImportResultOut,
    Linked,
    MemberImportOut,
    MemberOut,
    MergeOut,
    PointsEntryOut,
    ProfileIn,
    PurchasesOut,
    TierOut,
    UndoneOut,
)
from gateway.security.authentication import Principal
from servicekit.protowire import from_wire, moment, optional_moment, timestamp, to_wire

_CLIENT_KINDS = {
    ClientKind.APP: identifiers_pb2.CLIENT_KIND_APP,
    ClientKind.POS_TERMINAL: identifiers_pb2.CLIENT_KIND_POS_TERMINAL,
    ClientKind.SUPPLIER_USER: identifiers_pb2.CLIENT_KIND_SUPPLIER_USER,
    ClientKind.STAFF: identifiers_pb2.CLIENT_KIND_STAFF,
}
_STAFF_ROLES = {
    StaffRole.STORE_GUIDE: identifiers_pb2.STAFF_ROLE_STORE_GUIDE,
    StaffRole.STORE_MANAGER: identifiers_pb2.STAFF_ROLE_STORE_MANAGER,
    StaffRole.HEADQUARTERS: identifiers_pb2.STAFF_ROLE_HEADQUARTERS,
}


def actor_of(principal: Principal) -> identifiers_pb2.Actor:
    role = _STAFF_ROLES[principal.staff_role] if principal.staff_role else identifiers_pb2.STAFF_ROLE_UNSPECIFIED
    return identifiers_pb2.Actor(
        client_id=principal.client_id,
        client_kind=_CLIENT_KINDS[principal.kind],
        store_id=principal.store_id or "",
        supplier_id=principal.supplier_id or "",
        staff_role=role,
    )


def view_of(principal: Principal) -> pb.PersonalDataView.ValueType:
    """What of a member's personal data this caller may see."""
    if principal.kind is ClientKind.STAFF and principal.staff_role is StaffRole.STORE_GUIDE:
        return pb.PERSONAL_DATA_VIEW_NONE
    if principal.is_headquarters and MEMBERS_PII_READ in principal.scopes:
        return pb.PERSONAL_DATA_VIEW_CLEAR
    return pb.PERSONAL_DATA_VIEW_MASKED


def identity_message(identity: IdentityIn) -> pb.Identity:
    return pb.Identity(
        type=to_wire(pb.IdentityType, "IDENTITY_TYPE", identity.type),
        value=identity.value,
        app_id=identity.app_id or "",
    )


def address_message(address: AddressIn) -> pb.Address:
    return pb.Address(**address.model_dump())


def consent_messages(consents: dict[ConsentChannelName, bool]) -> list[pb.ConsentChoice]:
    return [
        pb.ConsentChoice(channel=to_wire(pb.ConsentChannel, "CONSENT_CHANNEL", channel), granted=granted)
        for channel, granted in consents.items()
    ]


def gender_number(gender: str | None) -> pb.Gender.ValueType:
    gender_number: pb.Gender.ValueType = to_wire(pb.Gender, "GENDER", gender or "")
    return gender_number


def map_member(member: pb.Member) -> MemberOut:
    tier, purchases = member.tier, member.purchases
    contact = None
    if member.HasField("contact"):
        details = member.contact
        address = None
        if details.HasField("address"):
            address = AddressOut(
                province=details.address.province,
                city=details.address.city,
                district=details.address.district,
                street=details.address.street,
                postal_code=details.address.postal_code,
            )
        contact = ContactOut(
            name=details.name or None,
            phone=details.phone or None,
            birthday=details.birthday or None,
            email=details.email or None,
            address=address,
            gender=from_wire(pb.Gender, "GENDER", details.gender) if details.gender else None,
        )
    scores = (purchases.recency_score, purchases.frequency_score, purchases.monetary_score)
    return MemberOut(
        member_id=member.member_id,
        status=from_wire(pb.MemberStatus, "MEMBER_STATUS", member.status),
        registered_at=moment(member.registered_at),
        registration_channel=from_wire(pb.Channel, "CHANNEL", member.registration_channel),
        home_store_id=member.home_store_id or None,
        tier=TierOut(
            tier=from_wire(pb.MemberTier, "MEMBER_TIER", tier.tier),
            qualifying_spend=yuan(tier.qualifying_spend),
            next_tier=from_wire(pb.MemberTier, "MEMBER_TIER", tier.next_tier) if tier.next_tier else None,
            spend_to_next_tier=yuan(tier.spend_to_next_tier),
            grace_until=optional_moment(tier, "grace_until"),
        ),
        points_balance=member.points_balance,
        tags=list(member.tags),
        preferences=dict(member.preferences),
        lifecycle_stage=from_wire(pb.LifecycleStage, "LIFECYCLE_STAGE", member.lifecycle_stage),
        purchases=PurchasesOut(
            first_purchase_at=optional_moment(purchases, "first_purchase_at"),
            last_purchase_at=optional_moment(purchases, "last_purchase_at"),
            recency_days=purchases.recency_days,
            frequency=purchases.frequency,
            monetary=yuan(purchases.monetary),
            rfm="".join(map(str, scores)) if all(scores) else None,
            favourite_categories=list(purchases.favourite_category_ids),
            favourite_stores=list(purchases.favourite_store_ids),
            favourite_hours=list(purchases.favourite_hours),
        ),
        consents=[
            ConsentOut(
                channel=from_wire(pb.ConsentChannel, "CONSENT_CHANNEL", c.channel),
                granted=c.granted,
                updated_at=moment(c.updated_at),
            )
            for c in member.consents
        ],
        identities=[
            IdentityOut(
                type=from_wire(pb.IdentityType, "IDENTITY_TYPE", i.type),
                value=i.value or None,
                app_id=i.app_id or None,
                linked_at=moment(i.linked_at),
            )
            for i in member.identities
        ],
        contact=contact,
        personal_data=from_wire(pb.PersonalDataView, "PERSONAL_DATA_VIEW", member.view),
    )


def map_entry(entry: pb.PointsEntry) -> PointsEntryOut:
    return PointsEntryOut(
        entry_id=entry.entry_id,
        kind=from_wire(pb.PointsEntryKind, "POINTS_ENTRY_KIND", entry.kind),
        points=entry.points,
        sale_id=entry.sale_id or None,
        reference=entry.reference or None,
        reason=entry.reason or None,
        recorded_at=moment(entry.recorded_at),
        expires_at=optional_moment(entry, "expires_at"),
    )


def optional_decimal(message: Any, field: str) -> str | None:
    return str(getattr(message, field).value) if message.HasField(field) else None


def optional_money(message: Any, field: str) -> str | None:
    return yuan(getattr(message, field)) if message.HasField(field) else None


def yuan(money: money_pb2.Money) -> str:
    return yuan_text(money.minor_units)


def map_linked(answer: pb.LinkIdentityResponse) -> Linked:
    merge = None
    if answer.merged:
        merge = MergeOut(
            merge_id=answer.merge.merge_id,
            survivor_member_id=answer.merge.survivor_member_id,
            absorbed_member_id=answer.merge.absorbed_member_id,
            rule=from_wire(pb.SurvivorRule, "SURVIVOR_RULE", answer.merge.rule),
            points_moved=answer.merge.points_moved,
        )
    return Linked(member_id=answer.member_id, merged=answer.merged, merge=merge)


def map_undone(answer: pb.UndoMergeResponse) -> UndoneOut:
    return UndoneOut(
        merge_id=answer.merge_id,
        survivor_member_id=answer.survivor_member_id,
        restored_member_id=answer.restored_member_id,
        undone_at=moment(answer.undone_at),
    )


# ---- legacy imports -------------------------------------------------------------------------------


def _money(yuan_text: str) -> money_pb2.Money:
    return money_pb2.Money(currency_code="CNY", minor_units=int(Decimal(yuan_text).scaleb(2)))


def profile_message(profile: ProfileIn | None) -> pb.Profile:
    """A profile as given; none given is an empty one."""
    profile = profile or ProfileIn()
    return pb.Profile(
        name=profile.name or "",
        birthday=profile.birthday.isoformat() if profile.birthday else "",
        gender=gender_number(profile.gender),
        preferences=profile.preferences,
        address=address_message(profile.address) if profile.address else None,
    )


def imported_member_message(member: ImportedMemberIn) -> pb.ImportedMember:
    return pb.ImportedMember(
        external_id=member.external_id,
        identities=[identity_message(identity) for identity in member.identities],
        profile=profile_message(member.profile),
        consents=consent_messages(member.consents),
        store_id=member.home_store_id or "",
        purchases=[
            pb.ImportedPurchase(
                occurred_at=timestamp(purchase.occurred_at),
                amount=_money(purchase.amount),
                store_id=purchase.store_id or "",
                lines=[
                    pb.ImportedPurchaseLine(
                        sku=line.sku, quantity=money_pb2.Decimal(value=line.quantity), amount=_money(line.amount)
                    )
                    for line in purchase.lines
                ],
            )
            for purchase in member.purchases
        ],
    )


def map_import_results(answer: pb.ImportMembersResponse) -> MemberImportOut:
    results = [
        ImportResultOut(
            external_id=result.external_id,
            member_id=result.member_id or None,
            status=from_wire(pb.ImportStatus, "IMPORT_STATUS", result.status),  # type: ignore[arg-type]  # the contract's three statuses
            reason=result.reason or None,
            message=result.message or None,
            purchases_imported=result.purchases_imported,
        )
        for result in answer.results
    ]
    return MemberImportOut(
        results=results,
        created=sum(result.status == "created" for result in results),
        existing=sum(result.status == "existing" for result in results),
        rejected=sum(result.status == "rejected" for result in results),
    )
