"""Supplier contracts: one settlement mode per contract, every rule data, versioned by its window.

Three ways a chain retailer pays a supplier:

* **经销 (purchase, buy-sell)** — the retailer owns the goods from receipt; the supplier is owed
  the accepted quantity × the agreed unit cost, and credited for returns to vendor.
* **代销 (consignment)** — the supplier owns the goods until they sell; it is owed the sold
  quantity × the agreed unit cost, from the SALES journal; a customer return reverses it.
* **联营 (concession)** — the supplier sells in the retailer's store; it is owed the sales
  revenue × (1 − commission rate), the rate per store or chain-wide; returns reverse it.

A contract covers a set of the supplier's SKUs over a validity window ``[valid_from,
valid_until)``; two contracts of one supplier may not cover the same SKU over overlapping
windows (:func:`check_no_overlap`), so every fact has exactly one contract that prices it.
Rates are exact decimals with at most four places (12.5% is ``0.125``); unit costs are integer
fen per unit of the item (per piece, per kg).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from servicekit.errors import FailedPrecondition, InvalidArgument

RATE_PLACES = 4
MAX_FEN = 10**12


class InvalidContract(InvalidArgument):
    reason = "invalid-contract"


class OverlappingContract(FailedPrecondition):
    reason = "contract-overlaps"


class NoContract(FailedPrecondition):
    reason = "no-contract"


class SettlementMode(StrEnum):
    PURCHASE = "purchase"  # 经销
    CONSIGNMENT = "consignment"  # 代销
    CONCESSION = "concession"  # 联营


def check_rate(rate: Decimal, *, field_name: str) -> Decimal:
    """A share from 0 to 1 with at most four decimal places (never a float, never above 100%)."""
    if not isinstance(rate, Decimal) or not rate.is_finite():
        raise InvalidContract(f"{field_name} is an exact decimal", details={"field": field_name})
    exponent = rate.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -RATE_PLACES:
        raise InvalidContract(f"{field_name} has at most {RATE_PLACES} decimal places", details={"field": field_name})
    if not Decimal(0) <= rate <= Decimal(1):
        raise InvalidContract(f"{field_name} is between 0 and 1 (0% to 100%)", details={"field": field_name})
    return rate


def check_fen(amount: int, *, field_name: str) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_FEN:
        raise InvalidContract(f"{field_name} is whole fen from 0 to {MAX_FEN}", details={"field": field_name})
    return amount


@dataclass(frozen=True, slots=True)
class Contract:
    contract_id: str
    supplier_id: str
    mode: SettlementMode
    valid_from: date
    valid_until: date | None  # None: open-ended
    skus: frozenset[str]
    # PURCHASE and CONSIGNMENT: agreed fen per unit, per SKU.
    unit_cost_fen: Mapping[str, int] = field(default_factory=dict)
    # CONCESSION: the retailer's commission, chain-wide and per store where it differs.
    commission_rate: Decimal | None = None
    store_commission_rates: Mapping[str, Decimal] = field(default_factory=dict)
    # Whether goods may be received without a purchase order (direct store delivery).
    allows_direct_delivery: bool = False
    # Whether quality rejects are paid for anyway (usually not).
    rejects_billed: bool = False

    def __post_init__(self) -> None:
        if not self.skus:
            raise InvalidContract("a contract covers at least one SKU", details={"field": "skus"})
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise InvalidContract("a contract ends after it starts", details={"field": "valid_until"})
        if self.mode is SettlementMode.CONCESSION:
            if self.commission_rate is None:
                raise InvalidContract("a concession contract has a commission rate", details={"field": "commission"})
            check_rate(self.commission_rate, field_name="commission_rate")
            for rate in self.store_commission_rates.values():
                check_rate(rate, field_name="store_commission_rates")
            if self.unit_cost_fen:
                raise InvalidContract("a concession is paid from revenue, not unit costs", details={"field": "cost"})
        else:
            missing = sorted(self.skus - set(self.unit_cost_fen))
            if missing:
                raise InvalidContract(
                    f"{self.mode.value} contracts agree a unit cost for every SKU; missing {', '.join(missing[:5])}",
                    details={"field": "unit_cost_fen"},
                )
            for cost in self.unit_cost_fen.values():
                check_fen(cost, field_name="unit_cost_fen")
            if self.commission_rate is not None or self.store_commission_rates:
                raise InvalidContract("only a concession has a commission rate", details={"field": "commission"})

    def covers(self, sku: str, on: date) -> bool:
        return sku in self.skus and self.valid_from <= on and (self.valid_until is None or on < self.valid_until)

    def commission_for(self, store_id: str) -> Decimal:
        rate = self.store_commission_rates.get(store_id, self.commission_rate)
        assert rate is not None  # a concession always has one (checked on creation)
        return rate


def _overlap(a: Contract, b: Contract) -> bool:
    a_ends_after_b_starts = a.valid_until is None or a.valid_until > b.valid_from
    b_ends_after_a_starts = b.valid_until is None or b.valid_until > a.valid_from
    return a_ends_after_b_starts and b_ends_after_a_starts


def check_no_overlap(new: Contract, existing: Iterable[Contract]) -> None:
    """Refuse ``new`` when another contract of its supplier covers one of its SKUs in an overlapping window."""
    for other in existing:
        if other.contract_id == new.contract_id or other.supplier_id != new.supplier_id:
            continue
        shared = new.skus & other.skus
        if shared and _overlap(new, other):
            raise OverlappingContract(
                f"contract {other.contract_id} already covers {sorted(shared)[0]} in an overlapping window",
                details={"contract_id": other.contract_id, "sku": sorted(shared)[0]},
            )


def contract_for(contracts: Iterable[Contract], sku: str, on: date) -> Contract:
    """The one contract that prices ``sku`` on day ``on``."""
    for contract in contracts:
        if contract.covers(sku, on):
            return contract
    raise NoContract(f"no contract covers {sku} on {on.isoformat()}", details={"sku": sku, "on": on.isoformat()})
