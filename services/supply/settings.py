"""Settings of the supply service (environment variables, see servicekit.settings)."""

from __future__ import annotations

from pydantic import Field

from servicekit.settings import GrpcServiceSettings


class SupplySettings(GrpcServiceSettings):
    # Named for supply alone: another service's durable of the same stream must never be shared.
    supply_catalogue_durable: str = Field(
        default="supply-catalogue", pattern=r"^[A-Za-z0-9_-]+$", description="durable consumer of item changes"
    )
    supply_replenishment_durable: str = Field(
        default="supply-replenishment",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="durable consumer of inventory's replenishment suggestions",
    )
    supply_sales_durable: str = Field(
        default="supply-sales", pattern=r"^[A-Za-z0-9_-]+$", description="durable consumer of the SALES journal"
    )
    supply_settlement_durable: str = Field(
        default="supply-settlement",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="durable consumer of supply's own receipts and returns to vendor (settlement's accruals)",
    )
