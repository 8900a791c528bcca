"""gRPC face of the marketing service: maps the contract to commands and answers, nothing more.

Scopes are the gateway's; what the service itself enforces is ownership by the actor's binding:
a store's staff and terminals see and act on their own store's campaigns, conflicts and holds
only (another store's campaign is NOT_FOUND, never "forbidden", so its existence does not leak).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc
from retail.common.v1 import paging_pb2
from retail.marketing.v1 import marketing_service_pb2 as pb
from retail.marketing.v1 import marketing_service_pb2_grpc as pb_grpc

from servicekit.clock import Clock, utc_now
from servicekit.errors import InvalidArgument, PermissionDenied
from servicekit.idempotency import fingerprint
from servicekit.paging import page_key, page_token
from servicekit.protowire import timestamp
from services.marketing.adapters.campaign_store import StoredCampaign
from services.marketing.adapters.integration_events import map_conflict
from services.marketing.entrypoints.wire import (
    CAMPAIGN_STATUSES,
    Actor,
    map_actor,
    map_campaign,
    map_campaign_draft,
    map_coupon,
    map_hold,
    map_hold_response,
    map_model_run,
    map_propensity,
    map_report,
    map_rule,
    map_segment,
    map_snapshot,
)
from services.marketing.service_layer.campaigns import (
    ApproveCampaign,
    Campaigns,
    CreateCampaign,
    LaunchCampaign,
    UnknownCampaign,
)
from services.marketing.service_layer.coupons import CouponBook, CreateGenericCode
from services.marketing.service_layer.models import RepurchaseModels, TrainModel
from services.marketing.service_layer.redemptions import CouponRedemptions, ReleaseHold
from services.marketing.service_layer.reports import Reports
from services.marketing.service_layer.scoring import Scoring
from services.marketing.service_layer.segments import CreateSegment, Segments, SnapshotSegment
from services.marketing.service_layer.uplift import TrainUpliftModel, UpliftModels

DEFAULT_PAGE = 50
_SEPARATOR = "\x1f"


class SegmentsAreHeadquarters(PermissionDenied):
    reason = "segments-headquarters-only"


class ModelsAreHeadquarters(PermissionDenied):
    reason = "models-headquarters-only"


def _headquarters_only(actor: Actor) -> None:
    if actor.store_bound or actor.kind != "staff":
        raise SegmentsAreHeadquarters("segments cover the whole chain: headquarters only")


def _page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument("page_size is 0 or more", details={"field": "page.page_size"})
    return size or DEFAULT_PAGE


def _time_key(token: str) -> tuple[datetime, str] | None:
    key = page_key(token)
    if not key:
        return None
    moment, _, identifier = key.partition(_SEPARATOR)
    try:
        return datetime.fromisoformat(moment), identifier
    except ValueError:
        raise InvalidArgument("page_token is not one this service gave out", reason="invalid-page-token") from None


def _time_token(at: datetime, *identifiers: str) -> str:
    return page_token(_SEPARATOR.join([at.isoformat(), *identifiers]))


class MarketingServicer(pb_grpc.MarketingServiceServicer):
    def __init__(
        self,
        *,
        segments: Segments,
        campaigns: Campaigns,
        redemptions: CouponRedemptions,
        coupons: CouponBook,
        reports: Reports,
        models: RepurchaseModels,
        scoring: Scoring,
        uplift: UpliftModels,
        clock: Clock = utc_now,
    ) -> None:
        self.segments = segments
        self.campaigns = campaigns
        self.redemptions = redemptions
        self.coupons = coupons
        self.reports = reports
        self.models = models
        self.scoring = scoring
        self.uplift = uplift
        self.clock = clock

    # ---- segments ----------------------------------------------------------------------------------------------
    # Segments see the whole chain's members: headquarters' alone (a store's staff get PERMISSION_DENIED).

    async def CreateSegment(self, request: pb.CreateSegmentRequest, context: Any) -> pb.CreateSegmentResponse:
        _headquarters_only(map_actor(request.actor))
        actor = map_actor(request.actor)
        command = CreateSegment(
            fingerprint(request), request.name, request.description, map_rule(request.rule_json), actor.client_id
        )
        segment = await self.segments.create(command)
        return pb.CreateSegmentResponse(
            segment=map_segment(
                segment, (await self.segments.latest_snapshots([segment.segment_id])).get(segment.segment_id)
            )
        )

    async def GetSegment(self, request: pb.GetSegmentRequest, context: Any) -> pb.GetSegmentResponse:
        _headquarters_only(map_actor(request.actor))
        segment = await self.segments.get(request.segment_id)
        return pb.GetSegmentResponse(
            segment=map_segment(
                segment, (await self.segments.latest_snapshots([segment.segment_id])).get(segment.segment_id)
            )
        )

    async def ListSegments(self, request: pb.ListSegmentsRequest, context: Any) -> pb.ListSegmentsResponse:
        _headquarters_only(map_actor(request.actor))
        size = _page_size(request.page.page_size)
        found = await self.segments.list(after=_time_key(request.page.page_token), limit=size + 1)
        page = found[:size]
        token = _time_token(page[-1].created_at, page[-1].segment_id) if len(found) > size else ""
        latest = await self.segments.latest_snapshots([s.segment_id for s in page])
        return pb.ListSegmentsResponse(
            segments=[map_segment(s, latest.get(s.segment_id)) for s in page],
            page=paging_pb2.PageInfo(next_page_token=token),
        )

    async def PreviewSegment(self, request: pb.PreviewSegmentRequest, context: Any) -> pb.PreviewSegmentResponse:
        _headquarters_only(map_actor(request.actor))
        count, as_of = await self.segments.preview(map_rule(request.rule_json))
        return pb.PreviewSegmentResponse(members=count.members, members_by_stage=count.by_stage, as_of=timestamp(as_of))

    async def SnapshotSegment(self, request: pb.SnapshotSegmentRequest, context: Any) -> pb.SnapshotSegmentResponse:
        _headquarters_only(map_actor(request.actor))
        frozen = await self.segments.snapshot(SnapshotSegment(fingerprint(request), request.segment_id))
        return pb.SnapshotSegmentResponse(snapshot=map_snapshot(frozen))

    # ---- campaigns ---------------------------------------------------------------------------------------------

    async def _render(self, campaign: StoredCampaign) -> pb.Campaign:
        return map_campaign(campaign, (await self.campaigns.progress([campaign]))[campaign.campaign_id])

    async def _own_campaign(self, actor: Actor, campaign_id: str) -> StoredCampaign:
        campaign = await self.campaigns.get(campaign_id)
        if actor.store_bound and campaign.store_id != actor.store_id:
            raise UnknownCampaign("no such campaign")
        return campaign

    async def CreateCampaign(self, request: pb.CreateCampaignRequest, context: Any) -> pb.CreateCampaignResponse:
        actor = map_actor(request.actor)
        draft = map_campaign_draft(request, actor)
        created = await self.campaigns.create(CreateCampaign(fingerprint(request), draft, actor.client_id))
        return pb.CreateCampaignResponse(campaign=await self._render(created))

    async def GetCampaign(self, request: pb.GetCampaignRequest, context: Any) -> pb.GetCampaignResponse:
        campaign = await self._own_campaign(map_actor(request.actor), request.campaign_id)
        return pb.GetCampaignResponse(campaign=await self._render(campaign))

    async def ListCampaigns(self, request: pb.ListCampaignsRequest, context: Any) -> pb.ListCampaignsResponse:
        actor = map_actor(request.actor)
        status = next((s for s, number in CAMPAIGN_STATUSES.items() if number == request.status), None)
        if request.status and status is None:
            raise InvalidArgument("status is not a campaign status", details={"field": "status"})
        size = _page_size(request.page.page_size)
        found = await self.campaigns.list(
            store_id=actor.store_id if actor.store_bound else None,
            status=status,
            before=_time_key(request.page.page_token),
            limit=size + 1,
        )
        page = found[:size]
        token = _time_token(page[-1].created_at, page[-1].campaign_id) if len(found) > size else ""
        progress = await self.campaigns.progress(page)
        return pb.ListCampaignsResponse(
            campaigns=[map_campaign(c, progress[c.campaign_id]) for c in page],
            page=paging_pb2.PageInfo(next_page_token=token),
        )

    async def ApproveCampaign(self, request: pb.ApproveCampaignRequest, context: Any) -> pb.ApproveCampaignResponse:
        actor = map_actor(request.actor)
        await self._own_campaign(actor, request.campaign_id)
        approved = await self.campaigns.approve(
            ApproveCampaign(fingerprint(request), request.campaign_id, actor.client_id)
        )
        return pb.ApproveCampaignResponse(campaign=await self._render(approved))

    async def LaunchCampaign(self, request: pb.LaunchCampaignRequest, context: Any) -> pb.LaunchCampaignResponse:
        actor = map_actor(request.actor)
        await self._own_campaign(actor, request.campaign_id)
        launching = await self.campaigns.launch(LaunchCampaign(fingerprint(request), request.campaign_id))
        return pb.LaunchCampaignResponse(campaign=await self._render(launching))

    async def GetCampaignReport(
        self, request: pb.GetCampaignReportRequest, context: Any
    ) -> pb.GetCampaignReportResponse:
        await self._own_campaign(map_actor(request.actor), request.campaign_id)
        return map_report(await self.reports.campaign_report(request.campaign_id))

    # ---- coupons -----------------------------------------------------------------------------------------------

    async def CreateGenericCode(
        self, request: pb.CreateGenericCodeRequest, context: Any
    ) -> pb.CreateGenericCodeResponse:
        actor = map_actor(request.actor)
        await self._own_campaign(actor, request.campaign_id)
        code = await self.coupons.create_generic_code(
            CreateGenericCode(fingerprint(request), request.campaign_id, request.code, request.use_limit)
        )
        campaign = await self.campaigns.get(request.campaign_id)
        return pb.CreateGenericCodeResponse(
            coupon=pb.Coupon(code=code, campaign_id=campaign.campaign_id, use_limit=request.use_limit)
        )

    async def ListMemberCoupons(
        self, request: pb.ListMemberCouponsRequest, context: Any
    ) -> pb.ListMemberCouponsResponse:
        if not request.member_id:
            raise InvalidArgument("member_id is required", details={"field": "member_id"})
        coupons, after = await self.coupons.member_coupons(
            request.member_id,
            include_inactive=request.include_inactive,
            after=page_key(request.page.page_token),
            limit=_page_size(request.page.page_size),
        )
        now = self.clock()
        return pb.ListMemberCouponsResponse(
            coupons=[map_coupon(c, now) for c in coupons], page=paging_pb2.PageInfo(next_page_token=page_token(after))
        )

    async def HoldCoupon(self, request: pb.HoldCouponRequest, context: Any) -> pb.HoldCouponResponse:
        actor = map_actor(request.actor)
        result = await self.redemptions.hold(map_hold(request, actor, fingerprint(request)))
        return map_hold_response(result)

    async def ReleaseCouponHold(
        self, request: pb.ReleaseCouponHoldRequest, context: Any
    ) -> pb.ReleaseCouponHoldResponse:
        actor = map_actor(request.actor)
        status = await self.redemptions.release(
            ReleaseHold(fingerprint(request), request.hold_id, actor.client_id, any_client=actor.headquarters)
        )
        return pb.ReleaseCouponHoldResponse(
            hold_id=request.hold_id, status=pb.HoldStatus.Value(f"HOLD_STATUS_{status.upper()}")
        )

    async def ListRedemptionConflicts(
        self, request: pb.ListRedemptionConflictsRequest, context: Any
    ) -> pb.ListRedemptionConflictsResponse:
        actor = map_actor(request.actor)
        store_id = request.store_id or None
        if actor.store_bound:
            if store_id not in (None, actor.store_id):
                return pb.ListRedemptionConflictsResponse()
            store_id = actor.store_id
        size = _page_size(request.page.page_size)
        before = None
        if key := page_key(request.page.page_token):
            at, sale_id, code = [*key.split(_SEPARATOR), "", "", ""][:3]
            try:
                before = (datetime.fromisoformat(at), sale_id, code)
            except ValueError:
                raise InvalidArgument(
                    "page_token is not one this service gave out", reason="invalid-page-token"
                ) from None
        found = await self.coupons.conflicts(
            campaign_id=request.campaign_id or None, store_id=store_id, before=before, limit=size + 1
        )
        page = found[:size]
        token = _time_token(page[-1].occurred_at, page[-1].sale_id, page[-1].code) if len(found) > size else ""
        return pb.ListRedemptionConflictsResponse(
            conflicts=[map_conflict(c) for c in page], page=paging_pb2.PageInfo(next_page_token=token)
        )

    # ---- models and tags ---------------------------------------------------------------------------------------

    async def TrainRepurchaseModel(
        self, request: pb.TrainRepurchaseModelRequest, context: Any
    ) -> pb.TrainRepurchaseModelResponse:
        actor = map_actor(request.actor)
        run = await self.models.request_training(TrainModel(fingerprint(request), actor.client_id))
        return pb.TrainRepurchaseModelResponse(run=map_model_run(run))

    async def GetRepurchaseModel(
        self, request: pb.GetRepurchaseModelRequest, context: Any
    ) -> pb.GetRepurchaseModelResponse:
        status = await self.models.status()
        response = pb.GetRepurchaseModelResponse()
        if status.latest is not None:
            response.latest.CopyFrom(map_model_run(status.latest))
        if status.serving is not None:
            response.serving.CopyFrom(map_model_run(status.serving))
        return response

    async def GetMemberPropensity(
        self, request: pb.GetMemberPropensityRequest, context: Any
    ) -> pb.GetMemberPropensityResponse:
        return map_propensity(await self.models.propensity(request.member_id, request.horizon_days or 90))

    async def GetMemberTags(self, request: pb.GetMemberTagsRequest, context: Any) -> pb.GetMemberTagsResponse:
        tags = await self.scoring.member_tags(request.member_id)
        return pb.GetMemberTagsResponse(
            member_id=tags.member_id,
            engagement=tags.engagement or "",
            rfm_cell=tags.rfm_cell or "",
            top_categories=list(tags.top_categories),
            preferred_store_id=tags.preferred_store_id or "",
        )

    async def GetMemberRecommendations(
        self, request: pb.GetMemberRecommendationsRequest, context: Any
    ) -> pb.GetMemberRecommendationsResponse:
        skus, version = await self.models.recommendations(request.member_id, request.limit or 10)
        return pb.GetMemberRecommendationsResponse(member_id=request.member_id, skus=skus, model_version=version)

    async def TrainUpliftModel(self, request: pb.TrainUpliftModelRequest, context: Any) -> pb.TrainUpliftModelResponse:
        actor = map_actor(request.actor)
        if actor.store_bound or actor.kind != "staff":
            raise ModelsAreHeadquarters("models learn from the whole chain's campaigns: headquarters only")
        run = await self.uplift.request_training(TrainUpliftModel(fingerprint(request), actor.client_id))
        return pb.TrainUpliftModelResponse(run=map_model_run(run))

    async def GetUpliftModel(self, request: pb.GetUpliftModelRequest, context: Any) -> pb.GetUpliftModelResponse:
        status = await self.uplift.status()
        response = pb.GetUpliftModelResponse()
        if status.latest is not None:
            response.latest.CopyFrom(map_model_run(status.latest))
        if status.serving is not None:
            response.serving.CopyFrom(map_model_run(status.serving))
        return response


def register(servicer: MarketingServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_MarketingServiceServicer_to_server(servicer, server)

    return add
