"""Webhooks: where new alerts are forwarded, in the JSON a WeCom or DingTalk group robot accepts.

A webhook matches an alert by store (all stores when empty), by staff role (the kinds that
role's pages act on), by kinds and by minimum severity. Its URL is a secret of sorts (the robot's
key is in it), so answers show it masked: scheme, host and the last four characters. Each
matching webhook gets one delivery row, written with the alert; a delivery is retried with
exponential backoff up to a maximum number of attempts.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from servicekit.errors import InvalidArgument
from services.alerts.domain.alerts import Alert, AlertKind, Severity

MAX_URL = 2000
WEBHOOK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_NAME = 100

# Messages show times as the stores read them: the chain's business time.
BUSINESS_TIME = ZoneInfo("Asia/Shanghai")


class WebhookFormat(enum.Enum):
    WECOM = "wecom"
    DINGTALK = "dingtalk"


class InvalidWebhook(InvalidArgument):
    reason = "invalid-webhook"


# The kinds each staff role's pages act on (headquarters and unspecified: all kinds).
ROLE_KINDS: dict[str, frozenset[AlertKind]] = {
    "store_manager": frozenset(
        {
            AlertKind.SALES_ANOMALY,
            AlertKind.LOW_STOCK,
            AlertKind.OVERSTOCK,
            AlertKind.LABEL_SYNC_GIVEN_UP,
            AlertKind.REDEMPTION_CONFLICT,
            AlertKind.TERMINAL_SILENT,
        }
    ),
    "store_guide": frozenset({AlertKind.LOW_STOCK, AlertKind.LABEL_SYNC_GIVEN_UP, AlertKind.TERMINAL_SILENT}),
}


def check_url(url: str) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # refuses a port out of range
    except ValueError:
        parts = None
    if (
        parts is None
        or len(url) > MAX_URL
        or parts.scheme not in ("https", "http")
        or not parts.hostname
        or any(character.isspace() or ord(character) < 32 for character in url)
    ):
        raise InvalidWebhook("url is an http or https URL with a host", details={"field": "webhook.url"})
    return url


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…{url[-4:]}"


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    name: str
    url: str
    format: WebhookFormat
    store_id: str = ""
    role: str = ""
    kinds: frozenset[AlertKind] = frozenset()
    min_severity: Severity = Severity.INFO

    def __post_init__(self) -> None:
        if self.webhook_id and not WEBHOOK_ID.match(self.webhook_id):
            raise InvalidWebhook(
                "webhook_id is 1 to 64 letters, digits, '.', '_' or '-'", details={"field": "webhook.webhook_id"}
            )
        if not 1 <= len(self.name.strip()) <= MAX_NAME:
            raise InvalidWebhook(f"name is 1 to {MAX_NAME} characters", details={"field": "webhook.name"})
        check_url(self.url)

    def matches(self, alert: Alert) -> bool:
        if self.store_id and alert.store_id != self.store_id:
            return False
        if self.kinds and alert.kind not in self.kinds:
            return False
        if self.role in ROLE_KINDS and alert.kind not in ROLE_KINDS[self.role]:
            return False
        return alert.severity >= self.min_severity


def matching(webhooks: Collection[Webhook], alert: Alert) -> list[Webhook]:
    return [webhook for webhook in webhooks if webhook.matches(alert)]


def markdown(alert: Alert) -> tuple[str, str]:
    """The title and markdown text of an alert's message (causes listed, highest first)."""
    title = f"[{alert.severity.name}] {alert.kind.value.replace('_', ' ')}"
    place = alert.store_id or (f"supplier {alert.supplier_id}" if alert.supplier_id else "chain")
    lines = [f"### {title}", f"**{alert.summary}**", f"> where: {place} · {alert.subject}"]
    since = alert.raised_at.astimezone(BUSINESS_TIME).strftime("%Y-%m-%d %H:%M")
    lines.append(f"> since: {since} (Beijing time)")
    for index, cause in enumerate(alert.causes[:3], start=1):
        lines.append(f"{index}. {cause.summary} (score {cause.score:.2f})")
    if alert.link:
        lines.append(f"[open]({alert.link})")
    return title, "\n".join(lines)


def body(fmt: WebhookFormat, alert: Alert) -> dict[str, object]:
    """The JSON body the robot accepts."""
    title, text = markdown(alert)
    if fmt is WebhookFormat.WECOM:
        return {"msgtype": "markdown", "markdown": {"content": text}}
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``base × 2^(attempt−1)``, at most ``cap``, for ``max_attempts`` attempts."""

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=30)

    def next_attempt(self, attempts_made: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts_made`` failed attempts (None: give up)."""
        if attempts_made >= self.max_attempts:
            return None
        delay: timedelta = self.base * (1 << max(0, attempts_made - 1))
        return now + min(self.cap, delay)
