"""The alerts service's commands: plain values carrying the request's fingerprint, never protobuf."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.idempotency import RequestFingerprint
from services.alerts.domain.alerts import Actor
from services.alerts.domain.webhooks import Webhook


@dataclass(frozen=True, slots=True)
class AcknowledgeAlert:
    request: RequestFingerprint
    actor: Actor
    alert_id: str
    expected_version: int


@dataclass(frozen=True, slots=True)
class ResolveAlert:
    request: RequestFingerprint
    actor: Actor
    alert_id: str
    expected_version: int
    note: str


@dataclass(frozen=True, slots=True)
class PutWebhook:
    request: RequestFingerprint
    actor: Actor
    # Carries the id to replace, or '' (the handler assigns a new one).
    webhook: Webhook


@dataclass(frozen=True, slots=True)
class DeleteWebhook:
    request: RequestFingerprint
    actor: Actor
    webhook_id: str
