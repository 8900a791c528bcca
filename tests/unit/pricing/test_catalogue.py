"""Catalogue items: every field validated with a message naming it; barcodes carry a GS1 check digit."""

from __future__ import annotations

from typing import Any

import pytest

from servicekit.errors import InvalidArgument
from services.pricing.domain.catalogue import Item, Unit, gs1_check_digit, is_variable_measure, validate_barcode

GOOD: dict[str, Any] = {
    "sku": "SKU-1001",
    "name": "  Jasmine rice 5 kg  ",
    "category": "C0101",
    "barcode": "4006381333931",
    "unit": "piece",
    "cost_fen": 3250,
    "supplier_id": "SUP-042",
}


def test_a_valid_item_is_created_with_stripped_name_and_enum_unit() -> None:
    item = Item.create(**GOOD)
    assert item.name == "Jasmine rice 5 kg"
    assert item.unit is Unit.PIECE
    assert item.store_ids == frozenset()
    assert item.active


@pytest.mark.parametrize(
    "barcode",
    [
        pytest.param("4006381333931", id="EAN-13"),
        pytest.param("6901234567892", id="EAN-13 China prefix 690"),
        pytest.param("96385074", id="EAN-8"),
        pytest.param("036000291452", id="UPC-A"),
        pytest.param("2012345006706", id="variable-measure EAN-13 prefix 20"),
        pytest.param("2912345012342", id="variable-measure EAN-13 prefix 29"),
    ],
)
def test_good_barcodes(barcode: str) -> None:
    assert validate_barcode(barcode) == barcode
    assert Item.create(**{**GOOD, "barcode": barcode}).barcode == barcode


@pytest.mark.parametrize(
    ("barcode", "message"),
    [
        pytest.param("4006381333932", "check digit is 2, expected 1", id="wrong EAN-13 check digit"),
        pytest.param("96385075", "not a valid EAN-8", id="wrong EAN-8 check digit"),
        pytest.param("036000291453", "not a valid UPC-A", id="wrong UPC-A check digit"),
        pytest.param("400638133393", "not a valid UPC-A", id="EAN-13 missing a digit"),
        pytest.param("12345", "has 5 digits", id="too short"),
        pytest.param("40063813339310", "has 14 digits", id="GTIN-14 is not a shelf barcode"),
        pytest.param("40063813339A1", "digits only", id="letter"),
        pytest.param(" 4006381333931", "digits only", id="space"),
        pytest.param("", "digits only", id="empty"),
    ],
)
def test_bad_barcodes(barcode: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as raised:
        Item.create(**{**GOOD, "barcode": barcode})
    assert raised.value.details["field"] == "barcode"


def test_gs1_check_digit_and_variable_measure() -> None:
    assert gs1_check_digit("400638133393") == 1
    assert gs1_check_digit("9638507") == 4
    assert is_variable_measure("2012345006706")
    assert not is_variable_measure("4006381333931")
    assert not is_variable_measure("96385074")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sku": ""}, "sku"),
        ({"sku": "-abc"}, "sku"),
        ({"sku": "a" * 41}, "sku"),
        ({"sku": "SKU 1"}, "sku"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"category": ""}, "category"),
        ({"category": "c0101"}, "category"),
        ({"category": "C" * 21}, "category"),
        ({"unit": "litre"}, "unit"),
        ({"cost_fen": -1}, "cost_fen"),
        ({"cost_fen": 12.5}, "cost_fen"),
        ({"supplier_id": " "}, "supplier_id"),
        ({"supplier_id": "s" * 41}, "supplier_id"),
        ({"store_ids": "S001"}, "store_ids"),
        ({"store_ids": {"S001", ""}}, "store_ids"),
        ({"active": "yes"}, "active"),
    ],
    ids=lambda value: str(value)[:30] if isinstance(value, dict) else str(value),
)
def test_each_bad_field_is_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field) as raised:
        Item.create(**{**GOOD, **changes})
    assert raised.value.details["field"] == field


def test_empty_store_list_means_listed_everywhere() -> None:
    everywhere = Item.create(**GOOD)
    two_stores = Item.create(**{**GOOD, "store_ids": ["S001", "S002"]})
    assert everywhere.listed_in("S999")
    assert two_stores.listed_in("S001")
    assert not two_stores.listed_in("S003")


def test_an_inactive_item_is_listed_but_not_sellable() -> None:
    item = Item.create(**{**GOOD, "active": False})
    assert item.listed_in("S001")
    assert not item.sellable_in("S001")


def test_kg_items_are_weighed() -> None:
    assert Item.create(**{**GOOD, "unit": Unit.KG}).weighed
    assert not Item.create(**GOOD).weighed
