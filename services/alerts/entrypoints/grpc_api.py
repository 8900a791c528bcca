"""gRPC face of the alerts service: maps the contract to commands and answers, nothing more.

Scopes are the gateway's; what the service itself enforces is who sees what (defence in depth):
a store's staff see and act on their store's alerts only — another store's is NOT_FOUND, so
nothing leaks — suppliers have no feed (PERMISSION_DENIED), webhooks are headquarters'.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc
from retail.alerts.v1 import alerts_service_pb2 as pb
from retail.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from retail.common.v1 import paging_pb2

from servicekit.errors import InvalidArgument
from servicekit.idempotency import fingerprint
from servicekit.paging import InvalidPageToken, page_key, page_token
from services.alerts.entrypoints.wire import (
    map_actor,
    map_alert,
    map_kinds,
    map_states,
    map_webhook,
    map_webhook_request,
    reply,
)
from services.alerts.service_layer.commands import AcknowledgeAlert, DeleteWebhook, PutWebhook, ResolveAlert
from services.alerts.service_layer.handling import Handling

DEFAULT_PAGE = 50
MAX_PAGE = 200
_SEPARATOR = "\x1f"


def page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument("page_size is 0 or more", details={"field": "page.page_size"})
    return min(size or DEFAULT_PAGE, MAX_PAGE)


def time_key(token: str) -> tuple[datetime, str] | None:
    key = page_key(token)
    if not key:
        return None
    at, separator, alert_id = key.partition(_SEPARATOR)
    try:
        if not separator:
            raise ValueError(key)
        return datetime.fromisoformat(at), alert_id
    except ValueError:
        raise InvalidPageToken("page_token is not one this service gave out") from None


def time_token(at: datetime, alert_id: str) -> str:
    return page_token(f"{at.isoformat()}{_SEPARATOR}{alert_id}")


class AlertsServicer(pb_grpc.AlertsServiceServicer):
    def __init__(self, handling: Handling) -> None:
        self.handling = handling

    async def ListAlerts(self, request: pb.ListAlertsRequest, context: Any) -> pb.ListAlertsResponse:
        size = page_size(request.page.page_size)
        found = await self.handling.list_alerts(
            map_actor(request.actor),
            store_id=request.store_id,
            states=map_states(request.states),
            kinds=map_kinds(request.kinds),
            after=time_key(request.page.page_token),
            limit=size + 1,
        )
        page = found[:size]
        token = time_token(page[-1].raised_at, page[-1].alert_id) if len(found) > size else ""
        return pb.ListAlertsResponse(
            alerts=[map_alert(alert) for alert in page], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def GetAlert(self, request: pb.GetAlertRequest, context: Any) -> pb.GetAlertResponse:
        return pb.GetAlertResponse(alert=map_alert(await self.handling.get(map_actor(request.actor), request.alert_id)))

    async def AcknowledgeAlert(self, request: pb.AcknowledgeAlertRequest, context: Any) -> pb.AcknowledgeAlertResponse:
        command = AcknowledgeAlert(
            fingerprint(request), map_actor(request.actor), request.alert_id, request.expected_version
        )
        answer: pb.AcknowledgeAlertResponse = await self.handling.acknowledge(
            command, reply(pb.AcknowledgeAlertResponse, lambda a: pb.AcknowledgeAlertResponse(alert=map_alert(a)))
        )
        return answer

    async def ResolveAlert(self, request: pb.ResolveAlertRequest, context: Any) -> pb.ResolveAlertResponse:
        command = ResolveAlert(
            fingerprint(request), map_actor(request.actor), request.alert_id, request.expected_version, request.note
        )
        answer: pb.ResolveAlertResponse = await self.handling.resolve(
            command, reply(pb.ResolveAlertResponse, lambda a: pb.ResolveAlertResponse(alert=map_alert(a)))
        )
        return answer

    async def PutWebhook(self, request: pb.PutWebhookRequest, context: Any) -> pb.PutWebhookResponse:
        actor = map_actor(request.actor)
        actor.check_headquarters()
        command = PutWebhook(
            fingerprint(request), actor, map_webhook_request(request.webhook, request.webhook.webhook_id)
        )
        answer: pb.PutWebhookResponse = await self.handling.put_webhook(
            command, reply(pb.PutWebhookResponse, lambda w: pb.PutWebhookResponse(webhook=map_webhook(w)))
        )
        return answer

    async def ListWebhooks(self, request: pb.ListWebhooksRequest, context: Any) -> pb.ListWebhooksResponse:
        found = await self.handling.list_webhooks(map_actor(request.actor))
        return pb.ListWebhooksResponse(webhooks=[map_webhook(stored) for stored in found])

    async def DeleteWebhook(self, request: pb.DeleteWebhookRequest, context: Any) -> pb.DeleteWebhookResponse:
        command = DeleteWebhook(fingerprint(request), map_actor(request.actor), request.webhook_id)
        answer: pb.DeleteWebhookResponse = await self.handling.delete_webhook(
            command, reply(pb.DeleteWebhookResponse, lambda _: pb.DeleteWebhookResponse())
        )
        return answer


def register(servicer: AlertsServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_AlertsServiceServicer_to_server(servicer, server)

    return add
