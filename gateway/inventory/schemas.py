"""The inventory HTTP models: what a request carries and what an answer holds."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, Field, model_validator

from gateway.http import problems
from gateway.http.integer_types import Int32
from gateway.http.schemas import Strict

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
_QUANTITY = r"^[0-9]{1,6}(\.[0-9]{1,3})?$"
LocationId = Annotated[str, Path(pattern=ID_PATTERN, description="a location id, e.g. S001, W01, ONLINE01")]
Sku = Annotated[str, Path(pattern=ID_PATTERN, description="a SKU code, e.g. SKU00001")]
MAX_HISTORY_LINES = 10_000
MAX_COUNT_LINES = 5_000


class Location(BaseModel):
    location_id: str
    name: str
    kind: str = Field(description="store, warehouse or online")
    city: str
    channels: list[str] = Field(description="sales channels served: store, online, mini_program, click_and_collect")


class StockLevel(BaseModel):
    sku: str
    location_id: str
    on_hand: str
    reserved: str
    in_transit: str
    safety_stock: str
    available_to_promise: str = Field(description="on_hand − reserved − safety_stock, never below zero")


class SkuAvailability(BaseModel):
    sku: str
    total_available_to_promise: str
    levels: list[StockLevel]


class LocationStockPage(BaseModel):
    levels: list[StockLevel]
    next_page_token: str | None = Field(description="pass as page_token for the next page; null on the last one")


SalesChannel = Literal["online", "mini_program", "click_and_collect", "store"]


class ReservationIn(Strict):
    """Hold units of one SKU for an order. Give exactly one of `location_id` (hold there) or
    `channel` (hold where the channel may draw from); neither or both is `422`.

    A channel draws only from the active locations that list it in their `channels` (see
    `GET /v1/locations`). In the demo: `online` from the online shop ONLINE01;
    `mini_program` from ONLINE01 and the stores that deliver; `click_and_collect` from the
    stores offering pick-up; `store` from every store. A warehouse serves no channel: its
    stock reaches one by a transfer and is never promised to an order directly.
    """

    sku: str = Field(pattern=ID_PATTERN, examples=["SKU00001"])
    quantity: str = Field(pattern=_QUANTITY, description="units, or kg with up to 3 decimals", examples=["2"])
    location_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="hold at this location (instead of `channel`)",
        examples=["ONLINE01"],
    )
    channel: SalesChannel | None = Field(
        default=None,
        description="hold at the location serving this channel with the most available to promise (instead of "
        "`location_id`); it draws only from locations that list the channel, never from a warehouse",
        examples=["online"],
    )
    ttl_seconds: Int32 | None = Field(default=None, ge=1, le=172_800, description="hold time; default 900 s")
    allow_split: bool = Field(default=False, description="with `channel`: allow splitting across its locations")

    @model_validator(mode="after")
    def exactly_one_place(self) -> ReservationIn:
        if (self.location_id is None) == (self.channel is None):
            raise ValueError("give exactly one of location_id or channel")
        return self


class LocationStockFact(BaseModel):
    """What one location holds of the SKU, and which sales channels it serves."""

    location_id: str
    kind: str = Field(description="store, warehouse or online")
    channels: list[str]
    available_to_promise: str


class OutOfStockProblem(problems.Problem):
    """`409 out-of-stock`: how much could be promised, and where the rest of the stock is."""

    sku: str | None = None
    requested: str | None = None
    available: str | None = Field(
        default=None, description="the most one location can promise (with allow_split: the channel's total)"
    )
    channel: str | None = Field(default=None, description="the channel asked for, when reserving by channel")
    available_total: str | None = Field(default=None, description="what the channel's locations hold together")
    draws_from: list[LocationStockFact] | None = Field(default=None, description="the locations serving the channel")
    not_promisable: list[LocationStockFact] | None = Field(
        default=None, description="locations holding stock that do not serve the channel (e.g. the warehouse)"
    )


class Allocation(BaseModel):
    location_id: str
    quantity: str


class ReservationOut(BaseModel):
    reservation_id: str
    sku: str
    status: str
    allocations: list[Allocation]
    expires_at: str
    sale_id: str | None = None


class TransferIn(Strict):
    sku: str = Field(pattern=ID_PATTERN)
    quantity: str = Field(pattern=_QUANTITY)
    from_location_id: str = Field(pattern=ID_PATTERN)
    to_location_id: str = Field(pattern=ID_PATTERN)


class ReceiveIn(Strict):
    received_quantity: str = Field(pattern=_QUANTITY, description="how many arrived; at most what was dispatched")


class TransferOut(BaseModel):
    transfer_id: str
    sku: str
    from_location_id: str
    to_location_id: str
    quantity: str
    status: str
    received_quantity: str


TransferStatusName = Literal["requested", "dispatched", "received", "cancelled"]


class TransferListingOut(TransferOut):
    requested_at: datetime = Field(description="when the transfer was requested")
    updated_at: datetime = Field(description="when its status last changed")


class TransferPageOut(BaseModel):
    """A page of the transfers into or out of a location, newest request first."""

    transfers: list[TransferListingOut]
    next_page_token: str | None = Field(description="pass as page_token for the next page; null on the last one")


class CountLineIn(Strict):
    sku: str = Field(pattern=ID_PATTERN)
    counted_quantity: str = Field(pattern=_QUANTITY)
    reason: str | None = Field(default=None, max_length=200)


class StockCountIn(Strict):
    lines: list[CountLineIn] = Field(min_length=1, max_length=MAX_COUNT_LINES)


class StockCountOut(BaseModel):
    adjusted_levels: int


class HistoryLineIn(Strict):
    sku: str = Field(pattern=ID_PATTERN)
    date: date
    quantity: str = Field(pattern=_QUANTITY)


class SalesHistoryIn(Strict):
    lines: list[HistoryLineIn] = Field(min_length=1, max_length=MAX_HISTORY_LINES)


class SalesHistoryOut(BaseModel):
    imported_lines: int


class DailyDemandOut(BaseModel):
    date: Annotated[date, Field(description="business day (China Standard Time)", examples=["2026-11-24"])]
    quantity: str = Field(
        description="point forecast: units (kg for loose goods) that day with the lowest expected absolute error "
        "(the expected demand, or a slow mover's median: see backtest.point_estimate)",
        examples=["12.431"],
    )
    expected_quantity: str | None = Field(
        None,
        description="expected (mean) demand, what replenishment plans with; null if too short to backtest",
        examples=["12.9"],
    )
    lower_80: str | None = Field(None, description="80% prediction interval, lower end", examples=["8"])
    upper_80: str | None = Field(None, description="80% prediction interval, upper end", examples=["18.2"])
    lower_95: str | None = Field(None, description="95% prediction interval, lower end", examples=["6.1"])
    upper_95: str | None = Field(None, description="95% prediction interval, upper end", examples=["21.7"])


class MethodBacktestOut(BaseModel):
    """One method's errors on the SKU's held-out history."""

    method: str = Field(examples=["ets_damped_trend"])
    mae: str | None = Field(description="mean absolute error, units a day", examples=["2.104"])
    wape: str | None = Field(
        description="total absolute error ÷ total actual sales; null if it sold nothing then", examples=["0.3012"]
    )


class BacktestOut(BaseModel):
    """The SKU's own held-out history, forecast from rolling origins: the method that serves it, beside the
    baselines (seasonal naive: same weekday last week; and the mean of the last 28 days)."""

    metric: str = Field(
        description="wape: total absolute error ÷ total actual sales; lower is better", examples=["wape"]
    )
    model_error: str | None = Field(
        description="the served method's error on this SKU; null if it sold nothing then", examples=["0.4123"]
    )
    baseline_error: str | None = Field(
        description="seasonal naive's error on this SKU; null if it sold nothing then", examples=["0.5871"]
    )
    location_model_error: str = Field(
        description="the served methods' error over all SKUs of the location", examples=["0.331"]
    )
    location_baseline_error: str = Field(
        description="seasonal naive's error over all SKUs of the location", examples=["0.4502"]
    )
    location_recent_mean_error: str | None = Field(
        None, description="the 28-day mean's error over all SKUs of the location", examples=["0.3677"]
    )
    horizon_days: int = Field(description="days each backtest origin forecasts (7, 14 or 28)", examples=[14])
    origin_dates: list[date] = Field(description="first held-out day of each origin")
    method: str | None = Field(
        None,
        description="what serves this SKU: a method, several joined by + (their average), or a baseline when "
        "nothing beat it",
        examples=["ets_level+weekday_mean_28d"],
    )
    point_estimate: str | None = Field(
        None, description="mean or median: what the point forecast is", examples=["mean"]
    )
    served: MethodBacktestOut | None = Field(None, description="the served forecast's errors on this SKU")
    seasonal_naive: MethodBacktestOut | None = Field(None, description="seasonal naive's errors on this SKU")
    recent_mean: MethodBacktestOut | None = Field(None, description="the 28-day mean's errors on this SKU")
    candidates: list[MethodBacktestOut] = Field(default_factory=list, description="every candidate's errors")
    coverage_80: str | None = Field(
        None, description="share of held-out days inside the 80% interval", examples=["0.8036"]
    )
    coverage_95: str | None = Field(
        None, description="share of held-out days inside the 95% interval", examples=["0.9464"]
    )


class ForecastOut(BaseModel):
    """Forecast daily sales of one SKU at one location from today on, with intervals and the backtest behind them."""

    location_id: str = Field(examples=["S001"])
    sku: str = Field(examples=["SKU00001"])
    forecast: list[DailyDemandOut] = Field(description="one entry per day from today, horizon_days in all")
    backtest: BacktestOut | None = Field(description="null when the history is too short to hold any days out")
    history_end_date: date | None = Field(
        description="last day of sales history the model learned from; days after it are forecast, not taken as zero"
    )


class SuggestionOut(BaseModel):
    """What to order of one SKU, and the figures behind it."""

    sku: str = Field(examples=["SKU00001"])
    supplier_id: str = Field(examples=["SUP001"])
    as_of_date: date = Field(examples=["2026-11-24"])
    lead_time_days: int = Field(examples=[3])
    review_period_days: int = Field(examples=[7])
    service_level: str = Field(examples=["0.95"])
    on_hand: str = Field(examples=["40"])
    reserved: str = Field(examples=["2"])
    in_transit: str = Field(examples=["0"])
    available_to_promise: str = Field(description="on hand − reserved − the level's safety stock", examples=["30"])
    inventory_position: str = Field(description="on hand − reserved + in transit", examples=["38"])
    lead_time_forecast: str = Field(description="forecast demand over the lead time", examples=["36.2"])
    protection_forecast: str = Field(description="forecast demand over lead time + review period", examples=["120.5"])
    daily_error_std: str = Field(
        description="σ of daily demand above its mean over the lead time (95% interval)", examples=["3.1"]
    )
    safety_stock: str = Field(description="z(service level) × σ × √(lead time)", examples=["8.832"])
    reorder_point: str = Field(description="lead-time forecast + safety stock", examples=["45.032"])
    order_up_to: str = Field(description="protection forecast + safety stock", examples=["129.332"])
    suggested_quantity: str = Field(
        description="order-up-to − inventory position, rounded up to whole pieces (loose goods to the gram), ≥ 0",
        examples=["92"],
    )
    reorder_due: bool = Field(description="the inventory position is at or below the reorder point")
    days_of_cover: str | None = Field(
        description="days the shelf stock lasts at the forecast rate; null if no demand", examples=["9.4"]
    )


class AlertOut(BaseModel):
    sku: str = Field(examples=["SKU00001"])
    kind: str = Field(description="low_stock or overstock", examples=["low_stock"])
    available_to_promise: str = Field(examples=["4"])
    reorder_point: str = Field(examples=["45.032"])
    days_of_cover: str | None = Field(description="null when no demand is forecast", examples=["1.2"])
    overstock_cover_days: str = Field(description="more days of cover than this is overstock", examples=["60"])


class ReplenishmentPageOut(BaseModel):
    """A page of a location's order suggestions (by SKU) and the alerts among them."""

    location_id: str = Field(examples=["S001"])
    as_of_date: date = Field(examples=["2026-11-24"])
    suggestions: list[SuggestionOut]
    alerts: list[AlertOut]
    next_page_token: str | None = Field(description="pass as page_token for the next page; null on the last one")


