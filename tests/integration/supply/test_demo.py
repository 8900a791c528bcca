"""Supply's demo loader: suppliers on all three modes with a contract each, open orders — once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from demodata import DemoRetailer, DemoScale
from servicekit.db import UnitOfWork
from services.supply.demo import REJECT_REASON, contract_modes, load_demo
from services.supply.domain.statements import StatementStatus
from services.supply.service_layer.statements import Statements
from tests.integration.supply.conftest import fetch

SCALE = replace(
    DemoScale.demo(end_date=datetime(2026, 11, 30, tzinfo=UTC).date()),
    store_count=2,
    sku_count=40,
    supplier_count=3,
    member_count=50,
    history_days=60,
    receipts_per_store_day=8.0,
    online_orders_per_day=4.0,
)
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
TABLES = (
    "supplier",
    "contract",
    "contract_item",
    "purchase_order",
    "po_line",
    "goods_receipt",
    "receipt_line",
    "outbox",
    "request_log",
)


async def counts(url: str) -> dict[str, int]:
    rows = await fetch(url, " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in TABLES))
    return {row[0]: row[1] for row in rows}


def test_the_demo_modes_cover_all_three_whatever_the_demo_suppliers_settle_by() -> None:
    retailer = DemoRetailer(scale=SCALE)
    modes = contract_modes(retailer.suppliers)
    assert set(modes) == {supplier.supplier_id for supplier in retailer.suppliers}
    assert sorted(mode.value for mode in modes.values()) == ["concession", "consignment", "purchase"]


async def test_the_demo_loader_fills_supply_once(supply_url: str, unit_of_work: Callable[[], UnitOfWork]) -> None:
    retailer = DemoRetailer(scale=SCALE)
    output = await load_demo(supply_url, retailer, clock=lambda: NOW)

    suppliers = await fetch(supply_url, "SELECT supplier_id, name, active FROM supplier ORDER BY supplier_id")
    assert [(row["supplier_id"], row["name"], row["active"]) for row in suppliers] == [
        (supplier.supplier_id, supplier.name, True) for supplier in retailer.suppliers
    ]
    contracts = await fetch(
        supply_url,
        "SELECT c.supplier_id, c.mode, c.commission_rate, c.store_commission_rates, "
        "array_agg(i.sku ORDER BY i.sku) AS skus "
        "FROM contract c JOIN contract_item i USING (contract_id) GROUP BY c.contract_id ORDER BY c.supplier_id",
    )
    assert sorted(row["mode"] for row in contracts) == ["concession", "consignment", "purchase"]
    for row in contracts:  # each covers exactly the SKUs the catalogue (pricing's ItemChanged) gives its supplier
        assert row["skus"] == sorted(sku.sku_code for sku in retailer.skus if sku.supplier_id == row["supplier_id"])
    (concession,) = [row for row in contracts if row["mode"] == "concession"]
    assert concession["commission_rate"] is not None
    assert retailer.stores[0].location_id in concession["store_commission_rates"]

    orders = await fetch(supply_url, "SELECT po_id, supplier_id, status FROM purchase_order ORDER BY created_at")
    statuses = sorted(row["status"] for row in orders)
    assert statuses == ["draft", "partially_received", "received", "sent"]
    open_orders = [row for row in orders if row["status"] not in ("received", "closed", "cancelled")]
    assert sorted(o["po_id"] for o in output["open_purchase_orders"]) == sorted(row["po_id"] for row in open_orders)
    assert {o["status"] for o in output["open_purchase_orders"]} == {"draft", "sent", "partially_received"}
    rejects = await fetch(supply_url, "SELECT reject_reason, rejected FROM receipt_line WHERE rejected > 0")
    assert [(row["reject_reason"], row["rejected"]) for row in rejects] == [(REJECT_REASON, 2)]
    # The portal's supplier is the one whose user the gateway prints, and it has orders to act on.
    portal = output["portal"]
    assert portal["supplier_id"] == retailer.suppliers[0].supplier_id
    assert portal["client_id"] == f"{portal['supplier_id']}-USER01"
    assert {row["supplier_id"] for row in open_orders} >= {portal["supplier_id"]}

    # A month of settled sales: one issued statement per supplier for November, its total the sum of its lines.
    statements = Statements(unit_of_work)
    issued = output["issued_statements"]
    assert sorted(row["supplier_id"] for row in issued) == [supplier.supplier_id for supplier in retailer.suppliers]
    by_mode = {}
    for row in issued:
        page = await statements.get(row["statement_id"], supplier_scope=row["supplier_id"])
        assert page.statement.status is StatementStatus.ISSUED
        assert (page.statement.period_start, page.statement.period_end) == (date(2026, 11, 1), date(2026, 12, 1))
        assert page.lines, f"{row['supplier_id']}'s statement has no lines"
        assert page.statement.total_fen == sum(line.accrual.amount_fen for line in page.lines) == row["total_fen"]
        assert page.statement.line_count == len(page.lines)
        by_mode[page.statement.mode.value] = page
    # The purchase supplier is owed last month's delivery; the others their SKUs' November sales.
    assert {line.accrual.source_id.split(":")[0] for line in by_mode["purchase"].lines} >= {"receipt"}
    for mode in ("consignment", "concession"):
        assert {line.accrual.source_id.split(":")[0] for line in by_mode[mode].lines} == {"sale"}
        assert all(line.accrual.occurred_on.month == 11 for line in by_mode[mode].lines)
    assert (await statements.check(None)).consistent

    scorecard = output["scorecard"]
    assert scorecard["supplier_id"] == portal["supplier_id"]
    assert Decimal(scorecard["reject_rate"]) > 0
    assert 0 < Decimal(scorecard["fill_rate"]) < 1

    before = await counts(supply_url)
    again = await load_demo(supply_url, retailer, clock=lambda: NOW + timedelta(days=1))
    assert again == output
    assert await counts(supply_url) == before
