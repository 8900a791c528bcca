"""Members: register from any channel, resolve any identity, read by role, link (and merge), erase, points, KPIs.

What a caller sees of a member's personal data depends on who it is: a store guide sees
tier, tags, preferences and points but no contact details at all; headquarters staff with
`members:pii:read` see them in clear (every such read is audited by the member service);
everyone else sees them masked. Answers stored for an `Idempotency-Key` carry ids and
facts only, never personal data. Query strings may carry phone numbers: the gateway logs
route templates only.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field, model_validator
from retail.common.v1 import identifiers_pb2, money_pb2
from retail.member.v1 import member_service_pb2 as pb

from gateway.domain.clients import ClientKind, StaffRole
from gateway.domain.scopes import (
    MEMBER_KPIS_READ,
    MEMBER_POINTS_READ,
    MEMBER_POINTS_REDEEM,
    MEMBERS_ERASE,
    MEMBERS_MERGES_UNDO,
    MEMBERS_PII_READ,
    MEMBERS_READ,
    MEMBERS_WRITE,
)
from gateway.http import problems
from gateway.http.integer_types import Int64
from gateway.http.paging import Paging
from gateway.http.resources import GatewayResources, Resources
from gateway.http.schemas import Strict
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from servicekit.protowire import from_wire, moment, optional_moment, to_wire

router = APIRouter(prefix="/v1", tags=["members"])

_MEMBER_ID = r"^M[0-9]{7,12}$"
_STORE_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
MemberId = Annotated[str, Path(pattern=_MEMBER_ID, description="a member id, e.g. M0000001")]
Purpose = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern=r"\S",
        description="why the member's personal data is read in clear (headquarters; required for a clear view, "
        "audited with it), e.g. a complaint or ticket reference",
        examples=["complaint 2026-1142"],
    ),
]
IdentityType = Literal["phone", "wechat_unionid", "wechat_openid", "app_user_id", "pos_card", "email"]
ConsentChannelName = Literal["sms", "wechat", "app_push", "email"]
GenderName = Literal["female", "male"]
# Fields of a member that only the platform itself changes.
PROTECTED_FIELDS = frozenset(
    {
        "member_id",
        "status",
        "points",
        "points_balance",
        "tier",
        "identities",
        "lifecycle_stage",
        "registered_at",
        "registration_channel",
        "home_store_id",
        "purchases",
        "personal_data",
        "contact",
    }
)

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


class IdentityIn(Strict):
    """One channel identifier."""

    type: IdentityType = Field(examples=["phone"])
    value: str = Field(min_length=1, max_length=254, examples=["13800138000"])
    app_id: str | None = Field(
        default=None, max_length=32, description="the WeChat app of a wechat_openid", examples=["wx0123456789abcdef"]
    )


class AddressIn(Strict):
    province: str = Field(default="", max_length=100, examples=["上海市"])
    city: str = Field(default="", max_length=100, examples=["上海市"])
    district: str = Field(default="", max_length=100, examples=["徐汇区"])
    street: str = Field(default="", max_length=100, examples=["漕溪北路 88 号"])
    postal_code: str = Field(default="", pattern=r"^([0-9]{6})?$", examples=["200030"])


class ProfileIn(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=50, examples=["王小明"])
    birthday: date | None = None
    gender: GenderName | None = None
    address: AddressIn | None = None
    preferences: dict[str, str] = Field(default_factory=dict, max_length=20, examples=[{"diet": "vegetarian"}])


class RegistrationIn(Strict):
    """Register a shopper with one identity; an identity that already belongs to a member returns that member."""

    identity: IdentityIn
    profile: ProfileIn | None = None
    consents: dict[ConsentChannelName, bool] = Field(default_factory=dict, examples=[{"sms": True}])
    channel: Literal["app", "mini_program"] | None = Field(
        default=None,
        description="for app back ends: where the shopper registers (default from the identity type); "
        "POS terminals and store staff always register in their store",
    )


class Registered(BaseModel):
    member_id: str = Field(examples=["M0000001"])
    created: bool = Field(description="false when the identity already belonged to this member")


class Resolved(BaseModel):
    member_id: str = Field(examples=["M0000001"])


class TagsIn(Strict):
    add: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_:-]{0,39}$")]] = Field(
        default_factory=list, max_length=50
    )
    remove: list[str] = Field(default_factory=list, max_length=50)


class MemberPatch(Strict):
    """Profile, preferences, tags and consent. `null` clears a profile field or removes a preference.
    Points, tier, identities and the like cannot be changed this way."""

    name: str | None = Field(default=None, min_length=1, max_length=50)
    birthday: date | None = None
    gender: GenderName | None = None
    address: AddressIn | None = None
    preferences: dict[str, str | None] | None = Field(default=None, max_length=20)
    tags: TagsIn | None = None
    consents: dict[ConsentChannelName, bool] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_protected_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            protected = sorted(PROTECTED_FIELDS & set(data))
            if protected:
                raise problems.ProblemError(
                    problems.VALIDATION_ERROR,
                    f"{', '.join(protected)} cannot be changed this way",
                    extensions={
                        "errors": [
                            {
                                "location": f"body.{name}",
                                "message": "protected: not changeable here",
                                "type": "protected_field",
                            }
                            for name in protected
                        ]
                    },
                )
        return data


class LinkIn(IdentityIn):
    survivor_member_id: str | None = Field(
        default=None,
        pattern=_MEMBER_ID,
        description="headquarters only: when the identity belongs to another member, which of the two survives",
    )


class MergeOut(BaseModel):
    merge_id: str
    survivor_member_id: str
    absorbed_member_id: str
    rule: str = Field(description="chosen, older or more_complete")
    points_moved: int


class Linked(BaseModel):
    member_id: str = Field(description="the member holding the identity now (the survivor after a merge)")
    merged: bool
    merge: MergeOut | None = None


class UndoneOut(BaseModel):
    merge_id: str
    survivor_member_id: str
    restored_member_id: str
    undone_at: datetime


class ErasedOut(BaseModel):
    member_id: str
    erased_at: datetime
    also_erased_member_ids: list[str] = Field(description="members merged into this one, erased with it")


class AddressOut(BaseModel):
    province: str
    city: str
    district: str
    street: str
    postal_code: str


class ContactOut(BaseModel):
    name: str | None
    phone: str | None
    birthday: str | None
    email: str | None
    gender: str | None
    address: AddressOut | None


class IdentityOut(BaseModel):
    type: str
    value: str | None = Field(description="masked or clear as the caller may see it; null for store guides")
    app_id: str | None
    linked_at: datetime


class ConsentOut(BaseModel):
    channel: str
    granted: bool
    updated_at: datetime


class TierOut(BaseModel):
    tier: str = Field(examples=["silver"])
    qualifying_spend: str = Field(description="rolling spend, yuan", examples=["2310.50"])
    next_tier: str | None
    spend_to_next_tier: str = Field(examples=["5689.50"])
    grace_until: datetime | None = Field(description="set while the member is below their tier and keeps it")


class PurchasesOut(BaseModel):
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    recency_days: int
    frequency: int = Field(description="purchases in the RFM window")
    monetary: str = Field(description="spend in the RFM window, yuan")
    rfm: str | None = Field(description="recency, frequency and monetary scores 1-5, e.g. '545'")
    favourite_categories: list[str]
    favourite_stores: list[str]
    favourite_hours: list[int]


class MemberOut(BaseModel):
    member_id: str
    status: str
    registered_at: datetime
    registration_channel: str
    home_store_id: str | None
    tier: TierOut
    points_balance: int
    tags: list[str]
    preferences: dict[str, str]
    lifecycle_stage: str = Field(description="new, active, repeat, dormant or churned")
    purchases: PurchasesOut
    consents: list[ConsentOut]
    identities: list[IdentityOut]
    contact: ContactOut | None = Field(description="null for store guides")
    personal_data: str = Field(description="how personal data is shown: masked, none or clear")


class RedemptionIn(Strict):
    points: Int64 = Field(gt=0, le=10_000_000)
    reference: str | None = Field(default=None, max_length=128, description="order or receipt id")
    store_id: str | None = Field(default=None, pattern=_STORE_ID, description="where; a terminal's own store")


class PointsEntryOut(BaseModel):
    entry_id: int
    kind: str = Field(description="earn, redeem, expire, reverse, adjust or settle_debt")
    points: int
    sale_id: str | None
    reference: str | None
    reason: str | None
    recorded_at: datetime
    expires_at: datetime | None


class RedemptionOut(BaseModel):
    entry: PointsEntryOut
    balance: int


class ExpiringOut(BaseModel):
    points: int
    expires_at: datetime


class PointsOut(BaseModel):
    member_id: str
    balance: int
    expiring: list[ExpiringOut]
    entries: list[PointsEntryOut]
    next_page_token: str | None


class MemberKpisOut(BaseModel):
    store_id: str | None = Field(description="null for the whole chain")
    from_date: date
    to_date: date
    active_members: int
    repeat_members: int
    repeat_purchase_rate: str | None = Field(description="复购率", examples=["0.3125"])
    sales_count: int
    member_sales_count: int
    net_sales: str = Field(examples=["152340.20"])
    member_net_sales: str
    average_basket: str | None = Field(description="客单价, yuan", examples=["86.40"])
    member_average_basket: str | None
    member_share_of_sales: str | None = Field(examples=["0.6120"])
    new_members: int


# ---- mapping --------------------------------------------------------------------------------------


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


def yuan(money: money_pb2.Money) -> str:
    return f"{Decimal(money.minor_units) / 100:.2f}"


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


def require_purpose(principal: Principal, purpose: str | None) -> None:
    """422 when the caller would see personal data in clear without saying why: every clear read is audited with it."""
    if purpose is None and view_of(principal) == pb.PERSONAL_DATA_VIEW_CLEAR:
        error = {"location": "query.purpose", "message": "required for a clear view", "type": "missing"}
        raise problems.ProblemError(
            problems.VALIDATION_ERROR,
            "say why you read this member's personal data in clear: `purpose` is audited with the access",
            extensions={"errors": [error], "reason": "purpose-missing"},
        )


async def member_view(
    resources: GatewayResources, principal: Principal, member_id: str, purpose: str | None
) -> MemberOut:
    """The member as the caller may see them; without a ``purpose`` a clear view is shown masked instead."""
    view = view_of(principal)
    if view == pb.PERSONAL_DATA_VIEW_CLEAR and purpose is None:
        view = pb.PERSONAL_DATA_VIEW_MASKED
    answer = await resources.member_service.GetMember(
        pb.GetMemberRequest(member_id=member_id, view=view, actor=actor_of(principal), purpose=purpose or ""),
    )
    return map_member(answer.member)


def _decimal(message: Any, field: str) -> str | None:
    return str(getattr(message, field).value) if message.HasField(field) else None


def _money(message: Any, field: str) -> str | None:
    return yuan(getattr(message, field)) if message.HasField(field) else None


# ---- routes -----------------------------------------------------------------------------------------


_REGISTERED_BEFORE: dict[int | str, dict[str, Any]] = {
    200: {"model": Registered, "description": "The identity already belonged to this member"}
}


@router.post("/members", status_code=201, responses=problems.problem_responses(401, 403, 422) | _REGISTERED_BEFORE)
async def register_member(
    body: RegistrationIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MEMBERS_WRITE))],
) -> Registered:
    """Register a shopper with one channel identity: `201` with the new `member_id`, or `200` with
    the member the identity already belongs to (nothing is changed then).

    Scope `members:write`; `Idempotency-Key` required. POS terminals and store staff register
    in their own store. Malformed identities (e.g. a phone number that is not a mainland
    mobile) are `422` with a precise `reason`.
    """
    principal = call.principal
    store_id = principal.store_id or ""
    if principal.kind is ClientKind.POS_TERMINAL or principal.store_id:
        channel = pb.CHANNEL_STORE
    elif body.channel:
        channel = to_wire(pb.Channel, "CHANNEL", body.channel)
    else:
        channel = pb.CHANNEL_MINI_PROGRAM if body.identity.type.startswith("wechat") else pb.CHANNEL_APP
    profile = body.profile or ProfileIn()
    request = pb.RegisterMemberRequest(
        request_id=call.request_id,
        identity=identity_message(body.identity),
        consents=consent_messages(body.consents),
        channel=channel,
        store_id=store_id,
        actor=actor_of(principal),
        profile=pb.Profile(
            name=profile.name or "",
            birthday=profile.birthday.isoformat() if profile.birthday else "",
            gender=gender_number(profile.gender),
            preferences=profile.preferences,
            address=address_message(profile.address) if profile.address else None,
        ),
    )

    async def effect() -> tuple[int, Any]:
        answer = await resources.member_service.RegisterMember(request)
        return (201 if answer.created else 200), Registered(
            member_id=answer.member_id, created=answer.created
        ).model_dump()

    return await call.run(effect)  # type: ignore[return-value]


@router.get("/members/resolve", responses=problems.problem_responses(401, 403, 404, 422))
async def resolve_member(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MEMBERS_READ))],
    identity_type: Annotated[IdentityType, Query(alias="type", description="the identity type")],
    value: Annotated[str, Query(min_length=1, max_length=254, description="the identifier")],
    app_id: Annotated[str | None, Query(max_length=32, description="with type=wechat_openid")] = None,
) -> Resolved:
    """The member an identity (of any type) belongs to; `404` when none. Scope `members:read`."""
    identity = pb.Identity(
        type=to_wire(pb.IdentityType, "IDENTITY_TYPE", identity_type), value=value, app_id=app_id or ""
    )
    answer = await resources.member_service.ResolveMember(pb.ResolveMemberRequest(identity=identity))
    return Resolved(member_id=answer.member_id)


@router.get("/members/kpis", responses=problems.problem_responses(401, 403, 422))
async def member_kpis(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MEMBER_KPIS_READ))],
    store_id: Annotated[str | None, Query(pattern=_STORE_ID, description="one store; default the whole chain")] = None,
    from_date: Annotated[
        date | None, Query(alias="from", description="first day; default 27 days before `to` (four whole weeks)")
    ] = None,
    to_date: Annotated[date | None, Query(alias="to", description="last day; default today")] = None,
) -> MemberKpisOut:
    """Member KPIs per store and period: active members, repeat-purchase rate (复购率), average
    basket (客单价), member share of sales, new members. The default period is the 28 days
    ending today (China time).

    Scope `members:kpis:read`; store managers see their own store only (it is the default).
    """
    if principal.store_id is not None:
        store_id = store_id or principal.store_id
        principal.ensure_store(store_id)
    if from_date and to_date and from_date > to_date:
        raise problems.ProblemError(problems.INVALID_ARGUMENT, "`from` must not be after `to`")
    answer = await resources.member_service.GetMemberKpis(
        pb.GetMemberKpisRequest(
            store_id=store_id or "",
            from_date=from_date.isoformat() if from_date else "",
            to_date=to_date.isoformat() if to_date else "",
        ),
    )
    return MemberKpisOut(
        store_id=answer.store_id or None,
        from_date=date.fromisoformat(answer.from_date),
        to_date=date.fromisoformat(answer.to_date),
        active_members=answer.active_members,
        repeat_members=answer.repeat_members,
        repeat_purchase_rate=_decimal(answer, "repeat_purchase_rate"),
        sales_count=answer.sales_count,
        member_sales_count=answer.member_sales_count,
        net_sales=yuan(answer.net_sales),
        member_net_sales=yuan(answer.member_net_sales),
        average_basket=_money(answer, "average_basket"),
        member_average_basket=_money(answer, "member_average_basket"),
        member_share_of_sales=_decimal(answer, "member_share_of_sales"),
        new_members=answer.new_members,
    )


@router.get("/members/{member_id}", responses=problems.problem_responses(401, 403, 404, 422))
async def get_member(
    member_id: MemberId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MEMBERS_READ))],
    purpose: Purpose = None,
) -> MemberOut:
    """A member as the caller may see them: store guides without contact details, headquarters
    with `members:pii:read` in clear, everyone else masked. A merged member's id answers with
    the surviving member. Scope `members:read`.

    A clear view requires `purpose` (`422` without it): every clear read is audited with the
    reader and the purpose.
    """
    require_purpose(principal, purpose)
    return await member_view(resources, principal, member_id, purpose)


@router.patch("/members/{member_id}", responses=problems.problem_responses(401, 403, 404, 409, 422))
async def update_member(
    member_id: MemberId,
    body: MemberPatch,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MEMBERS_WRITE))],
    purpose: Purpose = None,
) -> MemberOut:
    """Change profile (`name`, `birthday`, `gender`, `address`; `null` clears), `preferences`
    (`null` removes one), `tags` and marketing `consents` (each decision is kept in the history).
    Unknown fields and fields such as `points` or `tier` are `422`. Store guides change tags,
    preferences and consent only. Scope `members:write`. Answers the member as the caller may
    see them; headquarters see personal data in clear only with a `purpose` (audited), masked
    without one.
    """
    given = body.model_fields_set
    profile_fields = given & {"name", "birthday", "gender", "address"}
    if profile_fields and principal.kind is ClientKind.STAFF and principal.staff_role is StaffRole.STORE_GUIDE:
        raise problems.ProblemError(problems.FORBIDDEN, "store guides do not change contact details")
    cleared = [
        to_wire(pb.ProfileField, "PROFILE_FIELD", name)
        for name in sorted(profile_fields)
        if getattr(body, name) is None
    ]
    update = pb.ProfileUpdate(clear_fields=cleared)
    if body.name is not None:
        update.name = body.name
    if body.birthday is not None:
        update.birthday = body.birthday.isoformat()
    if body.gender is not None:
        update.gender = gender_number(body.gender)
    if body.address is not None:
        update.address.CopyFrom(address_message(body.address))
    preferences = body.preferences or {}
    message = pb.UpdateMemberRequest(
        request_id=f"{principal.client_id}/patch/{uuid.uuid4()}",
        member_id=member_id,
        profile=update,
        preferences=pb.PreferencesUpdate(
            set={k: v for k, v in preferences.items() if v is not None},
            remove=[k for k, v in preferences.items() if v is None],
        ),
        tags=pb.TagsUpdate(add=body.tags.add, remove=body.tags.remove) if body.tags else None,
        consents=consent_messages(body.consents or {}),
        actor=actor_of(principal),
    )
    await resources.member_service.UpdateMember(message)
    return await member_view(resources, principal, member_id, purpose)


@router.post("/members/{member_id}/identities", responses=problems.problem_responses(401, 403, 404, 409, 422))
async def link_identity(
    member_id: MemberId,
    body: LinkIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MEMBERS_WRITE))],
) -> Linked:
    """Link a channel identity to a member. An identity that belongs to another member merges the
    two (the older or more complete survives; headquarters may choose with `survivor_member_id`);
    the answer names the merge, which `POST /v1/merges/{merge_id}/undo` reverses. An identity
    the member already has is `409` (`identity-already-linked`).

    Scope `members:write`; `Idempotency-Key` required.
    """
    if body.survivor_member_id and not call.principal.is_headquarters:
        raise problems.ProblemError(problems.FORBIDDEN, "only headquarters staff choose the survivor of a merge")
    message = pb.LinkIdentityRequest(
        request_id=call.request_id,
        member_id=member_id,
        identity=identity_message(body),
        survivor_member_id=body.survivor_member_id or "",
        actor=actor_of(call.principal),
    )

    async def effect() -> tuple[int, Any]:
        answer = await resources.member_service.LinkIdentity(message)
        merge = None
        if answer.merged:
            merge = MergeOut(
                merge_id=answer.merge.merge_id,
                survivor_member_id=answer.merge.survivor_member_id,
                absorbed_member_id=answer.merge.absorbed_member_id,
                rule=from_wire(pb.SurvivorRule, "SURVIVOR_RULE", answer.merge.rule),
                points_moved=answer.merge.points_moved,
            )
        return 200, Linked(member_id=answer.member_id, merged=answer.merged, merge=merge).model_dump(mode="json")

    return await call.run(effect)  # type: ignore[return-value]


@router.post("/merges/{merge_id}/undo", responses=problems.problem_responses(401, 403, 404, 409))
async def undo_merge(
    merge_id: Annotated[str, Path(max_length=64)],
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MEMBERS_MERGES_UNDO))],
) -> UndoneOut:
    """Undo a merge: both members exactly as they were before it. `409` with a `reason` when that
    is no longer possible: `merge-already-undone`, `survivor-merged-again` (undo the later merge
    first), `merge-diverged` (moved points were spent since) or `merged-member-erased`.

    Scope `members:merges:undo`; `Idempotency-Key` required.
    """
    message = pb.UndoMergeRequest(request_id=call.request_id, merge_id=merge_id, actor=actor_of(call.principal))

    async def effect() -> tuple[int, Any]:
        answer = await resources.member_service.UndoMerge(message)
        return 200, UndoneOut(
            merge_id=answer.merge_id,
            survivor_member_id=answer.survivor_member_id,
            restored_member_id=answer.restored_member_id,
            undone_at=moment(answer.undone_at),
        ).model_dump(mode="json")

    return await call.run(effect)  # type: ignore[return-value]


@router.get("/members/{member_id}/points", responses=problems.problem_responses(401, 403, 404, 422))
async def member_points(
    member_id: MemberId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MEMBER_POINTS_READ))],
    page: Paging,
) -> PointsOut:
    """The points balance, what expires when, and a page of the ledger (newest first). Scope `members:points:read`."""
    answer = await resources.member_service.GetPoints(pb.GetPointsRequest(member_id=member_id, page=page.request()))
    return PointsOut(
        member_id=answer.member_id,
        balance=answer.balance,
        expiring=[ExpiringOut(points=e.points, expires_at=moment(e.expires_at)) for e in answer.expiring],
        entries=[map_entry(entry) for entry in answer.entries],
        next_page_token=page.next_token(answer.page_info.next_page_token),
    )


@router.post(
    "/members/{member_id}/points/redemptions",
    status_code=201,
    responses=problems.problem_responses(401, 403, 404, 409, 422),
)
async def redeem_points(
    member_id: MemberId,
    body: RedemptionIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MEMBER_POINTS_REDEEM))],
) -> RedemptionOut:
    """Spend points (soonest-expiring first). More than the balance is `409` (`insufficient-points`,
    with `available`); the balance never goes below zero, also under concurrent redemptions.

    Scope `members:points:redeem`; `Idempotency-Key` required; a terminal redeems in its own store.
    """
    principal = call.principal
    store_id = body.store_id or principal.store_id or ""
    if store_id:
        principal.ensure_store(store_id)
    message = pb.RedeemPointsRequest(
        request_id=call.request_id,
        member_id=member_id,
        points=body.points,
        reference=body.reference or "",
        store_id=store_id,
        actor=actor_of(principal),
    )

    async def effect() -> tuple[int, Any]:
        answer = await resources.member_service.RedeemPoints(message)
        return 201, RedemptionOut(entry=map_entry(answer.entry), balance=answer.balance).model_dump(mode="json")

    return await call.run(effect)  # type: ignore[return-value]


@router.delete("/members/{member_id}", responses=problems.problem_responses(401, 403, 404, 422))
async def erase_member(
    member_id: MemberId,
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MEMBERS_ERASE))],
    reason: Annotated[str, Query(max_length=200, description="ticket or request reference; no personal data")] = "",
) -> ErasedOut:
    """Erase a member (PIPL): every personal datum and identity of the member, and of members merged
    into it, is removed from the member service; only anonymous aggregates remain. Erasing again
    answers the first erasure. Scope `members:erase`.
    """
    answer = await resources.member_service.EraseMember(
        pb.EraseMemberRequest(
            request_id=f"{principal.client_id}/erase/{uuid.uuid4()}",
            member_id=member_id,
            reason=reason,
            actor=actor_of(principal),
        ),
    )
    return ErasedOut(
        member_id=answer.member_id,
        erased_at=moment(answer.erased_at),
        also_erased_member_ids=list(answer.also_erased_member_ids),
    )
