"""Suppliers and their contracts, fees, scorecards and sell-through.

A supplier user sees its own supplier only: another supplier's path is `404` (its existence
does not leak); store staff have no business with a supplier's terms (`403`); headquarters
see every supplier. Money is integer fen (see :mod:`gateway.supply.schemas`).
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

from fastapi import Depends, Query, Response
from retail.inventory.v1 import inventory_service_pb2 as inventory_pb
from retail.supply.v1 import supply_service_pb2 as pb

from gateway.domain.clients import ClientKind
from gateway.domain.scopes import PURCHASES_READ, PURCHASES_WRITE, SETTLEMENT_WRITE
from gateway.http import problems
from gateway.http.paging import Paging
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.idempotency.requests import IdempotentRequest, idempotent
from gateway.inventory.planning_routes import PLANNING_DEADLINE_SECONDS
from gateway.members.wire import actor_of
from gateway.security.authentication import Principal
from gateway.security.authorisation import require
from gateway.supply.schemas import ID_PATTERN, ContractId, SupplierId
from gateway.supply.statement_schemas import StatementLineOut
from gateway.supply.supplier_schemas import (
    ContractIn,
    ContractOut,
    ContractPage,
    FeeIn,
    ScorecardOut,
    SellThroughOut,
    SupplierChangeIn,
    SupplierIn,
    SupplierOut,
    SupplierPage,
)
from gateway.supply.wire import (
    fen,
    map_contract,
    map_contract_in,
    map_scorecard,
    map_statement_line,
    map_supplier,
    sell_through,
)

router = ContextRouter(prefix="/v1", tags=["supply"])

Reader = Annotated[Principal, Depends(require(PURCHASES_READ))]
FromDate = Annotated[date | None, Query(alias="from", description="first day of the period")]
ToDate = Annotated[date | None, Query(alias="to", description="last day of the period (inclusive); default today")]
# Stores whose stock a sell-through answer asks inventory for at once.
SELL_THROUGH_CONCURRENCY = 8


def _period(from_date: date | None, to_date: date | None) -> tuple[str, str]:
    if from_date and to_date and from_date > to_date:
        raise problems.ProblemError(problems.INVALID_ARGUMENT, "`from` must not be after `to`")
    return (from_date.isoformat() if from_date else "", to_date.isoformat() if to_date else "")


@router.post("/suppliers", status_code=201, responses=problems.problem_responses(409), response_model=SupplierOut)
async def create_supplier(
    body: SupplierIn, resources: Resources, call: Annotated[IdempotentRequest, Depends(idempotent(PURCHASES_WRITE))]
) -> Response:
    """Register a supplier: code, name, payment terms (days after a statement is approved; 月结 30
    is 30). Scope `purchases:write`, headquarters; `Idempotency-Key` required."""
    call.principal.ensure_headquarters()
    request = pb.UpsertSupplierRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        supplier=pb.Supplier(
            supplier_id=body.supplier_id,
            code=body.code,
            name=body.name,
            payment_terms_days=body.payment_terms_days,
            active=body.active,
        ),
    )
    return await call.forward(
        lambda: resources.supply_service.UpsertSupplier(request), lambda answer: (201, map_supplier(answer.supplier))
    )


@router.put("/suppliers/{supplier_id}", responses=problems.problem_responses(404, 409), response_model=SupplierOut)
async def change_supplier(
    supplier_id: SupplierId,
    body: SupplierChangeIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(PURCHASES_WRITE))],
) -> Response:
    """Change a supplier at the `version` read (`409` `concurrent-modification` when it moved on);
    `active: false` stops new purchase orders. Scope `purchases:write`, headquarters."""
    call.principal.ensure_headquarters()
    request = pb.UpsertSupplierRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        supplier=pb.Supplier(
            supplier_id=supplier_id,
            code=body.code,
            name=body.name,
            payment_terms_days=body.payment_terms_days,
            active=body.active,
            version=body.version,
        ),
    )
    return await call.forward(
        lambda: resources.supply_service.UpsertSupplier(request), lambda answer: (200, map_supplier(answer.supplier))
    )


@router.get("/suppliers")
async def list_suppliers(resources: Resources, principal: Reader, page: Paging) -> SupplierPage:
    """Suppliers by code. Scope `purchases:read`, staff (a supplier user reads its own at
    `/v1/suppliers/{supplier_id}`)."""
    if principal.kind is ClientKind.SUPPLIER_USER:
        raise problems.ProblemError(problems.FORBIDDEN, "a supplier user reads its own supplier only")
    answer = await resources.supply_service.ListSuppliers(
        pb.ListSuppliersRequest(actor=actor_of(principal), page=page.request())
    )
    return SupplierPage(
        suppliers=[map_supplier(s) for s in answer.suppliers],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.get("/suppliers/{supplier_id}", responses=problems.problem_responses(404))
async def get_supplier(resources: Resources, principal: Reader, supplier_id: SupplierId) -> SupplierOut:
    """A supplier. Scope `purchases:read`; a supplier user its own only (another is `404`)."""
    if principal.supplier_id is not None:
        principal.ensure_supplier(supplier_id)
    answer = await resources.supply_service.GetSupplier(
        pb.GetSupplierRequest(actor=actor_of(principal), supplier_id=supplier_id)
    )
    return map_supplier(answer.supplier)


@router.post(
    "/suppliers/{supplier_id}/contracts",
    status_code=201,
    responses=problems.problem_responses(404, 409),
    response_model=ContractOut,
)
async def create_contract(
    supplier_id: SupplierId,
    body: ContractIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(PURCHASES_WRITE))],
) -> Response:
    """Add a contract over a validity window with one settlement mode: `purchase` (经销: received
    quantity × agreed cost), `consignment` (代销: sold quantity × agreed cost) or `concession`
    (联营: revenue × (1 − commission rate), per store where a store's rate differs). Amounts are
    fen; each line of a statement is rounded half up to the fen. A window overlapping another
    contract of the supplier on one of its SKUs is `409` `contract-overlaps`; a commission above
    1 is `422`. Scope `purchases:write`, headquarters."""
    call.principal.ensure_headquarters()
    request = pb.CreateContractRequest(
        request_id=call.request_id, actor=actor_of(call.principal), contract=map_contract_in(supplier_id, body)
    )
    return await call.forward(
        lambda: resources.supply_service.CreateContract(request), lambda answer: (201, map_contract(answer.contract))
    )


@router.get("/suppliers/{supplier_id}/contracts", responses=problems.problem_responses(404))
async def list_contracts(
    resources: Resources, principal: Reader, supplier_id: SupplierId, page: Paging
) -> ContractPage:
    """A supplier's contracts, newest window first. Scope `purchases:read`; headquarters, or the
    supplier's own users (another supplier's are `404`)."""
    principal.ensure_supplier(supplier_id)
    answer = await resources.supply_service.ListContracts(
        pb.ListContractsRequest(actor=actor_of(principal), supplier_id=supplier_id, page=page.request())
    )
    return ContractPage(
        contracts=[map_contract(c) for c in answer.contracts],
        next_page_token=page.next_token(answer.page.next_page_token),
    )


@router.post(
    "/contracts/{contract_id}/fees",
    status_code=201,
    responses=problems.problem_responses(404, 409),
    response_model=StatementLineOut,
)
async def record_fee(
    contract_id: ContractId,
    body: FeeIn,
    resources: Resources,
    call: Annotated[IdempotentRequest, Depends(idempotent(SETTLEMENT_WRITE))],
) -> Response:
    """Book a promotion or slotting fee against a contract (`amount_fen` > 0, deducted on the
    statement of its day's period): answers the line as it will show. Scope `settlement:write`,
    headquarters finance."""
    call.principal.ensure_headquarters()
    request = pb.RecordFeeRequest(
        request_id=call.request_id,
        actor=actor_of(call.principal),
        contract_id=contract_id,
        fee_kind=body.fee_kind,
        amount=fen(body.amount_fen),
        occurred_on=body.occurred_on.isoformat(),
        description=body.description,
    )
    return await call.forward(
        lambda: resources.supply_service.RecordFee(request), lambda answer: (201, map_statement_line(answer.line))
    )


@router.get("/suppliers/{supplier_id}/scorecard", responses=problems.problem_responses(404))
async def scorecard(
    resources: Resources, principal: Reader, supplier_id: SupplierId, from_date: FromDate = None, to_date: ToDate = None
) -> ScorecardOut:
    """How the supplier delivered over a period (default the 90 days to `to`): on-time-in-full,
    fill rate (accepted ÷ ordered), reject rate, quality score (100 × (1 − reject rate)), lead time
    promised against actual, invoice match rate. A ratio is none when nothing was due. Scope
    `purchases:read`; headquarters, or the supplier's own users (another supplier is `404`)."""
    principal.ensure_supplier(supplier_id)
    first, last = _period(from_date, to_date)
    answer = await resources.supply_service.GetScorecard(
        pb.GetScorecardRequest(actor=actor_of(principal), supplier_id=supplier_id, from_date=first, to_date=last)
    )
    return map_scorecard(answer.scorecard)


@router.get("/suppliers/{supplier_id}/sell-through", responses=problems.problem_responses(404))
async def supplier_sell_through(
    resources: Resources,
    principal: Reader,
    supplier_id: SupplierId,
    store_id: Annotated[str | None, Query(pattern=ID_PATTERN, description="one store only")] = None,
    from_date: FromDate = None,
    to_date: ToDate = None,
) -> SellThroughOut:
    """The supplier's own SKUs by store over a period (default the 28 days to `to`, at most 366):
    sold (net of returns, from the sales journal) and revenue in fen, stock on hand at the end
    (inventory), sell-through = sold ÷ (sold + stock) and days of cover = stock ÷ average daily
    sales, so that the supplier can plan its deliveries (数据共享). Other suppliers' SKUs never
    show. Scope `purchases:read`; headquarters, or the supplier's own users (another supplier is
    `404`)."""
    principal.ensure_supplier(supplier_id)
    first, last = _period(from_date, to_date)
    supply = resources.supply_service
    sales = await supply.GetSupplierSales(
        pb.GetSupplierSalesRequest(
            actor=actor_of(principal), supplier_id=supplier_id, from_date=first, to_date=last, store_id=store_id or ""
        )
    )
    inventory = resources.inventory_service
    if store_id is None:
        locations = await inventory.ListLocations(inventory_pb.ListLocationsRequest())
        stores = [loc.location_id for loc in locations.locations if loc.kind == inventory_pb.LOCATION_KIND_STORE]
    else:
        stores = [store_id]
    gate = asyncio.Semaphore(SELL_THROUGH_CONCURRENCY)

    async def stock(location_id: str) -> tuple[str, inventory_pb.GetStockKpisResponse]:
        async with gate:
            kpis = await inventory.GetStockKpis(
                inventory_pb.GetStockKpisRequest(
                    location_id=location_id, supplier_id=supplier_id, from_date=sales.from_date, to_date=sales.to_date
                ),
                timeout=max(resources.grpc_deadline, PLANNING_DEADLINE_SECONDS),
            )
        return location_id, kpis

    stock_by_store = dict(await asyncio.gather(*(stock(location_id) for location_id in stores)))
    return sell_through(supplier_id, sales, stock_by_store)
