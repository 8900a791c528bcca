"""Shared helpers of supply's integration tests: actors, money, decimals and common setups."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from retail.common.v1 import identifiers_pb2, money_pb2
from retail.supply.v1 import supply_service_pb2 as pb
from retail.supply.v1 import supply_service_pb2_grpc as pb_grpc

HQ = identifiers_pb2.Actor(
    client_id="hq-buyer",
    client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
    staff_role=identifiers_pb2.STAFF_ROLE_HEADQUARTERS,
)


def supplier_user(supplier_id: str) -> identifiers_pb2.Actor:
    return identifiers_pb2.Actor(
        client_id=f"portal-{supplier_id}",
        client_kind=identifiers_pb2.CLIENT_KIND_SUPPLIER_USER,
        supplier_id=supplier_id,
    )


def manager(store_id: str) -> identifiers_pb2.Actor:
    return identifiers_pb2.Actor(
        client_id=f"manager-{store_id}",
        client_kind=identifiers_pb2.CLIENT_KIND_STAFF,
        staff_role=identifiers_pb2.STAFF_ROLE_STORE_MANAGER,
        store_id=store_id,
    )


def cny(fen: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="CNY", minor_units=fen)


def dec(value: str) -> money_pb2.Decimal:
    return money_pb2.Decimal(value=value)


def rid() -> str:
    return uuid.uuid4().hex


async def add_supplier(stub: pb_grpc.SupplyServiceAsyncStub, supplier_id: str, code: str | None = None) -> pb.Supplier:
    answer = await stub.UpsertSupplier(
        pb.UpsertSupplierRequest(
            request_id=rid(),
            actor=HQ,
            supplier=pb.Supplier(
                supplier_id=supplier_id,
                code=code or supplier_id,
                name=f"{supplier_id} Co.",
                payment_terms_days=30,
                active=True,
            ),
        )
    )
    return answer.supplier


def purchase_contract(
    supplier_id: str,
    items: dict[str, tuple[int, str, str]],
    *,
    valid_from: str = "2026-01-01",
    valid_until: str = "",
    allowance: str = "0",
    tolerance: str = "0",
    direct: bool = False,
) -> pb.Contract:
    """A 经销 contract: per SKU (unit cost fen, pack size, minimum order)."""
    return pb.Contract(
        supplier_id=supplier_id,
        mode=pb.SETTLEMENT_MODE_PURCHASE,
        valid_from=valid_from,
        valid_until=valid_until,
        items=[
            pb.ContractItem(sku=sku, unit_cost=cny(cost), pack_size=dec(pack), minimum_order=dec(minimum))
            for sku, (cost, pack, minimum) in items.items()
        ],
        over_delivery_allowance=dec(allowance),
        price_tolerance=dec(tolerance),
        allows_direct_delivery=direct,
    )


async def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:  # noqa: ASYNC109
    """Poll ``check`` (an async callable) until it returns something truthy, within a bound."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


def reason(error: grpc.aio.AioRpcError) -> str:
    """The stable reason the service gave with an error."""
    metadata: Any = error.trailing_metadata() or ()  # grpc.aio.Metadata: (key, value) pairs
    for key, value in metadata:
        if key == "retail-error-reason":
            return str(value)
    return ""
