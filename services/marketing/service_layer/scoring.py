"""Member tags: refreshed for every member by a periodic job, read one member at a time by staff."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from services.marketing.adapters import model_store, score_store
from services.marketing.domain.member_tags import EngagementPolicy
from services.marketing.service_layer.models import UnknownMember


@dataclass(frozen=True, slots=True)
class MemberTagsView:
    member_id: str
    engagement: str | None
    rfm_cell: str | None
    top_categories: tuple[str, ...]
    preferred_store_id: str | None


class Scoring:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        clock: Clock = utc_now,
        policy: EngagementPolicy = EngagementPolicy(),  # noqa: B008 - frozen
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._policy = policy

    async def refresh(self) -> int:
        """Every member's engagement and RFM cell as of now; how many members."""
        async with self._unit_of_work() as uow:
            tagged = await score_store.refresh_tags(uow.session, self._clock(), self._policy)
            await uow.commit()
        return tagged

    async def member_tags(self, member_id: str) -> MemberTagsView:
        async with self._unit_of_work() as uow:
            if not await model_store.member_known(uow.session, member_id):
                raise UnknownMember("no such member")
            engagement, rfm_cell, categories, store_id = await score_store.member_tags(
                uow.session, member_id, self._clock()
            )
        return MemberTagsView(member_id, engagement, rfm_cell, tuple(categories), store_id)
