"""Members, their profile and consent, merges, and what each role may see of them.

Plain Python. A member is identified by any number of channel identities; personal data
(name, birthday, address and identity values) is handled here in clear only in memory,
and this module decides how it is masked. Merges are planned here (who survives, and why);
the service layer moves the rows and records what moved.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from servicekit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.member.domain.identities import ChannelIdentity, mask_identity

_MEMBER_ID = re.compile(r"M\d{7,12}")
_TAG = re.compile(r"[a-z0-9][a-z0-9_:-]{0,39}")
_PREFERENCE_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_POSTAL_CODE = re.compile(r"\d{6}")
_STORE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
MAX_TAGS = 50
MAX_PREFERENCES = 20
MAX_NAME_LENGTH = 50
MAX_ADDRESS_PART = 100
MAX_PREFERENCE_VALUE = 100
OLDEST_BIRTH_YEAR = 1900


class MemberStatus(enum.StrEnum):
    ACTIVE = "active"
    MERGED = "merged"
    ERASED = "erased"


class Channel(enum.StrEnum):
    STORE = "store"
    APP = "app"
    MINI_PROGRAM = "mini_program"


class Gender(enum.StrEnum):
    FEMALE = "female"
    MALE = "male"


class ConsentChannel(enum.StrEnum):
    SMS = "sms"
    WECHAT = "wechat"
    APP_PUSH = "app_push"
    EMAIL = "email"


class PersonalDataView(enum.StrEnum):
    MASKED = "masked"
    NONE = "none"  # store guides: tier, tags, preferences, never contact details
    CLEAR = "clear"  # audited


class SurvivorRule(enum.StrEnum):
    CHOSEN = "chosen"
    OLDER = "older"
    MORE_COMPLETE = "more_complete"


# ---- errors ---------------------------------------------------------------------------------


class InvalidMemberId(InvalidArgument):
    reason = "invalid-member-id"


class MemberNotFound(NotFound):
    reason = "member-not-found"


class MemberErased(NotFound):
    """Erased members are gone for every purpose but anonymous aggregates."""

    reason = "member-erased"


class MemberMerged(FailedPrecondition):
    """A command named a member that was merged into another; ``details`` name the survivor."""

    reason = "member-merged"


class IdentityAlreadyLinked(AlreadyExists):
    """The member already owns the identity."""

    reason = "identity-already-linked"


class IdentityNotFound(NotFound):
    reason = "identity-not-found"


class InvalidProfile(InvalidArgument):
    reason = "invalid-profile"


class InvalidSurvivor(InvalidArgument):
    reason = "invalid-survivor"


class MergeNotFound(NotFound):
    reason = "merge-not-found"


class MergeAlreadyUndone(FailedPrecondition):
    reason = "merge-already-undone"


class SurvivorMergedAgain(FailedPrecondition):
    """The survivor was itself merged into a third member after this merge."""

    reason = "survivor-merged-again"


class MergedMemberErased(FailedPrecondition):
    reason = "merged-member-erased"


class MergeDiverged(FailedPrecondition):
    """Something that moved with the merge changed since (points spent or expired, a fact moved on)."""

    reason = "merge-diverged"


def check_member_id(member_id: str) -> str:
    if not _MEMBER_ID.fullmatch(member_id):
        raise InvalidMemberId("a member id is M followed by 7 to 12 digits, e.g. M0000001")
    return member_id


def format_member_id(number: int) -> str:
    return f"M{number:07d}"


def check_store_id(store_id: str) -> str:
    if store_id and not _STORE_ID.fullmatch(store_id):
        raise InvalidArgument("store_id is not a valid location id", reason="invalid-store-id")
    return store_id


# ---- profile ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    province: str = ""
    city: str = ""
    district: str = ""
    street: str = ""
    postal_code: str = ""

    def masked(self) -> Address:
        """Province and city only: enough to plan a campaign, not to find a door."""
        return Address(province=self.province, city=self.city)

    @property
    def is_empty(self) -> bool:
        return not any((self.province, self.city, self.district, self.street, self.postal_code))


@dataclass(frozen=True)
class Profile:
    """What a member told about themselves; every field optional."""

    name: str | None = None
    birthday: date | None = None
    address: Address | None = None
    gender: Gender | None = None

    @property
    def filled_fields(self) -> int:
        return sum(value is not None for value in (self.name, self.birthday, self.address, self.gender))


PROFILE_FIELDS = ("name", "birthday", "address", "gender")


def check_name(name: str) -> str:
    text = name.strip()
    if not text or len(text) > MAX_NAME_LENGTH or any(ord(ch) < 32 for ch in text):
        raise InvalidProfile(f"a name has 1 to {MAX_NAME_LENGTH} printable characters", reason="invalid-name")
    return text


def parse_quantity(text: str, where: str) -> Decimal:
    """A purchase line's quantity as given (plain decimal notation); whether it is positive is the caller's rule."""
    try:
        quantity = Decimal(text)
    except InvalidOperation:
        quantity = Decimal("NaN")
    if not quantity.is_finite():
        raise InvalidArgument(f"{where}: a quantity {text[:20]!r} is not a decimal", reason="invalid-quantity")
    return quantity


def parse_birthday(text: str, today: date) -> date:
    try:
        birthday = date.fromisoformat(text)
    except ValueError:
        raise InvalidProfile("birthday must be YYYY-MM-DD", reason="invalid-birthday") from None
    if not date(OLDEST_BIRTH_YEAR, 1, 1) <= birthday <= today:
        raise InvalidProfile("birthday must be a past date after 1900", reason="invalid-birthday")
    return birthday


def check_address(address: Address) -> Address | None:
    parts = (address.province, address.city, address.district, address.street)
    if any(len(part) > MAX_ADDRESS_PART or any(ord(ch) < 32 for ch in part) for part in parts):
        raise InvalidProfile(
            f"address parts have at most {MAX_ADDRESS_PART} printable characters", reason="invalid-address"
        )
    if address.postal_code and not _POSTAL_CODE.fullmatch(address.postal_code):
        raise InvalidProfile("a postal code has six digits", reason="invalid-address")
    cleaned = Address(*(part.strip() for part in (*parts, address.postal_code)))
    return None if cleaned.is_empty else cleaned


def check_tags(tags: list[str]) -> list[str]:
    for tag in tags:
        if not _TAG.fullmatch(tag):
            raise InvalidArgument("tags are 1 to 40 lower-case letters, digits, '_', ':' or '-'", reason="invalid-tag")
    return tags


def check_preferences(preferences: dict[str, str]) -> dict[str, str]:
    for key, value in preferences.items():
        if not _PREFERENCE_KEY.fullmatch(key):
            raise InvalidArgument("preference keys are lower-case words like 'diet'", reason="invalid-preference")
        if not value.strip() or len(value) > MAX_PREFERENCE_VALUE or any(ord(ch) < 32 for ch in value):
            raise InvalidArgument(
                f"preference values have 1 to {MAX_PREFERENCE_VALUE} printable characters",
                reason="invalid-preference",
            )
    return preferences


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(1, len(name) - 1)


def mask_birthday(birthday: date) -> str:
    return f"****-{birthday.month:02d}-{birthday.day:02d}"


# ---- consent ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consent:
    channel: ConsentChannel
    granted: bool
    updated_at: datetime
    source: str


def merged_consents(survivor: list[Consent], absorbed: list[Consent]) -> list[Consent]:
    """The same person's decisions from two records: per channel, the most recent one wins."""
    latest: dict[ConsentChannel, Consent] = {consent.channel: consent for consent in survivor}
    for consent in absorbed:
        current = latest.get(consent.channel)
        if current is None or consent.updated_at > current.updated_at:
            latest[consent.channel] = consent
    return sorted(latest.values(), key=lambda consent: list(ConsentChannel).index(consent.channel))


