"""Segments and campaigns: target members by behaviour, hold out a control group, read what it brought.

Scopes `marketing:read` / `marketing:write` (headquarters; store managers for their own store's
campaigns — another store's campaign is `404`, its existence does not leak). The rules the
service applies are in docs/marketing.md.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Query, Response
from retail.marketing.v1 import marketing_service_pb2 as pb

from gateway.domain.scopes import MARKETING_READ, MARKETING_WRITE
from gateway.http import problems
from gateway.http.paging import Paging
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.marketing.schemas import (
    CampaignId,
    CampaignIn,
    CampaignOut,
    CampaignPage,
    CampaignStatusName,
    PreviewOut,
    ReportOut,
    RuleIn,
    SegmentId,
    SegmentIn,
    SegmentOut,
    SegmentPage,
    SnapshotOut,
)
from gateway.marketing.wire import map_campaign, map_campaign_in, map_report, map_segment, map_snapshot
from gateway.members.wire import actor_of
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from servicekit.protowire import moment, to_wire

router = ContextRouter(prefix="/v1", tags=["marketing"])

Reader = Annotated[Principal, Depends(require(MARKETING_READ))]


def _rule_json(rule: dict[str, object]) -> str:
    return json.dumps(rule, ensure_ascii=False)


@router.post("/segments", status_code=201, response_model=SegmentOut)
async def create_segment(
    body: SegmentIn, resources: Resources, call: Annotated[IdempotentRequest, Depends(idempotent(MARKETING_WRITE))]
) -> Response:
    """Save a segment: a rule over members (an unknown attribute, operator or value is `422`
    naming its path). Scope `marketing:write`; `Idempotency-Key` required."""
    request = pb.CreateSegmentRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        name=body.name,
        description=body.description,
        rule_json=_rule_json(body.rule),
    )
    return await call.forward(
        lambda: resources.marketing_service.CreateSegment(request), lambda answer: (201, map_segment(answer.segment))
    )


@router.get("/segments")
async def list_segments(resources: Resources, principal: Reader, page: Paging) -> SegmentPage:
    """Segments, newest first. Scope `marketing:read`."""
    answer = await resources.marketing_service.ListSegments(
        pb.ListSegmentsRequest(actor=actor_of(principal), page=page.request())
    )
    return SegmentPage(
        segments=[map_segment(s) for s in answer.segments], next_page_token=page.next_token(answer.page.next_page_token)
    )


@router.get("/segments/{segment_id}", responses=problems.problem_responses(404))
async def get_segment(resources: Resources, principal: Reader, segment_id: SegmentId) -> SegmentOut:
    """A segment and its latest snapshot. Scope `marketing:read`."""
    answer = await resources.marketing_service.GetSegment(
        pb.GetSegmentRequest(actor=actor_of(principal), segment_id=segment_id)
    )
    return map_segment(answer.segment)


@router.post("/segments/preview", response_model=PreviewOut)
async def preview_segment(
    body: RuleIn, resources: Resources, call: Annotated[IdempotentRequest, Depends(idempotent(MARKETING_READ))]
) -> Response:
    """How many members a rule selects now, per lifecycle stage; nothing is saved.
    Scope `marketing:read`; `Idempotency-Key` required (every POST takes one)."""
    request = pb.PreviewSegmentRequest(actor=actor_of(call.principal), rule_json=_rule_json(body.rule))

    def answer(reply: pb.PreviewSegmentResponse) -> tuple[int, PreviewOut]:
        return 200, PreviewOut(
            members=reply.members, members_by_stage=dict(reply.members_by_stage), as_of=moment(reply.as_of)
        )

    return await call.forward(lambda: resources.marketing_service.PreviewSegment(request), answer)


@router.post(
    "/segments/{segment_id}/snapshots",
    status_code=201,
    responses=problems.problem_responses(404),
    response_model=SnapshotOut,
)
async def snapshot_segment(
    segment_id: SegmentId,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MARKETING_WRITE))],
) -> Response:
    """Freeze the segment's members now; a campaign targets a snapshot. Scope `marketing:write`."""
    request = pb.SnapshotSegmentRequest(
        request_id=call.request_id, actor=actor_of(call.principal), segment_id=segment_id
    )
    return await call.forward(
        lambda: resources.marketing_service.SnapshotSegment(request),
        lambda answer: (201, map_snapshot(answer.snapshot)),
    )


