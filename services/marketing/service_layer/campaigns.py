"""Campaign commands and the background launch (see :mod:`services.marketing.domain.campaigns`)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import NotFound
from servicekit.idempotency import ReplyCodec, RequestFingerprint, keep_reply, replay
from services.marketing.adapters import campaign_store as store
from services.marketing.adapters.campaign_store import StoredCampaign
from services.marketing.adapters.integration_events import campaign_launched, coupons_issued
from services.marketing.domain.campaigns import (
    CampaignDraft,
    CampaignStatus,
    check_approval,
    check_launch,
    check_targeting,
)
from services.marketing.domain.codes import new_personal_code
from services.marketing.service_layer.uplift import uplift_model_serving

log = logging.getLogger("marketing.campaigns")

ISSUE_BATCH = 1_000


def new_campaign_id() -> str:
    return f"CMP{secrets.token_hex(8).upper()}"


class UnknownCampaign(NotFound):
    reason = "campaign-not-found"


class UnknownSnapshot(NotFound):
    reason = "segment-snapshot-not-found"


@dataclass(frozen=True, slots=True)
class CreateCampaign:
    request: RequestFingerprint
    draft: CampaignDraft
    created_by: str


@dataclass(frozen=True, slots=True)
class ApproveCampaign:
    request: RequestFingerprint
    campaign_id: str
    approver: str


@dataclass(frozen=True, slots=True)
class LaunchCampaign:
    request: RequestFingerprint
    campaign_id: str


# A campaign command's kept answer is the campaign's id; a retry answers with the campaign as it is.
CAMPAIGN_ID: ReplyCodec[str] = ReplyCodec(str.encode, bytes.decode)


class Campaigns:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = new_campaign_id,
        new_code: Callable[[], str] = lambda: new_personal_code().value,
        issue_batch: int = ISSUE_BATCH,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._new_id = new_id
        self._new_code = new_code
        self._issue_batch = issue_batch

    async def create(self, command: CreateCampaign) -> StoredCampaign:
        draft = command.draft
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, CAMPAIGN_ID)) is not None:
                return await self._existing(uow, first)
            if not await store.snapshot_exists(uow.session, draft.snapshot_id):
                raise UnknownSnapshot("no such segment snapshot", details={"snapshot_id": draft.snapshot_id})
            check_targeting(draft.target, await uplift_model_serving(uow))
            campaign_id = self._new_id()
            await store.insert_campaign(uow.session, campaign_id, draft, command.created_by, self._clock())
            created = await self._existing(uow, campaign_id)
            await keep_reply(uow.session, command.request, CAMPAIGN_ID, campaign_id)
            await uow.commit()
        return created

    async def _existing(self, uow: UnitOfWork, campaign_id: str) -> StoredCampaign:
        campaign = await store.get_campaign(uow.session, campaign_id)
        if campaign is None:
            raise UnknownCampaign("no such campaign")
        return campaign

    async def get(self, campaign_id: str) -> StoredCampaign:
        async with self._unit_of_work() as uow:
            campaign = await store.get_campaign(uow.session, campaign_id)
        if campaign is None:
            raise UnknownCampaign("no such campaign")
        return campaign

    async def approve(self, command: ApproveCampaign) -> StoredCampaign:
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, CAMPAIGN_ID)) is not None:
                return await self._existing(uow, first)
            campaign = await store.get_campaign(uow.session, command.campaign_id, lock=True)
            if campaign is None:
                raise UnknownCampaign("no such campaign")
            check_approval(campaign.status, campaign.created_by, command.approver)
            await store.set_status(
                uow.session, campaign.campaign_id, CampaignStatus.APPROVED, approved_by=command.approver
            )
            await keep_reply(uow.session, command.request, CAMPAIGN_ID, campaign.campaign_id)
            approved = await self._existing(uow, campaign.campaign_id)
            await uow.commit()
        return approved

    async def launch(self, command: LaunchCampaign) -> StoredCampaign:
        """Start the launch; :meth:`run_launches` (a background job on every replica) carries it out."""
        now = self._clock()
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, CAMPAIGN_ID)) is not None:
                return await self._existing(uow, first)
            campaign = await store.get_campaign(uow.session, command.campaign_id, lock=True)
            if campaign is None:
                raise UnknownCampaign("no such campaign")
            check_launch(campaign.status, now, campaign.terms.valid_until)
            check_targeting(campaign.target, await uplift_model_serving(uow))
            await store.set_status(uow.session, campaign.campaign_id, CampaignStatus.LAUNCHING, launched_at=now)
            await keep_reply(uow.session, command.request, CAMPAIGN_ID, campaign.campaign_id)
            launching = await self._existing(uow, campaign.campaign_id)
            await uow.commit()
        return launching

    async def progress(self, campaigns: list[StoredCampaign]) -> dict[str, store.Progress]:
        """Each campaign's launch progress (one round of queries for a whole page)."""
        async with self._unit_of_work() as uow:
            return await store.progress_of(uow.session, campaigns)

    async def list(
        self, *, store_id: str | None, status: CampaignStatus | None, before: tuple[datetime, str] | None, limit: int
    ) -> list[StoredCampaign]:
        async with self._unit_of_work() as uow:
            return await store.list_campaigns(
                uow.session, store_id=store_id, status=status, before=before, limit=min(max(limit, 1), 200)
            )

    async def end_due(self) -> int:
        """End the running campaigns whose coupons are no longer valid (the periodic job); how many."""
        async with self._unit_of_work() as uow:
            ended = await store.end_due(uow.session, self._clock())
            await uow.commit()
        for campaign_id in ended:
            log.info("campaign ended", extra={"campaign_id": campaign_id})
        return len(ended)

    async def run_launches(self) -> int:
        """Carry every launching campaign one step further; the coupons issued (0: nothing left to do)."""
        async with self._unit_of_work() as uow:
            campaign_ids = await store.launching(uow.session)
        issued = 0
        for campaign_id in campaign_ids:
            issued += await self._advance(campaign_id)
        return issued

    async def _advance(self, campaign_id: str) -> int:
        now = self._clock()
        async with self._unit_of_work() as uow:
            campaign = await store.get_campaign(uow.session, campaign_id, lock=True)
            if campaign is None or campaign.status is not CampaignStatus.LAUNCHING:
                return 0
            if not await store.audience_placed(uow.session, campaign_id):
                await store.place_audience(uow.session, campaign, now)
                log.info("campaign audience placed", extra={"campaign_id": campaign_id})
            await uow.commit()
        async with self._unit_of_work() as uow:
            members = await store.members_to_issue(uow.session, campaign_id, self._issue_batch)
            coupons = [(self._new_code(), member_id) for member_id in members]
            new = await store.issue(uow.session, campaign_id, coupons, now)
            issued = [(code, member_id) for code, member_id in coupons if code in new]
            uow.publish(*coupons_issued(campaign_id, campaign.offer, campaign.terms, issued, now))
            await uow.commit()
        if members:
            return len(issued)
        async with self._unit_of_work() as uow:
            current = await store.get_campaign(uow.session, campaign_id, lock=True)
            if current is None or current.status is not CampaignStatus.LAUNCHING:
                return 0
            if await store.members_to_issue(uow.session, campaign_id, 1):
                return 0  # another replica's batch is still being issued
            await store.set_status(uow.session, campaign_id, CampaignStatus.RUNNING)
            uow.publish(campaign_launched(current, await store.progress(uow.session, current), now))
            await uow.commit()
        log.info("campaign launched", extra={"campaign_id": campaign_id})
        return 0
