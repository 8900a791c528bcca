"""The marketing HTTP models: what a request carries and what an answer holds.

Money is a decimal string of yuan with at most two decimals (``"20.00"``), as everywhere in
the API; the services keep integer fen. Report figures that are means per member (not whole
fen) are yuan strings rounded to the fen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, Field, model_validator

from gateway.http.integer_types import Int32, Int64
from gateway.http.schemas import Strict

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
MEMBER_ID_PATTERN = r"^M[0-9]{7,12}$"
CODE_PATTERN = r"^[A-Za-z0-9 _-]{4,40}$"
_YUAN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"

Yuan = Annotated[str, Field(pattern=_YUAN, description="yuan, at most 2 decimals, never negative", examples=["20.00"])]
SegmentId = Annotated[str, Path(pattern=ID_PATTERN, description="the segment")]
CampaignId = Annotated[str, Path(pattern=ID_PATTERN, description="the campaign")]
HoldId = Annotated[str, Path(pattern=ID_PATTERN, description="the hold")]
MemberId = Annotated[str, Path(pattern=MEMBER_ID_PATTERN, description="the member")]
CouponCodeText = Annotated[str, Path(pattern=CODE_PATTERN, description="the coupon code as printed or typed")]
SalesChannelName = Literal["app", "mini_program", "store"]
ContactChannelName = Literal["sms", "app_push", "wechat", "email"]
CampaignStatusName = Literal["draft", "approved", "launching", "running", "ended"]


class SegmentIn(Strict):
    name: str = Field(min_length=1, max_length=120, examples=["Dairy buyers at risk"])
    description: str = Field(default="", max_length=2000)
    rule: dict[str, Any] = Field(
        description="the rule: all/any/not over member attributes (see docs/marketing.md)",
        examples=[{"attribute": "engagement", "op": "in", "value": ["at_risk"]}],
    )


class RuleIn(Strict):
    rule: dict[str, Any] = Field(examples=[{"attribute": "tier", "op": "in", "value": ["gold"]}])


class SnapshotOut(BaseModel):
    snapshot_id: str
    segment_id: str
    as_of: datetime
    members: Int64
    members_by_stage: dict[str, Int64]


class SegmentOut(BaseModel):
    segment_id: str
    name: str
    description: str
    rule: dict[str, Any]
    created_at: datetime
    created_by: str
    latest_snapshot: SnapshotOut | None = None


class SegmentPage(BaseModel):
    segments: list[SegmentOut]
    next_page_token: str | None = None


class PreviewOut(BaseModel):
    members: Int64
    members_by_stage: dict[str, Int64]
    as_of: datetime


class OfferIn(Strict):
    kind: Literal["amount_off", "percent_off"]
    amount_off: Yuan | None = Field(default=None, description="with kind amount_off")
    percent_off_bp: Int32 | None = Field(
        default=None, ge=1, le=10_000, description="with kind percent_off: 1,500 = 15%"
    )
    skus: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(default_factory=list, max_length=500)
    categories: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=100)
    min_spend: Yuan = "0"
    max_discount: Yuan | None = None
    stacking_group: str = Field(default="default", min_length=1, max_length=64)
    exclusive: bool = False
    stacks_with: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _one_amount(self) -> OfferIn:
        if (self.kind == "amount_off") != (self.amount_off is not None) or (self.kind == "percent_off") != (
            self.percent_off_bp is not None
        ):
            raise ValueError("amount_off goes with kind amount_off, percent_off_bp with kind percent_off")
        return self


class OfferOut(BaseModel):
    kind: str
    amount_off: str | None = None
    percent_off_bp: int | None = None
    skus: list[str]
    categories: list[str]
    min_spend: str
    max_discount: str | None = None
    stacking_group: str
    exclusive: bool
    stacks_with: list[str]


class TermsIn(Strict):
    valid_from: datetime
    valid_until: datetime
    store_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(default_factory=list, max_length=500)
    channels: list[SalesChannelName] = Field(default_factory=list, max_length=3)
    per_member_limit: Int32 = Field(default=1, ge=1, le=100)


class TermsOut(BaseModel):
    valid_from: datetime
    valid_until: datetime
    store_ids: list[str]
    channels: list[str]
    per_member_limit: int


class CampaignIn(Strict):
    name: str = Field(min_length=1, max_length=120, examples=["Winter dairy"])
    snapshot_id: str = Field(pattern=ID_PATTERN)
    offer: OfferIn
    terms: TermsIn
    contact_channels: list[ContactChannelName] = Field(min_length=1, max_length=4)
    control_fraction_bp: Int32 = Field(ge=100, le=5_000, description="share held out, 1,000 = 10%")
    max_coupons: Int64 | None = Field(default=None, ge=1, le=100_000_000)
    max_discount: Yuan | None = None
    frequency_cap_per_7_days: Int32 = Field(default=0, ge=0, le=50)
    store_id: str | None = Field(default=None, pattern=ID_PATTERN, description="a store's own campaign")
    attribution_days: Int32 = Field(default=14, ge=1, le=365)
    target: Literal["everyone", "propensity", "uplift"] = Field(
        default="everyone",
        description="propensity: only the target_percent of the eligible audience most likely to buy; "
        "uplift: only the target_percent the offer moves most by the uplift model (`409` "
        "`uplift-model-unavailable` while no uplift model beats random targeting). Either way the control "
        "group is drawn from that share",
    )
    target_percent: Int32 | None = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _share_with_target(self) -> CampaignIn:
        if (self.target == "everyone") != (self.target_percent is None):
            raise ValueError("target_percent goes with target propensity or uplift, and only with them")
        return self


class ProgressOut(BaseModel):
    audience: Int64
    excluded_not_targeted: Int64
    excluded_no_consent: Int64
    excluded_erased: Int64
    excluded_frequency_cap: Int64
    excluded_budget: Int64
    treatment: Int64
    control: Int64
    issued: Int64


class CampaignOut(BaseModel):
    campaign_id: str
    name: str
    status: str
    snapshot_id: str
    offer: OfferOut
    terms: TermsOut
    contact_channels: list[str]
    control_fraction_bp: int
    max_coupons: Int64 | None = None
    max_discount: str | None = None
    frequency_cap_per_7_days: int
    store_id: str | None = None
    attribution_days: int
    created_by: str
    approved_by: str | None = None
    created_at: datetime
    launched_at: datetime | None = None
    progress: ProgressOut
    spent: str
    held: str
    target: str
    target_percent: int | None = None


class CampaignPage(BaseModel):
    campaigns: list[CampaignOut]
    next_page_token: str | None = None


class IntervalOut(BaseModel):
    value: float | None
    low: float | None
    high: float | None


class GroupOut(BaseModel):
    members: Int64
    conversion_rate: float
    revenue_per_member: str
    margin_per_member: str
    average_basket: str
    repurchase_rate: float


class ReportOut(BaseModel):
    campaign_id: str
    window_start: datetime
    window_end: datetime
    final: bool
    treatment: GroupOut
    control: GroupOut
    incremental_revenue_fen: IntervalOut
    incremental_margin_fen: IntervalOut
    coupon_cost: str
    roi: IntervalOut | None = None
    redemptions: Int64
    redemption_conflicts: Int64


class GenericCodeIn(Strict):
    code: str = Field(pattern=CODE_PATTERN, examples=["SPRING-2027"])
    use_limit: Int64 = Field(ge=1, le=10_000_000)


class CouponOut(BaseModel):
    code: str
    member_id: str | None = None
    campaign_id: str
    status: str
    offer: OfferOut | None = None
    terms: TermsOut | None = None
    issued_at: datetime | None = None
    use_limit: Int64
    used: Int64


class CouponPage(BaseModel):
    coupons: list[CouponOut]
    next_page_token: str | None = None


class HoldLineIn(Strict):
    sku: str = Field(pattern=ID_PATTERN)
    amount: Yuan = Field(description="what the line costs before coupons")


class HoldIn(Strict):
    member_id: str = Field(pattern=MEMBER_ID_PATTERN)
    channel: SalesChannelName
    store_id: str | None = Field(default=None, pattern=ID_PATTERN, description="required in a store")
    lines: list[HoldLineIn] = Field(min_length=1, max_length=500)
    with_codes: list[Annotated[str, Field(pattern=CODE_PATTERN)]] = Field(default_factory=list, max_length=9)
    hold_seconds: Int32 | None = Field(default=None, ge=30, le=86_400)


class HoldOut(BaseModel):
    hold_id: str
    code: str
    status: str
    discount: str
    line_discounts: list[str]
    expires_at: datetime


class ReleasedOut(BaseModel):
    hold_id: str
    status: str


class ConflictOut(BaseModel):
    code: str
    sale_id: str
    store_id: str
    member_id: str | None = None
    discount: str
    redeemed_by_sale_id: str | None = None
    occurred_at: datetime
    campaign_id: str | None = None
    reason: str


class ConflictPage(BaseModel):
    conflicts: list[ConflictOut]
    next_page_token: str | None = None


class ModelRunOut(BaseModel):
    model_version: str
    status: str
    horizon_days: int | None = Field(default=None, description="the purchase horizon (none for the uplift model)")
    requested_by: str
    requested_at: datetime
    finished_at: datetime | None = None
    as_of: str | None = None
    training_members: Int64
    served_model: str | None = None
    backtest: dict[str, Any] | None = None
    error: str | None = None
    serving: bool


class ModelStatusOut(BaseModel):
    latest: ModelRunOut | None = None
    serving: ModelRunOut | None = None


class UpliftBacktestOut(BaseModel):
    """How the uplift model ranked members of campaigns it never saw (see docs/marketing.md)."""

    learner: str = Field(description="two_model, transformed_outcome, or random when none beat random targeting")
    qini: float = Field(description="Qini coefficient of the best learner on the held-out campaigns (1 is perfect)")
    qini_random: float = Field(description="random targeting's Qini coefficient: 0 by construction")
    uplift_at_10pct: float = Field(description="treated minus control conversion in the top 10% by predicted uplift")
    qini_by_learner: dict[str, float]
    uplift_at_10pct_by_learner: dict[str, float]
    min_qini: float = Field(description="the Qini a learner must reach to serve")
    holdout: Literal["campaigns", "random_members"] = Field(
        description="campaigns: the most recent ended campaigns were held out; random_members: with fewer than "
        "2 ended campaigns, members of the one campaign were held out at random"
    )
    holdout_campaigns: list[str]
    training_campaigns: list[str]
    training_members: Int64
    holdout_members: Int64
    reading_seconds: float | None = Field(default=None, description="reading the features and outcomes")
    training_seconds: float | None = Field(default=None, description="fitting, judging and scoring every member")
    notes: list[str] = Field(default_factory=list)


class UpliftModelOut(BaseModel):
    """Whether campaigns may target by uplift, the serving model, and the latest training run."""

    status: Literal["serving", "unavailable"] = Field(
        description="serving: campaigns may target by uplift; unavailable: no model beats random targeting yet"
    )
    reason: str | None = Field(
        default=None, description="why targeting by uplift is unavailable: `uplift-model-unavailable` and the cause"
    )
    model_version: str | None = Field(default=None, description="the serving model's version")
    trained_at: datetime | None = None
    training_members: Int64 | None = Field(default=None, description="treated and control members it learned from")
    backtest: UpliftBacktestOut | None = Field(default=None, description="the serving model's backtest")
    latest: ModelRunOut | None = Field(default=None, description="the latest run, whatever its status")


class PropensityOut(BaseModel):
    member_id: str
    horizon_days: int
    expected_purchases: float
    p_active: float
    churn_risk: float
    model_version: str
    model: str
    as_of: str


class TagsOut(BaseModel):
    member_id: str
    engagement: str | None = None
    rfm_cell: str | None = None
    top_categories: list[str]
    preferred_store_id: str | None = None


class RecommendationsOut(BaseModel):
    member_id: str
    skus: list[str]
    model_version: str
