"""The figures of each page, as JSON blocks the browser draws: tiles, charts, tables and notices.

Every number comes from one gateway route called with the session's token; where the
gateway has no route for a figure, or the service behind a route is not deployed, the
block says so instead of showing a number.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from console.alerts import FEED_SIZE, feed_blocks
from console.gateway_client import NOT_DEPLOYED, Answer, GatewayClient
from console.i18n import label
from console.sessions import Session

STORE_TIMEZONE = ZoneInfo("Asia/Shanghai")  # the chain's business day, as the gateway counts it
Block = dict[str, Any]


class TokenRefused(Exception):
    """The gateway no longer accepts the session's token (expired, or its client revoked): the session ends."""


def today() -> date:
    return datetime.now(STORE_TIMEZONE).date()


def number(value: Any) -> float | None:
    """A gateway decimal string (or number) as a float; None stays None."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def notice(block_id: str, title: str, text: str) -> Block:
    return {"kind": "notice", "id": block_id, "title": title, "text": text}


def unavailable(block_id: str, title: str, answer: Answer, lang: str) -> Block:
    """What a block says when its route did not answer with figures."""
    if answer.status in NOT_DEPLOYED:
        return notice(block_id, title, label("not_deployed", lang))
    if answer.status == 403:
        return notice(block_id, title, label("not_permitted", lang))
    return notice(block_id, title, f"{label('load_failed', lang)} ({answer.status}: {answer.problem})")


class Figures:
    def __init__(self, gateway: GatewayClient, session: Session, lang: str) -> None:
        self.gateway = gateway
        self.session = session
        self.lang = lang

    def t(self, key: str) -> str:
        return label(key, self.lang)

    async def get(self, path: str, **params: Any) -> Answer:
        answer = await self.gateway.get(self.session.token, path, params)
        if answer.status == 401:
            raise TokenRefused(answer.problem)
        return answer

    async def stores(self) -> list[dict[str, str]]:
        """The stores the signed-in client may see, by id."""
        answer = await self.get("/v1/locations")
        if not answer.ok:
            own = self.session.principal.store_id
            return [{"store_id": own, "name": own}] if own else []
        return sorted(
            ({"store_id": loc["location_id"], "name": loc["name"]} for loc in answer.body if loc["kind"] == "store"),
            key=lambda store: store["store_id"],
        )

    # -- Alerts ------------------------------------------------------------------------------
    async def alert_feed(self, store: str) -> Answer:
        """The newest alerts of ``store`` (every store's for ``all``), newest first."""
        return await self.get("/v1/alerts", store_id=None if store == "all" else store, page_size=FEED_SIZE)

    async def alerts(self, store: str) -> list[Block]:
        answer = await self.alert_feed(store)
        if not answer.ok:
            return [unavailable("alerts", self.t("alerts"), answer, self.lang)]
        return feed_blocks(answer, self.lang)

    # -- Overview ----------------------------------------------------------------------------
    async def overview(self, store: str) -> list[Block]:
        day = today()
        periods = {"today": 1, "days_7": 7, "days_28": 28}
        store_id = None if store == "all" else store

        async def kpis(first: date, last: date, of_store: str | None) -> Answer:
            return await self.get(
                "/v1/members/kpis", store_id=of_store, **{"from": first.isoformat(), "to": last.isoformat()}
            )

        calls = []
        for days in periods.values():
            first = day - timedelta(days=days - 1)
            calls.append(kpis(first, day, store_id))
            calls.append(kpis(first - timedelta(days=days), first - timedelta(days=1), store_id))
        answers = await asyncio.gather(*calls)
        blocks: list[Block] = []
        if not all(answer.ok for answer in answers):
            failed = next(answer for answer in answers if not answer.ok)
            return [unavailable("overview", self.t("overview"), failed, self.lang)]
        figures = (
            ("net_sales", "net_sales", "money"),
            ("transactions", "sales_count", "count"),
            ("average_basket", "average_basket", "money"),
            ("member_share", "member_share_of_sales", "rate"),
            ("repurchase_rate", "repeat_purchase_rate", "rate"),
        )
        for index, key in enumerate(periods):
            current, previous = answers[2 * index].body, answers[2 * index + 1].body
            blocks.append(
                {
                    "kind": "tiles",
                    "id": f"kpis-{key}",
                    "title": f"{self.t(key)} ({current['from_date']} – {current['to_date']})",
                    "previous_label": self.t("previous"),
                    "items": [
                        {
                            "label": self.t(name),
                            "value": number(current[field]),
                            "previous": number(previous[field]),
                            "format": fmt,
                        }
                        for name, field, fmt in figures
                    ],
                }
            )
        blocks.append(
            {
                "kind": "chart",
                "id": "sales-by-period",
                "title": self.t("net_sales"),
                "format": "money",
                "labels": [self.t(key) for key in periods],
                "series": [
                    {
                        "name": self.t(key_name),
                        "values": [number(answers[2 * i + offset].body["net_sales"]) for i in range(3)],
                    }
                    for key_name, offset in (("net_sales", 0), ("previous", 1))
                ],
            }
        )
        if store == "all":
            stores = await self.stores()
            first = day - timedelta(days=27)
            per_store = await asyncio.gather(*(kpis(first, day, s["store_id"]) for s in stores))
            rows = [(s, a.body) for s, a in zip(stores, per_store, strict=True) if a.ok]
            names = [f"{s['store_id']} {s['name']}" for s, _ in rows]
            blocks.append(
                {
                    "kind": "chart",
                    "id": "sales-per-store",
                    "title": self.t("sales_per_store"),
                    "format": "money",
                    "labels": names,
                    "keys": [s["store_id"] for s, _ in rows],
                    "series": [{"name": self.t("net_sales"), "values": [number(b["net_sales"]) for _, b in rows]}],
                }
            )
            blocks.append(
                {
                    "kind": "chart",
                    "id": "basket-per-store",
                    "title": self.t("basket_per_store"),
                    "format": "money",
                    "labels": names,
                    "keys": [s["store_id"] for s, _ in rows],
                    "series": [
                        {"name": self.t("average_basket"), "values": [number(b["average_basket"]) for _, b in rows]}
                    ],
                }
            )
        return blocks

    # -- Stock -------------------------------------------------------------------------------
    async def stock(self, store: str) -> list[Block]:
        kpis, plan = await asyncio.gather(
            self.get(f"/v1/locations/{store}/kpis"),
            self.get(f"/v1/locations/{store}/replenishment", page_size=200),
        )
        blocks: list[Block] = []
        if kpis.ok:
            body = kpis.body
            blocks.append(
                {
                    "kind": "tiles",
                    "id": "stock-kpis",
                    "title": f"{self.t('stock_kpis')} ({body['from_date']} – {body['to_date']})",
                    "items": [
                        {"label": self.t("stock_out_rate"), "value": number(body["stock_out_rate"]), "format": "rate"},
                        {"label": self.t("sell_through"), "value": number(body["sell_through_rate"]), "format": "rate"},
                        {"label": self.t("days_of_cover"), "value": number(body["days_of_cover"]), "format": "days"},
                        {"label": self.t("shrink_rate"), "value": number(body["shrink_rate"]), "format": "rate"},
                        {"label": self.t("skus_carried"), "value": body["skus_carried"], "format": "count"},
                    ],
                }
            )
            stocked_out = sorted(
                (sku for sku in body["skus"] if number(sku["stock_out_rate"])),
                key=lambda sku: (-(number(sku["stock_out_rate"]) or 0), sku["sku"]),
            )[:12]
            blocks.append(
                {
                    "kind": "chart",
                    "id": "stock-outs",
                    "title": self.t("most_stock_outs"),
                    "format": "rate",
                    "labels": [sku["sku"] for sku in stocked_out],
                    "series": [
                        {"name": self.t("stock_out_rate"), "values": [number(s["stock_out_rate"]) for s in stocked_out]}
                    ],
                }
            )
        else:
            blocks.append(unavailable("stock-kpis", self.t("stock_kpis"), kpis, self.lang))
        if plan.ok:
            suggestions = plan.body["suggestions"]
            covered = sorted(
                (s for s in suggestions if number(s["days_of_cover"]) is not None),
                key=lambda s: (number(s["days_of_cover"]), s["sku"]),
            )[:12]
            blocks.append(
                {
                    "kind": "chart",
                    "id": "lowest-cover",
                    "title": self.t("lowest_cover"),
                    "format": "days",
                    "labels": [s["sku"] for s in covered],
                    "series": [
                        {"name": self.t("days_of_cover"), "values": [number(s["days_of_cover"]) for s in covered]}
                    ],
                }
            )
            due = [s for s in suggestions if number(s["suggested_quantity"])][:50]
            blocks.append(
                {
                    "kind": "table",
                    "id": "suggestions",
                    "title": self.t("suggestions"),
                    "columns": [
                        self.t(k) for k in ("sku", "suggested_quantity", "on_hand", "days_of_cover", "reorder_due")
                    ],
                    "rows": [
                        [
                            s["sku"],
                            s["suggested_quantity"],
                            s["on_hand"],
                            s["days_of_cover"] or "–",
                            "✓" if s["reorder_due"] else "",
                        ]
                        for s in due
                    ],
                }
            )
            alerts = plan.body["alerts"]
            by_kind = Counter(alert["kind"] for alert in alerts)
            blocks.append(
                {
                    "kind": "chart",
                    "id": "stock-alerts",
                    "title": self.t("stock_alerts"),
                    "format": "count",
                    "labels": [self.t(kind) for kind in ("low_stock", "overstock")],
                    "series": [{"name": self.t("count"), "values": [by_kind[k] for k in ("low_stock", "overstock")]}],
                }
            )
        else:
            blocks.append(unavailable("suggestions", self.t("suggestions"), plan, self.lang))
        blocks.append(notice("transfers", self.t("open_transfers"), self.t("no_transfer_route")))
        return blocks

    # -- Prices and labels -------------------------------------------------------------------
    async def prices(self, store: str) -> list[Block]:
        states = ("pending", "sent", "acknowledged", "failed", "given_up")
        # Markdown suggestions are rendered by the page itself, each with its Approve form.
        changes, audit = await asyncio.gather(
            self.get("/v1/price-changes", page_size=50),
            self.get(f"/v1/stores/{store}/label-mismatches", page_size=200),
        )
        by_state = await asyncio.gather(*(self.count_labels(store, state) for state in states))
        blocks: list[Block] = []
        if changes.ok:
            rows = [
                [
                    c["sku"],
                    c["price"],
                    (c["effective_at"] or "")[:16].replace("T", " "),
                    ",".join(c["store_ids"]) or self.t("chain"),
                    c["state"],
                ]
                for c in changes.body["changes"][:30]
            ]
            blocks.append(
                {
                    "kind": "table",
                    "id": "price-changes",
                    "title": self.t("price_changes"),
                    "columns": [
                        self.t("sku"),
                        self.t("price"),
                        self.t("effective_at"),
                        self.t("store"),
                        self.t("state"),
                    ],
                    "rows": rows,
                }
            )
        else:
            blocks.append(unavailable("price-changes", self.t("price_changes"), changes, self.lang))
        if audit.ok:
            body = audit.body
            reasons = Counter(m["reason"] for m in body["mismatches"])
            blocks.append(
                {
                    "kind": "tiles",
                    "id": "label-parity",
                    "title": self.t("label_parity"),
                    "items": [
                        {"label": self.t("labels"), "value": body["label_count"], "format": "count"},
                        {"label": self.t("mismatches"), "value": body["mismatch_count"], "format": "count"},
                        {"label": self.t("mismatch_rate"), "value": number(body["mismatch_rate"]), "format": "rate"},
                    ]
                    + [
                        {"label": reason, "value": count, "format": "count"}
                        for reason, count in sorted(reasons.items())
                    ],
                }
            )
        else:
            blocks.append(unavailable("label-parity", self.t("label_parity"), audit, self.lang))
        counts = [count for count in by_state if isinstance(count, int)]
        if len(counts) == len(states):
            blocks.append(
                {
                    "kind": "chart",
                    "id": "labels-by-state",
                    "title": self.t("labels_by_state"),
                    "format": "count",
                    "labels": list(states),
                    "series": [{"name": self.t("count"), "values": counts}],
                }
            )
        return blocks

    async def count_labels(self, store: str, state: str) -> int | Answer:
        count, token = 0, None
        for _ in range(50):
            answer = await self.get(f"/v1/stores/{store}/labels", state=state, page_size=200, page_token=token)
            if not answer.ok:
                return answer
            count += len(answer.body["labels"])
            token = answer.body["next_page_token"]
            if not token:
                break
        return count

    async def open_markdowns(self, store: str) -> Answer:
        return await self.get(f"/v1/stores/{store}/markdown-suggestions", page_size=200)

    # -- Members and campaigns ---------------------------------------------------------------
    async def members(self, store: str) -> list[Block]:
        day = today()
        store_id = None if store == "all" else store
        kpis, campaigns, conflicts = await asyncio.gather(
            self.get(
                "/v1/members/kpis",
                store_id=store_id,
                **{"from": (day - timedelta(days=27)).isoformat(), "to": day.isoformat()},
            ),
            self.get("/v1/campaigns", page_size=50),
            self.get("/v1/redemption-conflicts", store_id=store_id, page_size=100),
        )
        blocks: list[Block] = []
        if kpis.ok:
            body = kpis.body
            blocks.append(
                {
                    "kind": "tiles",
                    "id": "member-kpis",
                    "title": f"{self.t('member_kpis')} ({body['from_date']} – {body['to_date']})",
                    "items": [
                        {"label": self.t("active_members"), "value": body["active_members"], "format": "count"},
                        {"label": self.t("new_members"), "value": body["new_members"], "format": "count"},
                        {
                            "label": self.t("repurchase_rate"),
                            "value": number(body["repeat_purchase_rate"]),
                            "format": "rate",
                        },
                        {
                            "label": self.t("member_share"),
                            "value": number(body["member_share_of_sales"]),
                            "format": "rate",
                        },
                    ],
                }
            )
        else:
            blocks.append(unavailable("member-kpis", self.t("member_kpis"), kpis, self.lang))
        blocks.append(notice("lifecycle-mix", self.t("lifecycle_mix"), self.t("no_mix_route")))
        blocks.append(notice("tier-mix", self.t("tier_mix"), self.t("no_mix_route")))
        if campaigns.ok:
            listed = [
                c for c in campaigns.body["campaigns"] if store_id is None or c.get("store_id") in (None, store_id)
            ]
            reports = await asyncio.gather(*(self.get(f"/v1/campaigns/{c['campaign_id']}/report") for c in listed))
            rows = []
            for campaign, report in zip(listed, reports, strict=True):
                roi = report.body.get("roi") if report.ok and isinstance(report.body, dict) else None
                interval = (
                    f"[{roi['low']:.2f}, {roi['high']:.2f}]"
                    if roi and roi.get("low") is not None and roi.get("high") is not None
                    else "–"
                )
                rows.append(
                    [
                        campaign["name"],
                        campaign["status"],
                        f"{roi['value']:.2f}" if roi and roi.get("value") is not None else "–",
                        interval,
                        campaign["progress"]["issued"],
                        campaign["progress"]["treatment"],
                        campaign["progress"]["control"],
                    ]
                )
            blocks.append(
                {
                    "kind": "table",
                    "id": "campaigns",
                    "title": self.t("campaigns"),
                    "columns": [
                        self.t(k)
                        for k in ("campaign", "status", "roi", "roi_interval", "coupons_issued", "treatment", "control")
                    ],
                    "rows": rows,
                }
            )
            blocks.append(
                {
                    "kind": "chart",
                    "id": "coupons-per-campaign",
                    "title": self.t("coupons_per_campaign"),
                    "format": "count",
                    "labels": [c["name"] for c in listed],
                    "series": [{"name": self.t("coupons_issued"), "values": [c["progress"]["issued"] for c in listed]}],
                }
            )
        else:
            blocks.append(unavailable("campaigns", self.t("campaigns"), campaigns, self.lang))
        if conflicts.ok:
            blocks.append(
                {
                    "kind": "table",
                    "id": "redemption-conflicts",
                    "title": self.t("redemption_conflicts"),
                    "columns": [self.t(k) for k in ("code", "store", "reason", "occurred_at")],
                    # No member id or any other personal data: the code, where, why and when.
                    "rows": [
                        [c["code"], c["store_id"], c["reason"], c["occurred_at"][:16].replace("T", " ")]
                        for c in conflicts.body["conflicts"]
                    ],
                }
            )
        else:
            blocks.append(unavailable("redemption-conflicts", self.t("redemption_conflicts"), conflicts, self.lang))
        return blocks

    # -- Suppliers ---------------------------------------------------------------------------
    async def suppliers(self) -> list[Block]:
        statements, suppliers = await asyncio.gather(
            self.get("/v1/statements", page_size=200), self.get("/v1/suppliers", page_size=100)
        )
        blocks: list[Block] = []
        if statements.ok:
            by_state = Counter(s["status"] for s in statements.body["statements"])
            blocks.append(
                {
                    "kind": "chart",
                    "id": "statements-by-state",
                    "title": self.t("statements_by_state"),
                    "format": "count",
                    "labels": sorted(by_state),
                    "series": [{"name": self.t("count"), "values": [by_state[k] for k in sorted(by_state)]}],
                }
            )
        else:
            blocks.append(unavailable("statements-by-state", self.t("statements_by_state"), statements, self.lang))
        if suppliers.ok:
            listed = suppliers.body["suppliers"]
            cards = await asyncio.gather(*(self.get(f"/v1/suppliers/{s['supplier_id']}/scorecard") for s in listed))
            rows = [
                [s["supplier_id"], s["name"], *(card.body.get(k) or "–" for k in ("otif", "fill_rate", "reject_rate"))]
                for s, card in zip(listed, cards, strict=True)
                if card.ok
            ]
            blocks.append(
                {
                    "kind": "table",
                    "id": "scorecards",
                    "title": self.t("scorecards"),
                    "columns": [self.t(k) for k in ("supplier_id", "supplier", "otif", "fill_rate", "reject_rate")],
                    "rows": rows,
                }
            )
        else:
            blocks.append(unavailable("scorecards", self.t("scorecards"), suppliers, self.lang))
        return blocks