class SkuKpisOut(BaseModel):
    sku: str = Field(examples=["SKU00001"])
    from_date: date = Field(description="first day counted (its stock is known from its first ledger movement on)")
    to_date: date
    days: int = Field(examples=[30])
    units_sold: str = Field(examples=["312"])
    shrink: str = Field(description="negative count adjustments and transfer shortfalls", examples=["3"])
    closing_stock: str = Field(examples=["41"])
    stock_out_rate: str = Field(description="share of days closing with nothing on hand", examples=["0.0333"])
    sell_through_rate: str | None = Field(description="sold ÷ (sold + closing stock)", examples=["0.8838"])
    days_of_cover: str | None = Field(description="average stock ÷ average daily sales", examples=["4.1"])
    shrink_rate: str | None = Field(description="shrink ÷ (sold + shrink)", examples=["0.0095"])


class DiscrepancyTallyOut(BaseModel):
    kind: str = Field(
        description="negative_stock: a sale took on-hand below zero (applied; to investigate); unknown_sku, "
        "unknown_location: a sale or return line inventory could not apply yet (it waits and is applied once the "
        "SKU or location exists); unreadable_quantity: a line whose quantity cannot move stock",
        examples=["unknown_sku"],
    )
    recorded: int = Field(description="recorded for sales and returns that happened in the period", examples=[3])
    open: int = Field(description="of those, still open: lines not applied yet, shortfalls not resolved", examples=[1])


