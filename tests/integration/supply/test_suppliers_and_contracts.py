"""Suppliers and contracts through the service: saved once per request id, overlapping contracts of
one supplier and SKU refused (also when two arrive at the same time), a supplier sees its own only."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from retail.common.v1 import paging_pb2
from retail.supply.v1 import supply_service_pb2 as pb
from retail.supply.v1 import supply_service_pb2_grpc as pb_grpc

from tests.integration.supply.support import HQ, add_supplier, dec, purchase_contract, reason, rid, supplier_user


async def test_a_supplier_is_created_changed_by_version_and_a_retry_returns_the_first_answer(
    stub: pb_grpc.SupplyServiceAsyncStub,
) -> None:
    request = pb.UpsertSupplierRequest(
        request_id=rid(),
        actor=HQ,
        supplier=pb.Supplier(supplier_id="SUPA", code="A", name="Alpha Foods", payment_terms_days=30, active=True),
    )
    first = await stub.UpsertSupplier(request)
    again = await stub.UpsertSupplier(request)
    assert first == again
    assert first.supplier.version == 1
    changed = await stub.UpsertSupplier(
        pb.UpsertSupplierRequest(
            request_id=rid(),
            actor=HQ,
            supplier=pb.Supplier(supplier_id="SUPA", code="A", name="Alpha", payment_terms_days=45, version=1),
        )
    )
    assert (changed.supplier.version, changed.supplier.payment_terms_days, changed.supplier.active) == (2, 45, False)
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await stub.UpsertSupplier(
            pb.UpsertSupplierRequest(
                request_id=rid(),
                actor=HQ,
                supplier=pb.Supplier(supplier_id="SUPA", code="A", name="Late", payment_terms_days=10, version=1),
            )
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED
    assert (await stub.GetSupplier(pb.GetSupplierRequest(actor=HQ, supplier_id="SUPA"))).supplier.name == "Alpha"


async def test_a_supplier_user_sees_its_own_supplier_only(stub: pb_grpc.SupplyServiceAsyncStub) -> None:
    await add_supplier(stub, "SUPA")
    await add_supplier(stub, "SUPB")
    own = await stub.GetSupplier(pb.GetSupplierRequest(actor=supplier_user("SUPA"), supplier_id="SUPA"))
    assert own.supplier.supplier_id == "SUPA"
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await stub.GetSupplier(pb.GetSupplierRequest(actor=supplier_user("SUPA"), supplier_id="SUPB"))
    assert other.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListSuppliers(pb.ListSuppliersRequest(actor=supplier_user("SUPA")))
    assert [s.supplier_id for s in listed.suppliers] == ["SUPA"]
    with pytest.raises(grpc.aio.AioRpcError) as upsert:
        await stub.UpsertSupplier(
            pb.UpsertSupplierRequest(
                request_id=rid(),
                actor=supplier_user("SUPA"),
                supplier=pb.Supplier(supplier_id="SUPA", code="A", name="Mine", payment_terms_days=1, version=1),
            )
        )
    assert upsert.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_contract_overlapping_another_of_its_supplier_and_sku_is_refused(
    stub: pb_grpc.SupplyServiceAsyncStub,
) -> None:
    await add_supplier(stub, "SUPA")
    created = await stub.CreateContract(
        pb.CreateContractRequest(
            request_id=rid(),
            actor=HQ,
            contract=purchase_contract(
                "SUPA", {"SKU1": (350, "6", "12"), "SKU2": (120, "1", "0")}, valid_until="2027-01-01", allowance="0.05"
            ),
        )
    )
    contract = created.contract
    assert contract.contract_id
    assert [(i.sku, i.unit_cost.minor_units, i.pack_size.value, i.minimum_order.value) for i in contract.items] == [
        ("SKU1", 350, "6", "12"),
        ("SKU2", 120, "1", "0"),
    ]
    assert contract.over_delivery_allowance.value == "0.05"
    with pytest.raises(grpc.aio.AioRpcError) as overlap:
        await stub.CreateContract(
            pb.CreateContractRequest(
                request_id=rid(),
                actor=HQ,
                contract=purchase_contract("SUPA", {"SKU2": (130, "1", "0")}, valid_from="2026-12-01"),
            )
        )
    assert overlap.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(overlap.value) == "contract-overlaps"
    # The next window is fine.
    await stub.CreateContract(
        pb.CreateContractRequest(
            request_id=rid(),
            actor=HQ,
            contract=purchase_contract("SUPA", {"SKU2": (130, "1", "0")}, valid_from="2027-01-01"),
        )
    )
    listed = await stub.ListContracts(
        pb.ListContractsRequest(actor=HQ, supplier_id="SUPA", page=paging_pb2.PageRequest(page_size=1))
    )
    assert [c.valid_from for c in listed.contracts] == ["2027-01-01"]
    rest = await stub.ListContracts(
        pb.ListContractsRequest(
            actor=HQ, supplier_id="SUPA", page=paging_pb2.PageRequest(page_token=listed.page.next_page_token)
        )
    )
    assert [c.contract_id for c in rest.contracts] == [contract.contract_id]


async def test_two_overlapping_contracts_sent_at_once_are_not_both_accepted(
    stub: pb_grpc.SupplyServiceAsyncStub,
) -> None:
    await add_supplier(stub, "SUPA")
    requests = [
        pb.CreateContractRequest(
            request_id=rid(), actor=HQ, contract=purchase_contract("SUPA", {"SKU1": (100 + index, "1", "0")})
        )
        for index in range(8)
    ]
    outcomes = await asyncio.gather(*(stub.CreateContract(r) for r in requests), return_exceptions=True)
    accepted = [o for o in outcomes if isinstance(o, pb.CreateContractResponse)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(accepted) == 1
    assert {e.code() for e in refused} == {grpc.StatusCode.FAILED_PRECONDITION}
    listed = await stub.ListContracts(pb.ListContractsRequest(actor=HQ, supplier_id="SUPA"))
    assert len(listed.contracts) == 1


async def test_bad_contracts_are_refused_precisely(stub: pb_grpc.SupplyServiceAsyncStub) -> None:
    await add_supplier(stub, "SUPA")
    concession = pb.Contract(
        supplier_id="SUPA",
        mode=pb.SETTLEMENT_MODE_CONCESSION,
        valid_from="2026-01-01",
        items=[pb.ContractItem(sku="SKU9")],
        commission_rate=dec("1.2"),
    )
    with pytest.raises(grpc.aio.AioRpcError) as rate:
        await stub.CreateContract(pb.CreateContractRequest(request_id=rid(), actor=HQ, contract=concession))
    assert rate.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(rate.value) == "invalid-contract"
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.CreateContract(
            pb.CreateContractRequest(
                request_id=rid(), actor=HQ, contract=purchase_contract("NOPE", {"SKU1": (1, "1", "0")})
            )
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_two_suppliers_created_at_once_with_one_code_are_not_both_saved(
    stub: pb_grpc.SupplyServiceAsyncStub,
) -> None:
    requests = [
        pb.UpsertSupplierRequest(
            request_id=rid(),
            actor=HQ,
            supplier=pb.Supplier(supplier_id=f"SUP{index}", code="SAME", name="Twin", payment_terms_days=30),
        )
        for index in range(6)
    ]
    outcomes = await asyncio.gather(*(stub.UpsertSupplier(r) for r in requests), return_exceptions=True)
    saved = [o for o in outcomes if isinstance(o, pb.UpsertSupplierResponse)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(saved) == 1
    assert {(e.code(), reason(e)) for e in refused} == {(grpc.StatusCode.ALREADY_EXISTS, "supplier-code-taken")}
    listed = await stub.ListSuppliers(pb.ListSuppliersRequest(actor=HQ))
    assert [s.code for s in listed.suppliers] == ["SAME"]
