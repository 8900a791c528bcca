"""The alerts page: the feed from ``GET /v1/alerts``, its counts as charts, and where each alert acts.

The alerts service ranks each alert's likely causes and names the console page that acts
on it as ``/<page>?store=<store>&…``; the console turns that into its own store page.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from console.gateway_client import Answer
from console.i18n import label

Block = dict[str, Any]
STORE_TIMEZONE = ZoneInfo("Asia/Shanghai")  # times are shown in the chain's business time
FEED_SIZE = 100
PAGES_THAT_ACT = frozenset({"overview", "stock", "prices", "members"})
KINDS = (
    "sales_anomaly",
    "low_stock",
    "overstock",
    "label_sync_given_up",
    "statement_disputed",
    "redemption_conflict",
    "terminal_silent",
)


def console_link(alert: dict[str, Any]) -> str | None:
    """The console page acting on ``alert`` (``/stock?store=S001&sku=…`` → ``/stores/S001/stock``)."""
    parts = urlsplit(str(alert.get("link") or ""))
    page = parts.path.strip("/")
    store = (parse_qs(parts.query).get("store") or [alert.get("store_id") or ""])[0]
    if page == "suppliers":
        return "/suppliers"
    if page in PAGES_THAT_ACT and store:
        return f"/stores/{store}/{page}"
    return None


def local_time(moment: str | None) -> str:
    """An ISO moment from the gateway as "YYYY-MM-DD HH:MM" in the chain's business time ("" when unset)."""
    if not moment:
        return ""
    return datetime.fromisoformat(moment).astimezone(STORE_TIMEZONE).strftime("%Y-%m-%d %H:%M")


def feed_view(answer: Answer, lang: str) -> list[dict[str, Any]]:
    """The alerts of one page of the feed, with the labels and links the template shows."""
    if not answer.ok or not isinstance(answer.body, dict):
        return []
    view = []
    for alert in answer.body.get("alerts", []):
        view.append(
            {
                **alert,
                "kind_label": label(f"alert_{alert['kind']}", lang),
                "state_label": label(f"alert_state_{alert['state']}", lang),
                "severity_label": label(f"severity_{alert['severity']}", lang),
                "act_link": console_link(alert),
                "raised_local": local_time(alert.get("raised_at")),
                "acknowledged_local": local_time(alert.get("acknowledged_at")),
                "resolved_local": local_time(alert.get("resolved_at")),
                "causes": [
                    {
                        **cause,
                        "kind_label": label(f"cause_{cause['kind']}", lang),
                        "percent": round(100 * float(cause["score"])),
                    }
                    for cause in alert.get("causes", [])
                ],
            }
        )
    return view


def feed_blocks(answer: Answer, lang: str) -> list[Block]:
    """Open and acknowledged alerts by kind (a chart), and the counts by state and severity (tiles)."""
    alerts = answer.body.get("alerts", []) if isinstance(answer.body, dict) else []
    unresolved = [alert for alert in alerts if alert["state"] != "resolved"]
    by_state = Counter(alert["state"] for alert in alerts)
    by_kind = Counter(alert["kind"] for alert in unresolved)
    return [
        {
            "kind": "tiles",
            "id": "alert-counts",
            "title": label("alerts_in_feed", lang),
            "items": [
                {"label": label("alert_state_open", lang), "value": by_state["open"], "format": "count"},
                {
                    "label": label("alert_state_acknowledged", lang),
                    "value": by_state["acknowledged"],
                    "format": "count",
                },
                {
                    "label": label("severity_critical", lang),
                    "value": sum(1 for alert in unresolved if alert["severity"] == "critical"),
                    "format": "count",
                },
            ],
        },
        {
            "kind": "chart",
            "id": "alerts-by-kind",
            "title": label("alerts_by_kind", lang),
            "format": "count",
            "labels": [label(f"alert_{kind}", lang) for kind in KINDS],
            "series": [{"name": label("count", lang), "values": [by_kind[kind] for kind in KINDS]}],
        },
    ]
