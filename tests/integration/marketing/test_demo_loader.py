"""Marketing's demo loader: segments, a running campaign with a control group, coupons, uses — once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from demodata import DemoRetailer, DemoScale
from services.marketing.demo import CONTROL_FRACTION_BP, DEMO_SALE_PREFIX, REDEMPTIONS, load_demo
from tests.integration.marketing.conftest import fetch

SCALE = replace(
    DemoScale.demo(end_date=datetime(2026, 11, 30, tzinfo=UTC).date()),
    store_count=2,
    sku_count=40,
    supplier_count=2,
    member_count=800,
    history_days=90,
)
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


async def counts(url: str) -> dict[str, int]:
    tables = ["member", "item", "purchase", "purchase_line", "segment", "segment_snapshot", "campaign", "coupon"]
    tables += ["campaign_member", "redemption", "redemption_conflict", "member_score"]
    rows = await fetch(url, " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables))
    return {row[0]: row[1] for row in rows}


async def test_the_demo_loader_fills_marketing_with_a_running_campaign_and_loads_only_once(marketing_url: str) -> None:
    retailer = DemoRetailer(scale=SCALE)
    output = await load_demo(marketing_url, retailer, clock=lambda: NOW)
    assert output["projections_loaded_before"] is False

    members = await fetch(marketing_url, "SELECT member_id, tier, lifecycle_stage, consent FROM member")
    assert {row["member_id"] for row in members} == {member.member_id for member in retailer.iter_members()}
    expected_tiers = {"normal": "basic"}
    assert {row["member_id"]: row["tier"] for row in members} == {
        m.member_id: expected_tiers.get(m.tier.value, m.tier.value) for m in retailer.iter_members()
    }
    assert all(row["lifecycle_stage"] for row in members)
    consenting = sum(bool(row["consent"]) for row in members)
    assert 0 < consenting < len(members)
    member_sales = {sale.sale_id for sale in retailer.iter_sales() if sale.member_id is not None}
    imported = await fetch(marketing_url, "SELECT sale_id FROM purchase WHERE imported")
    assert {row["sale_id"] for row in imported} == member_sales

    segments = await fetch(marketing_url, "SELECT name FROM segment ORDER BY name")
    assert [row["name"] for row in segments] == ["Dairy buyers at risk", "Gold members", "Lapsed big spenders"]

    (campaign,) = await fetch(marketing_url, "SELECT campaign_id, status, control_fraction_bp FROM campaign")
    assert (campaign["status"], campaign["control_fraction_bp"]) == ("running", CONTROL_FRACTION_BP)
    groups = await fetch(
        marketing_url,
        "SELECT cm.grp, count(*) AS members, count(c.code) AS coupons FROM campaign_member cm "
        "LEFT JOIN coupon c ON c.campaign_id = cm.campaign_id AND c.member_id = cm.member_id GROUP BY cm.grp",
    )
    by_group = {row["grp"]: (row["members"], row["coupons"]) for row in groups}
    treatment, control = by_group["treatment"], by_group["control"]
    assert control[0] > 0
    assert control[1] == 0  # the control group is held out: no coupons
    assert treatment[0] > 0
    assert treatment[1] == treatment[0]  # every treatment member has one coupon
    assert output["campaign"]["issued"] == treatment[0]

    redemptions = await fetch(marketing_url, "SELECT sale_id, member_id, discount_fen FROM redemption ORDER BY 1")
    assert [row["sale_id"] for row in redemptions] == [f"{DEMO_SALE_PREFIX}{n:04d}" for n in range(1, REDEMPTIONS + 1)]
    assert all(row["discount_fen"] == 1_000 for row in redemptions)
    conflicts = await fetch(marketing_url, "SELECT sale_id, reason FROM redemption_conflict")
    assert [(row["sale_id"], row["reason"]) for row in conflicts] == [
        (f"{DEMO_SALE_PREFIX}{REDEMPTIONS + 1:04d}", "already_used")
    ]
    assert output["redemptions"] == [row["sale_id"] for row in redemptions]
    assert output["redemption_conflicts"] == [row["sale_id"] for row in conflicts]
    tagged = await fetch(marketing_url, "SELECT count(*) FROM member_score WHERE engagement IS NOT NULL")
    assert tagged[0][0] > 0

    before = await counts(marketing_url)
    again = await load_demo(marketing_url, retailer, clock=lambda: NOW + timedelta(days=1))
    assert again["projections_loaded_before"] is True
    assert (again["campaign"], again["redemptions"]) == (output["campaign"], output["redemptions"])
    assert await counts(marketing_url) == before
