"""Settings of the marketing service (environment variables, see servicekit.settings)."""

from __future__ import annotations

from pydantic import Field

from servicekit.settings import GrpcServiceSettings


class MarketingSettings(GrpcServiceSettings):
    member_service_target: str = Field(
        default="localhost:50052",
        min_length=1,
        description="the member service's gRPC address, asked for the member of a journal's lookup hash "
        "(MEMBER_SERVICE_TARGET, e.g. dns:///member.retail.svc:50051)",
    )
    member_lookup_timeout_seconds: float = Field(default=5.0, gt=0, le=60, description="deadline of that call")
    hold_sweep_seconds: float = Field(default=5.0, gt=0, le=300, description="how often lapsed coupon holds end")
    launch_poll_seconds: float = Field(default=1.0, gt=0, le=60, description="how often launches are carried on")
    coupon_issue_batch: int = Field(default=1_000, ge=1, le=50_000, description="coupons issued per transaction")
    tag_refresh_seconds: float = Field(
        default=3_600.0,
        ge=0,
        le=86_400,
        description="how often every member's engagement tag and RFM cell are recomputed; 0 switches it off",
    )
    training_poll_seconds: float = Field(default=10.0, gt=0, le=3_600, description="how often queued training runs")
    model_workers: int = Field(default=1, ge=1, le=8, description="threads training models (one CPU each)")
    # Named for marketing alone: another service's durable of the same stream must never be shared.
    marketing_sales_durable: str = Field(
        default="marketing-sales", pattern=r"^[A-Za-z0-9_-]+$", description="durable consumer of the SALES journal"
    )
    marketing_members_durable: str = Field(
        default="marketing-members", pattern=r"^[A-Za-z0-9_-]+$", description="durable consumer of member events"
    )
    marketing_catalogue_durable: str = Field(
        default="marketing-catalogue", pattern=r"^[A-Za-z0-9_-]+$", description="durable consumer of item changes"
    )
