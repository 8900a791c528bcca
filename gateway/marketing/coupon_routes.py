"""Coupons (a member's coupons, holds for a basket, generic codes), redemption conflicts, models and scores.

A hold reserves one use of a code for a basket and prices it, or is refused with the reason a
person can act on (`409` `coupon-expired`, `coupon-already-used`, …; `403` `coupon-not-yours`);
the sale that uses the code in the SALES journal redeems it, exactly once. A POS terminal holds
coupons in its own store only. See docs/marketing.md.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response
from retail.marketing.v1 import marketing_service_pb2 as pb

from gateway.domain.clients import ClientKind
from gateway.domain.scopes import COUPONS_READ, COUPONS_REDEEM, MARKETING_READ, MARKETING_WRITE, MEMBERS_READ
from gateway.http import problems
from gateway.http.integer_types import Int32
from gateway.http.paging import Paging
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.marketing.schemas import (
    ID_PATTERN,
    CampaignId,
    ConflictPage,
    CouponCodeText,
    CouponOut,
    CouponPage,
    GenericCodeIn,
    HoldId,
    HoldIn,
    HoldOut,
    MemberId,
    ModelRunOut,
    ModelStatusOut,
    PropensityOut,
    RecommendationsOut,
    ReleasedOut,
    TagsOut,
    UpliftModelOut,
)
from gateway.marketing.wire import map_conflict, map_coupon, map_hold, map_model_run, map_uplift_model, money
from gateway.members.wire import actor_of
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from servicekit.protowire import from_wire, to_wire

router = ContextRouter(prefix="/v1", tags=["marketing"])


@router.get("/members/{member_id}/coupons")
async def member_coupons(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(COUPONS_READ))],
    member_id: MemberId,
    page: Paging,
    include_inactive: Annotated[bool, Query(description="also used, expired and void coupons")] = False,
) -> CouponPage:
    """The member's coupons, soonest to expire first. Scope `coupons:read`."""
    answer = await resources.marketing_service.ListMemberCoupons(
        pb.ListMemberCouponsRequest(
            actor=actor_of(principal), member_id=member_id, include_inactive=include_inactive, page=page.request()
        )
    )
    return CouponPage(
        coupons=[map_coupon(c) for c in answer.coupons], next_page_token=page.next_token(answer.page.next_page_token)
    )


@router.post(
    "/coupons/{code}/hold", status_code=201, responses=problems.problem_responses(404, 409), response_model=HoldOut
)
async def hold_coupon(
    code: CouponCodeText,
    body: HoldIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(COUPONS_REDEEM))],
) -> Response:
    """Hold one use of a code for a basket and price it (`201` with the discount per line), or a
    precise refusal. The hold lapses after 15 minutes (`hold_seconds`: 30 to 86,400) unless the
    sale that uses the code arrives first. Scope `coupons:redeem`; a terminal in its own store only."""
    principal = call.principal
    store_id = body.store_id
    if principal.kind is ClientKind.POS_TERMINAL:
        if store_id not in (None, principal.store_id):
            raise problems.ProblemError(problems.FORBIDDEN, f"a terminal holds coupons in store {principal.store_id}")
        store_id = principal.store_id
    request = pb.HoldCouponRequest(
        request_id=call.request_id,
        actor=actor_of(principal),
        code=code,
        member_id=body.member_id,
        store_id=store_id or "",
        channel=to_wire(pb.SalesChannel, "SALES_CHANNEL", body.channel),
        lines=[pb.BasketLine(sku=line.sku, amount=money(line.amount)) for line in body.lines],
        with_codes=body.with_codes,
        hold_seconds=body.hold_seconds or 0,
    )
    return await call.forward(
        lambda: resources.marketing_service.HoldCoupon(request), lambda answer: (201, map_hold(answer))
    )


