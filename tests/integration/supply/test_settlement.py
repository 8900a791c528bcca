"""Settlement through the running service: POS sales and returns of a concession SKU and a consignment
SKU published to the real SALES journal, statements run, issued, confirmed; late sales and returns
replayed after the period closed land in the next statement as late lines; every amount is computed
here by hand, to the fen, and the reconciliation check is clean."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from google.protobuf.message import Message
from retail.common.v1 import identifiers_pb2, money_pb2, paging_pb2
from retail.sales.v1 import events_pb2 as sales_pb2
from retail.supply.v1 import events_pb2 as supply_events
from retail.supply.v1 import supply_service_pb2 as pb
from retail.supply.v1 import supply_service_pb2_grpc as pb_grpc

from servicekit.protowire import timestamp
from servicekit.settings import to_plain_url
from tests.integration.supply.conftest import fetch
from tests.integration.supply.support import (
    HQ,
    add_supplier,
    cny,
    dec,
    eventually,
    purchase_contract,
    reason,
    rid,
    supplier_user,
)
from tests.support.messaging import jetstream

if TYPE_CHECKING:
    Stub = pb_grpc.SupplyServiceAsyncStub


async def publish(nats_url: str, message: Message, message_id: str, subject: str) -> None:
    async with jetstream(nats_url) as (_, js):
        await js.publish(
            subject,
            message.SerializeToString(),
            headers={"Nats-Msg-Id": message_id, "Retail-Event-Type": message.DESCRIPTOR.full_name},
        )


def journal_entry(
    sale_id: str,
    store: str,
    at: str,
    lines: list[tuple[str, str, int]],
    *,
    original: str = "",
) -> sales_pb2.SaleRecorded:
    """A POS journal entry: lines of (sku, quantity, line total in fen); a return when ``original`` is set."""
    moment = datetime.fromisoformat(at).astimezone(UTC)
    return sales_pb2.SaleRecorded(
        sale_id=sale_id,
        kind=sales_pb2.SALE_KIND_RETURN if original else sales_pb2.SALE_KIND_SALE,
        location_id=store,
        terminal_id=f"{store}-T1",
        channel=sales_pb2.SALES_CHANNEL_STORE,
        occurred_at=timestamp(moment),
        recorded_at=timestamp(moment),
        lines=[
            sales_pb2.SaleLine(
                line_number=number,
                sku=sku,
                quantity=money_pb2.Decimal(value=quantity),
                unit_price=cny(total),
                line_total=cny(total),
            )
            for number, (sku, quantity, total) in enumerate(lines, start=1)
        ],
        original_sale_id=original,
        total=cny(sum(total for _, _, total in lines)),
    )


async def journal(nats_url: str, entry: sales_pb2.SaleRecorded, message_id: str = "") -> None:
    await publish(nats_url, entry, message_id or entry.sale_id, f"retail.sales.v1.sale_recorded.{entry.location_id}")


async def accrued(stub: Stub, supplier_id: str, count: int) -> pb.CheckSettlementResponse:
    async def enough() -> pb.CheckSettlementResponse | None:
        check = await stub.CheckSettlement(pb.CheckSettlementRequest(actor=HQ, supplier_id=supplier_id), timeout=5)
        return check if check.accruals >= count else None

    check: pb.CheckSettlementResponse = await eventually(enough)
    assert check.accruals == count
    return check


async def lines_of(stub: Stub, statement_id: str, actor: identifiers_pb2.Actor = HQ) -> dict[str, pb.StatementLine]:
    answer = await stub.GetStatement(pb.GetStatementRequest(actor=actor, statement_id=statement_id), timeout=5)
    return {line.source_id: line for line in answer.lines}


async def statement_of(stub: Stub, statement_id: str) -> pb.Statement:
    return (await stub.GetStatement(pb.GetStatementRequest(actor=HQ, statement_id=statement_id), timeout=5)).statement


class Setting:
    def __init__(self, unique: str) -> None:
        self.concessionaire = f"SA{unique}"
        self.consignor = f"SB{unique}"
        self.k = f"K{unique}"  # a concession SKU
        self.n = f"N{unique}"  # a consignment SKU
        self.s1 = f"S1{unique}"
        self.s2 = f"S2{unique}"


async def contracts(stub: Stub, s: Setting) -> tuple[str, str]:
    await add_supplier(stub, s.concessionaire)
    await add_supplier(stub, s.consignor)
    concession = await stub.CreateContract(
        pb.CreateContractRequest(
            request_id=rid(),
            actor=HQ,
            contract=pb.Contract(
                supplier_id=s.concessionaire,
                mode=pb.SETTLEMENT_MODE_CONCESSION,
                valid_from="2026-01-01",
                items=[pb.ContractItem(sku=s.k)],
                commission_rate=dec("0.25"),
                store_commission_rates={s.s2: dec("0.2")},
            ),
        ),
        timeout=5,
    )
    consignment = await stub.CreateContract(
        pb.CreateContractRequest(
            request_id=rid(),
            actor=HQ,
            contract=pb.Contract(
                supplier_id=s.consignor,
                mode=pb.SETTLEMENT_MODE_CONSIGNMENT,
                valid_from="2026-01-01",
                items=[pb.ContractItem(sku=s.n, unit_cost=cny(1234))],
            ),
        ),
        timeout=5,
    )
    return concession.contract.contract_id, consignment.contract.contract_id


async def test_sales_and_returns_settle_to_the_fen_with_late_lines_in_the_next_statement(
    stub: Stub, nats_url: str, unique: str, supply_url: str
) -> None:
    s = Setting(unique)
    concession, consignment = await contracts(stub, s)
    ca_nov, cb_nov = f"ST-{concession}-20261101", f"ST-{consignment}-20261101"
    ca_dec, cb_dec = f"ST-{concession}-20261201", f"ST-{consignment}-20261201"

    # November (business days in China Standard Time, UTC+8).
    a1 = journal_entry(
        f"A1{unique}", s.s1, "2026-11-10T12:00+08:00", [(s.k, "2", 3333), (s.n, "3", 4500), ("X", "1", 999)]
    )
    a2 = journal_entry(f"A2{unique}", s.s2, "2026-11-20T09:00+08:00", [(s.k, "1", 1001), (s.n, "1.5", 2000)])
    r1 = journal_entry(
        f"R1{unique}", s.s1, "2026-11-25T18:00+08:00", [(s.k, "1", 1666), (s.n, "1", 1500)], original=a1.sale_id
    )
    # 00:00 on 1 December in Shanghai is still 30 November in UTC: December's.
    a4 = journal_entry(f"A4{unique}", s.s1, "2026-11-30T16:00:00+00:00", [(s.k, "1", 2000)])
    for entry in (a1, a2, r1, a4):
        await journal(nats_url, entry)
    # The same entry delivered again past JetStream's duplicate window (another message id): accrued once.
    await journal(nats_url, a1, f"{a1.sale_id}-again")
    await accrued(stub, s.concessionaire, 4)
    await accrued(stub, s.consignor, 3)

    first = await stub.RunStatements(pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-11-15"))
    again = await stub.RunStatements(pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-11-15"))
    assert first.statements == again.statements >= 2
    assert first.total.minor_units == again.total.minor_units

    # Concession at 25% (store 2 at 20%), per line half up: 3333 × 0.75 = 2499.75 → 2500; 1001 × 0.8 = 800.8 → 801;
    # the return of one of two reverses half of line 1: 1250.
    ca = await lines_of(stub, ca_nov)
    assert {source: line.amount.minor_units for source, line in ca.items()} == {
        f"sale:{a1.sale_id}:1": 2500,
        f"sale:{a2.sale_id}:1": 801,
        f"return:{r1.sale_id}:1": -1250,
    }
    assert ca[f"return:{r1.sale_id}:1"].reverses == f"sale:{a1.sale_id}:1"
    assert ca[f"sale:{a2.sale_id}:1"].commission_rate.value == "0.2"
    # Consignment at 12.34 a unit: 3 → 3702, 1.5 → 1851, one of three back → 1234.
    cb = await lines_of(stub, cb_nov)
    assert {source: line.amount.minor_units for source, line in cb.items()} == {
        f"sale:{a1.sale_id}:2": 3702,
        f"sale:{a2.sale_id}:2": 1851,
        f"return:{r1.sale_id}:2": -1234,
    }
    assert (await statement_of(stub, ca_nov)).total.minor_units == 2500 + 801 - 1250
    assert (await statement_of(stub, cb_nov)).total.minor_units == 3702 + 1851 - 1234
    rows = await fetch(
        supply_url, "SELECT count(*) AS n FROM statement WHERE contract_id = ANY ($1)", [concession, consignment]
    )
    assert rows[0]["n"] == 2  # a rerun redrafted, never added

    for statement_id in (ca_nov, cb_nov):
        issued = await stub.IssueStatement(
            pb.IssueStatementRequest(request_id=rid(), actor=HQ, statement_id=statement_id)
        )
        assert issued.statement.status == pb.STATEMENT_STATUS_ISSUED
    confirm = pb.ConfirmStatementRequest(request_id=rid(), actor=supplier_user(s.concessionaire), statement_id=ca_nov)
    confirmed = await stub.ConfirmStatement(confirm)
    assert confirmed.statement.status == pb.STATEMENT_STATUS_CONFIRMED
    assert (await stub.ConfirmStatement(confirm)).statement == confirmed.statement  # a retry: the first answer
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await stub.ConfirmStatement(
            pb.ConfirmStatementRequest(request_id=rid(), actor=supplier_user(s.concessionaire), statement_id=ca_nov)
        )
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(twice.value) == "statement-already-confirmed"
    assert (await statement_of(stub, ca_nov)).version == confirmed.statement.version

    # After the period closed: an offline till replays two November sales, and returns come in December —
    # one of them before the sale it returns.
    l1 = journal_entry(f"L1{unique}", s.s1, "2026-11-28T15:00+08:00", [(s.k, "1", 1500), (s.n, "2", 3000)])
    r2 = journal_entry(
        f"R2{unique}", s.s1, "2026-12-03T10:00+08:00", [(s.k, "1", 1667), (s.n, "2", 3000)], original=a1.sale_id
    )
    l2 = journal_entry(f"L2{unique}", s.s1, "2026-11-29T11:00+08:00", [(s.k, "2", 4000), (s.n, "1", 1500)])
    r3 = journal_entry(f"R3{unique}", s.s1, "2026-12-05T10:00+08:00", [(s.k, "1", 2000)], original=l2.sale_id)
    for entry in (l1, r2, r3):
        await journal(nats_url, entry)
    await accrued(stub, s.concessionaire, 6)

    async def waiting() -> pb.CheckSettlementResponse | None:
        check = await stub.CheckSettlement(pb.CheckSettlementRequest(actor=HQ, supplier_id=s.concessionaire))
        return check if check.problems else None

    early = await eventually(waiting)
    assert not early.consistent
    assert [(p.kind, p.source_id) for p in early.problems] == [("return-original-unknown", f"return:{r3.sale_id}:1")]
    await journal(nats_url, l2)
    await accrued(stub, s.concessionaire, 8)
    await accrued(stub, s.consignor, 6)

    await stub.RunStatements(pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-12-10"))
    # The closed statements did not move.
    assert (await statement_of(stub, ca_nov)).total.minor_units == 2051
    assert len(await lines_of(stub, ca_nov)) == 3
    assert (await statement_of(stub, cb_nov)).total.minor_units == 4319
    ca = await lines_of(stub, ca_dec)
    assert {source: (line.amount.minor_units, line.late, line.occurred_on) for source, line in ca.items()} == {
        f"sale:{a4.sale_id}:1": (1500, False, "2026-12-01"),
        f"sale:{l1.sale_id}:1": (1125, True, "2026-11-28"),  # 1500 × 0.75
        # The rest of A1's line 1 back: cumulatively round(2500 × 2/2) − 1250 = 1250.
        f"return:{r2.sale_id}:1": (-1250, False, "2026-12-03"),
        f"sale:{l2.sale_id}:1": (3000, True, "2026-11-29"),  # 4000 × 0.75
        f"return:{r3.sale_id}:1": (-1500, False, "2026-12-05"),  # half of 3000
    }
    cb = await lines_of(stub, cb_dec)
    assert {source: (line.amount.minor_units, line.late) for source, line in cb.items()} == {
        f"sale:{l1.sale_id}:2": (2468, True),
        # Two more of A1's three back: round(3702 × 3/3) − 1234 = 2468, the line reversed exactly.
        f"return:{r2.sale_id}:2": (-2468, False),
        f"sale:{l2.sale_id}:2": (1234, True),
    }
    ca_statement = await statement_of(stub, ca_dec)
    assert (ca_statement.total.minor_units, ca_statement.line_count, ca_statement.late_line_count) == (2875, 5, 2)
    cb_statement = await statement_of(stub, cb_dec)
    assert (cb_statement.total.minor_units, cb_statement.late_line_count) == (1234, 2)

    for supplier_id in (s.concessionaire, s.consignor):
        check = await stub.CheckSettlement(pb.CheckSettlementRequest(actor=HQ, supplier_id=supplier_id))
        assert check.consistent, check.problems
    assert (await stub.CheckSettlement(pb.CheckSettlementRequest(actor=HQ))).consistent

    # Paged: two lines a page, by date then source, nothing lost or repeated.
    paged: list[str] = []
    token = ""
    while True:
        page = await stub.GetStatement(
            pb.GetStatementRequest(
                actor=HQ, statement_id=ca_dec, page=paging_pb2.PageRequest(page_size=2, page_token=token)
            )
        )
        paged += [line.source_id for line in page.lines]
        if not (token := page.page.next_page_token):
            break
    assert paged == [line.source_id for line in (await lines_of(stub, ca_dec)).values()]
    assert len(paged) == 5
    issued_only = await stub.ListStatements(
        pb.ListStatementsRequest(
            actor=supplier_user(s.concessionaire), statuses=[pb.STATEMENT_STATUS_CONFIRMED, pb.STATEMENT_STATUS_ISSUED]
        )
    )
    assert [statement.statement_id for statement in issued_only.statements] == [ca_nov]

    exported = await stub.ExportStatement(pb.ExportStatementRequest(actor=HQ, statement_id=ca_dec, format="csv"))
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert [row["amount_fen"] for row in rows[:-1]] == ["1125", "3000", "1500", "-1250", "-1500"]  # by date
    assert (rows[-1]["kind"], rows[-1]["amount_fen"], rows[-1]["amount_yuan"]) == ("total", "2875", "28.75")
    document = json.loads(
        (await stub.ExportStatement(pb.ExportStatementRequest(actor=HQ, statement_id=ca_dec, format="json"))).content
    )
    assert (document["statement"]["total_fen"], document["statement"]["total_yuan"]) == (2875, "28.75")
    assert sum(line["amount_fen"] for line in document["lines"]) == 2875

    sales = await stub.GetSupplierSales(
        pb.GetSupplierSalesRequest(
            actor=supplier_user(s.concessionaire),
            supplier_id=s.concessionaire,
            from_date="2026-11-01",
            to_date="2026-12-31",
        )
    )
    by_store = {(row.store_id, row.sku): (Decimal(row.quantity.value), row.revenue.minor_units) for row in sales.sales}
    # Store 1: sold 2 + 1 + 1 + 2, returned 1 + 1 + 1; revenue 3333 + 2000 + 1500 + 4000 − 1666 − 1667 − 2000.
    assert by_store == {(s.s1, s.k): (Decimal(3), 5500), (s.s2, s.k): (Decimal(1), 1001)}


async def test_another_suppliers_user_finds_nothing_and_changes_nothing(
    stub: Stub, nats_url: str, unique: str, supply_url: str
) -> None:
    s = Setting(unique)
    concession, _ = await contracts(stub, s)
    await journal(nats_url, journal_entry(f"A{unique}", s.s1, "2026-11-10T12:00+08:00", [(s.k, "1", 1000)]))
    await accrued(stub, s.concessionaire, 1)
    await stub.RunStatements(
        pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-11-01", supplier_id=s.concessionaire)
    )
    statement_id = f"ST-{concession}-20261101"
    await stub.IssueStatement(pb.IssueStatementRequest(request_id=rid(), actor=HQ, statement_id=statement_id))
    before = await statement_of(stub, statement_id)
    other = supplier_user(s.consignor)
    calls: list[Any] = [
        stub.GetStatement(pb.GetStatementRequest(actor=other, statement_id=statement_id)),
        stub.ConfirmStatement(pb.ConfirmStatementRequest(request_id=rid(), actor=other, statement_id=statement_id)),
        stub.DisputeStatement(
            pb.DisputeStatementRequest(
                request_id=rid(),
                actor=other,
                statement_id=statement_id,
                lines=[pb.DisputedLine(source_id=f"sale:A{unique}:1", comment="not ours")],
            )
        ),
        stub.ExportStatement(pb.ExportStatementRequest(actor=other, statement_id=statement_id, format="csv")),
        stub.GetSupplierSales(pb.GetSupplierSalesRequest(actor=other, supplier_id=s.concessionaire)),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListStatements(pb.ListStatementsRequest(actor=other, supplier_id=s.concessionaire))
    assert list(listed.statements) == []
    assert await statement_of(stub, statement_id) == before
    assert (await lines_of(stub, statement_id))[f"sale:A{unique}:1"].dispute_comment == ""

    # Its own supplier's user disputes a line with a comment; finance approves and pays (not the supplier).
    own = supplier_user(s.concessionaire)
    for refused_call in (
        stub.ApproveStatement(pb.ApproveStatementRequest(request_id=rid(), actor=own, statement_id=statement_id)),
        stub.RunStatements(pb.RunStatementsRequest(request_id=rid(), actor=own, period_date="2026-11-01")),
        stub.RecordFee(
            pb.RecordFeeRequest(
                request_id=rid(),
                actor=own,
                contract_id=concession,
                fee_kind="promotion",
                amount=cny(100),
                occurred_on="2026-11-02",
            )
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as not_theirs:
            await refused_call
        assert (not_theirs.value.code(), reason(not_theirs.value)) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "statement-headquarters-only",
        )
    assert await statement_of(stub, statement_id) == before
    disputed = await stub.DisputeStatement(
        pb.DisputeStatementRequest(
            request_id=rid(),
            actor=own,
            statement_id=statement_id,
            lines=[pb.DisputedLine(source_id=f"sale:A{unique}:1", comment="sold at a discount")],
        )
    )
    assert disputed.statement.status == pb.STATEMENT_STATUS_DISPUTED
    assert (await lines_of(stub, statement_id, own))[f"sale:A{unique}:1"].dispute_comment == "sold at a discount"
    await stub.ApproveStatement(pb.ApproveStatementRequest(request_id=rid(), actor=HQ, statement_id=statement_id))
    paid = await stub.MarkStatementPaid(
        pb.MarkStatementPaidRequest(request_id=rid(), actor=HQ, statement_id=statement_id, payment_reference="BK-1")
    )
    assert (paid.statement.status, paid.statement.payment_reference) == (pb.STATEMENT_STATUS_PAID, "BK-1")
    assert paid.statement.total.minor_units == 750
    changes = await fetch(
        supply_url,
        "SELECT payload FROM outbox WHERE event_type = 'retail.supply.v1.StatementStatusChanged' "
        "AND aggregate_id = $1 ORDER BY id",
        f"statement:{statement_id}",
    )
    moves = [supply_events.StatementStatusChanged.FromString(row["payload"]) for row in changes]
    assert [(move.from_status, move.to_status) for move in moves] == [
        (pb.STATEMENT_STATUS_DRAFT, pb.STATEMENT_STATUS_ISSUED),
        (pb.STATEMENT_STATUS_ISSUED, pb.STATEMENT_STATUS_DISPUTED),
        (pb.STATEMENT_STATUS_DISPUTED, pb.STATEMENT_STATUS_APPROVED),
        (pb.STATEMENT_STATUS_APPROVED, pb.STATEMENT_STATUS_PAID),
    ]
    assert {move.total.minor_units for move in moves} == {750}


async def test_a_fee_is_a_deduction_on_the_periods_statement(stub: Stub, unique: str) -> None:
    s = Setting(unique)
    concession, _ = await contracts(stub, s)
    fee = await stub.RecordFee(
        pb.RecordFeeRequest(
            request_id=rid(),
            actor=HQ,
            contract_id=concession,
            fee_kind="slotting",
            amount=cny(50_000),
            occurred_on="2026-11-03",
            description="end cap, November",
        )
    )
    assert (fee.line.kind, fee.line.amount.minor_units) == (pb.ACCRUAL_KIND_FEE, -50_000)
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.RecordFee(
            pb.RecordFeeRequest(
                request_id=rid(),
                actor=HQ,
                contract_id=concession,
                fee_kind="bribe",
                amount=cny(1),
                occurred_on="2026-11-03",
            )
        )
    assert (bad.value.code(), reason(bad.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid-fee")
    run = await stub.RunStatements(
        pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-11-30", supplier_id=s.concessionaire)
    )
    assert (run.statements, run.lines, run.total.minor_units) == (1, 1, -50_000)


async def execute(url: str, query: str, *args: object) -> None:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        await connection.execute(query, *args)
    finally:
        await connection.close()


async def test_receipts_and_returns_to_vendor_accrue_once_with_rebate_and_quality_lines(
    stub: Stub, nats_url: str, unique: str, supply_url: str
) -> None:
    supplier, sku, store = f"SP{unique}", f"G{unique}", f"W{unique}"
    await add_supplier(stub, supplier)
    contract = (
        await stub.CreateContract(
            pb.CreateContractRequest(
                request_id=rid(),
                actor=HQ,
                contract=pb.Contract(
                    supplier_id=supplier,
                    mode=pb.SETTLEMENT_MODE_PURCHASE,
                    valid_from="2026-01-01",
                    items=[pb.ContractItem(sku=sku, unit_cost=cny(2500))],
                    rebate_tiers=[
                        pb.RebateTier(threshold=cny(100_000), rate=dec("0.01")),
                        pb.RebateTier(threshold=cny(500_000), rate=dec("0.02")),
                    ],
                    quality_bands=[pb.QualityBand(score_below=dec("95"), rate=dec("0.015"))],
                ),
            )
        )
    ).contract.contract_id
    # Purchasing's rows as its receipt and return wrote them (a PO promised in November, 20 of 220 rejected).
    arrived = datetime(2026, 11, 12, 3, 0, tzinfo=UTC)
    po = f"PO{unique}"
    await execute(
        supply_url,
        "INSERT INTO purchase_order (po_id, supplier_id, location_id, status, origin, promised_date, created_by, "
        "confirmed_at, created_at, updated_at, version) VALUES ($1, $2, $3, 'received', 'manual', '2026-11-15', "
        "'test', $4, $4, $4, 1)",
        po,
        supplier,
        store,
        arrived,
    )
    await execute(
        supply_url,
        "INSERT INTO po_line (po_id, line_number, sku, contract_id, ordered, unit_cost_fen, over_delivery_allowance, "
        "accepted, rejected, returned, last_arrival_at, fully_delivered_at) "
        "VALUES ($1, 1, $2, $3, 220, 2500, 0, 200, 20, 8, $4, $4)",
        po,
        sku,
        contract,
        arrived,
    )
    receipt = f"RC{unique}"
    await execute(
        supply_url,
        "INSERT INTO goods_receipt (receipt_id, po_id, supplier_id, location_id, received_at, received_by, "
        "recorded_at) VALUES ($1, $2, $3, $4, $5, 'test', $5)",
        receipt,
        po,
        supplier,
        store,
        arrived,
    )
    await execute(
        supply_url,
        "INSERT INTO receipt_line (receipt_id, line_number, po_line_number, sku, contract_id, unit_cost_fen, "
        "accepted, rejected, reject_reason) VALUES ($1, 1, 1, $2, $3, 2500, 200, 20, 'crushed')",
        receipt,
        sku,
        contract,
    )
    returned = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    vendor_return = f"VR{unique}"
    await execute(
        supply_url,
        "INSERT INTO vendor_return (return_id, po_id, supplier_id, location_id, returned_at, returned_by) "
        "VALUES ($1, $2, $3, $4, $5, 'test')",
        vendor_return,
        po,
        supplier,
        store,
        returned,
    )
    await execute(
        supply_url,
        "INSERT INTO vendor_return_line (return_id, line_number, po_line_number, sku, contract_id, unit_cost_fen, "
        "quantity, reason) VALUES ($1, 1, 1, $2, $3, 2500, 8, 'damaged')",
        vendor_return,
        sku,
        contract,
    )
    received = supply_events.GoodsReceived(
        receipt_id=receipt,
        po_id=po,
        supplier_id=supplier,
        location_id=store,
        lines=[pb.ReceiptLine(po_line_number=1, sku=sku, accepted=dec("200"), rejected=dec("20"))],
        occurred_at=timestamp(arrived),
    )
    back = supply_events.GoodsReturnedToVendor(
        return_id=vendor_return,
        po_id=po,
        supplier_id=supplier,
        location_id=store,
        lines=[pb.ReceiptLine(po_line_number=1, sku=sku, accepted=dec("8"))],
        occurred_at=timestamp(returned),
    )
    await publish(nats_url, received, f"gr-{receipt}", "retail.supply.v1.goods_received")
    await publish(nats_url, received, f"gr-{receipt}-again", "retail.supply.v1.goods_received")  # redelivered
    await publish(nats_url, back, f"rtv-{vendor_return}", "retail.supply.v1.goods_returned_to_vendor")
    await accrued(stub, supplier, 2)

    await stub.RunStatements(
        pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-11-30", supplier_id=supplier)
    )
    lines = await lines_of(stub, f"ST-{contract}-20261101")
    assert {source: line.amount.minor_units for source, line in lines.items()} == {
        f"receipt:{receipt}:1": 500_000,  # 200 accepted × 25.00; the 20 rejected are not billed
        f"return_to_vendor:{vendor_return}:1": -20_000,
        f"rebate:{contract}:20261101": -4_800,  # purchases 480,000 reach the 1% tier, not the 2% one
        # Quality score 100 × (1 − 20/220) = 90.91 < 95: 1.5% of the payable 480,000.
        f"quality_deduction:{contract}:20261101": -7_200,
    }
    assert lines[f"receipt:{receipt}:1"].unit_cost.minor_units == 2500
    statement = await statement_of(stub, f"ST-{contract}-20261101")
    assert statement.total.minor_units == 468_000
    # A redrafting recomputes the period lines in place: same statement, same lines.
    await stub.RunStatements(
        pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-11-01", supplier_id=supplier)
    )
    assert await lines_of(stub, f"ST-{contract}-20261101") == lines
    assert (await stub.CheckSettlement(pb.CheckSettlementRequest(actor=HQ, supplier_id=supplier))).consistent


async def test_concurrent_runs_and_an_issue_make_one_statement_that_never_changes_after(
    stub: Stub, nats_url: str, unique: str, supply_url: str
) -> None:
    s = Setting(unique)
    concession, _ = await contracts(stub, s)
    await journal(nats_url, journal_entry(f"A{unique}", s.s1, "2026-11-10T12:00+08:00", [(s.k, "1", 1000)]))
    await accrued(stub, s.concessionaire, 1)
    statement_id = f"ST-{concession}-20261101"

    def run() -> Any:
        return stub.RunStatements(
            pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-11-20", supplier_id=s.concessionaire)
        )

    await asyncio.gather(*(run() for _ in range(4)))
    issue = stub.IssueStatement(pb.IssueStatementRequest(request_id=rid(), actor=HQ, statement_id=statement_id))
    late = journal(nats_url, journal_entry(f"B{unique}", s.s1, "2026-11-11T12:00+08:00", [(s.k, "1", 2000)]))
    results = await asyncio.gather(issue, late, run(), run())
    issued = results[0].statement
    await accrued(stub, s.concessionaire, 2)
    await run()
    rows = await fetch(supply_url, "SELECT count(*) AS n FROM statement WHERE contract_id = $1", concession)
    assert rows[0]["n"] == 1
    after = await statement_of(stub, statement_id)
    assert (after.total.minor_units, after.line_count, after.version) == (
        issued.total.minor_units,
        issued.line_count,
        issued.version,
    )
    assert (
        sum(line.amount.minor_units for line in (await lines_of(stub, statement_id)).values())
        == issued.total.minor_units
    )
    # Wherever B's line went (on the statement before it froze, or open for December as a late line), it is once.
    december = await stub.RunStatements(
        pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-12-01", supplier_id=s.concessionaire)
    )
    assert issued.line_count + december.lines == 2
    assert issued.total.minor_units + december.total.minor_units == 750 + 1500
    assert (await stub.CheckSettlement(pb.CheckSettlementRequest(actor=HQ, supplier_id=s.concessionaire))).consistent


async def test_purchasing_receipts_and_returns_reach_the_statement_through_the_supply_stream(
    stub: Stub, unique: str
) -> None:
    supplier, sku, store = f"SQ{unique}", f"H{unique}", f"W{unique}"
    await add_supplier(stub, supplier)
    await stub.CreateContract(
        pb.CreateContractRequest(
            request_id=rid(), actor=HQ, contract=purchase_contract(supplier, {sku: (1999, "1", "0")})
        )
    )
    po = (
        await stub.CreatePurchaseOrder(
            pb.CreatePurchaseOrderRequest(
                request_id=rid(),
                actor=HQ,
                supplier_id=supplier,
                location_id=store,
                lines=[pb.PurchaseOrderLine(sku=sku, ordered=dec("10"))],
                promised_date="2026-12-03",
            )
        )
    ).purchase_order
    po = (
        await stub.ApprovePurchaseOrder(
            pb.ApprovePurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po.po_id, expected_version=po.version)
        )
    ).purchase_order
    await stub.SendPurchaseOrder(pb.SendPurchaseOrderRequest(request_id=rid(), actor=HQ, po_id=po.po_id))
    await stub.ConfirmPurchaseOrder(
        pb.ConfirmPurchaseOrderRequest(
            request_id=rid(), actor=supplier_user(supplier), po_id=po.po_id, promised_date="2026-12-03"
        )
    )
    receipt = await stub.RecordGoodsReceipt(
        pb.RecordGoodsReceiptRequest(
            request_id=rid(),
            actor=HQ,
            po_id=po.po_id,
            location_id=store,
            lines=[pb.ReceiptLine(po_line_number=1, accepted=dec("6.5"), rejected=dec("1"), reject_reason="torn")],
        )
    )
    back = await stub.RecordVendorReturn(
        pb.RecordVendorReturnRequest(
            request_id=rid(),
            actor=HQ,
            po_id=po.po_id,
            lines=[pb.VendorReturnLine(po_line_number=1, quantity=dec("2"), reason="damaged")],
        )
    )
    check = await accrued(stub, supplier, 2)
    assert check.consistent
    run = await stub.RunStatements(
        pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-12-01", supplier_id=supplier)
    )
    # 6.5 × 19.99 = 129.935 → 12,994 fen (half up); two back: −3,998; the rejected one is not billed.
    assert (run.statements, run.lines, run.total.minor_units) == (1, 2, 12_994 - 3_998)
    (statement,) = (
        await stub.ListStatements(pb.ListStatementsRequest(actor=supplier_user(supplier), supplier_id=supplier))
    ).statements
    lines = await lines_of(stub, statement.statement_id)
    assert {source: line.amount.minor_units for source, line in lines.items()} == {
        f"receipt:{receipt.receipt.receipt_id}:1": 12_994,
        f"return_to_vendor:{back.return_id}:1": -3_998,
    }


async def test_a_return_of_more_than_was_sold_and_an_unreadable_line_are_kept_and_reported(
    stub: Stub, nats_url: str, unique: str
) -> None:
    s = Setting(unique)
    await contracts(stub, s)
    sale = journal_entry(f"A{unique}", s.s1, "2026-11-10T12:00+08:00", [(s.n, "1", 1500)])
    back = journal_entry(f"R{unique}", s.s1, "2026-11-12T12:00+08:00", [(s.n, "3", 4500)], original=sale.sale_id)
    odd = journal_entry(f"B{unique}", s.s1, "2026-11-13T12:00+08:00", [(s.n, "two", 1500), (s.n, "1", 1500)])
    for entry in (sale, back, odd):
        await journal(nats_url, entry)
    check = await accrued(stub, s.consignor, 3)  # the sale, the return of its one unit, B's readable line
    kinds = sorted((problem.kind, problem.source_id) for problem in check.problems)
    assert kinds == [
        ("journal-line-invalid", f"sale:{odd.sale_id}:1"),
        ("return-exceeds-sale", f"return:{back.sale_id}:1.2"),
    ]
    assert not check.consistent
    await stub.RunStatements(
        pb.RunStatementsRequest(request_id=rid(), actor=HQ, period_date="2026-11-01", supplier_id=s.consignor)
    )
    (statement,) = (await stub.ListStatements(pb.ListStatementsRequest(actor=HQ, supplier_id=s.consignor))).statements
    lines = await lines_of(stub, statement.statement_id)
    # One unit sold at 12.34 and reversed once, never below zero; B's readable line accrues.
    assert {source: line.amount.minor_units for source, line in lines.items()} == {
        f"sale:{sale.sale_id}:1": 1234,
        f"return:{back.sale_id}:1": -1234,
        f"sale:{odd.sale_id}:2": 1234,
    }
