"""Settings of the inventory service (environment variables, see servicekit.settings)."""

from __future__ import annotations

from pydantic import Field

from servicekit.settings import BaseServiceSettings


class InventorySettings(BaseServiceSettings):
    grpc_host: str = Field(default="0.0.0.0", description="interface the gRPC API listens on (GRPC_HOST)")  # noqa: S104
    grpc_port: int = Field(default=50051, ge=0, le=65535, description="gRPC port (GRPC_PORT)")
    reservation_sweep_seconds: float = Field(default=1.0, gt=0, le=60, description="how often expiries are swept")
    reservation_batch_max: int = Field(default=256, ge=1, le=5000, description="most reservations per coalesced batch")
