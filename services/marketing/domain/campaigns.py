"""Campaigns: an offer to a frozen audience, with a control group, a budget and a frequency cap.

Life of a campaign::

    draft → approved → launching → running → ended

A draft is approved by someone other than its author (four eyes on money given away). Launch
happens in the background and can be interrupted at any point (a crash, a redeploy): it first
places every member of the snapshot — excluded with the reason (erased or merged, no consent
in any of the campaign's contact channels, over the frequency cap, outside the targeted share,
beyond the budget's coupon count), or in the control or treatment group (:mod:`control_groups`) — in one statement, then
issues the treatment members' coupons in batches, each coupon once (a member has at most one
coupon per campaign, enforced by the database), and finally marks the campaign running.
A launch resumed after a crash continues with the members who have no coupon yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from servicekit.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.marketing.domain.control_groups import check_control_fraction
from services.marketing.domain.offers import CouponTerms, Offer
from services.marketing.domain.segments import CONSENT_CHANNELS

NAME_MAX = 120
MAX_FREQUENCY_CAP = 50
DEFAULT_ATTRIBUTION_DAYS = 14


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    LAUNCHING = "launching"
    RUNNING = "running"
    ENDED = "ended"


class ExclusionReason(StrEnum):
    ERASED = "erased"
    NO_CONSENT = "no_consent"
    FREQUENCY_CAP = "frequency_cap"
    NOT_TARGETED = "not_targeted"
    BUDGET = "budget"


class Target(StrEnum):
    EVERYONE = "everyone"
    # The top ``target_percent`` of the eligible audience by the repurchase model's chance to buy
    # (members without a score last); the control group is drawn from that same top share.
    PROPENSITY = "propensity"
    # The top ``target_percent`` by the serving uplift model's predicted effect of the offer (members
    # without a score last), chosen the same way before the same control-group split: whom the offer
    # persuades, rather than who would buy anyway. Refused while no uplift model beats random targeting.
    UPLIFT = "uplift"


class InvalidCampaign(InvalidArgument):
    reason = "invalid-campaign"


class CampaignNotApproved(FailedPrecondition):
    reason = "campaign-not-approved"


class CampaignNotDraft(FailedPrecondition):
    reason = "campaign-not-draft"


class UpliftModelUnavailable(FailedPrecondition):
    reason = "uplift-model-unavailable"


class OwnApproval(PermissionDenied):
    reason = "campaign-own-approval"


@dataclass(frozen=True, slots=True)
class CampaignDraft:
    name: str
    snapshot_id: str
    offer: Offer
    terms: CouponTerms
    control_fraction_bp: int
    contact_channels: frozenset[str]
    max_coupons: int | None = None
    max_discount_fen: int | None = None
    frequency_cap: int = 0
    store_id: str | None = None
    attribution_days: int = DEFAULT_ATTRIBUTION_DAYS
    target: Target = Target.EVERYONE
    target_percent: int | None = None

    def __post_init__(self) -> None:
        if (self.target is Target.EVERYONE) != (self.target_percent is None):
            raise InvalidCampaign(
                "a target share (target_percent) goes with a target other than everyone", details={"field": "target"}
            )
        if self.target_percent is not None and not 1 <= self.target_percent <= 100:
            raise InvalidCampaign("a target share is 1 to 100 percent", details={"field": "target_percent"})
        if not 0 < len(self.name.strip()) <= NAME_MAX:
            raise InvalidCampaign(f"a campaign's name is 1 to {NAME_MAX} characters", details={"field": "name"})
        if not self.snapshot_id:
            raise InvalidCampaign("a campaign targets a segment snapshot", details={"field": "snapshot_id"})
        check_control_fraction(self.control_fraction_bp)
        if not self.contact_channels or not self.contact_channels <= set(CONSENT_CHANNELS):
            raise InvalidCampaign(
                f"contact channels are one or more of {', '.join(CONSENT_CHANNELS)}",
                details={"field": "contact_channels"},
            )
        if self.max_coupons is not None and not 0 < self.max_coupons <= 10**8:
            raise InvalidCampaign("a coupon budget is 1 to 100,000,000 coupons", details={"field": "max_coupons"})
        if self.max_discount_fen is not None and not 0 < self.max_discount_fen <= 10**12:
            raise InvalidCampaign("a discount budget is 1 to 10^12 fen", details={"field": "max_discount"})
        if not 0 <= self.frequency_cap <= MAX_FREQUENCY_CAP:
            raise InvalidCampaign(
                f"a frequency cap is 0 (none) to {MAX_FREQUENCY_CAP} offers in 7 days",
                details={"field": "frequency_cap_per_7_days"},
            )
        if not 0 <= self.attribution_days <= 365:
            raise InvalidCampaign("attribution lasts 0 to 365 days", details={"field": "attribution_days"})
        if self.store_id is not None and self.terms.stores and self.terms.stores != {self.store_id}:
            raise InvalidCampaign("a store's campaign is valid in that store only", details={"field": "store_ids"})


def check_approval(status: CampaignStatus, author: str, approver: str) -> None:
    if status is not CampaignStatus.DRAFT:
        raise CampaignNotDraft(f"only a draft can be approved; this campaign is {status.value}")
    if author == approver:
        raise OwnApproval("a campaign is approved by someone other than its author")


def check_targeting(target: Target, uplift_model_serving: bool) -> None:
    """Targeting by uplift needs a serving uplift model (one that beat random targeting on held-out campaigns)."""
    if target is Target.UPLIFT and not uplift_model_serving:
        raise UpliftModelUnavailable(
            "no uplift model beats random targeting yet: train one (POST /v1/models/uplift/train) once campaigns "
            "with control groups have ended, or target by propensity",
            details={"field": "target"},
        )


def check_launch(status: CampaignStatus, now: datetime, valid_until: datetime) -> None:
    if status is not CampaignStatus.APPROVED:
        raise CampaignNotApproved(f"only an approved campaign can be launched; this one is {status.value}")
    if now >= valid_until:
        raise CampaignNotApproved("the campaign's validity window has already ended")