# ---- merges -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeCandidate:
    """What the survivor rule looks at."""

    member_id: str
    registered_at: datetime
    profile_fields: int
    identities: int
    consents: int

    @property
    def completeness(self) -> int:
        return self.profile_fields * 2 + self.identities + self.consents


def choose_survivor(
    linking: MergeCandidate, owner: MergeCandidate, chosen: str = ""
) -> tuple[MergeCandidate, MergeCandidate, SurvivorRule]:
    """(survivor, absorbed, rule): the chosen member, else the older one, else the more complete
    one (ties go to the member the identity is being linked to)."""
    pair = (linking, owner)
    if chosen:
        if chosen not in (linking.member_id, owner.member_id):
            raise InvalidSurvivor("survivor_member_id must be one of the two members being merged")
        survivor = linking if chosen == linking.member_id else owner
        return survivor, pair[1 - pair.index(survivor)], SurvivorRule.CHOSEN
    if linking.registered_at != owner.registered_at:
        survivor = min(pair, key=lambda candidate: candidate.registered_at)
        return survivor, pair[1 - pair.index(survivor)], SurvivorRule.OLDER
    survivor = owner if owner.completeness > linking.completeness else linking
    return survivor, pair[1 - pair.index(survivor)], SurvivorRule.MORE_COMPLETE


