"""A goods receipt's or return to vendor's lines as inventory reads them from supply's events."""

from __future__ import annotations

from decimal import Decimal

from retail.common.v1 import money_pb2
from retail.supply.v1 import supply_service_pb2 as supply_pb2

from services.inventory.domain.model import LineSource
from services.inventory.entrypoints.supply_consumer import map_supply_lines


def line(sku: str, accepted: str, rejected: str = "0") -> supply_pb2.ReceiptLine:
    return supply_pb2.ReceiptLine(
        sku=sku, accepted=money_pb2.Decimal(value=accepted), rejected=money_pb2.Decimal(value=rejected)
    )


def test_a_line_keeps_its_position_and_an_unset_accepted_quantity_moves_nothing() -> None:
    lines, unreadable = map_supply_lines(
        LineSource.RECEIPT,
        "GR-1",
        [
            supply_pb2.ReceiptLine(sku="A", rejected=money_pb2.Decimal(value="4"), reject_reason="mould"),
            line("B", "2.250", "x"),
            line("C", "-1"),
            line("D", "1.0005"),
        ],
    )
    assert [(kept.line_index, kept.sku, kept.quantity, kept.rejected) for kept in lines] == [
        (0, "A", Decimal(0), Decimal(4)),
        (1, "B", Decimal("2.250"), None),
    ]
    assert [(kept.reference, text) for kept, text in unreadable] == [
        ("receipt:GR-1#2", "-1"),
        ("receipt:GR-1#3", "1.0005"),
    ]


def test_a_return_to_vendors_lines_are_referenced_by_the_return() -> None:
    lines, _ = map_supply_lines(LineSource.VENDOR_RETURN, "RTV-9", [line("A", "1"), line("A", "2")])
    assert [(kept.reference, kept.quantity) for kept in lines] == [
        ("vendor-return:RTV-9#0", Decimal(1)),
        ("vendor-return:RTV-9#1", Decimal(2)),
    ]
