"""Settings of the inventory service (environment variables, see servicekit.settings)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from servicekit.settings import GrpcServiceSettings


class InventorySettings(GrpcServiceSettings):
    reservation_sweep_seconds: float = Field(default=1.0, gt=0, le=60, description="how often expiries are swept")
    reservation_batch_max: int = Field(default=256, ge=1, le=5000, description="most reservations per coalesced batch")
    replenishment_interval_seconds: float = Field(
        default=3600.0,
        ge=0,
        le=86_400,
        description="how often the replenishment run plans every selling location and publishes what changed; "
        "0 switches the periodic run off (REPLENISHMENT_INTERVAL_SECONDS)",
    )
    replenishment_lead_time_days: int = Field(
        default=2, ge=0, le=60, description="supplier lead time of items whose own is not known"
    )
    replenishment_review_period_days: int = Field(default=7, ge=0, le=28, description="days between two orders")
    replenishment_service_level: Decimal = Field(
        default=Decimal("0.95"),
        gt=Decimal("0.5"),
        lt=1,
        description="chance of not running out before an order arrives",
    )
    overstock_cover_days: Decimal = Field(
        default=Decimal(60), gt=0, le=365, description="more days of cover than this is overstock"
    )
    catalogue_consumer_durable: str = Field(
        default="inventory-catalogue",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="durable JetStream consumer of pricing's item changes (CATALOGUE_CONSUMER_DURABLE)",
    )
    supply_consumer_durable: str = Field(
        default="inventory-supply",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="durable JetStream consumer of supply's goods receipts and returns to vendor "
        "(SUPPLY_CONSUMER_DURABLE)",
    )
    forecast_workers: int = Field(
        default=2, ge=1, le=32, description="threads fitting demand models (each fit takes one CPU for seconds)"
    )
