"""Forwarding new alerts to webhooks: due delivery rows POSTed, with exponential backoff.

Deliveries are rows written with the alert, so a crash loses none: a round claims the due ones
(``FOR UPDATE SKIP LOCKED``, so two replicas never send the same row at once), POSTs each and
records the outcome in the same transaction. A crash mid-round rolls the round back and the
rows are sent again (at least once). A delivery that failed ``max_attempts`` times is given up,
its last error kept on the row and the webhook.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from services.alerts.adapters import alert_store
from services.alerts.domain.webhooks import RetryPolicy

# POST the JSON body to the URL; raises on a failure (transport error or a status that is not 2xx).
Poster = Callable[[str, dict[str, object]], Awaitable[None]]
BATCH = 20
DEFAULT_POLICY = RetryPolicy()


class Deliveries:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        post: Poster,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        clock: Clock = utc_now,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._post = post
        self._policy = policy
        self._clock = clock

    async def deliver_due(self) -> int:
        """One round: how many due deliveries were attempted (a full batch: run again at once)."""
        async with self._unit_of_work() as uow:
            due = await alert_store.claim_due_deliveries(uow.session, self._clock(), BATCH)
            for delivery in due:
                try:
                    await self._post(delivery.url, delivery.body)
                except Exception as exc:
                    error = str(exc) or type(exc).__name__
                    retry_at = self._policy.next_attempt(delivery.attempts + 1, self._clock())
                    await alert_store.delivery_failed(uow.session, delivery, error, retry_at)
                else:
                    await alert_store.delivery_succeeded(uow.session, delivery, self._clock())
            await uow.commit()
            return len(due)