@router.post("/campaigns", status_code=201, responses=problems.problem_responses(404), response_model=CampaignOut)
async def create_campaign(
    body: CampaignIn, resources: Resources, call: Annotated[IdempotentRequest, Depends(idempotent(MARKETING_WRITE))]
) -> Response:
    """Draft a campaign over a segment snapshot: offer, validity, contact channels, budget, control
    fraction and frequency cap. Scope `marketing:write`; a store manager's campaign is limited to
    their own store (`store_id` is required and must be theirs: `403` otherwise)."""
    principal = call.principal
    if principal.store_id is not None and body.store_id != principal.store_id:
        raise problems.ProblemError(
            problems.FORBIDDEN, f"a store manager creates campaigns of store {principal.store_id} only"
        )
    request = pb.CreateCampaignRequest(request_id=call.request_id, actor=actor_of(principal), **map_campaign_in(body))
    return await call.forward(
        lambda: resources.marketing_service.CreateCampaign(request),
        lambda answer: (201, map_campaign(answer.campaign)),
    )


@router.get("/campaigns")
async def list_campaigns(
    resources: Resources,
    principal: Reader,
    page: Paging,
    status: Annotated[CampaignStatusName | None, Query(description="only campaigns in this status")] = None,
) -> CampaignPage:
    """Campaigns, newest first (a store manager: their own store's). Scope `marketing:read`."""
    answer = await resources.marketing_service.ListCampaigns(
        pb.ListCampaignsRequest(
            actor=actor_of(principal),
            status=to_wire(pb.CampaignStatus, "CAMPAIGN_STATUS", status or ""),
            page=page.request(),
        )
    )
    return CampaignPage(
        campaigns=[map_campaign(c) for c in answer.campaigns],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.get("/campaigns/{campaign_id}", responses=problems.problem_responses(404))
async def get_campaign(resources: Resources, principal: Reader, campaign_id: CampaignId) -> CampaignOut:
    """A campaign with its launch progress and budget use. Scope `marketing:read`."""
    answer = await resources.marketing_service.GetCampaign(
        pb.GetCampaignRequest(actor=actor_of(principal), campaign_id=campaign_id)
    )
    return map_campaign(answer.campaign)


@router.post(
    "/campaigns/{campaign_id}/approve", responses=problems.problem_responses(404, 409), response_model=CampaignOut
)
async def approve_campaign(
    campaign_id: CampaignId,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MARKETING_WRITE))],
) -> Response:
    """Approve a draft; its author may not (`403` `campaign-own-approval`). Scope `marketing:write`."""
    request = pb.ApproveCampaignRequest(
        request_id=call.request_id, actor=actor_of(call.principal), campaign_id=campaign_id
    )
    return await call.forward(
        lambda: resources.marketing_service.ApproveCampaign(request),
        lambda answer: (200, map_campaign(answer.campaign)),
    )


@router.post(
    "/campaigns/{campaign_id}/launch",
    status_code=202,
    responses=problems.problem_responses(404, 409),
    response_model=CampaignOut,
)
async def launch_campaign(
    campaign_id: CampaignId,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(MARKETING_WRITE))],
) -> Response:
    """Start issuing an approved campaign's coupons in the background (`202`); `GET` the campaign
    for its progress. Scope `marketing:write`."""
    request = pb.LaunchCampaignRequest(
        request_id=call.request_id, actor=actor_of(call.principal), campaign_id=campaign_id
    )
    return await call.forward(
        lambda: resources.marketing_service.LaunchCampaign(request), lambda answer: (202, map_campaign(answer.campaign))
    )


@router.get("/campaigns/{campaign_id}/report", responses=problems.problem_responses(404))
async def campaign_report(resources: Resources, principal: Reader, campaign_id: CampaignId) -> ReportOut:
    """Treatment against control over the attribution window: conversion, revenue and margin per
    member, incremental revenue and margin with 95% intervals (fen), coupon cost and ROI.
    Scope `marketing:read`."""
    answer = await resources.marketing_service.GetCampaignReport(
        pb.GetCampaignReportRequest(actor=actor_of(principal), campaign_id=campaign_id)
    )
    return map_report(answer)
