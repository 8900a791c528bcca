"""HTTP ↔ protobuf for the alerts routes (named ``map_*`` functions)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from google.protobuf.timestamp_pb2 import Timestamp
from retail.alerts.v1 import alerts_service_pb2 as pb
from retail.common.v1 import identifiers_pb2

from gateway.alerts.schemas import CauseOut, FeedAlertOut, WebhookIn, WebhookOut
from servicekit.protowire import from_wire, moment, to_wire


def _moment(stamp: Timestamp, present: bool) -> datetime | None:
    return moment(stamp) if present else None


def map_cause(cause: pb.Cause) -> CauseOut:
    return CauseOut(
        kind=cast(Any, from_wire(pb.CauseKind, "CAUSE_KIND", cause.kind)),
        score=round(cause.score, 3),
        summary=cause.summary,
        facts=dict(cause.facts),
        occurred_at=_moment(cause.occurred_at, cause.HasField("occurred_at")),
    )


def map_alert(alert: pb.Alert) -> FeedAlertOut:
    return FeedAlertOut(
        alert_id=alert.alert_id,
        kind=cast(Any, from_wire(pb.AlertKind, "ALERT_KIND", alert.kind)),
        severity=cast(Any, from_wire(pb.Severity, "SEVERITY", alert.severity)),
        state=cast(Any, from_wire(pb.AlertState, "ALERT_STATE", alert.state)),
        store_id=alert.store_id or None,
        supplier_id=alert.supplier_id or None,
        subject=alert.subject,
        dedup_key=alert.dedup_key,
        summary=alert.summary,
        facts=dict(alert.facts),
        causes=[map_cause(cause) for cause in alert.causes],
        link=alert.link,
        raised_at=moment(alert.raised_at),
        last_seen_at=moment(alert.last_seen_at),
        occurrences=alert.occurrences,
        acknowledged_by=alert.acknowledged_by or None,
        acknowledged_at=_moment(alert.acknowledged_at, alert.HasField("acknowledged_at")),
        resolved_by=alert.resolved_by or None,
        resolved_at=_moment(alert.resolved_at, alert.HasField("resolved_at")),
        resolution_note=alert.resolution_note,
        version=alert.version,
    )


def map_states(names: Iterable[str]) -> list[pb.AlertState.ValueType]:
    return [to_wire(pb.AlertState, "ALERT_STATE", name) for name in names]


def map_kinds(names: Iterable[str]) -> list[pb.AlertKind.ValueType]:
    return [to_wire(pb.AlertKind, "ALERT_KIND", name) for name in names]


def map_webhook_in(body: WebhookIn, webhook_id: str = "") -> pb.Webhook:
    return pb.Webhook(
        webhook_id=webhook_id,
        name=body.name,
        url=body.url,
        format=to_wire(pb.WebhookFormat, "WEBHOOK_FORMAT", body.format),
        store_id=body.store_id or "",
        role=to_wire(identifiers_pb2.StaffRole, "STAFF_ROLE", body.role or ""),
        kinds=map_kinds(body.kinds),
        min_severity=to_wire(pb.Severity, "SEVERITY", body.min_severity),
    )


def map_webhook(webhook: pb.Webhook) -> WebhookOut:
    return WebhookOut(
        webhook_id=webhook.webhook_id,
        name=webhook.name,
        url=webhook.url,
        format=cast(Any, from_wire(pb.WebhookFormat, "WEBHOOK_FORMAT", webhook.format)),
        store_id=webhook.store_id or None,
        role=cast(Any, from_wire(identifiers_pb2.StaffRole, "STAFF_ROLE", webhook.role) or None),
        kinds=[cast(Any, from_wire(pb.AlertKind, "ALERT_KIND", kind)) for kind in webhook.kinds],
        min_severity=cast(Any, from_wire(pb.Severity, "SEVERITY", webhook.min_severity) or "info"),
        last_delivered_at=_moment(webhook.last_delivered_at, webhook.HasField("last_delivered_at")),
        last_error=webhook.last_error,
    )
