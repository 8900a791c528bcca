"""Settlement statements: runs, the supplier's confirmation or dispute, approval, payment, export
and the reconciliation check.

A statement is what one contract owes its supplier for one period: draft (redrafted by each
run) → issued (frozen, visible to the supplier) → confirmed or disputed by the supplier →
approved → paid. Its total is the sum of its lines' fen, exactly; each line is rounded once,
half up, to the fen. A fact that arrives after its period was issued is a late line of the
next statement, with its own date. A supplier user sees and acts on its own statements only:
another supplier's is `404`, its existence does not leak.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Query, Response
from retail.supply.v1 import supply_service_pb2 as pb

from gateway.domain.scopes import SETTLEMENT_READ, SETTLEMENT_WRITE, STATEMENTS_RESPOND
from gateway.http import problems
from gateway.http.paging import Paging
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.members.wire import actor_of
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from gateway.supply.schemas import ID_PATTERN, StatementId, SupplierId
from gateway.supply.statement_schemas import (
    DisputeIn,
    ExportFormat,
    SettlementCheckOut,
    StatementLinesOut,
    StatementOut,
    StatementPage,
    StatementPaymentIn,
    StatementRunIn,
    StatementRunOut,
    StatementStatusName,
)
from gateway.supply.wire import amount, map_check, map_statement, map_statement_line, status_numbers

router = ContextRouter(prefix="/v1", tags=["supply"])

Reader = Annotated[Principal, Depends(require(SETTLEMENT_READ))]
Statuses = Annotated[list[StatementStatusName] | None, Query(description="only statements in these states")]
# A statement run or the reconciliation check reads every accrual of the period: longer than one call.
SETTLEMENT_DEADLINE_SECONDS = 120.0
EXPORT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "the statement as a file: CSV (one row per line, amounts in fen) or JSON",
        "content": {"text/csv": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "object"}}},
    },
    **problems.problem_responses(404),
}


async def _list_statements(
    resources: Resources, principal: Principal, page: Paging, supplier_id: str, statuses: list[str]
) -> StatementPage:
    answer = await resources.supply_service.ListStatements(
        pb.ListStatementsRequest(
            actor=actor_of(principal),
            supplier_id=principal.supplier_id or supplier_id,
            statuses=status_numbers(pb.StatementStatus, "STATEMENT_STATUS", statuses),
            page=page.request(),
        )
    )
    return StatementPage(
        statements=[map_statement(s) for s in answer.statements],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.get("/suppliers/{supplier_id}/statements", responses=problems.problem_responses(404))
async def supplier_statements(
    resources: Resources, principal: Reader, supplier_id: SupplierId, page: Paging, status: Statuses = None
) -> StatementPage:
    """The supplier's statements, newest period first, each with its total in fen. Scope
    `settlement:read`; headquarters, or the supplier's own users (another supplier is `404`)."""
    principal.ensure_supplier(supplier_id)
    return await _list_statements(resources, principal, page, supplier_id, list(status or []))


@router.get("/statements")
async def list_statements(
    resources: Resources,
    principal: Reader,
    page: Paging,
    supplier_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="one supplier's")] = None,
    status: Statuses = None,
) -> StatementPage:
    """Statements, newest period first. Scope `settlement:read`; a supplier user sees its own."""
    return await _list_statements(resources, principal, page, supplier_id or "", list(status or []))


@router.get("/statements/{statement_id}", responses=problems.problem_responses(404))
async def get_statement(
    resources: Resources, principal: Reader, statement_id: StatementId, page: Paging
) -> StatementLinesOut:
    """A statement and a page of its lines (by date, then source): each line's signed amount in fen
    (positive is owed to the supplier), what it was computed from, whether it is late, and the
    supplier's dispute comment. `total` is the sum of every line's fen. Scope `settlement:read`;
    another supplier's statement is `404`."""
    answer = await resources.supply_service.GetStatement(
        pb.GetStatementRequest(actor=actor_of(principal), statement_id=statement_id, page=page.request())
    )
    if principal.supplier_id is not None and answer.statement.supplier_id != principal.supplier_id:
        raise problems.ProblemError(problems.NOT_FOUND, f"no statement {statement_id}")
    return StatementLinesOut(
        statement=map_statement(answer.statement),
        lines=[map_statement_line(line) for line in answer.lines],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.get("/statements/{statement_id}/export", response_class=Response, responses=EXPORT_RESPONSES)
async def export_statement(
    resources: Resources,
    principal: Reader,
    statement_id: StatementId,
    export_format: Annotated[ExportFormat, Query(alias="format", description="csv or json")] = "csv",
) -> Response:
    """The statement and every line as a file for the finance system (`Content-Disposition` names
    it): amounts in fen, each line rounded half up, the total their sum. Scope `settlement:read`;
    another supplier's statement is `404`."""
    answer = await resources.supply_service.ExportStatement(
        pb.ExportStatementRequest(actor=actor_of(principal), statement_id=statement_id, format=export_format),
        timeout=max(resources.grpc_deadline, SETTLEMENT_DEADLINE_SECONDS),
    )
    media_type = answer.content_type or ("text/csv; charset=utf-8" if export_format == "csv" else "application/json")
    file_name = answer.file_name or f"{statement_id}.{export_format}"
    return Response(
        answer.content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
    )


class _StatementAnswer(Protocol):
    @property
    def statement(self) -> pb.Statement: ...


def _statement_answer(answer: _StatementAnswer) -> tuple[int, StatementOut]:
    """Every statement transition answers the statement after it."""
    return 200, map_statement(answer.statement)


@router.post(
    "/statements/{statement_id}/confirm", responses=problems.problem_responses(404, 409), response_model=StatementOut
)
async def confirm_statement(
    statement_id: StatementId,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(STATEMENTS_RESPOND))],
) -> Response:
    """The supplier agrees to an issued statement (confirming twice, or a disputed one, is `409`).
    Scope `statements:respond`, the supplier's own users; another supplier's is `404`."""
    request = pb.ConfirmStatementRequest(
        request_id=call.request_id, actor=actor_of(call.principal), statement_id=statement_id
    )
    return await call.forward(lambda: resources.supply_service.ConfirmStatement(request), _statement_answer)


