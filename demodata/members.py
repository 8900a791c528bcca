"""Members, generated one at a time from (seed, index) so a million never sit in memory.

Member *i* (0-based, id ``M{i+1:07d}``) depends on nothing but the seed, *i* and the
scale, which gives random access (``member(i)`` is O(1)) and constant-memory streaming.
Uniqueness is built in rather than checked: phone numbers, app user ids and POS card
numbers are keyed Feistel permutations of *i*, WeChat ids start with a 64-bit keyed
bijection of *i*. Ids are handed out in registration order, so "who had joined by day
D" is a prefix of the ids, which lets the sales generator pick a plausible customer
without looking at other members.
"""

from __future__ import annotations

import base64
import math
import random
from datetime import date, datetime, time, timedelta

from demodata._random import FeistelPermutation, derive_key, mix64, substream, unit_interval
from demodata.codes import luhn_check_digit
from demodata.model import (
    CHINA_STANDARD_TIME,
    Channel,
    ChannelIdentity,
    Gender,
    IdentityKind,
    Location,
    MarketingConsent,
    Member,
    MemberTier,
)

_PHONE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "173",
    "175",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "184",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈"
_FEMALE_GIVEN = "婷静丽敏燕艳娟霞芳娜玲慧颖欣怡雪琳晶洁倩佳雨萱梓涵思晓嘉悦琪"
_MALE_GIVEN = "伟强磊军勇杰涛明超斌浩宇鹏辉刚平鑫博子轩睿晨俊凯文志建国华"
_SURNAME_WEIGHTS = tuple(1.0 / (rank + 4) for rank in range(len(_SURNAMES)))  # a few surnames are very common


def member_id(index: int) -> str:
    """The id of member ``index`` (0-based): ``M0000001`` for the first."""
    return f"M{index + 1:07d}"


def member_index(identifier: str) -> int:
    """The 0-based index of a member id; the inverse of :func:`member_id`."""
    if len(identifier) != 8 or identifier[0] != "M" or not identifier[1:].isdigit() or identifier[1:] == "0000000":
        raise ValueError(f"{identifier!r} is not a member id like M0000001")
    return int(identifier[1:]) - 1


