"""People acting on the feed: read it, acknowledge and resolve alerts, manage webhooks.

Each command handler owns its unit of work: it claims the request id, applies the domain's rule
and keeps the answer in one transaction, so a retry answers the first call and changes nothing.
A store's staff see and act on their store's alerts only (another store's is *not found*);
suppliers have no feed; webhooks are headquarters'.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import NotFound
from servicekit.idempotency import Reply, keep_reply, replay
from services.alerts.adapters import alert_store
from services.alerts.adapters.alert_store import StoredWebhook
from services.alerts.adapters.integration_events import alert_state_changed
from services.alerts.domain.alerts import Actor, Alert, AlertKind, AlertNotFound, AlertState
from services.alerts.service_layer.commands import AcknowledgeAlert, DeleteWebhook, PutWebhook, ResolveAlert

R = TypeVar("R")


class WebhookNotFound(NotFound):
    reason = "webhook-not-found"


def new_webhook_id() -> str:
    return f"WH{secrets.token_hex(6).upper()}"


class Handling:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = new_webhook_id,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._new_id = new_id

    # ---- reads ---------------------------------------------------------------------------------------------------

    async def get(self, actor: Actor, alert_id: str) -> Alert:
        actor.check_reads_feed()
        async with self._unit_of_work() as uow:
            alert = await alert_store.get_alert(uow.session, alert_id)
        if alert is None or not actor.sees(alert):
            raise AlertNotFound("no such alert", details={"alert_id": alert_id})
        return alert

    async def list_alerts(
        self,
        actor: Actor,
        *,
        store_id: str,
        states: Sequence[AlertState],
        kinds: Sequence[AlertKind],
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Alert]:
        actor.check_reads_feed()
        async with self._unit_of_work() as uow:
            return await alert_store.list_alerts(
                uow.session, store_id=actor.store_scope(store_id), states=states, kinds=kinds, after=after, limit=limit
            )

    async def list_webhooks(self, actor: Actor) -> list[StoredWebhook]:
        actor.check_headquarters()
        async with self._unit_of_work() as uow:
            return await alert_store.list_webhooks(uow.session)

    # ---- commands ------------------------------------------------------------------------------------------------

    async def acknowledge(self, command: AcknowledgeAlert, reply: Reply[Alert, Any]) -> Any:
        command.actor.check_reads_feed()
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            alert = await self._own_alert(uow, command.actor, command.alert_id)
            now = self._clock()
            before = alert.acknowledge(command.actor.client_id, now, command.expected_version)
            await alert_store.save_handling(uow.session, alert)
            uow.publish(alert_state_changed(alert, before, command.actor.client_id, now))
            answer = reply.render(alert)
            await keep_reply(uow.session, command.request, reply.codec, answer)
            await uow.commit()
            return answer

    async def resolve(self, command: ResolveAlert, reply: Reply[Alert, Any]) -> Any:
        command.actor.check_reads_feed()
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            alert = await self._own_alert(uow, command.actor, command.alert_id)
            now = self._clock()
            before = alert.resolve(command.actor.client_id, now, command.note, command.expected_version)
            await alert_store.save_handling(uow.session, alert)
            uow.publish(alert_state_changed(alert, before, command.actor.client_id, now))
            answer = reply.render(alert)
            await keep_reply(uow.session, command.request, reply.codec, answer)
            await uow.commit()
            return answer

    async def put_webhook(self, command: PutWebhook, reply: Reply[StoredWebhook, Any]) -> Any:
        command.actor.check_headquarters()
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            webhook = command.webhook
            if not webhook.webhook_id:  # created with a new id; with an id, created or replaced
                webhook = dataclasses.replace(webhook, webhook_id=self._new_id())
            stored = await alert_store.put_webhook(uow.session, webhook, self._clock())
            answer = reply.render(stored)
            await keep_reply(uow.session, command.request, reply.codec, answer)
            await uow.commit()
            return answer

    async def delete_webhook(self, command: DeleteWebhook, reply: Reply[str, Any]) -> Any:
        command.actor.check_headquarters()
        async with self._unit_of_work() as uow:
            if (first := await replay(uow.session, command.request, reply.codec)) is not None:
                return first
            if not await alert_store.delete_webhook(uow.session, command.webhook_id):
                raise WebhookNotFound("no such webhook", details={"webhook_id": command.webhook_id})
            answer = reply.render(command.webhook_id)
            await keep_reply(uow.session, command.request, reply.codec, answer)
            await uow.commit()
            return answer

    async def _own_alert(self, uow: UnitOfWork, actor: Actor, alert_id: str) -> Alert:
        alert = await alert_store.get_alert(uow.session, alert_id, lock=True)
        if alert is None or not actor.sees(alert):
            raise AlertNotFound("no such alert", details={"alert_id": alert_id})
        return alert