class CategoryKpisOut(BaseModel):
    """The location's KPIs over one category's SKUs."""

    category_id: str = Field(description='the category ("" for SKUs without one)', examples=["dairy"])
    skus_carried: int = Field(examples=[42])
    skus_sold: int = Field(examples=[39])
    sell_through_rate: str | None = Field(description="动销率: share of the category's SKUs that sold")
    stock_out_rate: str | None = Field(description="share of the category's SKU-days closing with nothing on hand")
    days_of_cover: str | None = Field(description="turnover days over the category; null when nothing sold")
    shrink_rate: str | None = Field(description="shrink ÷ (sold + shrink) over the category")
    overstocked_skus: int = Field(
        description="SKUs ending the period with stock and more days of cover than the overstock threshold, "
        "or with stock and no sales"
    )
    overstock_rate: str | None = Field(description="overstocked_skus ÷ skus_carried", examples=["0.0714"])


class StockKpisOut(BaseModel):
    """Stock KPIs of a location over a period, overall and per SKU, and the discrepancies its sales left."""

    location_id: str = Field(examples=["S001"])
    from_date: date = Field(examples=["2026-10-26"])
    to_date: date = Field(examples=["2026-11-24"])
    skus_carried: int = Field(examples=[287])
    skus_sold: int = Field(examples=[261])
    sell_through_rate: str | None = Field(description="动销率: share of carried SKUs that sold", examples=["0.9094"])
    stock_out_rate: str | None = Field(
        description="share of SKU-days closing with nothing on hand", examples=["0.0412"]
    )
    days_of_cover: str | None = Field(
        description="turnover days: average stock ÷ average daily sales", examples=["11.3"]
    )
    shrink_rate: str | None = Field(description="shrink ÷ (sold + shrink)", examples=["0.0061"])
    skus: list[SkuKpisOut]
    categories: list[CategoryKpisOut] = Field(description="the same KPIs per category, by category id")
    discrepancies: list[DiscrepancyTallyOut] = Field(description="one tally per kind that occurred in the period")


class PendingSaleLineOut(BaseModel):
    """A journaled sale or return line inventory recorded but has not applied: its SKU or location is unknown."""

    discrepancy_id: str
    kind: str = Field(description="unknown_sku or unknown_location", examples=["unknown_sku"])
    sale_id: str = Field(examples=["S001-POS01-20261124-000042"])
    location_id: str = Field(examples=["S001"])
    sku: str = Field(examples=["SKU00030"])
    quantity: str = Field(examples=["1"])
    is_return: bool = Field(description="a return's line (units come back) rather than a sale's")
    occurred_at: datetime | None = Field(description="when the sale happened at the till")


class PendingSaleLinesOut(BaseModel):
    """What applying the waiting sale lines of a location did, and what still waits."""

    applied_lines: int = Field(description="lines this request applied", examples=[2])
    pending_total: int = Field(description="lines still waiting for their SKU or location", examples=[1])
    pending_lines: list[PendingSaleLineOut] = Field(description="the oldest of those, at most 100")
