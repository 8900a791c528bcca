"""A contract with everything else it agrees: per SKU the pack size and minimum order, the
over-delivery allowance and invoice price tolerance, the statement cycle, rebate tiers and
quality bands. Every rule is data, versioned by the contract's window."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from services.supply.domain.contracts import Contract, InvalidContract, check_rate
from services.supply.domain.purchase_orders import check_quantity, order_quantity
from services.supply.domain.settlement import QualityBand, RateTier, SettlementCycle

MAX_SKUS = 5_000


@dataclass(frozen=True, slots=True)
class ItemTerms:
    pack_size: Decimal = Decimal(1)
    minimum_order: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        check_quantity(self.pack_size, field_name="pack_size")
        check_quantity(self.minimum_order, field_name="minimum_order", allow_zero=True)

    def order_quantity(self, suggested: Decimal) -> Decimal:
        return order_quantity(suggested, self.pack_size, self.minimum_order)


@dataclass(frozen=True, slots=True)
class ContractTerms:
    contract: Contract
    items: Mapping[str, ItemTerms] = field(default_factory=dict)
    over_delivery_allowance: Decimal = Decimal(0)
    price_tolerance: Decimal = Decimal(0)
    cycle: SettlementCycle = field(default_factory=SettlementCycle)
    rebate_tiers: tuple[RateTier, ...] = ()
    quality_bands: tuple[QualityBand, ...] = ()

    def __post_init__(self) -> None:
        if len(self.contract.skus) > MAX_SKUS:
            raise InvalidContract(f"a contract covers at most {MAX_SKUS} SKUs", details={"field": "items"})
        check_rate(self.over_delivery_allowance, field_name="over_delivery_allowance")
        check_rate(self.price_tolerance, field_name="price_tolerance")
        for tier in self.rebate_tiers:
            check_rate(tier.rate, field_name="rebate_tiers.rate")
            if tier.threshold_fen < 0:
                raise InvalidContract("a rebate threshold is 0 fen or more", details={"field": "rebate_tiers"})
        for band in self.quality_bands:
            check_rate(band.rate, field_name="quality_bands.rate")
            if not Decimal(0) <= band.score_below <= Decimal(100):
                raise InvalidContract("a quality band's score is 0 to 100", details={"field": "quality_bands"})
        unknown = sorted(set(self.items) - self.contract.skus)
        if unknown:
            raise InvalidContract(f"terms for a SKU the contract does not cover: {unknown[0]}")

    def item(self, sku: str) -> ItemTerms:
        return self.items.get(sku, ItemTerms())

    @property
    def contract_id(self) -> str:
        return self.contract.contract_id

    def covers(self, sku: str, on: date) -> bool:
        return self.contract.covers(sku, on)
