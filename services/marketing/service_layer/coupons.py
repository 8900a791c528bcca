"""Coupons as members and staff see them: a member's coupons, generic codes, redemption conflicts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from servicekit.idempotency import ReplyCodec, RequestFingerprint, keep_reply, replay
from services.marketing.adapters import campaign_store
from services.marketing.adapters import coupon_store as store
from services.marketing.adapters.coupon_store import ConflictRow, CouponView
from services.marketing.domain.campaigns import CampaignStatus
from services.marketing.domain.codes import generic_code
from services.marketing.service_layer.campaigns import UnknownCampaign

PAGE_MAX = 200
MAX_USE_LIMIT = 10_000_000
CODE: ReplyCodec[str] = ReplyCodec(str.encode, bytes.decode)


class CodeTaken(AlreadyExists):
    reason = "coupon-code-taken"


class CampaignEnded(FailedPrecondition):
    reason = "campaign-ended"


@dataclass(frozen=True, slots=True)
class CreateGenericCode:
    request: RequestFingerprint
    campaign_id: str
    code: str  # as the marketer typed it
    use_limit: int

    def __post_init__(self) -> None:
        if not 1 <= self.use_limit <= MAX_USE_LIMIT:
            raise InvalidArgument(f"a generic code's use limit is 1 to {MAX_USE_LIMIT}", details={"field": "use_limit"})


class CouponBook:
    def __init__(self, unit_of_work: Callable[[], UnitOfWork], *, clock: Clock = utc_now) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock

    async def member_coupons(
        self, member_id: str, *, include_inactive: bool, after: str, limit: int
    ) -> tuple[list[CouponView], str]:
        """A page of the member's coupons, soonest to expire first, and the key the next page starts after."""
        size = min(max(limit, 1), PAGE_MAX)
        async with self._unit_of_work() as uow:
            coupons = await store.member_coupons(
                uow.session,
                member_id,
                include_inactive=include_inactive,
                now=self._clock(),
                after=after,
                limit=size + 1,
            )
        more = len(coupons) > size
        coupons = coupons[:size]
        return coupons, store.page_key(coupons[-1]) if more else ""

    async def create_generic_code(self, command: CreateGenericCode) -> str:
        """Add a code many members may use up to its limit; the code in canonical form."""
        code = generic_code(command.code).value
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, CODE)) is not None:
                return first
            campaign = await campaign_store.get_campaign(uow.session, command.campaign_id)
            if campaign is None:
                raise UnknownCampaign("no such campaign")
            if campaign.status is CampaignStatus.ENDED or self._clock() >= campaign.terms.valid_until:
                raise CampaignEnded("the campaign has ended")
            if not await store.insert_generic_code(
                uow.session, code, command.campaign_id, command.use_limit, self._clock()
            ):
                raise CodeTaken("that code is already in use", details={"code": code})
            await keep_reply(uow.session, command.request, CODE, code)
            await uow.commit()
        return code

    async def conflicts(
        self,
        *,
        campaign_id: str | None,
        store_id: str | None,
        before: tuple[datetime, str, str] | None,
        limit: int,
    ) -> list[ConflictRow]:
        async with self._unit_of_work() as uow:
            return await store.conflicts(
                uow.session,
                campaign_id=campaign_id,
                store_id=store_id,
                before=before,
                limit=min(max(limit, 1), PAGE_MAX),
            )
