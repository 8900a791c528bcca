"""Suppliers: the companies the chain buys from, and who may see what of theirs.

A supplier user is bound to one supplier and sees and acts on that supplier's objects only;
another supplier's purchase order, receipt, invoice or scorecard is *not found* to it (never
"forbidden", so that nothing about another supplier leaks). A store manager receives goods for
their own store only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from servicekit.errors import InvalidArgument, NotFound, PermissionDenied

IDENTIFIER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_PAYMENT_TERMS_DAYS = 365


class InvalidSupplier(InvalidArgument):
    reason = "invalid-supplier"


class UnknownSupplier(NotFound):
    reason = "supplier-not-found"


class NotYourStore(PermissionDenied):
    reason = "not-your-store"


class SupplierOnly(PermissionDenied):
    reason = "supplier-only"


class HeadquartersOnly(PermissionDenied):
    reason = "headquarters-only"


def check_identifier(value: str, *, field_name: str) -> str:
    if not IDENTIFIER.match(value):
        raise InvalidArgument(
            f"{field_name} is 1 to 64 letters, digits, '.', '_' or '-'", details={"field": field_name}
        )
    return value


@dataclass(frozen=True, slots=True)
class Supplier:
    supplier_id: str
    code: str
    name: str
    payment_terms_days: int
    active: bool = True

    def __post_init__(self) -> None:
        if not IDENTIFIER.match(self.supplier_id):
            raise InvalidSupplier("supplier_id is 1 to 64 letters, digits, '.', '_' or '-'", details={"field": "id"})
        if not 1 <= len(self.code.strip()) <= 32:
            raise InvalidSupplier("a supplier's code is 1 to 32 characters", details={"field": "code"})
        if not 1 <= len(self.name.strip()) <= 200:
            raise InvalidSupplier("a supplier's name is 1 to 200 characters", details={"field": "name"})
        if not 0 <= self.payment_terms_days <= MAX_PAYMENT_TERMS_DAYS:
            raise InvalidSupplier(
                f"payment terms are 0 to {MAX_PAYMENT_TERMS_DAYS} days", details={"field": "payment_terms_days"}
            )


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks, as the gateway vouched for it."""

    client_id: str
    kind: str  # app, pos_terminal, supplier_user, staff
    role: str  # store_guide, store_manager, headquarters ('' for non-staff)
    store_id: str = ""
    supplier_id: str = ""

    @property
    def is_supplier(self) -> bool:
        return self.kind == "supplier_user" or bool(self.supplier_id)

    @property
    def headquarters(self) -> bool:
        return self.kind == "staff" and self.role == "headquarters" and not self.supplier_id

    @property
    def store_bound(self) -> bool:
        """Store staff or a terminal: acts for its own store only."""
        return self.kind == "pos_terminal" or (self.kind == "staff" and self.role != "headquarters")

    def sees(self, supplier_id: str) -> bool:
        """Whether an object of ``supplier_id`` exists for this actor (a supplier user sees its own only)."""
        return not self.is_supplier or self.supplier_id == supplier_id

    def supplier_filter(self, wanted: str) -> str | None:
        """The supplier a list is confined to: a supplier user's own (whatever it asked), else ``wanted``."""
        if self.is_supplier:
            return self.supplier_id or "\x00no-supplier"
        return wanted or None

    def check_receives_at(self, location_id: str) -> None:
        """A store's staff receive goods at their own store only; suppliers never record receipts."""
        if self.is_supplier:
            raise SupplierOnly("suppliers do not record receipts", reason="receipts-by-the-retailer")
        if self.store_bound and location_id != self.store_id:
            raise NotYourStore("a store's staff receive goods for their own store only")

    def check_retailer(self) -> None:
        """Buyers' and headquarters' commands: never a supplier user's."""
        if self.is_supplier:
            raise SupplierOnly("a supplier may not do this", reason="retailer-only")
