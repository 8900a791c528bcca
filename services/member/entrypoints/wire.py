"""The member contract's one mapping: protobuf messages to commands and queries, answers back.

Every ``map_*`` function here is the one place a member message is read or written; the
servicer (``grpc_api``) and the SALES consumer call them, and nothing under
``service_layer/`` or ``domain/`` sees a protobuf type. Outbox events are the one other
place member messages are built (``adapters/integration_events``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date
from decimal import Decimal
from typing import Any, TypeVar

from google.protobuf.message import Message
from retail.common.v1 import identifiers_pb2, money_pb2, paging_pb2
from retail.member.v1 import member_service_pb2 as pb
from retail.sales.v1 import events_pb2 as sales_pb2

from servicekit.consumer import InboundEvent
from servicekit.errors import DomainError, InvalidArgument
from servicekit.idempotency import fingerprint, message_codec
from servicekit.protowire import from_wire, moment, optional, timestamp, to_wire
from services.member.adapters.integration_events import CURRENCY, money
from services.member.domain.identities import ChannelIdentity, UnknownIdentityType, parse_identity
from services.member.domain.model import (
    PROFILE_FIELDS,
    Actor,
    Address,
    Channel,
    Consent,
    ConsentChannel,
    ContactDetails,
    Gender,
    PersonalDataView,
    Profile,
    check_address,
    check_name,
    check_store_id,
    parse_birthday,
    parse_quantity,
)
from services.member.service_layer.commands import (
    AdjustPoints,
    EraseMember,
    ImportedLine,
    ImportedPurchase,
    ImportMembers,
    ImportResult,
    LinkIdentity,
    MemberAnswers,
    MemberToImport,
    MemberUpdated,
    RedeemPoints,
    Registered,
    RegisterMember,
    UndoMerge,
    UnreadableMember,
    UpdateMember,
)
from services.member.service_layer.journal_sales import JournalMember, JournalSale
from services.member.service_layer.loyalty_queries import LedgerCheckOutcome, PointsOverview
from services.member.service_layer.member_kpis import KpiReport, MemberMix
from services.member.service_layer.members import ErasureOutcome, LinkOutcome, MemberView
from services.member.service_layer.merges import MergeOutcome, UndoOutcome
from services.member.service_layer.points_book import BookedEntry
from services.member.service_layer.tier_review import PurchaseProfile

ResponseT = TypeVar("ResponseT", bound=Message)
ResultT = TypeVar("ResultT")

_VIEWS = {
    pb.PERSONAL_DATA_VIEW_UNSPECIFIED: PersonalDataView.MASKED,
    pb.PERSONAL_DATA_VIEW_MASKED: PersonalDataView.MASKED,
    pb.PERSONAL_DATA_VIEW_NONE: PersonalDataView.NONE,
    pb.PERSONAL_DATA_VIEW_CLEAR: PersonalDataView.CLEAR,
}
_VIEWS_BACK = {view: number for number, view in _VIEWS.items() if number != pb.PERSONAL_DATA_VIEW_UNSPECIFIED}


def _enum_value(enum_type: Any, prefix: str, number: int, what: str) -> str:
    try:
        return from_wire(enum_type, prefix, number)
    except ValueError:
        raise InvalidArgument(f"{what} {number} does not exist", reason=f"invalid-{what.replace(' ', '-')}") from None


def map_identity(message: pb.Identity) -> ChannelIdentity:
    try:
        type_name = from_wire(pb.IdentityType, "IDENTITY_TYPE", message.type)
    except ValueError:
        type_name = str(message.type)
    if not type_name:
        raise UnknownIdentityType("the identity type is required")
    return parse_identity(type_name, message.value, message.app_id)


def map_actor(message: identifiers_pb2.Actor) -> Actor:
    return Actor(
        client_id=message.client_id[:200],
        client_kind=_enum_value(identifiers_pb2.ClientKind, "CLIENT_KIND", message.client_kind, "client kind"),
        staff_role=_enum_value(identifiers_pb2.StaffRole, "STAFF_ROLE", message.staff_role, "staff role"),
        store_id=check_store_id(message.store_id),
    )


def map_address(message: pb.Address) -> Address | None:
    return check_address(Address(message.province, message.city, message.district, message.street, message.postal_code))


def map_gender(number: int) -> Gender | None:
    value = _enum_value(pb.Gender, "GENDER", number, "gender")
    return Gender(value) if value else None


def map_consents(choices: Sequence[pb.ConsentChoice]) -> list[tuple[ConsentChannel, bool]]:
    consents = []
    for choice in choices:
        channel = _enum_value(pb.ConsentChannel, "CONSENT_CHANNEL", choice.channel, "consent channel")
        if not channel:
            raise InvalidArgument("every consent names its channel", reason="invalid-consent-channel")
        consents.append((ConsentChannel(channel), choice.granted))
    return consents


def map_profile(profile: pb.Profile, today: date) -> Profile:
    return Profile(
        name=check_name(profile.name) if profile.name else None,
        birthday=parse_birthday(profile.birthday, today) if profile.birthday else None,
        address=map_address(profile.address) if profile.HasField("address") else None,
        gender=map_gender(profile.gender),
    )


def map_register(request: pb.RegisterMemberRequest, today: date) -> RegisterMember:
    channel = _enum_value(pb.Channel, "CHANNEL", request.channel, "channel")
    if not channel:
        raise InvalidArgument("channel is required (store, app or mini_program)", reason="channel-missing")
    return RegisterMember(
        request=fingerprint(request),
        identity=map_identity(request.identity),
        channel=Channel(channel),
        profile=map_profile(request.profile, today),
        preferences=dict(request.profile.preferences),
        consents=map_consents(request.consents),
        store_id=request.store_id,
        actor=map_actor(request.actor),
    )


def map_update(request: pb.UpdateMemberRequest, today: date) -> UpdateMember:
    profile = request.profile
    clear = set()
    for number in profile.clear_fields:
        name = _enum_value(pb.ProfileField, "PROFILE_FIELD", number, "profile field")
        if name not in PROFILE_FIELDS:
            raise InvalidArgument("clear_fields names an unknown field", reason="invalid-profile-field")
        clear.add(name)
    address = map_address(profile.address) if profile.HasField("address") else None
    if profile.HasField("address") and address is None:
        clear.add("address")  # an empty address is no address
    gender = map_gender(profile.gender) if profile.HasField("gender") else None
    return UpdateMember(
        request=fingerprint(request),
        member_id=request.member_id,
        name=check_name(profile.name) if profile.HasField("name") else None,
        birthday=parse_birthday(profile.birthday, today) if profile.HasField("birthday") else None,
        address=address,
        gender=gender,
        clear=frozenset(clear),
        set_preferences=dict(request.preferences.set),
        remove_preferences=list(request.preferences.remove),
        add_tags=list(request.tags.add),
        remove_tags=list(request.tags.remove),
        consents=map_consents(request.consents),
        actor=map_actor(request.actor),
    )


def map_member(view: MemberView) -> pb.Member:
    tier = view.tier
    return pb.Member(
        member_id=view.member_id,
        status=to_wire(pb.MemberStatus, "MEMBER_STATUS", view.status),
        registered_at=timestamp(view.registered_at),
        registration_channel=to_wire(pb.Channel, "CHANNEL", view.registration_channel),
        home_store_id=view.home_store_id,
        tier=pb.TierStatus(
            tier=to_wire(pb.MemberTier, "MEMBER_TIER", tier.tier),
            qualifying_spend=money(tier.qualifying_spend_minor),
            next_tier=to_wire(pb.MemberTier, "MEMBER_TIER", tier.next_tier),
            spend_to_next_tier=money(tier.spend_to_next_minor),
            grace_until=optional(timestamp, tier.grace_until),
        ),
        points_balance=view.points_balance,
        tags=view.tags,
        preferences=view.preferences,
        identities=[
            pb.IdentitySummary(
                type=to_wire(pb.IdentityType, "IDENTITY_TYPE", shown.type),
                value=shown.value,
                app_id=shown.app_id,
                linked_at=timestamp(shown.linked_at),
            )
            for shown in view.identities
        ],
        consents=[map_consent(consent) for consent in view.consents],
        lifecycle_stage=to_wire(pb.LifecycleStage, "LIFECYCLE_STAGE", view.lifecycle_stage),
        view=_VIEWS_BACK[view.view],
        contact=optional(map_contact, view.contact),
        purchases=map_purchases(view.purchases),
    )


def map_contact(contact: ContactDetails) -> pb.ContactDetails:
    return pb.ContactDetails(
        name=contact.name,
        phone=contact.phone,
        birthday=contact.birthday,
        email=contact.email,
        gender=to_wire(pb.Gender, "GENDER", contact.gender.value if contact.gender else ""),
        address=optional(map_postal_address, contact.address),
    )


def map_postal_address(address: Address) -> pb.Address:
    return pb.Address(
        province=address.province,
        city=address.city,
        district=address.district,
        street=address.street,
        postal_code=address.postal_code,
    )


def map_purchases(purchases: PurchaseProfile) -> pb.PurchaseProfile:
    facts = purchases.facts
    # The span of purchases is shown whole or not at all (a tier review knows only the last one).
    span = facts.first_purchase_at is not None and facts.last_purchase_at is not None
    return pb.PurchaseProfile(
        frequency=facts.purchases_in_window,
        monetary=money(facts.spend_in_window_minor),
        recency_days=purchases.recency_days,
        recency_score=purchases.rfm.recency if purchases.rfm else 0,
        frequency_score=purchases.rfm.frequency if purchases.rfm else 0,
        monetary_score=purchases.rfm.monetary if purchases.rfm else 0,
        favourite_category_ids=purchases.favourite_categories,
        favourite_store_ids=purchases.favourite_stores,
        favourite_hours=purchases.favourite_hours,
        lifetime_purchases=facts.purchase_count,
        lifetime_spend=money(facts.lifetime_spend_minor),
        first_purchase_at=optional(timestamp, facts.first_purchase_at if span else None),
        last_purchase_at=optional(timestamp, facts.last_purchase_at if span else None),
    )


def map_consent(consent: Consent) -> pb.Consent:
    return pb.Consent(
        channel=to_wire(pb.ConsentChannel, "CONSENT_CHANNEL", consent.channel.value),
        granted=consent.granted,
        updated_at=timestamp(consent.updated_at),
        source=consent.source,
    )


def map_entry(entry: BookedEntry | Any) -> pb.PointsEntry:
    return pb.PointsEntry(
        entry_id=entry.entry_id,
        kind=to_wire(pb.PointsEntryKind, "POINTS_ENTRY_KIND", entry.kind),
        points=entry.points,
        sale_id=getattr(entry, "sale_id", ""),
        reference=entry.reference,
        reason=entry.reason,
        recorded_at=timestamp(entry.recorded_at),
        expires_at=optional(timestamp, entry.expires_at),
    )


def map_decimal(value: Decimal) -> money_pb2.Decimal:
    return money_pb2.Decimal(value=format(value, "f"))


def map_view(number: pb.PersonalDataView.ValueType) -> PersonalDataView:
    """The personal-data view a read asks for (masked unless it says otherwise)."""
    view = _VIEWS.get(number)
    if view is None:
        raise InvalidArgument(f"view {number} does not exist", reason="invalid-view")
    return view


def map_link_answer(outcome: LinkOutcome) -> pb.LinkIdentityResponse:
    response = pb.LinkIdentityResponse(member_id=outcome.member_id, merged=outcome.merge is not None)
    if outcome.merge is not None:
        merge = outcome.merge
        response.merge.CopyFrom(
            pb.MergeSummary(
                merge_id=merge.merge_id,
                survivor_member_id=merge.survivor_id,
                absorbed_member_id=merge.absorbed_id,
                rule=to_wire(pb.SurvivorRule, "SURVIVOR_RULE", merge.rule),
                points_moved=merge.points_moved,
                merged_at=timestamp(merge.merged_at),
            )
        )
    return response


def map_undo_answer(outcome: UndoOutcome) -> pb.UndoMergeResponse:
    return pb.UndoMergeResponse(
        merge_id=outcome.merge_id,
        survivor_member_id=outcome.survivor_id,
        restored_member_id=outcome.restored_id,
        undone_at=timestamp(outcome.undone_at),
    )


def map_erase_answer(outcome: ErasureOutcome) -> pb.EraseMemberResponse:
    return pb.EraseMemberResponse(
        member_id=outcome.member_id,
        erased_at=timestamp(outcome.erased_at),
        also_erased_member_ids=outcome.also_erased,
    )


def map_points(overview: PointsOverview) -> pb.GetPointsResponse:
    return pb.GetPointsResponse(
        member_id=overview.member_id,
        balance=overview.balance,
        expiring=[pb.PointsExpiry(points=points, expires_at=timestamp(at)) for at, points in overview.expiring],
        entries=[map_entry(entry) for entry in overview.entries],
        page_info=paging_pb2.PageInfo(next_page_token=overview.next_page_token),
    )


def map_link(request: pb.LinkIdentityRequest) -> LinkIdentity:
    return LinkIdentity(
        request=fingerprint(request),
        member_id=request.member_id,
        identity=map_identity(request.identity),
        survivor_member_id=request.survivor_member_id,
        actor=map_actor(request.actor),
    )


def map_undo(request: pb.UndoMergeRequest) -> UndoMerge:
    return UndoMerge(request=fingerprint(request), merge_id=request.merge_id, actor=map_actor(request.actor))


def map_erase(request: pb.EraseMemberRequest) -> EraseMember:
    return EraseMember(
        request=fingerprint(request), member_id=request.member_id, reason=request.reason, actor=map_actor(request.actor)
    )


def map_redeem(request: pb.RedeemPointsRequest) -> RedeemPoints:
    if len(request.reference) > 128:
        raise InvalidArgument("reference has at most 128 characters", reason="invalid-reference")
    return RedeemPoints(
        request=fingerprint(request),
        member_id=request.member_id,
        points=request.points,
        reference=request.reference,
        store_id=check_store_id(request.store_id),
    )


def map_adjust(request: pb.AdjustPointsRequest) -> AdjustPoints:
    return AdjustPoints(
        request=fingerprint(request), member_id=request.member_id, points=request.points, reason=request.reason
    )


def map_registered(answer: Registered) -> pb.RegisterMemberResponse:
    return pb.RegisterMemberResponse(member_id=answer.member_id, created=answer.created)


def map_updated(answer: MemberUpdated) -> pb.UpdateMemberResponse:
    return pb.UpdateMemberResponse(member_id=answer.member_id, changed=answer.changed)


def map_redeem_answer(entry: BookedEntry) -> pb.RedeemPointsResponse:
    return pb.RedeemPointsResponse(entry=map_entry(entry), balance=entry.balance)


def map_adjust_answer(entry: BookedEntry) -> pb.AdjustPointsResponse:
    # The request-id store keeps this answer, and erasure cannot find it there: no free text in it.
    answer = map_entry(entry)
    answer.ClearField("reason")
    return pb.AdjustPointsResponse(entry=answer, balance=entry.balance)


def map_ledger_check(check: LedgerCheckOutcome) -> pb.CheckPointsLedgerResponse:
    return pb.CheckPointsLedgerResponse(
        balance=check.balance,
        ledger_sum=check.ledger_total,
        lots_remaining=check.lots_remaining,
        debt=check.debt,
        consistent=not check.problems,
        problems=check.problems,
    )


def map_tier_changes(rows: Sequence[Any], token: str) -> pb.ListTierChangesResponse:
    return pb.ListTierChangesResponse(
        changes=[
            pb.TierChange(
                from_tier=to_wire(pb.MemberTier, "MEMBER_TIER", row.from_tier),
                to_tier=to_wire(pb.MemberTier, "MEMBER_TIER", row.to_tier),
                reason=to_wire(pb.TierChangeReason, "TIER_CHANGE_REASON", row.reason),
                qualifying_spend=money(row.qualifying_spend_minor),
                changed_at=timestamp(row.changed_at),
            )
            for row in rows
        ],
        page_info=paging_pb2.PageInfo(next_page_token=token),
    )


def map_kpis(report: KpiReport) -> pb.GetMemberKpisResponse:
    kpis = report.kpis
    return pb.GetMemberKpisResponse(
        store_id=report.store_id,
        from_date=report.from_date.isoformat(),
        to_date=report.to_date.isoformat(),
        active_members=kpis.active_members,
        repeat_members=kpis.repeat_members,
        sales_count=kpis.sales_count,
        member_sales_count=kpis.member_sales_count,
        net_sales=money(kpis.net_sales_minor),
        member_net_sales=money(kpis.member_net_sales_minor),
        new_members=report.new_members,
        repeat_purchase_rate=optional(map_decimal, kpis.repeat_purchase_rate),
        average_basket=optional(money, kpis.average_basket_minor),
        member_average_basket=optional(money, kpis.member_average_basket_minor),
        member_share_of_sales=optional(map_decimal, kpis.member_share_of_sales),
    )


def map_mix(mix: MemberMix) -> pb.GetMemberMixResponse:
    """Every stage, tier and risk of the contract, in its order, zero included."""
    message = pb.GetMemberMixResponse(store_id=mix.store_id, members=mix.members, as_of=timestamp(mix.as_of))
    for stage, count in mix.lifecycle.items():
        message.lifecycle.add(stage=to_wire(pb.LifecycleStage, "LIFECYCLE_STAGE", stage), members=count)
    for number in (number for number in pb.MemberTier.values() if number):
        message.tiers.add(tier=number, members=mix.tiers.get(from_wire(pb.MemberTier, "MEMBER_TIER", number), 0))
    for risk, count in mix.churn_risk.items():
        message.churn_risk.add(risk=to_wire(pb.ChurnRisk, "CHURN_RISK", risk), members=count)
    return message


def map_entry_back(message: pb.PointsEntry, balance: int) -> BookedEntry:
    return BookedEntry(
        entry_id=message.entry_id,
        kind=from_wire(pb.PointsEntryKind, "POINTS_ENTRY_KIND", message.kind),
        points=message.points,
        reference=message.reference,
        reason=message.reason,
        recorded_at=moment(message.recorded_at),
        expires_at=moment(message.expires_at) if message.HasField("expires_at") else None,
        balance=balance,
    )


def map_link_answer_back(message: pb.LinkIdentityResponse) -> LinkOutcome:
    if not message.merged:
        return LinkOutcome(message.member_id, None)
    merge = message.merge
    return LinkOutcome(
        message.member_id,
        MergeOutcome(
            merge_id=merge.merge_id,
            survivor_id=merge.survivor_member_id,
            absorbed_id=merge.absorbed_member_id,
            rule=from_wire(pb.SurvivorRule, "SURVIVOR_RULE", merge.rule),
            points_moved=merge.points_moved,
            merged_at=moment(merge.merged_at),
        ),
    )


_RESULT_FIELDS = ("external_id", "member_id", "reason", "message", "purchases_imported")


def map_import(request: pb.ImportMembersRequest, today: date) -> ImportMembers:
    members = [map_imported_member(m, today) for m in request.members]
    return ImportMembers(fingerprint(request), members, map_actor(request.actor))


def map_imported_member(m: pb.ImportedMember, today: date) -> MemberToImport | UnreadableMember:
    try:
        purchases = [map_imported_purchase(p, f"purchase {n}") for n, p in enumerate(m.purchases, start=1)]
        identities, profile = [map_identity(identity) for identity in m.identities], map_profile(m.profile, today)
        consents, preferences = map_consents(m.consents), dict(m.profile.preferences)
        return MemberToImport(m.external_id, identities, profile, preferences, consents, purchases, m.store_id)
    except DomainError as error:
        return UnreadableMember(m.external_id, error.reason, error.message)


def map_imported_purchase(message: pb.ImportedPurchase, where: str) -> ImportedPurchase:
    currencies = {amount.currency_code for amount in [message.amount, *(line.amount for line in message.lines)]}
    if not message.HasField("occurred_at") or not message.HasField("amount") or currencies - {"", CURRENCY}:
        raise InvalidArgument(f"{where} needs occurred_at and an amount, in {CURRENCY}", reason="invalid-purchase")
    lines = [ImportedLine(x.sku, parse_quantity(x.quantity.value, where), x.amount.minor_units) for x in message.lines]
    return ImportedPurchase(moment(message.occurred_at), message.amount.minor_units, message.store_id, lines)


def map_import_answer(results: list[ImportResult]) -> pb.ImportMembersResponse:
    answer = pb.ImportMembersResponse()
    for r in results:
        fields = {name: getattr(r, name) for name in _RESULT_FIELDS}
        answer.results.add(status=to_wire(pb.ImportStatus, "IMPORT_STATUS", r.status), **fields)
    return answer


def map_import_result_back(r: pb.ImportResult) -> ImportResult:
    status = from_wire(pb.ImportStatus, "IMPORT_STATUS", r.status)
    return ImportResult(status=status, **{name: getattr(r, name) for name in _RESULT_FIELDS})


# Each command's answer is kept as its RPC's response: a retry reads it back and is answered the same.
MEMBER_ANSWERS = MemberAnswers(
    registered=message_codec(
        pb.RegisterMemberResponse, map_registered, lambda message: Registered(message.member_id, message.created)
    ),
    updated=message_codec(
        pb.UpdateMemberResponse, map_updated, lambda message: MemberUpdated(message.member_id, list(message.changed))
    ),
    linked=message_codec(pb.LinkIdentityResponse, map_link_answer, map_link_answer_back),
    undone=message_codec(
        pb.UndoMergeResponse,
        map_undo_answer,
        lambda message: UndoOutcome(
            message.merge_id, message.survivor_member_id, message.restored_member_id, moment(message.undone_at)
        ),
    ),
    erased=message_codec(
        pb.EraseMemberResponse,
        map_erase_answer,
        lambda message: ErasureOutcome(
            message.member_id, moment(message.erased_at), list(message.also_erased_member_ids)
        ),
    ),
    redeemed=message_codec(
        pb.RedeemPointsResponse, map_redeem_answer, lambda message: map_entry_back(message.entry, message.balance)
    ),
    adjusted=message_codec(
        pb.AdjustPointsResponse, map_adjust_answer, lambda message: map_entry_back(message.entry, message.balance)
    ),
    imported=message_codec(
        pb.ImportMembersResponse,
        map_import_answer,
        lambda message: [map_import_result_back(r) for r in message.results],
    ),
)


# ---- the SALES journal, as the member context reads it ------------------------------------------


def map_member_reference(reference: sales_pb2.MemberReference) -> JournalMember | None:
    if reference.type == sales_pb2.MEMBER_IDENTIFIER_TYPE_MEMBER_ID and reference.member_id:
        return JournalMember(member_id=reference.member_id)
    if reference.type in (sales_pb2.MEMBER_IDENTIFIER_TYPE_PHONE, sales_pb2.MEMBER_IDENTIFIER_TYPE_POS_CARD):
        return JournalMember(identity_hash=bytes(reference.identity_hash)) if reference.identity_hash else None
    return None


def map_sale(event: InboundEvent[sales_pb2.SaleRecorded]) -> JournalSale:
    sale = event.message
    if sale.HasField("occurred_at"):
        occurred_at = sale.occurred_at.ToDatetime(tzinfo=UTC)
    elif sale.HasField("recorded_at"):
        occurred_at = sale.recorded_at.ToDatetime(tzinfo=UTC)
    else:
        occurred_at = event.occurred_at or sale.recorded_at.ToDatetime(tzinfo=UTC)
    return JournalSale(
        sale_id=sale.sale_id,
        is_return=sale.kind == sales_pb2.SALE_KIND_RETURN,
        store_id=sale.location_id,
        occurred_at=occurred_at,
        lines=[(line.sku, line.line_total.minor_units) for line in sale.lines],
        total_minor=sale.total.minor_units,
        points_paid_minor=sum(
            payment.amount.minor_units for payment in sale.payments if payment.method == sales_pb2.PAYMENT_METHOD_POINTS
        ),
        member=map_member_reference(sale.member) if sale.HasField("member") else None,
        original_sale_id=sale.original_sale_id,
    )
