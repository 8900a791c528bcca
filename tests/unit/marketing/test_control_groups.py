"""A campaign's control group: decided before sending, reproducible, the same share of every stratum."""

import random
from collections import Counter

import pytest

from services.marketing.domain.control_groups import (
    Group,
    InvalidControlFraction,
    control_size,
    draw,
    split,
)

STAGES = ["new", "active", "at_risk", "sleeping"]


def audience(size: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(f"M{index:07d}", rng.choices(STAGES, weights=[1, 6, 2, 3])[0]) for index in range(size)]


def test_the_split_is_reproducible_and_does_not_depend_on_the_audiences_order() -> None:
    members = audience(5_000)
    first = {a.member_id: a.group for a in split("CMP-1", members, 1_000)}
    shuffled = members[:]
    random.Random(1).shuffle(shuffled)
    assert {a.member_id: a.group for a in split("CMP-1", shuffled, 1_000)} == first


def test_every_stratum_is_held_out_in_the_same_share_rounded_half_up() -> None:
    members = audience(10_003)
    sizes = Counter(stage for _, stage in members)
    held_out = Counter(a.stratum for a in split("CMP-2", members, 1_250) if a.group is Group.CONTROL)
    assert held_out == {stage: control_size(count, 1_250) for stage, count in sizes.items()}
    assert control_size(4, 1_250) == 1  # 0.5 rounds up
    assert control_size(3, 1_250) == 0  # 0.375 rounds down


def test_different_campaigns_hold_out_different_members() -> None:
    members = audience(20_000)
    control_a = {a.member_id for a in split("CMP-A", members, 1_000) if a.group is Group.CONTROL}
    control_b = {a.member_id for a in split("CMP-B", members, 1_000) if a.group is Group.CONTROL}
    overlap = len(control_a & control_b) / len(control_a)
    # Independent draws: about 10% of one control group is in the other, not all of it.
    assert 0.06 < overlap < 0.14


def test_the_draw_is_sha256_of_campaign_and_member_read_big_endian() -> None:
    # echo -n 'CMP-1:M0000001' | sha256sum → first 16 hex digits
    assert draw("CMP-1", "M0000001") == int("4d49c42fcf39b68c", 16)


def test_a_control_fraction_outside_one_to_fifty_percent_is_refused() -> None:
    for basis_points in (0, 99, 5_001):
        with pytest.raises(InvalidControlFraction):
            split("CMP", audience(10), basis_points)