@router.post("/coupon-holds/{hold_id}/release", responses=problems.problem_responses(404), response_model=ReleasedOut)
async def release_coupon_hold(
    hold_id: HoldId, resources: Resources, call: Annotated[IdempotentRequest, Depends(idempotent(COUPONS_REDEEM))]
) -> Response:
    """Give a held use back (a hold of another client is `404`). Releasing again answers its status."""
    request = pb.ReleaseCouponHoldRequest(request_id=call.request_id, actor=actor_of(call.principal), hold_id=hold_id)

    def answer(reply: pb.ReleaseCouponHoldResponse) -> tuple[int, ReleasedOut]:
        return 200, ReleasedOut(hold_id=reply.hold_id, status=from_wire(pb.HoldStatus, "HOLD_STATUS", reply.status))

    return await call.forward(lambda: resources.marketing_service.ReleaseCouponHold(request), answer)


@router.post(
    "/campaigns/{campaign_id}/codes",
    status_code=201,
    responses=problems.problem_responses(404, 409),
    response_model=CouponOut,
)
async def create_generic_code(
    campaign_id: CampaignId,
    body: GenericCodeIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MARKETING_WRITE))],
) -> Response:
    """Add a code many members may use up to `use_limit` (a poster's code). Scope `marketing:write`."""
    request = pb.CreateGenericCodeRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        campaign_id=campaign_id,
        code=body.code,
        use_limit=body.use_limit,
    )
    return await call.forward(
        lambda: resources.marketing_service.CreateGenericCode(request), lambda answer: (201, map_coupon(answer.coupon))
    )


@router.get("/redemption-conflicts")
async def redemption_conflicts(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MARKETING_READ))],
    page: Paging,
    campaign_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="one campaign's")] = None,
    store_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="one store's")] = None,
) -> ConflictPage:
    """Codes a till accepted that could not count (used elsewhere, expired, …), newest first: the
    sale stands, the store follows it up. Scope `marketing:read`; a store manager sees their store's."""
    if principal.store_id is not None:
        principal.ensure_store(store_id or principal.store_id)
    answer = await resources.marketing_service.ListRedemptionConflicts(
        pb.ListRedemptionConflictsRequest(
            actor=actor_of(principal), campaign_id=campaign_id or "", store_id=store_id or "", page=page.request()
        )
    )
    return ConflictPage(
        conflicts=[map_conflict(c) for c in answer.conflicts],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.post(
    "/models/repurchase/train", status_code=202, responses=problems.problem_responses(409), response_model=ModelRunOut
)
async def train_repurchase_model(
    resources: Resources, call: Annotated[IdempotentRequest, Depends(idempotent(MARKETING_WRITE))]
) -> Response:
    """Queue a training of the repurchase and churn model (`202`); one at a time, so asking while
    one is queued or training answers with that run. Scope `marketing:write`, headquarters."""
    if not call.principal.is_headquarters:
        raise problems.ProblemError(problems.FORBIDDEN, "models are trained by headquarters")
    request = pb.TrainRepurchaseModelRequest(request_id=call.request_id, actor=actor_of(call.principal))
    return await call.forward(
        lambda: resources.marketing_service.TrainRepurchaseModel(request),
        lambda answer: (202, map_model_run(answer.run)),
    )


@router.get("/models/repurchase")
async def repurchase_model(
    resources: Resources, principal: Annotated[Principal, Depends(require(MARKETING_READ))]
) -> ModelStatusOut:
    """The latest training run and the one serving, with its backtest against BG/NBD and a
    recency-frequency heuristic. Scope `marketing:read`."""
    answer = await resources.marketing_service.GetRepurchaseModel(
        pb.GetRepurchaseModelRequest(actor=actor_of(principal))
    )
    return ModelStatusOut(
        latest=map_model_run(answer.latest) if answer.HasField("latest") else None,
        serving=map_model_run(answer.serving) if answer.HasField("serving") else None,
    )


@router.post(
    "/models/uplift/train", status_code=202, responses=problems.problem_responses(409), response_model=ModelRunOut
)
async def train_uplift_model(
    resources: Resources, call: Annotated[IdempotentRequest, Depends(idempotent(MARKETING_WRITE))]
) -> Response:
    """Queue a training of the uplift model (`202`) from every ended campaign's treatment and control
    outcomes (a campaign counts once its attribution window is over); one at a time, so asking while one
    is queued or training answers with that run. The new model serves only if it beats random targeting
    on the most recent campaigns, held out; `GET /v1/models/uplift` says how it went. Scope
    `marketing:write`, headquarters."""
    if not call.principal.is_headquarters:
        raise problems.ProblemError(problems.FORBIDDEN, "models are trained by headquarters")
    request = pb.TrainUpliftModelRequest(request_id=call.request_id, actor=actor_of(call.principal))
    return await call.forward(
        lambda: resources.marketing_service.TrainUpliftModel(request),
        lambda answer: (202, map_model_run(answer.run)),
    )


@router.get("/models/uplift")
async def uplift_model(
    resources: Resources, principal: Annotated[Principal, Depends(require(MARKETING_READ))]
) -> UpliftModelOut:
    """Whether campaigns may target by uplift (`status` serving or unavailable, and why), the serving
    model's backtest — its Qini coefficient and uplift in the top 10% on held-out campaigns against
    random targeting's 0 — and the latest training run. Scope `marketing:read`."""
    answer = await resources.marketing_service.GetUpliftModel(pb.GetUpliftModelRequest(actor=actor_of(principal)))
    return map_uplift_model(answer)


@router.get("/members/{member_id}/propensity", responses=problems.problem_responses(404, 409))
async def member_propensity(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MARKETING_READ))],
    member_id: MemberId,
    horizon_days: Annotated[Int32, Query(ge=7, le=365, description="days ahead")] = 90,
) -> PropensityOut:
    """A member's expected purchases, chance to buy and churn risk over the horizon, from the
    serving model (`409` `model-not-trained` before the first training). Scope `marketing:read`."""
    answer = await resources.marketing_service.GetMemberPropensity(
        pb.GetMemberPropensityRequest(actor=actor_of(principal), member_id=member_id, horizon_days=horizon_days)
    )
    return PropensityOut(
        member_id=answer.member_id,
        horizon_days=answer.horizon_days,
        expected_purchases=answer.expected_purchases,
        p_active=answer.p_active,
        churn_risk=answer.churn_risk,
        model_version=answer.model_version,
        model=answer.model,
        as_of=answer.as_of,
    )


