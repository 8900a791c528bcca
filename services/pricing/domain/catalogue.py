"""Catalogue items as pricing sees them: identity, barcode, unit, cost and where they are listed.

Rules
-----
* ``sku``: 1–40 characters, ``[A-Za-z0-9][A-Za-z0-9._-]*``; it is the key of every price rule.
* ``name``: stripped, 1–120 characters. ``category``: a code such as ``C0101``, upper-case
  letters, digits, ``.``, ``_`` or ``-``, at most 20 characters. ``supplier_id``: stripped,
  1–40 characters.
* ``barcode``: EAN-13, EAN-8 or UPC-A (13, 8 or 12 digits) whose last digit is the GS1 check
  digit of the others. Variable-measure in-store EAN-13 codes (prefix 20–29, printed by the
  scale with weight or price inside) follow the same check and are accepted;
  :func:`is_variable_measure` tells them apart.
* ``unit``: ``piece``, ``kg`` (weighed goods, sold in fractional quantities) or ``box``.
* ``cost_fen``: whole fen, not negative; the guard rails compare prices with it.
* ``store_ids``: the stores the item is listed in; **empty means every store**.
  :meth:`Item.listed_in` answers only that; :meth:`Item.sellable_in` also requires ``active``.

:meth:`Item.create` validates every field and raises :class:`InvalidArgument` naming the
first bad one. The plain constructor does not validate, so that rows already stored can be
loaded without paying for it again.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from servicekit.errors import InvalidArgument
from services.pricing.domain.money import validate_fen

SKU_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}", re.ASCII)
_CATEGORY = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,19}", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
BARCODE_LENGTHS = {8: "EAN-8", 12: "UPC-A", 13: "EAN-13"}
MAX_NAME_LENGTH = 120
MAX_SUPPLIER_ID_LENGTH = 40
MAX_STORE_ID_LENGTH = 64


class Unit(enum.StrEnum):
    PIECE = "piece"
    KG = "kg"
    BOX = "box"


def validate_sku(sku: str, *, field: str = "sku") -> str:
    """A SKU code as every pricing record uses it; returned unchanged."""
    if not isinstance(sku, str) or SKU_PATTERN.fullmatch(sku) is None:
        raise InvalidArgument(
            f"{field} {sku!r} must be 1-40 letters, digits, '.', '_' or '-' starting with a letter or digit",
            details={"field": field},
        )
    return sku


def gs1_check_digit(body: str) -> int:
    """The GS1 check digit for the digits before it: weights 3, 1, 3, … from the right."""
    total = sum(int(digit) * (3 if index % 2 == 0 else 1) for index, digit in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def validate_barcode(barcode: str, *, field: str = "barcode") -> str:
    """An EAN-13, EAN-8 or UPC-A code with a correct GS1 check digit; returned unchanged."""
    if not isinstance(barcode, str) or _DIGITS.fullmatch(barcode) is None:
        raise InvalidArgument(f"{field} {barcode!r} must contain digits only", details={"field": field})
    symbology = BARCODE_LENGTHS.get(len(barcode))
    if symbology is None:
        raise InvalidArgument(
            f"{field} {barcode!r} has {len(barcode)} digits; EAN-13 has 13, UPC-A 12 and EAN-8 8",
            details={"field": field},
        )
    expected = gs1_check_digit(barcode[:-1])
    if int(barcode[-1]) != expected:
        raise InvalidArgument(
            f"{field} {barcode!r} is not a valid {symbology}: check digit is {barcode[-1]}, expected {expected}",
            details={"field": field, "expected_check_digit": expected},
        )
    return barcode


def is_variable_measure(barcode: str) -> bool:
    """True for in-store EAN-13 codes (prefix 20–29) that carry a weight or price printed by a scale."""
    return len(barcode) == 13 and barcode[0] == "2"


@dataclass(frozen=True, slots=True)
class Item:
    """A sellable item; build new ones with :meth:`create`."""

    sku: str
    name: str
    category: str
    barcode: str
    unit: Unit
    cost_fen: int
    supplier_id: str
    store_ids: frozenset[str]
    active: bool

    @classmethod
    def create(
        cls,
        *,
        sku: str,
        name: str,
        category: str,
        barcode: str,
        unit: Unit | str,
        cost_fen: int,
        supplier_id: str,
        store_ids: Iterable[str] = frozenset(),
        active: bool = True,
    ) -> Item:
        """Validate every field (see the module docstring) and return the item."""
        validate_sku(sku)
        clean_name = name.strip() if isinstance(name, str) else ""
        if not clean_name or len(clean_name) > MAX_NAME_LENGTH:
            raise InvalidArgument(f"name must be 1-{MAX_NAME_LENGTH} characters", details={"field": "name"})
        if not isinstance(category, str) or _CATEGORY.fullmatch(category) is None:
            raise InvalidArgument(
                f"category {category!r} must be a code such as C0101: 1-20 upper-case letters, digits, '.', '_' or '-'",
                details={"field": "category"},
            )
        validate_barcode(barcode)
        try:
            clean_unit = Unit(unit)
        except ValueError:
            choices = ", ".join(member.value for member in Unit)
            raise InvalidArgument(f"unit {unit!r} must be one of {choices}", details={"field": "unit"}) from None
        validate_fen(cost_fen, field="cost_fen")
        clean_supplier = supplier_id.strip() if isinstance(supplier_id, str) else ""
        if not clean_supplier or len(clean_supplier) > MAX_SUPPLIER_ID_LENGTH:
            raise InvalidArgument(
                f"supplier_id must be 1-{MAX_SUPPLIER_ID_LENGTH} characters", details={"field": "supplier_id"}
            )
        # A bare string is iterable too: "S001" would silently become {"S", "0", "1"}.
        if isinstance(store_ids, str):
            raise InvalidArgument(
                "store_ids must be a collection of store ids, not one string", details={"field": "store_ids"}
            )
        clean_stores = frozenset(store_ids)
        for store_id in clean_stores:
            if not isinstance(store_id, str) or not store_id.strip() or len(store_id) > MAX_STORE_ID_LENGTH:
                raise InvalidArgument(
                    f"store_ids holds {store_id!r}; each must be 1-{MAX_STORE_ID_LENGTH} characters",
                    details={"field": "store_ids"},
                )
        if not isinstance(active, bool):
            raise InvalidArgument("active must be true or false", details={"field": "active"})
        return cls(
            sku=sku,
            name=clean_name,
            category=category,
            barcode=barcode,
            unit=clean_unit,
            cost_fen=cost_fen,
            supplier_id=clean_supplier,
            store_ids=clean_stores,
            active=active,
        )

    def listed_in(self, store_id: str) -> bool:
        """Whether the store carries the item; an empty ``store_ids`` lists it everywhere."""
        return not self.store_ids or store_id in self.store_ids

    def sellable_in(self, store_id: str) -> bool:
        """Listed in the store and not deactivated."""
        return self.active and self.listed_in(store_id)

    @property
    def weighed(self) -> bool:
        """Sold by weight, so quantities may be fractional (and multi-buy offers never apply)."""
        return self.unit is Unit.KG