# ---- what a caller sees ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkedIdentity:
    identity: ChannelIdentity
    linked_at: datetime


@dataclass(frozen=True)
class ContactDetails:
    name: str = ""
    phone: str = ""
    birthday: str = ""
    address: Address | None = None
    email: str = ""
    gender: Gender | None = None


@dataclass(frozen=True)
class ShownIdentity:
    type: str
    value: str
    app_id: str
    linked_at: datetime


@dataclass(frozen=True)
class PersonalData:
    """A member's personal data in clear, as decrypted for one answer."""

    profile: Profile
    identities: list[LinkedIdentity] = field(default_factory=list)

    def latest(self, identity_type: str) -> ChannelIdentity | None:
        matching = [linked for linked in self.identities if linked.identity.type.value == identity_type]
        return max(matching, key=lambda linked: linked.linked_at).identity if matching else None

    def contact(self, view: PersonalDataView) -> ContactDetails | None:
        if view is PersonalDataView.NONE:
            return None
        clear = view is PersonalDataView.CLEAR
        phone, email = self.latest("phone"), self.latest("email")
        profile = self.profile

        def shown(identity: ChannelIdentity | None) -> str:
            if identity is None:
                return ""
            return identity.channel_value if clear else mask_identity(identity)

        birthday = ""
        if profile.birthday is not None:
            birthday = profile.birthday.isoformat() if clear else mask_birthday(profile.birthday)
        return ContactDetails(
            name=(profile.name if clear else mask_name(profile.name)) if profile.name else "",
            phone=shown(phone),
            birthday=birthday,
            address=(profile.address if clear else profile.address.masked()) if profile.address else None,
            email=shown(email),
            gender=profile.gender,
        )

    def shown_identities(self, view: PersonalDataView) -> list[ShownIdentity]:
        shown = []
        for linked in sorted(self.identities, key=lambda linked: (linked.linked_at, linked.identity.type.value)):
            identity = linked.identity
            if view is PersonalDataView.NONE:
                value = ""
            elif view is PersonalDataView.CLEAR:
                value = identity.channel_value
            else:
                value = mask_identity(identity)
            shown.append(ShownIdentity(identity.type.value, value, identity.app_id, linked.linked_at))
        return shown


@dataclass(frozen=True)
class Actor:
    """Who performs a command, as the gateway authenticated them (for audit)."""

    client_id: str = ""
    client_kind: str = ""
    staff_role: str = ""
    store_id: str = ""