@router.get("/members/{member_id}/tags", responses=problems.problem_responses(404))
async def member_tags(
    resources: Resources, principal: Annotated[Principal, Depends(require(MEMBERS_READ))], member_id: MemberId
) -> TagsOut:
    """What staff may see of a member's behaviour (no contact data): engagement, RFM cell, top
    categories, preferred store. Scope `members:read`."""
    answer = await resources.marketing_service.GetMemberTags(
        pb.GetMemberTagsRequest(actor=actor_of(principal), member_id=member_id)
    )
    return TagsOut(
        member_id=answer.member_id,
        engagement=answer.engagement or None,
        rfm_cell=answer.rfm_cell or None,
        top_categories=list(answer.top_categories),
        preferred_store_id=answer.preferred_store_id or None,
    )


@router.get("/members/{member_id}/recommendations", responses=problems.problem_responses(404, 409))
async def member_recommendations(
    resources: Resources,
    principal: Annotated[Principal, Depends(require(MARKETING_READ))],
    member_id: MemberId,
    limit: Annotated[Int32, Query(ge=1, le=20, description="how many")] = 10,
) -> RecommendationsOut:
    """The items the member is likely to buy next, best first, among those their store sells
    (computed by the latest training; `409` `model-not-trained` before it). Scope `marketing:read`."""
    answer = await resources.marketing_service.GetMemberRecommendations(
        pb.GetMemberRecommendationsRequest(actor=actor_of(principal), member_id=member_id, limit=limit)
    )
    return RecommendationsOut(member_id=answer.member_id, skus=list(answer.skus), model_version=answer.model_version)
