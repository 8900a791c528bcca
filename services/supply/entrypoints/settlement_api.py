"""gRPC face of settlement: the statement RPCs, fees, the reconciliation check and supplier sales.

A mixin of :class:`~services.supply.entrypoints.grpc_api.SupplyServicer` (which holds
``accruals``, ``statements`` and ``clock``). A supplier user sees and acts on its own
supplier's statements and sales only: another supplier's are NOT_FOUND, and nothing changes.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from retail.common.v1 import paging_pb2
from retail.supply.v1 import supply_service_pb2 as pb

from servicekit.clock import Clock
from servicekit.errors import InvalidArgument
from servicekit.idempotency import fingerprint
from servicekit.paging import InvalidPageToken, page_key, page_token
from services.supply.adapters.integration_events import money
from services.supply.domain.statements import StatementAction
from services.supply.entrypoints.settlement_wire import (
    export_statement,
    map_accrual,
    map_line,
    map_statement,
    map_statement_statuses,
    map_store_sku_sales,
)
from services.supply.entrypoints.wire import map_actor, map_date, map_fen
from services.supply.service_layer.accruals import Accruals, RecordFee, business_day
from services.supply.service_layer.statements import (
    MoveStatement,
    RunStatements,
    Statements,
    StatementsAreHeadquarters,
    UnknownSupplier,
)

_HEADQUARTERS_MOVES = (StatementAction.ISSUE, StatementAction.APPROVE, StatementAction.PAY)
DEFAULT_PAGE = 100
MAX_PAGE = 1_000
_SEPARATOR = "\x1f"


def _page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument("page_size is 0 or more", details={"field": "page.page_size"})
    return min(size or DEFAULT_PAGE, MAX_PAGE)


def _after(token: str) -> tuple[date, str] | None:
    key = page_key(token)
    if not key:
        return None
    day, _, identifier = key.partition(_SEPARATOR)
    try:
        return date.fromisoformat(day), identifier
    except ValueError:
        raise InvalidPageToken("page_token is not one this service gave out") from None


def _token(after: tuple[date, str] | None) -> str:
    return page_token(f"{after[0].isoformat()}{_SEPARATOR}{after[1]}") if after else ""


class SettlementRpcs:
    accruals: Accruals
    statements: Statements
    clock: Clock

    async def RecordFee(self, request: pb.RecordFeeRequest, context: Any) -> pb.RecordFeeResponse:
        actor = map_actor(request.actor)
        command = RecordFee(
            fingerprint(request),
            request.contract_id,
            request.fee_kind,
            map_fen(request.amount, "amount"),
            map_date(request.occurred_on, "occurred_on"),
            request.description,
            supplier_scope=self._scope(actor),
        )
        accrual = await self.accruals.record_fee(command)
        return pb.RecordFeeResponse(line=map_accrual(accrual))

    async def RunStatements(self, request: pb.RunStatementsRequest, context: Any) -> pb.RunStatementsResponse:
        actor = map_actor(request.actor)
        if not actor.headquarters:
            raise StatementsAreHeadquarters("statement runs are headquarters' own")
        command = RunStatements(
            fingerprint(request), map_date(request.period_date, "period_date"), request.supplier_id or None
        )
        result = await self.statements.run(command)
        return pb.RunStatementsResponse(statements=result.statements, lines=result.lines, total=money(result.total_fen))

    async def GetStatement(self, request: pb.GetStatementRequest, context: Any) -> pb.GetStatementResponse:
        actor = map_actor(request.actor)
        page = await self.statements.get(
            request.statement_id,
            supplier_scope=self._scope(actor),
            after=_after(request.page.page_token),
            limit=_page_size(request.page.page_size),
        )
        return pb.GetStatementResponse(
            statement=map_statement(page.statement),
            lines=[map_line(row) for row in page.lines],
            page=paging_pb2.PageInfo(next_page_token=_token(page.next_after)),
        )

    async def ListStatements(self, request: pb.ListStatementsRequest, context: Any) -> pb.ListStatementsResponse:
        actor = map_actor(request.actor)
        rows, after = await self.statements.list_statements(
            supplier_id=actor.supplier_filter(request.supplier_id),
            statuses=map_statement_statuses(request.statuses),
            after=_after(request.page.page_token),
            limit=_page_size(request.page.page_size),
        )
        return pb.ListStatementsResponse(
            statements=[map_statement(row) for row in rows], page=paging_pb2.PageInfo(next_page_token=_token(after))
        )

    async def _move(self, request: Any, action: StatementAction, **extra: Any) -> pb.Statement:
        actor = map_actor(request.actor)
        if not actor.is_supplier and not actor.headquarters and action in _HEADQUARTERS_MOVES:
            raise StatementsAreHeadquarters(f"only headquarters may {action.value} a statement")
        command = MoveStatement(
            fingerprint(request),
            request.statement_id,
            action,
            actor.client_id,
            supplier_scope=self._scope(actor),
            **extra,
        )
        return map_statement(await self.statements.move(command))

    async def IssueStatement(self, request: pb.IssueStatementRequest, context: Any) -> pb.IssueStatementResponse:
        return pb.IssueStatementResponse(statement=await self._move(request, StatementAction.ISSUE))

    async def ConfirmStatement(self, request: pb.ConfirmStatementRequest, context: Any) -> pb.ConfirmStatementResponse:
        return pb.ConfirmStatementResponse(statement=await self._move(request, StatementAction.CONFIRM))

    async def DisputeStatement(self, request: pb.DisputeStatementRequest, context: Any) -> pb.DisputeStatementResponse:
        disputes = tuple((line.source_id, line.comment) for line in request.lines)
        return pb.DisputeStatementResponse(
            statement=await self._move(request, StatementAction.DISPUTE, disputes=disputes)
        )

    async def ApproveStatement(self, request: pb.ApproveStatementRequest, context: Any) -> pb.ApproveStatementResponse:
        return pb.ApproveStatementResponse(statement=await self._move(request, StatementAction.APPROVE))

    async def MarkStatementPaid(
        self, request: pb.MarkStatementPaidRequest, context: Any
    ) -> pb.MarkStatementPaidResponse:
        statement = await self._move(request, StatementAction.PAY, payment_reference=request.payment_reference)
        return pb.MarkStatementPaidResponse(statement=statement)

    async def ExportStatement(self, request: pb.ExportStatementRequest, context: Any) -> pb.ExportStatementResponse:
        actor = map_actor(request.actor)
        if request.format not in ("csv", "json"):
            raise InvalidArgument("format is csv or json", details={"field": "format"})
        page = await self.statements.get(request.statement_id, supplier_scope=self._scope(actor))
        return export_statement(page.statement, page.lines, request.format)

    async def CheckSettlement(self, request: pb.CheckSettlementRequest, context: Any) -> pb.CheckSettlementResponse:
        actor = map_actor(request.actor)
        result = await self.statements.check(actor.supplier_filter(request.supplier_id))
        return pb.CheckSettlementResponse(
            consistent=result.consistent,
            accruals=result.accruals,
            statements=result.statements,
            open_accruals=result.open_accruals,
            problems=[
                pb.SettlementProblem(
                    kind=problem.kind,
                    statement_id=problem.statement_id,
                    source_id=problem.source_id,
                    detail=problem.detail,
                )
                for problem in result.problems
            ],
        )

    async def GetSupplierSales(self, request: pb.GetSupplierSalesRequest, context: Any) -> pb.GetSupplierSalesResponse:
        actor = map_actor(request.actor)
        if not actor.sees(request.supplier_id):
            raise UnknownSupplier("no such supplier", details={"supplier_id": request.supplier_id})
        last = map_date(request.to_date, "to_date") if request.to_date else business_day(self.clock())
        first = map_date(request.from_date, "from_date") if request.from_date else last - timedelta(days=27)
        rows = await self.statements.supplier_sales(
            request.supplier_id, first, last, request.store_id or None, supplier_scope=self._scope(actor)
        )
        return pb.GetSupplierSalesResponse(
            sales=[map_store_sku_sales(row) for row in rows], from_date=first.isoformat(), to_date=last.isoformat()
        )

    @staticmethod
    def _scope(actor: Any) -> str | None:
        """The supplier a supplier user is confined to (None for the retailer's own people)."""
        return (actor.supplier_id or "\x00no-supplier") if actor.is_supplier else None
