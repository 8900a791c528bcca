"""The MemberService gRPC servicer: map the wire message, call the handler, map back.

Each mutating call maps its request to a command and calls the one handler that owns its unit
of work (``servicekit.idempotency.replay`` / ``keep_reply``): the effect, its events and the kept
answer commit together, and a retry is answered with the kept answer. Answers of mutating calls carry
ids and facts only, never personal data, because the request-id store keeps them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import grpc
from retail.member.v1 import member_service_pb2 as pb
from retail.member.v1 import member_service_pb2_grpc as pb_grpc

from servicekit.errors import DomainError
from servicekit.grpc_server import refusal_of
from services.member.domain.identities import ChannelIdentity
from services.member.domain.model import check_store_id
from services.member.entrypoints.request_fields import page_size, parse_day
from services.member.entrypoints.wire import (
    map_actor,
    map_adjust,
    map_adjust_answer,
    map_erase,
    map_erase_answer,
    map_identity,
    map_import,
    map_import_answer,
    map_kpis,
    map_ledger_check,
    map_link,
    map_link_answer,
    map_member,
    map_mix,
    map_points,
    map_redeem,
    map_redeem_answer,
    map_register,
    map_registered,
    map_tier_changes,
    map_undo,
    map_undo_answer,
    map_update,
    map_updated,
    map_view,
)
from services.member.service_layer.loyalty import CHINA_STANDARD_TIME
from services.member.service_layer.loyalty_queries import LoyaltyQueries
from services.member.service_layer.member_imports import MemberImports
from services.member.service_layer.member_kpis import MemberKpiReports
from services.member.service_layer.members import MemberService
from services.member.service_layer.points_book import PointsBook


class MemberServicer(pb_grpc.MemberServiceServicer):
    """gRPC face of the member service."""

    def __init__(
        self,
        members: MemberService,
        points: PointsBook,
        queries: LoyaltyQueries,
        kpis: MemberKpiReports,
        imports: MemberImports,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._members = members
        self._points = points
        self._queries = queries
        self._kpis = kpis
        self._imports = imports
        self._clock = clock

    def _today(self) -> date:
        return self._clock().astimezone(CHINA_STANDARD_TIME).date()

    async def RegisterMember(self, request: pb.RegisterMemberRequest, context: Any) -> pb.RegisterMemberResponse:
        """Create a member from one channel identity, or name the identity's owner (created = false)."""
        return map_registered(await self._members.register(map_register(request, self._today())))

    async def ImportMembers(self, request: pb.ImportMembersRequest, context: Any) -> pb.ImportMembersResponse:
        """Import a legacy CRM's members with their purchases: created, existing or rejected, each."""
        return map_import_answer(await self._imports.import_members(map_import(request, self._today())))

    async def ResolveMember(self, request: pb.ResolveMemberRequest, context: Any) -> pb.ResolveMemberResponse:
        """The one member an identity belongs to."""
        return pb.ResolveMemberResponse(member_id=await self._members.resolve(map_identity(request.identity)))

    async def ResolveMembers(self, request: pb.ResolveMembersRequest, context: Any) -> pb.ResolveMembersResponse:
        """Several identities at once (the gateway's coalesced resolutions): a member id or a refusal each."""
        identities: list[ChannelIdentity | DomainError] = []
        for identity in request.identities:
            try:
                identities.append(map_identity(identity))
            except DomainError as refused:  # this identity alone is malformed: the others are answered
                identities.append(refused)
        answers = await self._members.resolve_many(identities)
        return pb.ResolveMembersResponse(
            resolutions=[
                pb.Resolution(refusal=refusal_of(answer))
                if isinstance(answer, DomainError)
                else pb.Resolution(member_id=answer)
                for answer in answers
            ]
        )

    async def FindMemberByLookupHash(
        self, request: pb.FindMemberByLookupHashRequest, context: Any
    ) -> pb.FindMemberByLookupHashResponse:
        """The member a SALES journal entry's lookup hash belongs to."""
        member_id = await self._members.find_by_lookup_hash(bytes(request.identity_hash))
        return pb.FindMemberByLookupHashResponse(member_id=member_id)

    async def GetMember(self, request: pb.GetMemberRequest, context: Any) -> pb.GetMemberResponse:
        """A member, personal data masked, left out, or clear (audited)."""
        answer = await self._members.get(
            request.member_id, map_view(request.view), actor=map_actor(request.actor), purpose=request.purpose
        )
        return pb.GetMemberResponse(member=map_member(answer))

    async def UpdateMember(self, request: pb.UpdateMemberRequest, context: Any) -> pb.UpdateMemberResponse:
        """Change profile, preferences, tags and consent."""
        return map_updated(await self._members.update(map_update(request, self._today())))

    async def LinkIdentity(self, request: pb.LinkIdentityRequest, context: Any) -> pb.LinkIdentityResponse:
        """Link an identity; one that belongs to another member merges the two."""
        return map_link_answer(await self._members.link_identity(map_link(request)))

    async def UndoMerge(self, request: pb.UndoMergeRequest, context: Any) -> pb.UndoMergeResponse:
        """Put both members of a merge back exactly as they were."""
        return map_undo_answer(await self._members.undo_merge(map_undo(request)))

    async def EraseMember(self, request: pb.EraseMemberRequest, context: Any) -> pb.EraseMemberResponse:
        """Erase a member's personal data everywhere this service keeps it."""
        return map_erase_answer(await self._members.erase(map_erase(request)))

    async def GetPoints(self, request: pb.GetPointsRequest, context: Any) -> pb.GetPointsResponse:
        """Balance, what expires when, and a page of the ledger (newest first)."""
        overview = await self._queries.points(
            request.member_id, page_token=request.page.page_token, page_size=page_size(request.page)
        )
        return map_points(overview)

    async def RedeemPoints(self, request: pb.RedeemPointsRequest, context: Any) -> pb.RedeemPointsResponse:
        """Spend points; never below zero, also under concurrent redemptions."""
        return map_redeem_answer(await self._points.redeem(map_redeem(request)))

    async def AdjustPoints(self, request: pb.AdjustPointsRequest, context: Any) -> pb.AdjustPointsResponse:
        """A staff correction with a reason."""
        return map_adjust_answer(await self._points.adjust(map_adjust(request)))

    async def CheckPointsLedger(
        self, request: pb.CheckPointsLedgerRequest, context: Any
    ) -> pb.CheckPointsLedgerResponse:
        """Prove balance = ledger = lots − debt."""
        check = await self._queries.check_ledger(request.member_id)
        return map_ledger_check(check)

    async def ListTierChanges(self, request: pb.ListTierChangesRequest, context: Any) -> pb.ListTierChangesResponse:
        """A page of tier history, newest first."""
        rows, token = await self._queries.tier_changes(
            request.member_id, page_token=request.page.page_token, page_size=page_size(request.page)
        )
        return map_tier_changes(rows, token)

    async def GetMemberKpis(self, request: pb.GetMemberKpisRequest, context: Any) -> pb.GetMemberKpisResponse:
        """Active members, 复购率, 客单价 and member share of sales of a store (or the chain) over a period."""
        check_store_id(request.store_id)
        report = await self._kpis.kpis(
            request.store_id, parse_day(request.from_date, "from_date"), parse_day(request.to_date, "to_date")
        )
        return map_kpis(report)

    async def GetMemberMix(self, request: pb.GetMemberMixRequest, context: Any) -> pb.GetMemberMixResponse:
        """Counts of a store's (or the chain's) active members by lifecycle stage, tier and churn risk."""
        check_store_id(request.store_id)
        return map_mix(await self._kpis.mix(request.store_id))


def register(servicer: MemberServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_MemberServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]  # grpc's generated registration is unannotated

    return add
