"""The gateway's supply mapping: fen and yuan, contracts to protobuf, the sell-through join, and
who holds which supply scope."""

from __future__ import annotations

from datetime import date

import pytest
from retail.common.v1 import money_pb2
from retail.inventory.v1 import inventory_service_pb2 as inventory_pb
from retail.supply.v1 import supply_service_pb2 as pb

from gateway.domain.clients import ClientKind, StaffRole
from gateway.domain.scopes import (
    CATALOGUE,
    PURCHASE_ORDERS_CONFIRM,
    PURCHASES_READ,
    PURCHASES_WRITE,
    RECEIPTS_WRITE,
    SETTLEMENT_READ,
    SETTLEMENT_WRITE,
    STATEMENTS_RESPOND,
    default_scopes,
    grantable_scopes,
)
from gateway.supply.supplier_schemas import ContractIn
from gateway.supply.wire import amount, map_contract, map_contract_in, sell_through

SUPPLY_SCOPES = {
    PURCHASES_READ,
    PURCHASES_WRITE,
    PURCHASE_ORDERS_CONFIRM,
    RECEIPTS_WRITE,
    SETTLEMENT_READ,
    SETTLEMENT_WRITE,
    STATEMENTS_RESPOND,
}


def money(fen: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="CNY", minor_units=fen)


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [(0, "0.00"), (5, "0.05"), (123456, "1234.56"), (-5, "-0.05"), (-100, "-1.00"), (10**15, "1" + "0" * 13 + ".00")],
)
def test_an_amount_is_its_fen_and_the_same_in_yuan_exactly(fen: int, yuan: str) -> None:
    answer = amount(money(fen))
    assert (answer.fen, answer.yuan) == (fen, yuan)


def test_a_concession_contract_travels_with_its_rates_and_fen_and_comes_back_the_same() -> None:
    body = ContractIn.model_validate(
        {
            "mode": "concession",
            "valid_from": "2026-12-01",
            "items": [{"sku": "SKU1"}, {"sku": "SKU2", "unit_cost_fen": 1234, "pack_size": "6"}],
            "commission_rate": "0.25",
            "store_commission_rates": {"S002": "0.2"},
            "rebate_tiers": [{"threshold_fen": 1_000_000, "rate": "0.02"}],
            "cycle": "days",
            "cycle_days": 14,
            "cycle_anchor": "2026-12-01",
        }
    )
    message = map_contract_in("SUP9", body)
    assert message.mode == pb.SETTLEMENT_MODE_CONCESSION
    assert message.commission_rate.value == "0.25"
    assert message.store_commission_rates["S002"].value == "0.2"
    assert not message.items[0].HasField("unit_cost")
    assert message.items[1].unit_cost.minor_units == 1234
    assert message.rebate_tiers[0].threshold.minor_units == 1_000_000
    assert (message.valid_until, message.cycle_days) == ("", 14)
    message.contract_id = "C1"
    back = map_contract(message)
    assert (back.items[0].unit_cost, back.items[0].pack_size) == (None, "1")
    assert back.items[1].unit_cost == amount(money(1234))
    assert (back.mode, back.commission_rate, back.valid_until, back.cycle_anchor) == (
        "concession",
        "0.25",
        None,
        date(2026, 12, 1),
    )


def test_a_contract_with_a_commission_above_one_is_refused_before_it_leaves_the_gateway() -> None:
    with pytest.raises(ValueError, match="commission_rate"):
        ContractIn.model_validate(
            {"mode": "concession", "valid_from": "2026-12-01", "items": [{"sku": "A"}], "commission_rate": "1.01"}
        )