class MemberRoll:
    """The chain's members: random access by index, plus what the sales generator needs cheaply.

    ``stores`` and ``store_weights`` decide home stores: busier stores have more members.
    """

    def __init__(
        self,
        seed: int,
        count: int,
        members_since: date,
        end_date: date,
        stores: tuple[Location, ...],
        store_weights: tuple[float, ...],
    ) -> None:
        self.count = count
        self._seed = seed
        self._members_since = members_since
        self._span_days = (end_date - members_since).days + 1
        self._end = datetime.combine(end_date, time(23, 59, 59), CHINA_STANDARD_TIME)
        self._stores = stores
        self._member_key = derive_key(seed, "members")
        self._activity_key = derive_key(seed, "member-activity")
        self._unionid_key = derive_key(seed, "wechat-unionid")
        self._openid_key = derive_key(seed, "wechat-openid")
        self._phone_numbers = FeistelPermutation(10_000, [derive_key(seed, "phone", r) for r in range(4)])
        self._app_user_ids = FeistelPermutation(100_000, [derive_key(seed, "app-user", r) for r in range(4)])
        self._pos_cards = FeistelPermutation(1_000_000, [derive_key(seed, "pos-card", r) for r in range(4)])
        # Home stores repeat with a long, shuffled cycle over member indexes: random-looking,
        # yet "a member of store X who joined before day D" is found without a search.
        cycle = max(997, 4 * len(stores) + 1)
        total = sum(store_weights)
        slots: list[int] = []
        for store_index, weight in enumerate(store_weights):
            slots.extend([store_index] * max(1, round(cycle * weight / total)))
        substream(seed, "home-stores").shuffle(slots)
        self._home_cycle = tuple(slots)
        self._residues_of_store: list[list[int]] = [[] for _ in stores]
        for residue, store_index in enumerate(slots):
            self._residues_of_store[store_index].append(residue)
        self._registered_before: dict[date, int] = {}

    # -- cheap per-index facts (no full member built) -------------------------------------

    def registration_day(self, index: int) -> int:
        """Days from ``members_since`` to member ``index``'s registration; never decreases with the index.

        Sign-ups grow linearly over time (a chain that keeps gaining popularity): the
        share registered by day d of T is (d/T)^2, inverted here in exact integer maths.
        """
        span = self._span_days
        return min(span - 1, math.isqrt(span * span * (2 * index + 1) // (2 * self.count)))

    def registered_before(self, day: date) -> int:
        """How many members had registered before ``day`` began (they are indexes 0..n-1)."""
        known = self._registered_before.get(day)
        if known is not None:
            return known
        threshold = (day - self._members_since).days
        low, high = 0, self.count
        while low < high:
            middle = (low + high) // 2
            if self.registration_day(middle) < threshold:
                low = middle + 1
            else:
                high = middle
        self._registered_before[day] = low
        return low

    def home_store_index(self, index: int) -> int:
        return self._home_cycle[index % len(self._home_cycle)]

    def activity(self, index: int) -> float:
        """How often the member shops, 0..1: a fifth have lapsed, a third are loyal regulars."""
        draw = unit_interval(self._activity_key ^ index)
        if draw < 0.2:
            return 0.02
        if draw < 0.7:
            return 0.08 + (draw - 0.2) * 0.6
        return 0.45 + (draw - 0.7) / 0.3 * 0.55

    def pick_shopper(self, rng: random.Random, day: date, store_index: int | None) -> int | None:
        """A member who had registered before ``day`` to be the customer of one receipt.

        With ``store_index`` the member's home store is that store. Active members are
        picked more often, so purchase frequency varies the way RFM analysis expects.
        """
        registered = self.registered_before(day)
        if registered == 0:
            return None
        cycle = len(self._home_cycle)
        candidate: int | None = None
        for _attempt in range(12):
            if store_index is None:
                index = rng.randrange(registered)
            else:
                residues = self._residues_of_store[store_index]
                residue = residues[rng.randrange(len(residues))]
                if residue >= registered:
                    continue
                index = residue + cycle * rng.randrange((registered - 1 - residue) // cycle + 1)
            candidate = index
            if rng.random() < self.activity(index):
                return index
        return candidate

    # -- the full member -------------------------------------------------------------------

    def member(self, index: int) -> Member:
        """Member ``index`` (0-based), built from the seed and the index alone."""
        if not 0 <= index < self.count:
            raise IndexError(f"member index {index} is outside 0..{self.count - 1}")
        rng = random.Random(mix64(self._member_key ^ index))
        registration_day = self.registration_day(index)
        progress = registration_day / self._span_days
        registered_at = datetime.combine(
            self._members_since + timedelta(days=registration_day), time(0), CHINA_STANDARD_TIME
        ) + timedelta(seconds=rng.randrange(8 * 3600, 22 * 3600))
        channel_draw = rng.random()
        if channel_draw < 0.15 + 0.45 * progress:  # the mini-program took over sign-ups
            registration_channel = Channel.MINI_PROGRAM
        elif channel_draw < 0.3 + 0.45 * progress:
            registration_channel = Channel.ONLINE
        else:
            registration_channel = Channel.STORE

        gender = Gender.FEMALE if rng.random() < 0.58 else Gender.MALE
        given_pool = _FEMALE_GIVEN if gender is Gender.FEMALE else _MALE_GIVEN
        given = "".join(rng.choice(given_pool) for _ in range(1 if rng.random() < 0.3 else 2))
        name = rng.choices(_SURNAMES, weights=_SURNAME_WEIGHTS)[0] + given
        age = int(rng.triangular(18, 78, 36))
        birthday = date(self._end.year - age, 1, 1) + timedelta(days=rng.randrange(365))
        phone = rng.choice(_PHONE_PREFIXES) + f"{self._phone_numbers(index):08d}"

        def later() -> datetime:
            """A moment between registration and the end of the history, when a channel was linked."""
            return registered_at + timedelta(seconds=int((self._end - registered_at).total_seconds() * rng.random()))

        identities = [ChannelIdentity(IdentityKind.PHONE, phone, registered_at)]
        wechat_at = registered_at if registration_channel is Channel.MINI_PROGRAM else None
        if wechat_at is None and rng.random() < 0.35:
            wechat_at = later()
        if wechat_at is not None:
            unionid = self._wechat_id(self._unionid_key, index, rng)
            openid = self._wechat_id(self._openid_key, index, rng)
            identities.append(ChannelIdentity(IdentityKind.WECHAT_UNIONID, unionid, wechat_at))
            identities.append(ChannelIdentity(IdentityKind.WECHAT_OPENID, openid, wechat_at))
        app_at = registered_at if registration_channel is Channel.ONLINE else None
        if app_at is None and rng.random() < 0.2:
            app_at = later()
        if app_at is not None:
            identities.append(ChannelIdentity(IdentityKind.APP_USER_ID, f"10{self._app_user_ids(index):010d}", app_at))
        card_at = registered_at if registration_channel is Channel.STORE else None
        if card_at is None and rng.random() < 0.4:
            card_at = later()
        if card_at is not None:
            body = f"886{self._pos_cards(index):012d}"
            identities.append(ChannelIdentity(IdentityKind.POS_CARD, body + luhn_check_digit(body), card_at))

        consent = MarketingConsent(
            sms=rng.random() < 0.6,
            wechat=wechat_at is not None and rng.random() < 0.7,
            app_push=app_at is not None and rng.random() < 0.55,
            updated_at=max(identity.bound_at for identity in identities),
        )
        return Member(
            member_id=member_id(index),
            name=name,
            gender=gender,
            birthday=birthday,
            phone=phone,
            registered_at=registered_at,
            registration_channel=registration_channel,
            home_store_id=self._stores[self.home_store_index(index)].location_id,
            tier=self._tier(index, registration_day),
            identities=tuple(sorted(identities, key=lambda identity: identity.bound_at)),
            consent=consent,
        )

    def _tier(self, index: int, registration_day: int) -> MemberTier:
        """Tier as of the end of the history: regular shoppers climb, and the top takes years."""
        activity = self.activity(index)
        tenure_days = self._span_days - registration_day
        if activity >= 0.9 and tenure_days >= 730:
            return MemberTier.PLATINUM
        if activity >= 0.7 and tenure_days >= 180:
            return MemberTier.GOLD
        if activity >= 0.4 and tenure_days >= 30:
            return MemberTier.SILVER
        return MemberTier.NORMAL

    @staticmethod
    def _wechat_id(key: int, index: int, rng: random.Random) -> str:
        """A 28-character WeChat-style id ("o" + base64url); its first 8 bytes make it unique."""
        unique = mix64(key ^ index).to_bytes(8, "big")
        return "o" + base64.urlsafe_b64encode(unique + rng.getrandbits(96).to_bytes(12, "big")).decode().rstrip("=")
