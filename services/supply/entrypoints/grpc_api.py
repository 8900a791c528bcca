"""gRPC face of the supply service: maps the contract to commands and answers, nothing more.

Scopes are the gateway's; what the service itself enforces is ownership by the actor's binding
(defence in depth): a supplier user sees and acts on its own supplier's objects only — another
supplier's are NOT_FOUND, never "forbidden", so that nothing leaks — and a store's staff
receive goods for their own store only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import grpc
from retail.common.v1 import paging_pb2
from retail.supply.v1 import supply_service_pb2 as pb
from retail.supply.v1 import supply_service_pb2_grpc as pb_grpc

from servicekit.clock import Clock, utc_now
from servicekit.errors import InvalidArgument
from servicekit.idempotency import fingerprint
from servicekit.paging import InvalidPageToken, page_key, page_token
from services.supply.domain.suppliers import UnknownSupplier
from services.supply.entrypoints.wire import (
    map_actor,
    map_contract,
    map_contract_request,
    map_supplier,
    map_supplier_request,
    reply,
)
from services.supply.service_layer.suppliers import CreateContract, Suppliers, UpsertSupplier

DEFAULT_PAGE = 50
MAX_PAGE = 500
_SEPARATOR = "\x1f"


def page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument("page_size is 0 or more", details={"field": "page.page_size"})
    return min(size or DEFAULT_PAGE, MAX_PAGE)


def split_key(token: str, parts: int) -> list[str] | None:
    key = page_key(token)
    if not key:
        return None
    values = key.split(_SEPARATOR)
    if len(values) != parts:
        raise InvalidPageToken("page_token is not one this service gave out")
    return values


def join_key(*values: str) -> str:
    return page_token(_SEPARATOR.join(values))


class SupplyServicer(pb_grpc.SupplyServiceServicer):
    def __init__(self, *, suppliers: Suppliers, clock: Clock = utc_now) -> None:
        self.suppliers = suppliers
        self.clock = clock

    # ---- suppliers and contracts -------------------------------------------------------------------------------

    async def UpsertSupplier(self, request: pb.UpsertSupplierRequest, context: Any) -> pb.UpsertSupplierResponse:
        map_actor(request.actor).check_retailer()
        command = UpsertSupplier(fingerprint(request), map_supplier_request(request.supplier), request.supplier.version)
        return await self.suppliers.upsert(
            command, reply(pb.UpsertSupplierResponse, lambda s: pb.UpsertSupplierResponse(supplier=map_supplier(s)))
        )

    async def GetSupplier(self, request: pb.GetSupplierRequest, context: Any) -> pb.GetSupplierResponse:
        if not map_actor(request.actor).sees(request.supplier_id):
            raise UnknownSupplier("no such supplier")
        return pb.GetSupplierResponse(supplier=map_supplier(await self.suppliers.get(request.supplier_id)))

    async def ListSuppliers(self, request: pb.ListSuppliersRequest, context: Any) -> pb.ListSuppliersResponse:
        actor = map_actor(request.actor)
        size = page_size(request.page.page_size)
        after = split_key(request.page.page_token, 1)
        found = await self.suppliers.list_suppliers(
            after_code=after[0] if after else None, limit=size + 1, only=actor.supplier_filter("")
        )
        page = found[:size]
        token = join_key(page[-1].supplier.code) if len(found) > size else ""
        return pb.ListSuppliersResponse(
            suppliers=[map_supplier(s) for s in page], page=paging_pb2.PageInfo(next_page_token=token)
        )

    async def CreateContract(self, request: pb.CreateContractRequest, context: Any) -> pb.CreateContractResponse:
        actor = map_actor(request.actor)
        actor.check_retailer()
        command = CreateContract(fingerprint(request), map_contract_request(request.contract), actor.client_id)
        return await self.suppliers.create_contract(
            command, reply(pb.CreateContractResponse, lambda c: pb.CreateContractResponse(contract=map_contract(c)))
        )

    async def ListContracts(self, request: pb.ListContractsRequest, context: Any) -> pb.ListContractsResponse:
        actor = map_actor(request.actor)
        if not request.supplier_id:
            raise InvalidArgument("supplier_id is required", details={"field": "supplier_id"})
        if not actor.sees(request.supplier_id):
            raise UnknownSupplier("no such supplier")
        size = page_size(request.page.page_size)
        key = split_key(request.page.page_token, 2)
        try:
            after = (date.fromisoformat(key[0]), key[1]) if key else None
        except ValueError:
            raise InvalidPageToken("page_token is not one this service gave out") from None
        found = await self.suppliers.list_contracts(request.supplier_id, after=after, limit=size + 1)
        page = found[:size]
        token = (
            join_key(page[-1].contract.valid_from.isoformat(), page[-1].contract.contract_id)
            if len(found) > size
            else ""
        )
        return pb.ListContractsResponse(
            contracts=[map_contract(c) for c in page], page=paging_pb2.PageInfo(next_page_token=token)
        )


def register(servicer: SupplyServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_SupplyServiceServicer_to_server(servicer, server)

    return add