def test_sell_through_joins_sales_and_stock_per_store_and_sku_and_rounds_half_up() -> None:
    sales = pb.GetSupplierSalesResponse(
        from_date="2026-11-03",
        to_date="2026-11-30",  # 28 days
        sales=[
            pb.StoreSkuSales(
                store_id="S001",
                sku="A",
                quantity=money_pb2.Decimal(value="84"),
                revenue=money(100_050),
                selling_days=20,
            ),
            pb.StoreSkuSales(
                store_id="S002", sku="A", quantity=money_pb2.Decimal(value="3"), revenue=money(299), selling_days=3
            ),
            pb.StoreSkuSales(
                store_id="S002", sku="B", quantity=money_pb2.Decimal(value="-1"), revenue=money(-100), selling_days=0
            ),
        ],
    )
    stock = {
        "S001": inventory_pb.GetStockKpisResponse(
            skus=[
                inventory_pb.SkuStockKpis(sku="A", closing_stock=money_pb2.Decimal(value="36")),
                inventory_pb.SkuStockKpis(sku="C", closing_stock=money_pb2.Decimal(value="10")),
            ]
        ),
        "S002": inventory_pb.GetStockKpisResponse(
            skus=[inventory_pb.SkuStockKpis(sku="A", closing_stock=money_pb2.Decimal(value="0"))]
        ),
    }
    answer = sell_through("SUP1", sales, stock)
    assert (answer.days, answer.from_date, answer.to_date) == (28, date(2026, 11, 3), date(2026, 11, 30))
    rows = {(row.store_id, row.sku): row for row in answer.rows}
    assert list(rows) == [("S001", "A"), ("S001", "C"), ("S002", "A"), ("S002", "B")]
    # 84 sold, 36 left: 84 ÷ 120 = 0.7; 3 a day sold, 36 on hand: 12 days.
    a1 = rows["S001", "A"]
    assert (a1.sold, a1.stock, a1.sell_through, a1.days_of_cover) == ("84", "36", "0.7", "12.0")
    assert (a1.revenue.fen, a1.revenue.yuan, a1.selling_days) == (100_050, "1000.50", 20)
    # Stocked and never sold: nothing sold through, no cover figure.
    c1 = rows["S001", "C"]
    assert (c1.sold, c1.stock, c1.sell_through, c1.days_of_cover) == ("0", "10", "0", None)
    # Sold out: everything sold through, no days of cover left.
    a2 = rows["S002", "A"]
    assert (a2.sell_through, a2.days_of_cover) == ("1", "0.0")
    # More returned than sold: no rate to speak of.
    b2 = rows["S002", "B"]
    assert (b2.sold, b2.stock, b2.sell_through, b2.days_of_cover, b2.revenue.fen) == ("-1", "0", None, None, -100)


def test_sell_through_rounds_the_rate_to_four_decimals_half_up() -> None:
    sales = pb.GetSupplierSalesResponse(
        from_date="2026-11-01",
        to_date="2026-11-03",
        sales=[pb.StoreSkuSales(store_id="S1", sku="A", quantity=money_pb2.Decimal(value="2"), revenue=money(1))],
    )
    stock = {
        "S1": inventory_pb.GetStockKpisResponse(
            skus=[inventory_pb.SkuStockKpis(sku="A", closing_stock=money_pb2.Decimal(value="1"))]
        )
    }
    (row,) = sell_through("SUP1", sales, stock).rows
    # 2 ÷ 3 = 0.66666… → 0.6667; 1 on hand at 2/3 a day: 1.5 days.
    assert (row.sell_through, row.days_of_cover) == ("0.6667", "1.5")


def test_every_supply_scope_is_catalogued_and_held_by_whom_the_portal_and_the_buyers_need() -> None:
    assert CATALOGUE.keys() >= SUPPLY_SCOPES
    supplier = default_scopes(ClientKind.SUPPLIER_USER)
    assert supplier & SUPPLY_SCOPES == {PURCHASES_READ, PURCHASE_ORDERS_CONFIRM, SETTLEMENT_READ, STATEMENTS_RESPOND}
    manager = default_scopes(ClientKind.STAFF, StaffRole.STORE_MANAGER)
    assert manager & SUPPLY_SCOPES == {PURCHASES_READ, RECEIPTS_WRITE}
    headquarters = default_scopes(ClientKind.STAFF, StaffRole.HEADQUARTERS)
    assert SUPPLY_SCOPES - headquarters == {STATEMENTS_RESPOND}
    for kind in (ClientKind.APP, ClientKind.POS_TERMINAL):
        assert not default_scopes(kind) & SUPPLY_SCOPES
        assert not grantable_scopes(kind) & SUPPLY_SCOPES
    assert not default_scopes(ClientKind.STAFF, StaffRole.STORE_GUIDE) & SUPPLY_SCOPES
    # Nobody but headquarters may ever be registered with the buyers' or finance's powers.
    for kind, role in ((ClientKind.SUPPLIER_USER, None), (ClientKind.STAFF, StaffRole.STORE_MANAGER)):
        assert not grantable_scopes(kind, role) & {PURCHASES_WRITE, SETTLEMENT_WRITE}
