"""The alerts HTTP models: an alert with its likely causes, acknowledge and resolve, webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, Field

from gateway.http.integer_types import Int32, Int64
from gateway.http.schemas import Strict

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

AlertId = Annotated[str, Path(pattern=ID_PATTERN, description="the alert")]
WebhookId = Annotated[str, Path(pattern=ID_PATTERN, description="the webhook")]
AlertKindName = Literal[
    "sales_anomaly",
    "low_stock",
    "overstock",
    "label_sync_given_up",
    "statement_disputed",
    "redemption_conflict",
    "terminal_silent",
]
AlertStateName = Literal["open", "acknowledged", "resolved"]
SeverityName = Literal["info", "warning", "critical"]
CauseKindName = Literal[
    "price_change",
    "promotion_started",
    "promotion_ended",
    "stock_out",
    "label_mismatch",
    "campaign_ended",
    "pos_not_syncing",
]
WebhookFormatName = Literal["wecom", "dingtalk"]
StaffRoleName = Literal["store_guide", "store_manager", "headquarters"]


class CauseOut(BaseModel):
    kind: CauseKindName
    score: float = Field(ge=0, le=1, description="how strongly the evidence points to it, 0..1")
    summary: str
    facts: dict[str, str]
    occurred_at: datetime | None


class FeedAlertOut(BaseModel):
    alert_id: str
    kind: AlertKindName
    severity: SeverityName
    state: AlertStateName
    store_id: str | None
    supplier_id: str | None
    subject: str = Field(description="what it is about: a category, SKU, label, statement, terminal or coupon")
    dedup_key: str
    summary: str
    facts: dict[str, str]
    causes: list[CauseOut] = Field(description="likely causes, highest score first")
    link: str = Field(description="the console page that acts on it")
    raised_at: datetime
    last_seen_at: datetime
    occurrences: Int32
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolution_note: str
    version: Int64


class AlertPage(BaseModel):
    alerts: list[FeedAlertOut]
    next_page_token: str | None


class AcknowledgeIn(Strict):
    expected_version: Int64 | None = Field(default=None, ge=1, description="refused with 409 when the alert moved")


class ResolveIn(Strict):
    note: str = Field(default="", max_length=500, description="what was done")
    expected_version: Int64 | None = Field(default=None, ge=1, description="refused with 409 when the alert moved")


class WebhookIn(Strict):
    name: str = Field(min_length=1, max_length=100, examples=["Store S001 managers"])
    url: str = Field(
        min_length=8,
        max_length=2000,
        pattern=r"^https?://",
        description="the group robot's URL (http or https); answers show it masked",
        examples=["https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"],
    )
    format: WebhookFormatName
    store_id: str | None = Field(default=None, pattern=ID_PATTERN, description="only this store's alerts")
    role: StaffRoleName | None = Field(default=None, description="only the kinds this role's pages act on")
    kinds: list[AlertKindName] = Field(default_factory=list, max_length=7, description="only these kinds")
    min_severity: SeverityName = "info"


class WebhookOut(BaseModel):
    webhook_id: str
    name: str
    url: str = Field(description="masked: scheme, host and the last four characters")
    format: WebhookFormatName
    store_id: str | None
    role: StaffRoleName | None
    kinds: list[AlertKindName]
    min_severity: SeverityName
    last_delivered_at: datetime | None
    last_error: str


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class WebhookDeleted(BaseModel):
    webhook_id: str
    deleted: bool = True
