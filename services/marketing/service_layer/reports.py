"""The campaign report: treatment against control over the attribution window, with intervals and ROI.

The **attribution window** runs from the launch until ``attribution_days`` (14 by default) after
the coupon's validity ends; purchases in it count for every member of both groups, whether or not
they used the coupon (intention to treat, see :mod:`services.marketing.domain.campaign_report`).
While the window is open the report runs to now and says it is not final.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from services.marketing.adapters import campaign_store, report_store
from services.marketing.domain.campaign_report import CampaignResult, campaign_result
from services.marketing.service_layer.campaigns import UnknownCampaign


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: str
    window_start: datetime
    window_end: datetime
    final: bool
    result: CampaignResult
    redemptions: int
    redemption_conflicts: int


class Reports:
    def __init__(self, unit_of_work: Callable[[], UnitOfWork], *, clock: Clock = utc_now) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock

    async def campaign_report(self, campaign_id: str) -> CampaignReport:
        now = self._clock()
        async with self._unit_of_work() as uow:
            campaign = await campaign_store.get_campaign(uow.session, campaign_id)
            if campaign is None:
                raise UnknownCampaign("no such campaign")
            start = campaign.launched_at or campaign.terms.valid_from
            window_closes = campaign.terms.valid_until + timedelta(days=campaign.attribution_days)
            end = min(now, window_closes)
            groups = await report_store.group_stats(uow.session, campaign_id, start, end)
            redemptions, cost, conflicts = await report_store.redemption_totals(uow.session, campaign_id)
        return CampaignReport(
            campaign_id=campaign_id,
            window_start=start,
            window_end=end,
            final=now >= window_closes,
            result=campaign_result(groups["treatment"], groups["control"], cost),
            redemptions=redemptions,
            redemption_conflicts=conflicts,
        )
