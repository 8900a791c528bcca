"""Settings of the alerts service (environment variables, see servicekit.settings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from servicekit.settings import GrpcServiceSettings
from services.alerts.domain.opening_hours import InvalidOpeningHours, OpeningHours, StoreHours, parse_zone

_DURABLE = r"^[A-Za-z0-9_-]+$"


def _readable(parse: Callable[[str], object], text: str) -> None:
    try:
        parse(text)
    except InvalidOpeningHours as exc:
        raise ValueError(exc.message) from None


class AlertsSettings(GrpcServiceSettings):
    # Named for alerts alone: another service's durable of the same stream must never be shared.
    alerts_inventory_durable: str = Field(
        default="alerts-inventory", pattern=_DURABLE, description="durable consumer of inventory's findings and levels"
    )
    alerts_pricing_durable: str = Field(
        default="alerts-pricing", pattern=_DURABLE, description="durable consumer of items, prices and labels"
    )
    alerts_marketing_durable: str = Field(
        default="alerts-marketing", pattern=_DURABLE, description="durable consumer of campaigns and conflicts"
    )
    alerts_supply_durable: str = Field(
        default="alerts-supply", pattern=_DURABLE, description="durable consumer of statement changes"
    )
    alerts_sales_durable: str = Field(
        default="alerts-sales", pattern=_DURABLE, description="durable consumer of the SALES journal"
    )
    business_time_zone: str = Field(
        default="+08:00", description="the chain's business time zone: an offset (+08:00) or a zone name"
    )
    opening_hours: str = Field(default="08:00-22:00", description="stores' default opening hours, HH:MM-HH:MM")
    store_opening_hours: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="per-store opening hours as comma-separated STORE=HH:MM-HH:MM entries (STORE_OPENING_HOURS)",
    )
    terminal_silence_minutes: float = Field(
        default=60, gt=0, le=24 * 60, description="opening-hours minutes a seen terminal may send nothing"
    )
    pos_silence_minutes: float = Field(
        default=30, gt=0, le=24 * 60, description="a store's journal silence kept as a spell from this long"
    )
    terminal_check_seconds: float = Field(
        default=60, ge=0, le=3600, description="how often silent terminals are looked for (0: never)"
    )
    delivery_poll_seconds: float = Field(
        default=2, ge=0, le=600, description="how often due webhook deliveries are sent (0: never)"
    )
    delivery_max_attempts: int = Field(default=8, ge=1, le=50, description="attempts per webhook delivery")
    delivery_backoff_seconds: float = Field(default=5, gt=0, le=3600, description="first retry delay, doubling")
    delivery_timeout_seconds: float = Field(default=5, gt=0, le=60, description="timeout of one webhook POST")

    @field_validator("store_opening_hours", mode="before")
    @classmethod
    def _parse_store_hours(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        hours: dict[str, str] = {}
        for entry in filter(None, (part.strip() for part in value.split(","))):
            store, separator, text = entry.partition("=")
            if not separator or not store.strip():
                raise ValueError(f"{entry!r} must be STORE=HH:MM-HH:MM")
            _readable(OpeningHours.parse, text)
            hours[store.strip()] = text.strip()
        return hours

    @field_validator("opening_hours")
    @classmethod
    def _check_hours(cls, value: str) -> str:
        _readable(OpeningHours.parse, value)
        return value

    @field_validator("business_time_zone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        _readable(parse_zone, value)
        return value

    @property
    def store_hours(self) -> StoreHours:
        return StoreHours.parse(self.business_time_zone, self.opening_hours, self.store_opening_hours)
