"""Settings of the pricing service (environment variables, see servicekit.settings)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from servicekit.settings import GrpcServiceSettings


class PricingSettings(GrpcServiceSettings):
    min_margin: Decimal = Field(
        default=Decimal("0.05"),
        ge=0,
        lt=1,
        description="regular prices below this margin over cost need an explicit, audited override (MIN_MARGIN)",
    )
    schedule_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="how often due price changes and rule windows are looked for (also woken by writes)",
    )
    price_cache_skus: int = Field(
        default=100_000,
        ge=0,
        le=10_000_000,
        description=(
            "SKUs whose item and rules effective prices keep in memory (PRICE_CACHE_SKUS; 0: read them every "
            "time); never staler than the last committed change (see adapters/price_read_cache.py)"
        ),
    )
    schedule_batch: int = Field(default=500, ge=1, le=10_000, description="SKUs recomputed per transaction")
    outbox_relay_batch: int = Field(
        default=2000,
        ge=1,
        le=4000,  # nats-py's bound on asynchronous publishes in flight: a pass's are all sent at once
        description=(
            "outbox rows the relay publishes per pass, one publish in flight per aggregate of the pass "
            "(OUTBOX_RELAY_BATCH): a chain-wide change writes 50,000 PriceChanged of as many aggregates, and a "
            "pass waits for its slowest ack before the next is read"
        ),
    )
    label_push_batch: int = Field(default=1000, ge=1, le=10_000, description="label pushes claimed per round")
    label_push_rounds: int = Field(
        default=4,
        ge=1,
        le=32,
        description=(
            "claims of LABEL_PUSH_BATCH pushed at once (LABEL_PUSH_ROUNDS): the next is claimed and pushed while "
            "stations still answer the previous ones"
        ),
    )
    label_poll_seconds: float = Field(
        default=2.0, gt=0, le=600, description="how often stations are asked what their labels show"
    )
    label_status_seconds: float = Field(
        default=300.0, gt=0, le=86_400, description="how often every label's online state and battery are refreshed"
    )
    label_retry_base_seconds: float = Field(default=5.0, gt=0, le=3600, description="first retry delay (doubles)")
    label_retry_max_seconds: float = Field(default=600.0, gt=0, le=86_400, description="longest retry delay")
    label_max_attempts: int = Field(default=6, ge=1, le=100, description="pushes before a label is given up")
    label_given_up_retry_seconds: float = Field(
        default=1800.0, gt=0, le=86_400, description="a given-up label is still pushed this often until it confirms"
    )
    label_ack_timeout_seconds: float = Field(
        default=900.0,
        gt=0,
        le=86_400,
        description=(
            "a sent label not confirmed this long is pushed again (counts as an attempt); above the tags' "
            "check-in interval (OpenEPaperLink: 10 minutes by default)"
        ),
    )
    label_ack_deadline_seconds: float = Field(
        default=1200.0,
        gt=0,
        le=86_400,
        description="the parity audit reports labels not confirming their content within this deadline",
    )
    label_station_timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="per request to a station")
    label_station_api_key: str = Field(default="", description="API key of batch label stations, when they need one")
    inventory_consumer_durable: str = Field(
        default="pricing-inventory",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="durable consumer name on INVENTORY (overstock alerts → markdown suggestions)",
    )