@router.post(
    "/statements/{statement_id}/dispute", responses=problems.problem_responses(404, 409), response_model=StatementOut
)
async def dispute_statement(
    statement_id: StatementId,
    body: DisputeIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(STATEMENTS_RESPOND))],
) -> Response:
    """The supplier disputes lines of an issued statement, with a comment each (`source_id` of
    the line). Scope `statements:respond`, the supplier's own users; another supplier's is `404`."""
    request = pb.DisputeStatementRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        statement_id=statement_id,
        lines=[pb.DisputedLine(source_id=line.source_id, comment=line.comment) for line in body.lines],
    )
    return await call.forward(lambda: resources.supply_service.DisputeStatement(request), _statement_answer)


@router.post(
    "/statements/{statement_id}/issue", responses=problems.problem_responses(404, 409), response_model=StatementOut
)
async def issue_statement(
    statement_id: StatementId,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(SETTLEMENT_WRITE))],
) -> Response:
    """Freeze a draft and show it to the supplier; it never changes again (later facts go to the
    next statement as late lines). Scope `settlement:write`, headquarters finance."""
    call.principal.ensure_headquarters()
    request = pb.IssueStatementRequest(
        request_id=call.request_id, actor=actor_of(call.principal), statement_id=statement_id
    )
    return await call.forward(lambda: resources.supply_service.IssueStatement(request), _statement_answer)


@router.post(
    "/statements/{statement_id}/approve", responses=problems.problem_responses(404, 409), response_model=StatementOut
)
async def approve_statement(
    statement_id: StatementId,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(SETTLEMENT_WRITE))],
) -> Response:
    """Approve a confirmed (or resolved) statement for payment. Scope `settlement:write`, headquarters finance."""
    call.principal.ensure_headquarters()
    request = pb.ApproveStatementRequest(
        request_id=call.request_id, actor=actor_of(call.principal), statement_id=statement_id
    )
    return await call.forward(lambda: resources.supply_service.ApproveStatement(request), _statement_answer)


@router.post(
    "/statements/{statement_id}/mark-paid", responses=problems.problem_responses(404, 409), response_model=StatementOut
)
async def mark_statement_paid(
    statement_id: StatementId,
    body: StatementPaymentIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(SETTLEMENT_WRITE))],
) -> Response:
    """Record the payment of an approved statement with its bank or finance-system reference.
    Scope `settlement:write`, headquarters finance."""
    call.principal.ensure_headquarters()
    request = pb.MarkStatementPaidRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        statement_id=statement_id,
        payment_reference=body.payment_reference,
    )
    return await call.forward(lambda: resources.supply_service.MarkStatementPaid(request), _statement_answer)


@router.post("/statement-runs", responses=problems.problem_responses(404, 409), response_model=StatementRunOut)
async def run_statements(
    body: StatementRunIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(SETTLEMENT_WRITE))],
) -> Response:
    """Draft (or redraft) the statements of the period containing `period_date` for every contract
    (or one supplier's); a rerun produces the same statements, never two. Answers how many
    statements and lines and their total in fen. Scope `settlement:write`, headquarters finance."""
    call.principal.ensure_headquarters()
    request = pb.RunStatementsRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        period_date=body.period_date.isoformat(),
        supplier_id=body.supplier_id or "",
    )
    timeout = max(resources.grpc_deadline, SETTLEMENT_DEADLINE_SECONDS)
    return await call.forward(
        lambda: resources.supply_service.RunStatements(request, timeout=timeout),
        lambda answer: (
            200,
            StatementRunOut(statements=answer.statements, lines=answer.lines, total=amount(answer.total)),
        ),
    )


@router.get("/settlement/check")
async def check_settlement(
    resources: Resources,
    principal: Reader,
    supplier_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="one supplier only")] = None,
) -> SettlementCheckOut:
    """The reconciliation check: every accrued journal line of a consignment or concession SKU is in
    exactly one statement or still open, and every total is the sum of its lines to the fen
    (at most 100 problems listed). Scope `settlement:read`, headquarters."""
    principal.ensure_headquarters()
    answer = await resources.supply_service.CheckSettlement(
        pb.CheckSettlementRequest(actor=actor_of(principal), supplier_id=supplier_id or ""),
        timeout=max(resources.grpc_deadline, SETTLEMENT_DEADLINE_SECONDS),
    )
    return map_check(answer)
