"""The console's alerts page: where an alert's link leads, and its times in the chain's business time."""

from __future__ import annotations

from console.alerts import console_link, feed_blocks, feed_view, local_time
from console.gateway_client import Answer


def alert(**fields: object) -> dict[str, object]:
    return {
        "alert_id": "A1",
        "kind": "sales_anomaly",
        "severity": "warning",
        "state": "open",
        "store_id": "S001",
        "link": "/prices?store=S001&sku=SKU1",
        "raised_at": "2026-12-06T17:30:00+00:00",
        "causes": [{"kind": "price_change", "score": 0.874, "summary": "up 30%", "facts": {}}],
        **fields,
    }


def test_an_alerts_link_becomes_the_console_page_of_its_store() -> None:
    assert console_link(alert()) == "/stores/S001/prices"
    assert console_link(alert(link="/stock?store=S002&sku=X")) == "/stores/S002/stock"
    assert console_link(alert(link="/suppliers?supplier=SUP1", store_id=None)) == "/suppliers"
    assert console_link(alert(link="/members", store_id="S003")) == "/stores/S003/members"
    # Nothing the console has no page for, and never another host.
    assert console_link(alert(link="/ledger?store=S001")) is None
    assert console_link(alert(link="https://evil.example/stock?store=S001")) == "/stores/S001/stock"
    assert console_link(alert(link="", store_id=None)) is None


def test_times_are_shown_in_the_chains_business_time() -> None:
    assert local_time("2026-12-06T17:30:00+00:00") == "2026-12-07 01:30"
    assert local_time(None) == ""


def test_the_feed_is_labelled_in_the_chosen_language_with_causes_as_percentages() -> None:
    (shown,) = feed_view(Answer(200, {"alerts": [alert()]}), "en")
    assert (shown["kind_label"], shown["state_label"], shown["act_link"]) == (
        "Sales anomaly",
        "Open",
        "/stores/S001/prices",
    )
    assert [(c["kind_label"], c["percent"]) for c in shown["causes"]] == [("Price change", 87)]
    assert feed_view(Answer(503, {"detail": "down"}), "en") == []


def test_the_charts_count_unresolved_alerts_by_kind() -> None:
    answer = Answer(
        200,
        {
            "alerts": [
                alert(),
                alert(alert_id="A2", kind="low_stock", severity="critical"),
                alert(alert_id="A3", kind="low_stock", state="resolved"),
            ]
        },
    )
    tiles, chart = feed_blocks(answer, "en")
    assert [item["value"] for item in tiles["items"]] == [2, 0, 1]
    counts = dict(zip(chart["labels"], chart["series"][0]["values"], strict=True))
    assert (counts["Sales anomaly"], counts["Low stock"], counts["Overstock"]) == (1, 1, 0)
