"""The operations feed: alerts with their likely causes, acknowledged and resolved by staff, and
the webhooks new alerts are forwarded to.

Scopes `alerts:read` (staff), `alerts:write` (store managers and headquarters) and
`alert-webhooks:write` (headquarters). A store's staff see and act on their own store's alerts
only: another store's alert is `404`, its existence does not leak, and nothing changes. What each
alert and cause means is in docs/alerts.md.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response
from retail.alerts.v1 import alerts_service_pb2 as pb

from gateway.alerts.schemas import (
    ID_PATTERN,
    AcknowledgeIn,
    AlertId,
    AlertKindName,
    AlertPage,
    AlertStateName,
    FeedAlertOut,
    ResolveIn,
    WebhookDeleted,
    WebhookId,
    WebhookIn,
    WebhookList,
    WebhookOut,
)
from gateway.alerts.wire import map_alert, map_kinds, map_states, map_webhook, map_webhook_in
from gateway.domain.scopes import ALERT_WEBHOOKS_WRITE, ALERTS_READ, ALERTS_WRITE
from gateway.http import problems
from gateway.http.paging import Paging
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.members.wire import actor_of
from gateway.security.authentication import Principal
from gateway.security.authorisation import require

router = ContextRouter(prefix="/v1", tags=["alerts"])

Reader = Annotated[Principal, Depends(require(ALERTS_READ))]
WebhookAdmin = Annotated[Principal, Depends(require(ALERT_WEBHOOKS_WRITE))]


@router.get("/alerts")
async def list_alerts(
    resources: Resources,
    principal: Reader,
    page: Paging,
    store_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="one store's alerts")] = None,
    state: Annotated[list[AlertStateName] | None, Query(description="only alerts in these states")] = None,
    kind: Annotated[list[AlertKindName] | None, Query(description="only these kinds")] = None,
) -> AlertPage:
    """The feed, newest first, each alert with where, since when, how often and its likely causes.
    Scope `alerts:read`; a store's staff get their own store's (another store is `403`)."""
    if store_id:
        principal.ensure_store(store_id)
    answer = await resources.alerts_service.ListAlerts(
        pb.ListAlertsRequest(
            actor=actor_of(principal),
            store_id=store_id or principal.store_id or "",
            states=map_states(state or []),
            kinds=map_kinds(kind or []),
            page=page.request(),
        )
    )
    return AlertPage(
        alerts=[map_alert(alert) for alert in answer.alerts],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.get("/alerts/{alert_id}", responses=problems.problem_responses(404))
async def get_alert(resources: Resources, principal: Reader, alert_id: AlertId) -> FeedAlertOut:
    """One alert with its causes. Scope `alerts:read`; another store's alert is `404`."""
    answer = await resources.alerts_service.GetAlert(pb.GetAlertRequest(actor=actor_of(principal), alert_id=alert_id))
    return map_alert(answer.alert)


@router.post(
    "/alerts/{alert_id}/acknowledge", responses=problems.problem_responses(404, 409), response_model=FeedAlertOut
)
async def acknowledge_alert(
    alert_id: AlertId,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(ALERTS_WRITE))],
    body: AcknowledgeIn | None = None,
) -> Response:
    """Take an open alert on: who and when are recorded (an acknowledged or resolved one is `409`
    `alert-not-open`; a stale `expected_version` is `409`). Scope `alerts:write`; another store's
    alert is `404`. `Idempotency-Key` required."""
    request = pb.AcknowledgeAlertRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        alert_id=alert_id,
        expected_version=(body.expected_version or 0) if body else 0,
    )
    return await call.forward(
        lambda: resources.alerts_service.AcknowledgeAlert(request), lambda answer: (200, map_alert(answer.alert))
    )


@router.post("/alerts/{alert_id}/resolve", responses=problems.problem_responses(404, 409), response_model=FeedAlertOut)
async def resolve_alert(
    alert_id: AlertId,
    body: ResolveIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(ALERTS_WRITE))],
) -> Response:
    """Close an open or acknowledged alert with a note of what was done (at most 500 characters;
    resolving twice is `409` `alert-already-resolved`). A later finding of the same kind, place
    and subject raises a new alert. Scope `alerts:write`; another store's alert is `404`."""
    request = pb.ResolveAlertRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        alert_id=alert_id,
        expected_version=body.expected_version or 0,
        note=body.note,
    )
    return await call.forward(
        lambda: resources.alerts_service.ResolveAlert(request), lambda answer: (200, map_alert(answer.alert))
    )


@router.get("/alert-webhooks")
async def list_webhooks(resources: Resources, principal: WebhookAdmin) -> WebhookList:
    """The forwarding targets with their last delivery outcome; URLs masked. Scope `alert-webhooks:write`."""
    answer = await resources.alerts_service.ListWebhooks(pb.ListWebhooksRequest(actor=actor_of(principal)))
    return WebhookList(webhooks=[map_webhook(webhook) for webhook in answer.webhooks])


@router.post("/alert-webhooks", status_code=201, response_model=WebhookOut)
async def create_webhook(
    body: WebhookIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(ALERT_WEBHOOKS_WRITE))],
) -> Response:
    """Add a forwarding target: new alerts that match (store, role, kinds, minimum severity) are
    POSTed to it in the WeCom or DingTalk robot's markdown shape, with retries. Scope
    `alert-webhooks:write`; `Idempotency-Key` required."""
    request = pb.PutWebhookRequest(
        request_id=call.request_id, actor=actor_of(call.principal), webhook=map_webhook_in(body)
    )
    return await call.forward(
        lambda: resources.alerts_service.PutWebhook(request), lambda answer: (201, map_webhook(answer.webhook))
    )


@router.put("/alert-webhooks/{webhook_id}", response_model=WebhookOut)
async def put_webhook(
    webhook_id: WebhookId,
    body: WebhookIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(ALERT_WEBHOOKS_WRITE))],
) -> Response:
    """Create or replace the forwarding target `webhook_id`. Scope `alert-webhooks:write`."""
    request = pb.PutWebhookRequest(
        request_id=call.request_id, actor=actor_of(call.principal), webhook=map_webhook_in(body, webhook_id)
    )
    return await call.forward(
        lambda: resources.alerts_service.PutWebhook(request), lambda answer: (200, map_webhook(answer.webhook))
    )


@router.delete("/alert-webhooks/{webhook_id}", responses=problems.problem_responses(404), response_model=WebhookDeleted)
async def delete_webhook(
    webhook_id: WebhookId,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(ALERT_WEBHOOKS_WRITE))],
) -> Response:
    """Remove a forwarding target (its pending deliveries go with it). Scope `alert-webhooks:write`."""
    request = pb.DeleteWebhookRequest(request_id=call.request_id, actor=actor_of(call.principal), webhook_id=webhook_id)
    return await call.forward(
        lambda: resources.alerts_service.DeleteWebhook(request), lambda _: (200, WebhookDeleted(webhook_id=webhook_id))
    )
