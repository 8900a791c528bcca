"""Members: register from any channel, resolve any identity, read by role and change; the KPIs and the mix.

What a caller sees of a member's personal data depends on who it is: a store guide sees
tier, tags, preferences and points but no contact details at all; headquarters staff with
`members:pii:read` see them in clear (every such read is audited by the member service);
everyone else sees them masked. Answers stored for an `Idempotency-Key` carry ids and
facts only, never personal data. Query strings may carry phone numbers: the gateway logs
route templates only.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Query, Response
from retail.member.v1 import member_service_pb2 as pb

from gateway.domain.clients import ClientKind, StaffRole
from gateway.domain.scopes import MEMBER_KPIS_READ, MEMBERS_READ, MEMBERS_WRITE
from gateway.http import problems
from gateway.http.resources import GatewayResources, Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, created_status, idempotent
from gateway.members.schemas import (
    STORE_ID_PATTERN,
    ChurnRiskCountOut,
    IdentityType,
    MemberId,
    MemberKpisOut,
    MemberMixOut,
    MemberOut,
    MemberPatch,
    Purpose,
    Registered,
    RegistrationIn,
    Resolved,
    StageCountOut,
    TierCountOut,
)
from gateway.members.wire import (
    actor_of,
    address_message,
    consent_messages,
    gender_number,
    identity_message,
    map_member,
    optional_decimal,
    optional_money,
    profile_message,
    view_of,
    yuan,
)
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from servicekit.protowire import from_wire, moment, to_wire

router = ContextRouter(prefix="/v1", tags=["members"])


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


_REGISTERED_BEFORE: dict[int | str, dict[str, Any]] = {
    200: {"model": Registered, "description": "The identity already belonged to this member"}
}


@router.post("/members", status_code=201, responses=_REGISTERED_BEFORE, response_model=Registered)
async def register_member(
    body: RegistrationIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MEMBERS_WRITE))],
) -> Response:
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
    request = pb.RegisterMemberRequest(
        request_id=call.request_id,
        identity=identity_message(body.identity),
        consents=consent_messages(body.consents),
        channel=channel,
        store_id=store_id,
        actor=actor_of(principal),
        profile=profile_message(body.profile),
    )

    return await call.forward(
        lambda: resources.member_service.RegisterMember(request),
        lambda answer: (created_status(answer.created), Registered(member_id=answer.member_id, created=answer.created)),
    )


@router.get("/members/resolve", responses=problems.problem_responses(404))
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
    return Resolved(member_id=await resources.member_resolutions(identity))


@router.get("/members/kpis")
async def member_kpis(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MEMBER_KPIS_READ))],
    store_id: Annotated[
        str | None, Query(pattern=STORE_ID_PATTERN, description="one store; default the whole chain")
    ] = None,
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
        repeat_purchase_rate=optional_decimal(answer, "repeat_purchase_rate"),
        sales_count=answer.sales_count,
        member_sales_count=answer.member_sales_count,
        net_sales=yuan(answer.net_sales),
        member_net_sales=yuan(answer.member_net_sales),
        average_basket=optional_money(answer, "average_basket"),
        member_average_basket=optional_money(answer, "member_average_basket"),
        member_share_of_sales=optional_decimal(answer, "member_share_of_sales"),
        new_members=answer.new_members,
    )


@router.get("/members/mix")
async def member_mix(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MEMBER_KPIS_READ))],
    store_id: Annotated[
        str | None, Query(pattern=STORE_ID_PATTERN, description="one home store; default the whole chain")
    ] = None,
) -> MemberMixOut:
    """The member mix now: active members by lifecycle stage, by tier and by churn risk (days since
    their last purchase, or since registration). Counts only; no member is named.

    Scope `members:kpis:read`; store managers see their own store's members only (it is the default).
    """
    if principal.store_id is not None:
        store_id = store_id or principal.store_id
        principal.ensure_store(store_id)
    answer = await resources.member_service.GetMemberMix(pb.GetMemberMixRequest(store_id=store_id or ""))
    return MemberMixOut(
        store_id=answer.store_id or None,
        members=answer.members,
        lifecycle=[
            StageCountOut(stage=from_wire(pb.LifecycleStage, "LIFECYCLE_STAGE", row.stage), members=row.members)
            for row in answer.lifecycle
        ],
        tiers=[
            TierCountOut(tier=from_wire(pb.MemberTier, "MEMBER_TIER", row.tier), members=row.members)
            for row in answer.tiers
        ],
        churn_risk=[
            ChurnRiskCountOut(risk=from_wire(pb.ChurnRisk, "CHURN_RISK", row.risk), members=row.members)
            for row in answer.churn_risk
        ],
        as_of=moment(answer.as_of),
    )


@router.get("/members/{member_id}", responses=problems.problem_responses(404))
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


@router.patch("/members/{member_id}", responses=problems.problem_responses(404, 409))
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
