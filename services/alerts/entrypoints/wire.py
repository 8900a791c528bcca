"""The alerts service's one protobuf mapping: alerts, causes, webhooks and actors ↔ the contract."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from google.protobuf.message import Message
from retail.alerts.v1 import alerts_service_pb2 as pb
from retail.common.v1 import identifiers_pb2

from servicekit.errors import InvalidArgument
from servicekit.idempotency import Reply, ReplyCodec
from servicekit.protowire import from_wire, optional, timestamp, to_wire
from services.alerts.adapters.alert_store import StoredWebhook
from services.alerts.domain.alerts import Actor, Alert, AlertKind, AlertState, Severity
from services.alerts.domain.causes import Cause, CauseKind
from services.alerts.domain.webhooks import Webhook, WebhookFormat, mask_url

T = TypeVar("T")
MessageT = TypeVar("MessageT", bound=Message)


def reply(message_type: type[MessageT], render: Callable[[T], MessageT]) -> Reply[T, MessageT]:
    codec: ReplyCodec[MessageT] = ReplyCodec(
        encode=lambda message: message.SerializeToString(deterministic=True), decode=message_type.FromString
    )
    return Reply(codec, render)


def _enum(enum_type: Any, prefix: str, number: int, field: str) -> str:
    try:
        return from_wire(enum_type, prefix, number)
    except ValueError:
        raise InvalidArgument(f"{field} {number} is not one the contract defines", details={"field": field}) from None


def map_actor(message: identifiers_pb2.Actor) -> Actor:
    return Actor(
        client_id=message.client_id[:200],
        kind=_enum(identifiers_pb2.ClientKind, "CLIENT_KIND", message.client_kind, "actor.client_kind"),
        role=_enum(identifiers_pb2.StaffRole, "STAFF_ROLE", message.staff_role, "actor.staff_role"),
        store_id=message.store_id,
        supplier_id=message.supplier_id,
    )


def map_kind(kind: AlertKind) -> pb.AlertKind.ValueType:
    number: pb.AlertKind.ValueType = to_wire(pb.AlertKind, "ALERT_KIND", kind.value)
    return number


def map_state(state: AlertState) -> pb.AlertState.ValueType:
    number: pb.AlertState.ValueType = to_wire(pb.AlertState, "ALERT_STATE", state.value)
    return number


def map_kinds(numbers: Iterable[int], field: str = "kinds") -> list[AlertKind]:
    kinds = [_enum(pb.AlertKind, "ALERT_KIND", number, field) for number in numbers]
    if "" in kinds:
        raise InvalidArgument(f"{field} names an unspecified kind", details={"field": field})
    return [AlertKind(kind) for kind in kinds]


def map_states(numbers: Iterable[int]) -> list[AlertState]:
    states = [_enum(pb.AlertState, "ALERT_STATE", number, "states") for number in numbers]
    if "" in states:
        raise InvalidArgument("states names an unspecified state", details={"field": "states"})
    return [AlertState(state) for state in states]


def map_cause(cause: Cause) -> pb.Cause:
    return pb.Cause(
        kind=to_wire(pb.CauseKind, "CAUSE_KIND", cause.kind.value),
        score=cause.score,
        summary=cause.summary,
        facts=cause.facts,
        occurred_at=optional(timestamp, cause.occurred_at),
    )


def cause_kind(number: int) -> CauseKind:
    return CauseKind(from_wire(pb.CauseKind, "CAUSE_KIND", number))


def map_alert(alert: Alert) -> pb.Alert:
    return pb.Alert(
        alert_id=alert.alert_id,
        kind=map_kind(alert.kind),
        severity=to_wire(pb.Severity, "SEVERITY", alert.severity.name),
        state=map_state(alert.state),
        store_id=alert.store_id,
        supplier_id=alert.supplier_id,
        subject=alert.subject,
        dedup_key=alert.dedup_key,
        summary=alert.summary,
        facts=alert.facts,
        causes=[map_cause(cause) for cause in alert.causes],
        link=alert.link,
        raised_at=timestamp(alert.raised_at),
        last_seen_at=timestamp(alert.last_seen_at),
        occurrences=alert.occurrences,
        acknowledged_by=alert.acknowledged_by,
        resolved_by=alert.resolved_by,
        resolution_note=alert.resolution_note,
        version=alert.version,
        acknowledged_at=optional(timestamp, alert.acknowledged_at),
        resolved_at=optional(timestamp, alert.resolved_at),
    )


def map_webhook_request(message: pb.Webhook, webhook_id: str) -> Webhook:
    fmt = _enum(pb.WebhookFormat, "WEBHOOK_FORMAT", message.format, "webhook.format")
    if not fmt:
        raise InvalidArgument("webhook.format is wecom or dingtalk", details={"field": "webhook.format"})
    severity = _enum(pb.Severity, "SEVERITY", message.min_severity, "webhook.min_severity")
    role = _enum(identifiers_pb2.StaffRole, "STAFF_ROLE", message.role, "webhook.role")
    return Webhook(
        webhook_id=webhook_id,
        name=message.name,
        url=message.url.strip(),
        format=WebhookFormat(fmt),
        store_id=message.store_id,
        role=role,
        kinds=frozenset(map_kinds(message.kinds, "webhook.kinds")),
        min_severity=Severity[severity.upper()] if severity else Severity.INFO,
    )


def map_webhook(stored: StoredWebhook) -> pb.Webhook:
    webhook = stored.webhook
    return pb.Webhook(
        webhook_id=webhook.webhook_id,
        name=webhook.name,
        url=mask_url(webhook.url),
        format=to_wire(pb.WebhookFormat, "WEBHOOK_FORMAT", webhook.format.value),
        store_id=webhook.store_id,
        role=to_wire(identifiers_pb2.StaffRole, "STAFF_ROLE", webhook.role),
        kinds=sorted(map_kind(kind) for kind in webhook.kinds),
        min_severity=to_wire(pb.Severity, "SEVERITY", webhook.min_severity.name),
        last_error=stored.last_error,
        last_delivered_at=optional(timestamp, stored.last_delivered_at),
    )
