"""Suppliers, who sees what of theirs, and a contract's item terms and policies."""

from datetime import date
from decimal import Decimal

import pytest

from services.supply.domain.contracts import Contract, InvalidContract, SettlementMode
from services.supply.domain.purchase_orders import InvalidQuantity
from services.supply.domain.settlement import QualityBand, RateTier
from services.supply.domain.suppliers import (
    Actor,
    InvalidSupplier,
    NotYourStore,
    Supplier,
    SupplierOnly,
)
from services.supply.domain.terms import ContractTerms, ItemTerms

HQ = Actor("hq", "staff", "headquarters")
PORTAL_A = Actor("portal-a", "supplier_user", "", supplier_id="SUPA")
MANAGER_1 = Actor("m1", "staff", "store_manager", store_id="S001")


def contract(**changes: object) -> Contract:
    fields: dict[str, object] = {
        "contract_id": "C1",
        "supplier_id": "SUPA",
        "mode": SettlementMode.PURCHASE,
        "valid_from": date(2026, 1, 1),
        "valid_until": None,
        "skus": frozenset({"SKU1", "SKU2"}),
        "unit_cost_fen": {"SKU1": 350, "SKU2": 120},
    }
    fields.update(changes)
    return Contract(**fields)  # type: ignore[arg-type]


def test_a_supplier_has_a_code_a_name_and_payment_terms_within_a_year() -> None:
    assert Supplier("SUPA", "A", "Alpha", 30).active
    for bad in (
        {"supplier_id": "has space"},
        {"code": " "},
        {"name": ""},
        {"payment_terms_days": 366},
        {"payment_terms_days": -1},
    ):
        fields: dict[str, object] = {"supplier_id": "SUPA", "code": "A", "name": "Alpha", "payment_terms_days": 30}
        fields.update(bad)
        with pytest.raises(InvalidSupplier):
            Supplier(**fields)  # type: ignore[arg-type]


def test_a_supplier_user_sees_its_own_supplier_only_and_lists_are_forced_to_it() -> None:
    assert PORTAL_A.sees("SUPA")
    assert not PORTAL_A.sees("SUPB")
    assert PORTAL_A.supplier_filter("SUPB") == "SUPA"
    assert PORTAL_A.supplier_filter("") == "SUPA"
    assert HQ.sees("SUPB")
    assert HQ.supplier_filter("") is None
    assert HQ.supplier_filter("SUPB") == "SUPB"
    # A supplier user without its binding sees nothing rather than everything.
    unbound = Actor("portal-x", "supplier_user", "")
    assert not unbound.sees("SUPA")
    assert unbound.supplier_filter("") not in ("", None, "SUPA")


def test_a_store_manager_receives_for_their_own_store_and_a_supplier_never_does() -> None:
    MANAGER_1.check_receives_at("S001")
    HQ.check_receives_at("S002")
    with pytest.raises(NotYourStore):
        MANAGER_1.check_receives_at("S002")
    with pytest.raises(SupplierOnly):
        PORTAL_A.check_receives_at("S001")
    with pytest.raises(SupplierOnly):
        PORTAL_A.check_retailer()
    HQ.check_retailer()


def test_item_terms_round_orders_to_packs_and_minimums() -> None:
    terms = ItemTerms(pack_size=Decimal(6), minimum_order=Decimal(12))
    assert terms.order_quantity(Decimal("7.5")) == Decimal(12)
    assert terms.order_quantity(Decimal(13)) == Decimal(18)
    assert ItemTerms().order_quantity(Decimal("2.5")) == Decimal(3)
    assert ItemTerms(pack_size=Decimal("0.5")).order_quantity(Decimal("1.2")) == Decimal("1.5")
    with pytest.raises(InvalidQuantity):
        ItemTerms(pack_size=Decimal(0))
    with pytest.raises(InvalidQuantity):
        ItemTerms(minimum_order=Decimal(-1))


def test_contract_terms_hold_rates_between_0_and_1_and_terms_only_for_covered_skus() -> None:
    terms = ContractTerms(
        contract(),
        items={"SKU1": ItemTerms(Decimal(6))},
        over_delivery_allowance=Decimal("0.05"),
        price_tolerance=Decimal("0.01"),
        rebate_tiers=(RateTier(1_000_000, Decimal("0.02")),),
        quality_bands=(QualityBand(Decimal(90), Decimal("0.01")),),
    )
    assert terms.item("SKU1").pack_size == 6
    assert terms.item("SKU2") == ItemTerms()
    for bad in (
        {"over_delivery_allowance": Decimal("1.5")},
        {"price_tolerance": Decimal("-0.01")},
        {"over_delivery_allowance": Decimal("0.00001")},
        {"items": {"SKU9": ItemTerms()}},
        {"rebate_tiers": (RateTier(-1, Decimal("0.01")),)},
        {"quality_bands": (QualityBand(Decimal(101), Decimal("0.01")),)},
        {"quality_bands": (QualityBand(Decimal(90), Decimal("2")),)},
    ):
        with pytest.raises(InvalidContract):
            ContractTerms(contract(), **bad)  # type: ignore[arg-type]
