"""The members HTTP models: what a request carries and what an answer holds."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator

from gateway.http import problems
from gateway.http.integer_types import Int32, Int64
from gateway.http.schemas import Strict

MEMBER_ID_PATTERN = r"^M[0-9]{7,12}$"
STORE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


IdentityType = Literal["phone", "wechat_unionid", "wechat_openid", "app_user_id", "pos_card", "email"]
ConsentChannelName = Literal["sms", "wechat", "app_push", "email"]
GenderName = Literal["female", "male"]
# Fields of a member that only the platform itself changes.
PROTECTED_FIELDS = frozenset(
    {
        "member_id",
        "status",
        "points",
        "points_balance",
        "tier",
        "identities",
        "lifecycle_stage",
        "registered_at",
        "registration_channel",
        "home_store_id",
        "purchases",
        "personal_data",
        "contact",
    }
)


class IdentityIn(Strict):
    """One channel identifier."""

    type: IdentityType = Field(examples=["phone"])
    value: str = Field(min_length=1, max_length=254, examples=["13800138000"])
    app_id: str | None = Field(
        default=None, max_length=32, description="the WeChat app of a wechat_openid", examples=["wx0123456789abcdef"]
    )


class AddressIn(Strict):
    province: str = Field(default="", max_length=100, examples=["上海市"])
    city: str = Field(default="", max_length=100, examples=["上海市"])
    district: str = Field(default="", max_length=100, examples=["徐汇区"])
    street: str = Field(default="", max_length=100, examples=["漕溪北路 88 号"])
    postal_code: str = Field(default="", pattern=r"^([0-9]{6})?$", examples=["200030"])


class ProfileIn(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=50, examples=["王小明"])
    birthday: date | None = None
    gender: GenderName | None = None
    address: AddressIn | None = None
    preferences: dict[str, str] = Field(default_factory=dict, max_length=20, examples=[{"diet": "vegetarian"}])


class RegistrationIn(Strict):
    """Register a shopper with one identity; an identity that already belongs to a member returns that member."""

    identity: IdentityIn
    profile: ProfileIn | None = None
    consents: dict[ConsentChannelName, bool] = Field(default_factory=dict, examples=[{"sms": True}])
    channel: Literal["app", "mini_program"] | None = Field(
        default=None,
        description="for app back ends: where the shopper registers (default from the identity type); "
        "POS terminals and store staff always register in their store",
    )


class Registered(BaseModel):
    member_id: str = Field(examples=["M0000001"])
    created: bool = Field(description="false when the identity already belonged to this member")


class Resolved(BaseModel):
    member_id: str = Field(examples=["M0000001"])


class TagsIn(Strict):
    add: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_:-]{0,39}$")]] = Field(
        default_factory=list, max_length=50
    )
    remove: list[str] = Field(default_factory=list, max_length=50)


class MemberPatch(Strict):
    """Profile, preferences, tags and consent. `null` clears a profile field or removes a preference.
    Points, tier, identities and the like cannot be changed this way."""

    name: str | None = Field(default=None, min_length=1, max_length=50)
    birthday: date | None = None
    gender: GenderName | None = None
    address: AddressIn | None = None
    preferences: dict[str, str | None] | None = Field(default=None, max_length=20)
    tags: TagsIn | None = None
    consents: dict[ConsentChannelName, bool] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_protected_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            protected = sorted(PROTECTED_FIELDS & set(data))
            if protected:
                raise problems.ProblemError(
                    problems.VALIDATION_ERROR,
                    f"{', '.join(protected)} cannot be changed this way",
                    extensions={
                        "errors": [
                            {
                                "location": f"body.{name}",
                                "message": "protected: not changeable here",
                                "type": "protected_field",
                            }
                            for name in protected
                        ]
                    },
                )
        return data


class LinkIn(IdentityIn):
    survivor_member_id: str | None = Field(
        default=None,
        pattern=MEMBER_ID_PATTERN,
        description="headquarters only: when the identity belongs to another member, which of the two survives",
    )


class MergeOut(BaseModel):
    merge_id: str
    survivor_member_id: str
    absorbed_member_id: str
    rule: str = Field(description="chosen, older or more_complete")
    points_moved: int


class Linked(BaseModel):
    member_id: str = Field(description="the member holding the identity now (the survivor after a merge)")
    merged: bool
    merge: MergeOut | None = None


class UndoneOut(BaseModel):
    merge_id: str
    survivor_member_id: str
    restored_member_id: str
    undone_at: datetime


class ErasedOut(BaseModel):
    member_id: str
    erased_at: datetime
    also_erased_member_ids: list[str] = Field(description="members merged into this one, erased with it")


class AddressOut(BaseModel):
    province: str
    city: str
    district: str
    street: str
    postal_code: str


class ContactOut(BaseModel):
    name: str | None
    phone: str | None
    birthday: str | None
    email: str | None
    gender: str | None
    address: AddressOut | None


class IdentityOut(BaseModel):
    type: str
    value: str | None = Field(description="masked or clear as the caller may see it; null for store guides")
    app_id: str | None
    linked_at: datetime


class ConsentOut(BaseModel):
    channel: str
    granted: bool
    updated_at: datetime


class TierOut(BaseModel):
    tier: str = Field(examples=["silver"])
    qualifying_spend: str = Field(description="rolling spend, yuan", examples=["2310.50"])
    next_tier: str | None
    spend_to_next_tier: str = Field(examples=["5689.50"])
    grace_until: datetime | None = Field(description="set while the member is below their tier and keeps it")


class PurchasesOut(BaseModel):
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    recency_days: int
    frequency: int = Field(description="purchases in the RFM window")
    monetary: str = Field(description="spend in the RFM window, yuan")
    rfm: str | None = Field(description="recency, frequency and monetary scores 1-5, e.g. '545'")
    favourite_categories: list[str]
    favourite_stores: list[str]
    favourite_hours: list[int]


class MemberOut(BaseModel):
    member_id: str
    status: str
    registered_at: datetime
    registration_channel: str
    home_store_id: str | None
    tier: TierOut
    points_balance: int
    tags: list[str]
    preferences: dict[str, str]
    lifecycle_stage: str = Field(description="new, active, repeat, dormant or churned")
    purchases: PurchasesOut
    consents: list[ConsentOut]
    identities: list[IdentityOut]
    contact: ContactOut | None = Field(description="null for store guides")
    personal_data: str = Field(description="how personal data is shown: masked, none or clear")


class RedemptionIn(Strict):
    points: Int64 = Field(gt=0, le=10_000_000)
    reference: str | None = Field(default=None, max_length=128, description="order or receipt id")
    store_id: str | None = Field(default=None, pattern=STORE_ID_PATTERN, description="where; a terminal's own store")


class PointsEntryOut(BaseModel):
    entry_id: int
    kind: str = Field(description="earn, redeem, expire, reverse, adjust or settle_debt")
    points: int
    sale_id: str | None
    reference: str | None
    reason: str | None
    recorded_at: datetime
    expires_at: datetime | None


class RedemptionOut(BaseModel):
    entry: PointsEntryOut
    balance: int


class ExpiringOut(BaseModel):
    points: int
    expires_at: datetime


class PointsOut(BaseModel):
    member_id: str
    balance: int
    expiring: list[ExpiringOut]
    entries: list[PointsEntryOut]
    next_page_token: str | None


class MemberKpisOut(BaseModel):
    store_id: str | None = Field(description="null for the whole chain")
    from_date: date
    to_date: date
    active_members: int
    repeat_members: int
    repeat_purchase_rate: str | None = Field(description="复购率", examples=["0.3125"])
    sales_count: int
    member_sales_count: int
    net_sales: str = Field(examples=["152340.20"])
    member_net_sales: str
    average_basket: str | None = Field(description="客单价, yuan", examples=["86.40"])
    member_average_basket: str | None
    member_share_of_sales: str | None = Field(examples=["0.6120"])
    new_members: int


class StageCountOut(BaseModel):
    stage: str = Field(description="new, active, repeat, dormant or churned", examples=["active"])
    members: int


class TierCountOut(BaseModel):
    tier: str = Field(examples=["silver"])
    members: int


class ChurnRiskCountOut(BaseModel):
    risk: str = Field(
        description="low: bought within 30 days; medium: idle up to the dormant threshold (90 days); high: "
        "up to the churned threshold (180 days); lost: longer",
        examples=["medium"],
    )
    members: int


class MemberMixOut(BaseModel):
    """How many active members of a home store (or the chain) are in each stage, tier and churn risk. Counts only."""

    store_id: str | None = Field(description="null for the whole chain")
    members: int = Field(description="active members counted")
    lifecycle: list[StageCountOut] = Field(description="every stage, lowest first, zero included")
    tiers: list[TierCountOut] = Field(description="every tier, lowest first, zero included")
    churn_risk: list[ChurnRiskCountOut] = Field(description="every risk, lowest first, zero included")
    as_of: datetime


MemberId = Annotated[str, Path(pattern=MEMBER_ID_PATTERN, description="a member id, e.g. M0000001")]
Purpose = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern=r"\S",
        description="why the member's personal data is read in clear (headquarters; required for a clear view, "
        "audited with it), e.g. a complaint or ticket reference",
        examples=["complaint 2026-1142"],
    ),
]


# ---- legacy imports -------------------------------------------------------------------------------

_YUAN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"
_QUANTITY = r"^[0-9]{1,9}(\.[0-9]{1,3})?$"
ImportYuan = Annotated[str, Field(pattern=_YUAN, description="yuan, at most 2 decimals, never negative")]


class ImportedLineIn(Strict):
    sku: str = Field(min_length=1, max_length=64, examples=["SKU00030"])
    quantity: str = Field(pattern=_QUANTITY, description="units or kilograms, positive", examples=["2"])
    amount: ImportYuan = Field(description="what was paid for the line, yuan", examples=["25.00"])


class ImportedPurchaseIn(Strict):
    occurred_at: AwareDatetime = Field(description="when, with a time zone; never in the future")
    amount: ImportYuan = Field(description="what was paid, yuan", examples=["86.40"])
    store_id: str | None = Field(default=None, pattern=STORE_ID_PATTERN, description="where, if known")
    lines: list[ImportedLineIn] = Field(default_factory=list, max_length=200, description="what, if known")

    @field_validator("occurred_at")
    @classmethod
    def _after_1970(cls, value: datetime) -> datetime:
        # The year alone (not a conversion that could overflow at the calendar's ends) keeps it representable.
        if not 1970 <= value.year <= 9998:
            raise ValueError("a purchase lies between 1970 and now")
        return value


class ImportedMemberIn(Strict):
    """One member of the legacy CRM."""

    external_id: str = Field(
        min_length=1, max_length=64, description="the legacy CRM's id of the member, unique per source"
    )
    identities: list[IdentityIn] = Field(min_length=1, max_length=10)
    profile: ProfileIn | None = None
    consents: dict[ConsentChannelName, bool] = Field(default_factory=dict, examples=[{"sms": True}])
    home_store_id: str | None = Field(default=None, pattern=STORE_ID_PATTERN)
    purchases: list[ImportedPurchaseIn] = Field(default_factory=list, max_length=1000)


class MemberImportIn(Strict):
    """Up to 1,000 members of a legacy CRM with their purchases; each external_id at most once."""

    members: list[ImportedMemberIn] = Field(min_length=1, max_length=1000)


class ImportResultOut(BaseModel):
    external_id: str
    member_id: str | None = Field(description="the member; null when rejected", examples=["M0000001"])
    status: Literal["created", "existing", "rejected"] = Field(
        description="created: a new member; existing: imported before, or an identity already belonged to "
        "this member (nothing duplicated); rejected: not imported, see reason"
    )
    reason: str | None = Field(default=None, description="why rejected, e.g. invalid-phone, purchase-in-future")
    message: str | None = None
    purchases_imported: Int32 = Field(description="purchases kept by this request (never points)")


class MemberImportOut(BaseModel):
    results: list[ImportResultOut] = Field(description="one per member of the request, in its order")
    created: Int32
    existing: Int32
    rejected: Int32
