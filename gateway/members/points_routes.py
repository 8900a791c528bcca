"""A member's points: the balance, what expires when and the ledger; redemptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response
from retail.member.v1 import member_service_pb2 as pb

from gateway.domain.scopes import MEMBER_POINTS_READ, MEMBER_POINTS_REDEEM
from gateway.http import problems
from gateway.http.paging import Paging
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.members.schemas import ExpiringOut, MemberId, PointsOut, RedemptionIn, RedemptionOut
from gateway.members.wire import actor_of, map_entry
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from servicekit.protowire import moment

router = ContextRouter(prefix="/v1", tags=["members"])


@router.get("/members/{member_id}/points", responses=problems.problem_responses(404))
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
    responses=problems.problem_responses(404, 409),
    response_model=RedemptionOut,
)
async def redeem_points(
    member_id: MemberId,
    body: RedemptionIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MEMBER_POINTS_REDEEM))],
) -> Response:
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

    return await call.forward(
        lambda: resources.member_service.RedeemPoints(message),
        lambda answer: (201, RedemptionOut(entry=map_entry(answer.entry), balance=answer.balance)),
    )
