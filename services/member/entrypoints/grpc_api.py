"""The MemberService gRPC servicer: map the wire message, call the handler, map back.

Mutating calls run through the kit's request-id store (``run_request_once``): the effect, its
events and the stored answer commit together. Answers of mutating calls carry ids and
facts only, never personal data, because the request-id store keeps them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from retail.common.v1 import identifiers_pb2, money_pb2, paging_pb2
from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc as pb_grpc

from servicekit.db import UnitOfWork
from servicekit.errors import InvalidArgument
from servicekit.idempotency import run_request_once
from services.member.adapters.integration_events import from_wire, money, timestamp, to_wire
from services.member.domain.identities import ChannelIdentity, UnknownIdentityType, parse_identity
from services.member.domain.model import (
    PROFILE_FIELDS,
    Actor,
    Address,
    Channel,
    Consent,
    ConsentChannel,
    Gender,
    PersonalDataView,
    Profile,
    check_address,
    check_name,
    check_store_id,
    parse_birthday,
)
from services.member.service_layer.loyalty import CHINA_STANDARD_TIME, BookedEntry, Loyalty
from services.member.service_layer.members import MemberService, MemberView, RegisterMember, UpdateMember

ResponseT = TypeVar("ResponseT", bound=Message)
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
_VIEWS = {
    pb.PERSONAL_DATA_VIEW_UNSPECIFIED: PersonalDataView.MASKED,
    pb.PERSONAL_DATA_VIEW_MASKED: PersonalDataView.MASKED,
    pb.PERSONAL_DATA_VIEW_NONE: PersonalDataView.NONE,
    pb.PERSONAL_DATA_VIEW_CLEAR: PersonalDataView.CLEAR,
}
_VIEWS_BACK = {
    PersonalDataView.MASKED: pb.PERSONAL_DATA_VIEW_MASKED,
    PersonalDataView.NONE: pb.PERSONAL_DATA_VIEW_NONE,
    PersonalDataView.CLEAR: pb.PERSONAL_DATA_VIEW_CLEAR,
}


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


def map_register(request: pb.RegisterMemberRequest, today: date) -> RegisterMember:
    channel = _enum_value(pb.Channel, "CHANNEL", request.channel, "channel")
    if not channel:
        raise InvalidArgument("channel is required (store, app or mini_program)", reason="channel-missing")
    profile = request.profile
    return RegisterMember(
        identity=map_identity(request.identity),
        channel=Channel(channel),
        profile=Profile(
            name=check_name(profile.name) if profile.name else None,
            birthday=parse_birthday(profile.birthday, today) if profile.birthday else None,
            address=map_address(profile.address) if profile.HasField("address") else None,
            gender=map_gender(profile.gender),
        ),
        preferences=dict(profile.preferences),
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
    message = pb.Member(
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
    )
    if tier.grace_until is not None:
        message.tier.grace_until.CopyFrom(timestamp(tier.grace_until))
    contact = view.contact
    if contact is not None:
        message.contact.CopyFrom(
            pb.ContactDetails(
                name=contact.name,
                phone=contact.phone,
                birthday=contact.birthday,
                email=contact.email,
                gender=to_wire(pb.Gender, "GENDER", contact.gender.value if contact.gender else ""),
            )
        )
        if contact.address is not None:
            address = contact.address
            message.contact.address.CopyFrom(
                pb.Address(
                    province=address.province,
                    city=address.city,
                    district=address.district,
                    street=address.street,
                    postal_code=address.postal_code,
                )
            )
    purchases = view.purchases
    facts = purchases.facts
    message.purchases.CopyFrom(
        pb.PurchaseProfile(
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
        )
    )
    if facts.first_purchase_at is not None and facts.last_purchase_at is not None:
        message.purchases.first_purchase_at.CopyFrom(timestamp(facts.first_purchase_at))
        message.purchases.last_purchase_at.CopyFrom(timestamp(facts.last_purchase_at))
    return message


def map_consent(consent: Consent) -> pb.Consent:
    return pb.Consent(
        channel=to_wire(pb.ConsentChannel, "CONSENT_CHANNEL", consent.channel.value),
        granted=consent.granted,
        updated_at=timestamp(consent.updated_at),
        source=consent.source,
    )


def map_entry(entry: BookedEntry | Any) -> pb.PointsEntry:
    message = pb.PointsEntry(
        entry_id=entry.entry_id,
        kind=to_wire(pb.PointsEntryKind, "POINTS_ENTRY_KIND", entry.kind),
        points=entry.points,
        sale_id=getattr(entry, "sale_id", ""),
        reference=entry.reference,
        reason=entry.reason,
        recorded_at=timestamp(entry.recorded_at),
    )
    if entry.expires_at is not None:
        message.expires_at.CopyFrom(timestamp(entry.expires_at))
    return message


def _decimal(value: Decimal) -> money_pb2.Decimal:
    return money_pb2.Decimal(value=format(value, "f"))


def page_size(page: paging_pb2.PageRequest) -> int:
    size = page.page_size or DEFAULT_PAGE_SIZE
    if not 0 < size <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE}", reason="invalid-page-size")
    return size


def parse_day(text: str, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"{what} must be YYYY-MM-DD", reason="invalid-date") from None


class MemberServicer(pb_grpc.MemberServiceServicer):
    """gRPC face of the member service."""

    def __init__(
        self,
        members: MemberService,
        loyalty: Loyalty,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._members = members
        self._loyalty = loyalty
        self._uow = unit_of_work
        self._clock = clock

    def _today(self) -> date:
        return self._clock().astimezone(CHINA_STANDARD_TIME).date()

    async def _once(
        self, request: Any, response_type: type[ResponseT], effect: Callable[[UnitOfWork], Awaitable[ResponseT]]
    ) -> ResponseT:
        return await run_request_once(self._uow(), request, response_type, effect)

    async def RegisterMember(self, request: pb.RegisterMemberRequest, context: Any) -> pb.RegisterMemberResponse:
        """Create a member from one channel identity, or name the identity's owner (created = false)."""
        command = map_register(request, self._today())

        async def effect(uow: UnitOfWork) -> pb.RegisterMemberResponse:
            member_id, created = await self._members.register(uow, command)
            return pb.RegisterMemberResponse(member_id=member_id, created=created)

        return await self._once(request, pb.RegisterMemberResponse, effect)

    async def ResolveMember(self, request: pb.ResolveMemberRequest, context: Any) -> pb.ResolveMemberResponse:
        """The one member an identity belongs to."""
        return pb.ResolveMemberResponse(member_id=await self._members.resolve(map_identity(request.identity)))

    async def GetMember(self, request: pb.GetMemberRequest, context: Any) -> pb.GetMemberResponse:
        """A member, personal data masked, left out, or clear (audited)."""
        view = _VIEWS.get(request.view)
        if view is None:
            raise InvalidArgument(f"view {request.view} does not exist", reason="invalid-view")
        answer = await self._members.get(
            request.member_id, view, actor=map_actor(request.actor), purpose=request.purpose
        )
        return pb.GetMemberResponse(member=map_member(answer))

    async def UpdateMember(self, request: pb.UpdateMemberRequest, context: Any) -> pb.UpdateMemberResponse:
        """Change profile, preferences, tags and consent."""
        command = map_update(request, self._today())

        async def effect(uow: UnitOfWork) -> pb.UpdateMemberResponse:
            changed = await self._members.update(uow, command)
            return pb.UpdateMemberResponse(member_id=command.member_id, changed=changed)

        return await self._once(request, pb.UpdateMemberResponse, effect)

    async def LinkIdentity(self, request: pb.LinkIdentityRequest, context: Any) -> pb.LinkIdentityResponse:
        """Link an identity; one that belongs to another member merges the two."""
        identity = map_identity(request.identity)
        actor = map_actor(request.actor)

        async def effect(uow: UnitOfWork) -> pb.LinkIdentityResponse:
            outcome = await self._members.link_identity(
                uow, request.member_id, identity, request.survivor_member_id, actor
            )
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

        return await self._once(request, pb.LinkIdentityResponse, effect)

    async def UndoMerge(self, request: pb.UndoMergeRequest, context: Any) -> pb.UndoMergeResponse:
        """Put both members of a merge back exactly as they were."""
        actor = map_actor(request.actor)

        async def effect(uow: UnitOfWork) -> pb.UndoMergeResponse:
            outcome = await self._members.undo_merge(uow, request.merge_id, actor)
            return pb.UndoMergeResponse(
                merge_id=outcome.merge_id,
                survivor_member_id=outcome.survivor_id,
                restored_member_id=outcome.restored_id,
                undone_at=timestamp(outcome.undone_at),
            )

        return await self._once(request, pb.UndoMergeResponse, effect)

    async def EraseMember(self, request: pb.EraseMemberRequest, context: Any) -> pb.EraseMemberResponse:
        """Erase a member's personal data everywhere this service keeps it."""
        actor = map_actor(request.actor)

        async def effect(uow: UnitOfWork) -> pb.EraseMemberResponse:
            outcome = await self._members.erase(uow, request.member_id, request.reason, actor)
            return pb.EraseMemberResponse(
                member_id=outcome.member_id,
                erased_at=timestamp(outcome.erased_at),
                also_erased_member_ids=outcome.also_erased,
            )

        return await self._once(request, pb.EraseMemberResponse, effect)

    async def GetPoints(self, request: pb.GetPointsRequest, context: Any) -> pb.GetPointsResponse:
        """Balance, what expires when, and a page of the ledger (newest first)."""
        overview = await self._loyalty.points(
            request.member_id, page_token=request.page.page_token, page_size=page_size(request.page)
        )
        return pb.GetPointsResponse(
            member_id=overview.member_id,
            balance=overview.balance,
            expiring=[pb.PointsExpiry(points=points, expires_at=timestamp(at)) for at, points in overview.expiring],
            entries=[map_entry(entry) for entry in overview.entries],
            page_info=paging_pb2.PageInfo(next_page_token=overview.next_page_token),
        )

    async def RedeemPoints(self, request: pb.RedeemPointsRequest, context: Any) -> pb.RedeemPointsResponse:
        """Spend points; never below zero, also under concurrent redemptions."""
        if len(request.reference) > 128:
            raise InvalidArgument("reference has at most 128 characters", reason="invalid-reference")
        check_store_id(request.store_id)

        async def effect(uow: UnitOfWork) -> pb.RedeemPointsResponse:
            entry = await self._loyalty.redeem(
                uow, request.member_id, request.points, reference=request.reference, store_id=request.store_id
            )
            return pb.RedeemPointsResponse(entry=map_entry(entry), balance=entry.balance)

        return await self._once(request, pb.RedeemPointsResponse, effect)

    async def AdjustPoints(self, request: pb.AdjustPointsRequest, context: Any) -> pb.AdjustPointsResponse:
        """A staff correction with a reason."""

        async def effect(uow: UnitOfWork) -> pb.AdjustPointsResponse:
            entry = await self._loyalty.adjust(uow, request.member_id, request.points, reason=request.reason)
            # The request-id store keeps this answer, and erasure cannot find it there: no free text in it.
            answer = map_entry(entry)
            answer.ClearField("reason")
            return pb.AdjustPointsResponse(entry=answer, balance=entry.balance)

        return await self._once(request, pb.AdjustPointsResponse, effect)

    async def CheckPointsLedger(
        self, request: pb.CheckPointsLedgerRequest, context: Any
    ) -> pb.CheckPointsLedgerResponse:
        """Prove balance = ledger = lots − debt."""
        check = await self._loyalty.check_ledger(request.member_id)
        return pb.CheckPointsLedgerResponse(
            balance=check.balance,
            ledger_sum=check.ledger_total,
            lots_remaining=check.lots_remaining,
            debt=check.debt,
            consistent=not check.problems,
            problems=check.problems,
        )

    async def ListTierChanges(self, request: pb.ListTierChangesRequest, context: Any) -> pb.ListTierChangesResponse:
        """A page of tier history, newest first."""
        rows, token = await self._loyalty.tier_changes(
            request.member_id, page_token=request.page.page_token, page_size=page_size(request.page)
        )
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

    async def GetMemberKpis(self, request: pb.GetMemberKpisRequest, context: Any) -> pb.GetMemberKpisResponse:
        """Active members, 复购率, 客单价 and member share of sales of a store (or the chain) over a period."""
        check_store_id(request.store_id)
        report = await self._loyalty.kpis(
            request.store_id, parse_day(request.from_date, "from_date"), parse_day(request.to_date, "to_date")
        )
        kpis = report.kpis
        message = pb.GetMemberKpisResponse(
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
        )
        if kpis.repeat_purchase_rate is not None:
            message.repeat_purchase_rate.CopyFrom(_decimal(kpis.repeat_purchase_rate))
        if kpis.average_basket_minor is not None:
            message.average_basket.CopyFrom(money(kpis.average_basket_minor))
        if kpis.member_average_basket_minor is not None:
            message.member_average_basket.CopyFrom(money(kpis.member_average_basket_minor))
        if kpis.member_share_of_sales is not None:
            message.member_share_of_sales.CopyFrom(_decimal(kpis.member_share_of_sales))
        return message


def register(servicer: MemberServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_MemberServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]

    return add
