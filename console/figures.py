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
LAST_YEAR_DAYS = 364  # "the same period last year": 52 weeks back, so that weekdays line up
OPEN_TRANSFER_STATUSES = ("requested", "dispatched")
# The four lifecycle groups a store reads, from the member service's five stages.
LIFECYCLE_GROUPS = (
    ("lifecycle_new", ("new",)),
    ("lifecycle_active", ("active", "repeat")),
    ("lifecycle_at_risk", ("dormant",)),
    ("lifecycle_sleeping", ("churned",)),
)
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


def short_label(text: str) -> str:
    """A label without its parenthesised detail: "低（30 天内）" → "低", "Low (within 30 days)" → "Low"."""
    return text.split("（")[0].split(" (")[0]


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
        """Today, 7 and 28 days, each beside the same days last year (52 weeks back, so weekdays
        match) or, where last year has no sales, beside the period just before."""
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
            calls.append(kpis(first - timedelta(days=LAST_YEAR_DAYS), day - timedelta(days=LAST_YEAR_DAYS), store_id))
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
        compared: list[tuple[dict[str, Any], dict[str, Any], str]] = []
        for index in range(len(periods)):
            current, last_year, previous = (answers[3 * index + k].body for k in range(3))
            # Last year is the comparison only where it has sales; a chain younger than a year has none.
            if last_year["sales_count"]:
                compared.append((current, last_year, "last_year"))
            else:
                compared.append((current, previous, "previous"))
        for key, (current, other, basis) in zip(periods, compared, strict=True):
            blocks.append(
                {
                    "kind": "tiles",
                    "id": f"kpis-{key}",
                    "title": f"{self.t(key)} ({current['from_date']} – {current['to_date']})",
                    "previous_label": f"{self.t(basis)} ({other['from_date']} – {other['to_date']})",
                    "basis": basis,
                    "items": [
                        {
                            "label": self.t(name),
                            "value": number(current[field]),
                            "previous": number(other[field]),
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
                    {"name": self.t("net_sales"), "values": [number(c["net_sales"]) for c, _, _ in compared]},
                    {
                        "name": self.t("comparison"),
                        "values": [number(o["net_sales"]) for _, o, _ in compared],
                        "notes": [self.t(basis) for _, _, basis in compared],
                    },
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
        kpis, plan, transfers = await asyncio.gather(
            self.get(f"/v1/locations/{store}/kpis"),
            self.get(f"/v1/locations/{store}/replenishment", page_size=200),
            self.get(f"/v1/locations/{store}/transfers", status=list(OPEN_TRANSFER_STATUSES), page_size=100),
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
            blocks.extend(self.category_blocks(body.get("categories", [])))
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
        if transfers.ok:
            listed = transfers.body["transfers"]
            blocks.append(
                {
                    "kind": "table",
                    "id": "transfers",
                    "title": self.t("open_transfers"),
                    "columns": [
                        self.t(k) for k in ("sku", "direction", "other_store", "quantity", "status", "requested_at")
                    ],
                    "rows": [
                        [
                            t["sku"],
                            self.t("outbound") if t["from_location_id"] == store else self.t("inbound"),
                            t["to_location_id"] if t["from_location_id"] == store else t["from_location_id"],
                            t["quantity"],
                            self.t("transfer_" + t["status"]),
                            t["requested_at"][:16].replace("T", " "),
                        ]
                        for t in listed
                    ],
                }
            )
        else:
            blocks.append(unavailable("transfers", self.t("open_transfers"), transfers, self.lang))
        return blocks

    def category_blocks(self, categories: list[dict[str, Any]]) -> list[Block]:
        """A tile per category (its stock-out rate, with the other figures under it) and a chart of the rates."""
        if not categories:
            return []
        names = [c["category_id"] or self.t("no_category") for c in categories]
        # Tiles: the most stocked-out category first, where a store manager looks first.
        by_urgency = sorted(
            zip(names, categories, strict=True), key=lambda pair: (-(number(pair[1]["stock_out_rate"]) or 0), pair[0])
        )
        tiles = {
            "kind": "tiles",
            "id": "category-kpis",
            "title": self.t("category_kpis"),
            "items": [
                {
                    "label": f"{name} · {self.t('stock_out_rate')}",
                    "key": c["category_id"],
                    "value": number(c["stock_out_rate"]),
                    "format": "rate",
                    "details": [
                        {"label": self.t("sell_through"), "value": number(c["sell_through_rate"]), "format": "rate"},
                        {"label": self.t("days_of_cover"), "value": number(c["days_of_cover"]), "format": "days"},
                        {"label": self.t("shrink_rate"), "value": number(c["shrink_rate"]), "format": "rate"},
                        {"label": self.t("overstocked_skus"), "value": c["overstocked_skus"], "format": "count"},
                    ],
                }
                for name, c in by_urgency
            ],
        }
        rates = (
            ("stock_out_rate", "stock_out_rate"),
            ("sell_through", "sell_through_rate"),
            ("shrink_rate", "shrink_rate"),
            ("overstock_rate", "overstock_rate"),
        )
        chart = {
            "kind": "chart",
            "id": "category-rates",
            "title": self.t("category_rates"),
            "format": "rate",
            "labels": names,
            "keys": [c["category_id"] or "–" for c in categories],
            "series": [
                {"name": self.t(label_key), "values": [number(c[field]) for c in categories]}
                for label_key, field in rates
            ],
        }
        cover = {
            "kind": "chart",
            "id": "category-cover",
            "title": self.t("category_cover"),
            "format": "days",
            "labels": names,
            "keys": [c["category_id"] or "–" for c in categories],
            "series": [{"name": self.t("days_of_cover"), "values": [number(c["days_of_cover"]) for c in categories]}],
        }
        return [tiles, chart, cover]

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
        kpis, mix, campaigns, conflicts = await asyncio.gather(
            self.get(
                "/v1/members/kpis",
                store_id=store_id,
                **{"from": (day - timedelta(days=27)).isoformat(), "to": day.isoformat()},
            ),
            self.get("/v1/members/mix", store_id=store_id),
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
        if mix.ok:
            blocks.extend(self.mix_blocks(mix.body))
        else:
            blocks.append(unavailable("lifecycle-mix", self.t("lifecycle_mix"), mix, self.lang))
        if campaigns.ok:
            listed = [
                c for c in campaigns.body["campaigns"] if store_id is None or c.get("store_id") in (None, store_id)
            ]
            reports = await asyncio.gather(*(self.get(f"/v1/campaigns/{c['campaign_id']}/report") for c in listed))
            rows = []
            redeemed: list[int | None] = []
            conflicted: list[int | None] = []
            for campaign, report in zip(listed, reports, strict=True):
                reported = report.body if report.ok and isinstance(report.body, dict) else {}
                redeemed.append(reported.get("redemptions"))
                conflicted.append(reported.get("redemption_conflicts"))
                roi = reported.get("roi")
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
                        "–" if redeemed[-1] is None else redeemed[-1],
                        "–" if conflicted[-1] is None else conflicted[-1],
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
                        for k in (
                            "campaign",
                            "status",
                            "roi",
                            "roi_interval",
                            "coupons_issued",
                            "coupons_redeemed",
                            "redemption_conflicts",
                            "treatment",
                            "control",
                        )
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
                    "keys": [c["campaign_id"] for c in listed],
                    "short": [c["name"] for c in listed],
                    "series": [
                        {"name": self.t("coupons_issued"), "values": [c["progress"]["issued"] for c in listed]},
                        {"name": self.t("coupons_redeemed"), "values": redeemed},
                        {"name": self.t("redemption_conflicts"), "values": conflicted},
                    ],
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

    def mix_blocks(self, mix: dict[str, Any]) -> list[Block]:
        """Lifecycle groups, tiers and churn risk of the members now: counts only, nobody named."""
        stages = {row["stage"]: row["members"] for row in mix["lifecycle"]}
        return [
            {
                "kind": "chart",
                "id": "lifecycle-mix",
                "title": f"{self.t('lifecycle_mix')} ({mix['members']} {self.t('members_unit')})",
                "format": "count",
                "labels": [self.t(key) for key, _ in LIFECYCLE_GROUPS],
                "keys": [key.removeprefix("lifecycle_") for key, _ in LIFECYCLE_GROUPS],
                "short": [self.t(key) for key, _ in LIFECYCLE_GROUPS],
                "series": [
                    {
                        "name": self.t("members_count"),
                        "values": [sum(stages.get(stage, 0) for stage in group) for _, group in LIFECYCLE_GROUPS],
                    }
                ],
            },
            {
                "kind": "chart",
                "id": "tier-mix",
                "title": self.t("tier_mix"),
                "format": "count",
                "labels": [self.t("tier_" + row["tier"]) for row in mix["tiers"]],
                "keys": [row["tier"] for row in mix["tiers"]],
                "short": [self.t("tier_" + row["tier"]) for row in mix["tiers"]],
                "series": [{"name": self.t("members_count"), "values": [row["members"] for row in mix["tiers"]]}],
            },
            {
                "kind": "chart",
                "id": "churn-risk",
                "title": self.t("churn_risk"),
                "format": "count",
                "labels": [self.t("risk_" + row["risk"]) for row in mix["churn_risk"]],
                "keys": [row["risk"] for row in mix["churn_risk"]],
                # The bars are named by the risk alone; the numbers table gives each one's days.
                "short": [short_label(self.t("risk_" + row["risk"])) for row in mix["churn_risk"]],
                "series": [{"name": self.t("members_count"), "values": [row["members"] for row in mix["churn_risk"]]}],
            },
        ]

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
