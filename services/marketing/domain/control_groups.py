"""Who in a campaign's audience gets the offer and who is held out to measure it.

The split is decided before anything is sent (never "filter after sending") and can be
recomputed by anyone from the frozen audience:

* every member gets a 64-bit **draw**, the first eight bytes of SHA-256 over
  ``"{campaign_id}:{member_id}"`` read as a big-endian unsigned integer — the same on every
  run, machine and language (PostgreSQL computes it with ``sha256()``, and orders it as a
  ``bit(64)``, which compares as the unsigned number), and unrelated between campaigns, so
  the same members are not held out of every campaign;
* the audience is **stratified** (by lifecycle stage): within each stratum members are ranked
  by their draw, and the first ``round_half_up(n × control_fraction)`` are the control group.
  Each stratum is therefore held out in the same proportion, to the member, which keeps the
  comparison fair when new members and sleeping ones respond very differently.

The control fraction is integer basis points (1,000 = 10%).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from servicekit.errors import InvalidArgument

BASIS_POINTS = 10_000
MIN_CONTROL_BP = 100  # below 1% a control group measures nothing
MAX_CONTROL_BP = 5_000


class Group(StrEnum):
    TREATMENT = "treatment"
    CONTROL = "control"


class InvalidControlFraction(InvalidArgument):
    reason = "invalid-control-fraction"


@dataclass(frozen=True, slots=True)
class Assignment:
    member_id: str
    stratum: str
    group: Group


def check_control_fraction(basis_points: int) -> int:
    if not MIN_CONTROL_BP <= basis_points <= MAX_CONTROL_BP:
        raise InvalidControlFraction(
            f"a control group is {MIN_CONTROL_BP} to {MAX_CONTROL_BP} basis points of the audience (1% to 50%)",
            details={"field": "control_fraction_bp"},
        )
    return basis_points


def draw(campaign_id: str, member_id: str) -> int:
    """The member's 64-bit draw in this campaign."""
    digest = hashlib.sha256(f"{campaign_id}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def control_size(members: int, control_fraction_bp: int) -> int:
    """How many of a stratum's ``members`` are held out: the fraction, rounded half up."""
    return (members * control_fraction_bp + BASIS_POINTS // 2) // BASIS_POINTS


def split(campaign_id: str, audience: Iterable[tuple[str, str]], control_fraction_bp: int) -> list[Assignment]:
    """Assign each (member_id, stratum) of the audience to treatment or control."""
    check_control_fraction(control_fraction_bp)
    strata: dict[str, list[str]] = defaultdict(list)
    for member_id, stratum in audience:
        strata[stratum].append(member_id)
    assignments = []
    for stratum, members in sorted(strata.items()):
        ranked = sorted(members, key=lambda member_id: (draw(campaign_id, member_id), member_id))
        held_out = control_size(len(ranked), control_fraction_bp)
        assignments += [
            Assignment(member_id, stratum, Group.CONTROL if rank < held_out else Group.TREATMENT)
            for rank, member_id in enumerate(ranked)
        ]
    return assignments
