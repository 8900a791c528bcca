"""Alerts, webhooks and deliveries in PostgreSQL (rows ↔ :mod:`services.alerts.domain`).

Raising is one statement: ``INSERT … ON CONFLICT (dedup_key) WHERE state <> 'resolved' DO
UPDATE``, so of two concurrent identical findings one inserts and the other bumps the alert the
first opened; ``xmax = 0`` tells which happened.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts.domain.alerts import Alert, AlertKind, AlertState, Finding, Severity
from services.alerts.domain.causes import Cause, CauseKind
from services.alerts.domain.webhooks import Webhook, WebhookFormat

_COLUMNS = (
    "alert_id, kind, severity, state, store_id, supplier_id, subject, dedup_key, summary, facts, causes, link, "
    "raised_at, last_seen_at, occurrences, acknowledged_by, acknowledged_at, resolved_by, resolved_at, "
    "resolution_note, version"
)


def causes_json(causes: Sequence[Cause]) -> str:
    return json.dumps(
        [
            {
                "kind": cause.kind.value,
                "score": cause.score,
                "summary": cause.summary,
                "facts": cause.facts,
                "occurred_at": cause.occurred_at.isoformat() if cause.occurred_at else None,
            }
            for cause in causes
        ]
    )


def _causes(value: Any) -> list[Cause]:
    return [
        Cause(
            CauseKind(item["kind"]),
            float(item["score"]),
            item["summary"],
            dict(item.get("facts") or {}),
            datetime.fromisoformat(item["occurred_at"]) if item.get("occurred_at") else None,
        )
        for item in value or []
    ]


def _alert(row: Any) -> Alert:
    return Alert(
        alert_id=row.alert_id,
        kind=AlertKind(row.kind),
        severity=Severity(row.severity),
        state=AlertState(row.state),
        store_id=row.store_id,
        supplier_id=row.supplier_id,
        subject=row.subject,
        dedup_key=row.dedup_key,
        summary=row.summary,
        facts=dict(row.facts or {}),
        causes=_causes(row.causes),
        link=row.link,
        raised_at=row.raised_at,
        last_seen_at=row.last_seen_at,
        occurrences=row.occurrences,
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
        resolution_note=row.resolution_note,
        version=row.version,
    )


@dataclass(frozen=True)
class Raised:
    alert: Alert
    opened: bool  # a new alert opened (False: an open one was seen again)


async def raise_finding(session: AsyncSession, alert_id: str, finding: Finding) -> Raised:
    """Open an alert for ``finding``, or bump the open one with its dedup key (refreshing its causes
    when the finding brings some)."""
    row = (
        await session.execute(
            text(
                f"INSERT INTO alert ({_COLUMNS}) VALUES (:id, :kind, :severity, 'open', :store, :supplier, :subject, "
                ":key, :summary, CAST(:facts AS jsonb), CAST(:causes AS jsonb), :link, :at, :at, 1, '', NULL, '', "
                "NULL, '', 1) "
                "ON CONFLICT (dedup_key) WHERE state <> 'resolved' DO UPDATE SET "
                "occurrences = alert.occurrences + 1, "
                "last_seen_at = greatest(alert.last_seen_at, EXCLUDED.last_seen_at), "
                "causes = CASE WHEN EXCLUDED.causes = '[]'::jsonb THEN alert.causes ELSE EXCLUDED.causes END, "
                "facts = alert.facts || EXCLUDED.facts, summary = EXCLUDED.summary, "
                "severity = greatest(alert.severity, EXCLUDED.severity), "
                "version = alert.version + 1 "
                f"RETURNING {_COLUMNS}, (xmax = 0) AS opened"
            ),
            {
                "id": alert_id,
                "kind": finding.kind.value,
                "severity": int(finding.severity),
                "store": finding.store_id,
                "supplier": finding.supplier_id,
                "subject": finding.subject,
                "key": finding.dedup_key,
                "summary": finding.summary,
                "facts": json.dumps(finding.facts),
                "causes": causes_json(finding.causes),
                "link": finding.link,
                "at": finding.seen_at,
            },
        )
    ).one()
    return Raised(_alert(row), bool(row.opened))


async def get_alert(session: AsyncSession, alert_id: str, *, lock: bool = False) -> Alert | None:
    row = (
        await session.execute(
            text(f"SELECT {_COLUMNS} FROM alert WHERE alert_id = :id{' FOR UPDATE' if lock else ''}"), {"id": alert_id}
        )
    ).first()
    return None if row is None else _alert(row)


async def save_handling(session: AsyncSession, alert: Alert) -> None:
    await session.execute(
        text(
            "UPDATE alert SET state = :state, acknowledged_by = :ack_by, acknowledged_at = :ack_at, "
            "resolved_by = :res_by, resolved_at = :res_at, resolution_note = :note, version = :version "
            "WHERE alert_id = :id"
        ),
        {
            "id": alert.alert_id,
            "state": alert.state.value,
            "ack_by": alert.acknowledged_by,
            "ack_at": alert.acknowledged_at,
            "res_by": alert.resolved_by,
            "res_at": alert.resolved_at,
            "note": alert.resolution_note,
            "version": alert.version,
        },
    )


async def list_alerts(
    session: AsyncSession,
    *,
    store_id: str,
    states: Sequence[AlertState],
    kinds: Sequence[AlertKind],
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Alert]:
    """Newest first (raised_at, then alert_id, both descending), continuing after ``after``."""
    where: list[str] = ["TRUE"]
    params: dict[str, object] = {"limit": limit}
    if store_id:
        where.append("store_id = :store")
        params["store"] = store_id
    if states:
        where.append("state = ANY(:states)")
        params["states"] = [state.value for state in states]
    if kinds:
        where.append("kind = ANY(:kinds)")
        params["kinds"] = [kind.value for kind in kinds]
    if after is not None:
        where.append("(raised_at, alert_id) < (:after_at, :after_id)")
        params["after_at"], params["after_id"] = after
    rows = await session.execute(
        text(
            f"SELECT {_COLUMNS} FROM alert WHERE {' AND '.join(where)} "
            "ORDER BY raised_at DESC, alert_id DESC LIMIT :limit"
        ),
        params,
    )
    return [_alert(row) for row in rows]


# ---- webhooks ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredWebhook:
    webhook: Webhook
    last_delivered_at: datetime | None
    last_error: str


_WEBHOOK_COLUMNS = "webhook_id, name, url, format, store_id, role, kinds, min_severity, last_delivered_at, last_error"


def _webhook(row: Any) -> StoredWebhook:
    return StoredWebhook(
        Webhook(
            row.webhook_id,
            row.name,
            row.url,
            WebhookFormat(row.format),
            row.store_id,
            row.role,
            frozenset(AlertKind(kind) for kind in row.kinds),
            Severity(row.min_severity),
        ),
        row.last_delivered_at,
        row.last_error,
    )


async def put_webhook(session: AsyncSession, webhook: Webhook, at: datetime) -> StoredWebhook:
    row = (
        await session.execute(
            text(
                f"INSERT INTO webhook ({_WEBHOOK_COLUMNS}, created_at, updated_at) VALUES (:id, :name, :url, "
                ":format, :store, :role, :kinds, :severity, NULL, '', :at, :at) "
                "ON CONFLICT (webhook_id) DO UPDATE SET name = EXCLUDED.name, url = EXCLUDED.url, "
                "format = EXCLUDED.format, store_id = EXCLUDED.store_id, role = EXCLUDED.role, kinds = EXCLUDED.kinds, "
                f"min_severity = EXCLUDED.min_severity, updated_at = EXCLUDED.updated_at RETURNING {_WEBHOOK_COLUMNS}"
            ),
            {
                "id": webhook.webhook_id,
                "name": webhook.name,
                "url": webhook.url,
                "format": webhook.format.value,
                "store": webhook.store_id,
                "role": webhook.role,
                "kinds": sorted(kind.value for kind in webhook.kinds),
                "severity": int(webhook.min_severity),
                "at": at,
            },
        )
    ).one()
    return _webhook(row)


async def list_webhooks(session: AsyncSession) -> list[StoredWebhook]:
    rows = await session.execute(text(f"SELECT {_WEBHOOK_COLUMNS} FROM webhook ORDER BY name, webhook_id"))
    return [_webhook(row) for row in rows]


async def delete_webhook(session: AsyncSession, webhook_id: str) -> bool:
    deleted = await session.execute(text("DELETE FROM webhook WHERE webhook_id = :id RETURNING 1"), {"id": webhook_id})
    return deleted.first() is not None


# ---- deliveries -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    delivery_id: int
    webhook_id: str
    alert_id: str
    url: str
    body: dict[str, object]
    attempts: int


async def add_deliveries(
    session: AsyncSession, alert_id: str, bodies: Sequence[tuple[str, dict[str, object]]], at: datetime
) -> None:
    for webhook_id, body in bodies:
        await session.execute(
            text(
                "INSERT INTO webhook_delivery (webhook_id, alert_id, body, next_attempt_at, created_at) "
                "VALUES (:webhook, :alert, CAST(:body AS jsonb), :at, :at) ON CONFLICT DO NOTHING"
            ),
            {"webhook": webhook_id, "alert": alert_id, "body": json.dumps(body, ensure_ascii=False), "at": at},
        )


async def claim_due_deliveries(session: AsyncSession, now: datetime, limit: int) -> list[Delivery]:
    """Due pending deliveries, locked so that another worker skips them while this one sends."""
    rows = await session.execute(
        text(
            "SELECT d.delivery_id, d.webhook_id, d.alert_id, w.url, d.body, d.attempts FROM webhook_delivery d "
            "JOIN webhook w USING (webhook_id) WHERE d.state = 'pending' AND d.next_attempt_at <= :now "
            "ORDER BY d.next_attempt_at, d.delivery_id LIMIT :limit FOR UPDATE OF d SKIP LOCKED"
        ),
        {"now": now, "limit": limit},
    )
    return [Delivery(r.delivery_id, r.webhook_id, r.alert_id, r.url, dict(r.body), r.attempts) for r in rows]


async def delivery_succeeded(session: AsyncSession, delivery: Delivery, at: datetime) -> None:
    await session.execute(
        text(
            "UPDATE webhook_delivery SET state = 'delivered', attempts = attempts + 1, delivered_at = :at, "
            "last_error = '' WHERE delivery_id = :id"
        ),
        {"id": delivery.delivery_id, "at": at},
    )
    await session.execute(
        text("UPDATE webhook SET last_delivered_at = :at, last_error = '' WHERE webhook_id = :id"),
        {"id": delivery.webhook_id, "at": at},
    )


async def delivery_failed(session: AsyncSession, delivery: Delivery, error: str, retry_at: datetime | None) -> None:
    await session.execute(
        text(
            "UPDATE webhook_delivery SET attempts = attempts + 1, last_error = :error, "
            "state = CASE WHEN CAST(:retry AS timestamptz) IS NULL THEN 'given_up' ELSE 'pending' END, "
            "next_attempt_at = coalesce(CAST(:retry AS timestamptz), next_attempt_at) WHERE delivery_id = :id"
        ),
        {"id": delivery.delivery_id, "error": error[:500], "retry": retry_at},
    )
    await session.execute(
        text("UPDATE webhook SET last_error = :error WHERE webhook_id = :id"),
        {"id": delivery.webhook_id, "error": error[:500]},
    )
