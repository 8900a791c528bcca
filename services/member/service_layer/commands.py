"""Member commands: what a caller asks the service to change, as plain data (no wire types).

The gRPC servicer maps each request message to one of these (``entrypoints/wire.py``) and calls
the one handler that owns its unit of work. ``request`` is the request-id store's key of the
call; :class:`MemberAnswers` is how each handler's answer is kept in that store, in the wire
format the entrypoint gives (so a retry is answered exactly as the first call was).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from servicekit.idempotency import ReplyCodec, RequestFingerprint
from services.member.domain.identities import ChannelIdentity
from services.member.domain.model import Actor, Address, Channel, ConsentChannel, Gender, Profile

if TYPE_CHECKING:
    from services.member.service_layer.members import ErasureOutcome, LinkOutcome
    from services.member.service_layer.merges import UndoOutcome
    from services.member.service_layer.points_book import BookedEntry


@dataclass(frozen=True)
class RegisterMember:
    request: RequestFingerprint
    identity: ChannelIdentity
    channel: Channel
    profile: Profile = field(default_factory=Profile)
    preferences: dict[str, str] = field(default_factory=dict)
    consents: Sequence[tuple[ConsentChannel, bool]] = ()
    store_id: str = ""
    actor: Actor = field(default_factory=Actor)


@dataclass(frozen=True)
class UpdateMember:
    request: RequestFingerprint
    member_id: str
    name: str | None = None
    birthday: date | None = None
    address: Address | None = None
    gender: Gender | None = None
    clear: frozenset[str] = frozenset()
    set_preferences: dict[str, str] = field(default_factory=dict)
    remove_preferences: Sequence[str] = ()
    add_tags: Sequence[str] = ()
    remove_tags: Sequence[str] = ()
    consents: Sequence[tuple[ConsentChannel, bool]] = ()
    actor: Actor = field(default_factory=Actor)


@dataclass(frozen=True)
class LinkIdentity:
    request: RequestFingerprint
    member_id: str
    identity: ChannelIdentity
    survivor_member_id: str
    actor: Actor


@dataclass(frozen=True)
class UndoMerge:
    request: RequestFingerprint
    merge_id: str
    actor: Actor


@dataclass(frozen=True)
class EraseMember:
    request: RequestFingerprint
    member_id: str
    reason: str
    actor: Actor


@dataclass(frozen=True)
class RedeemPoints:
    request: RequestFingerprint
    member_id: str
    points: int
    reference: str
    store_id: str


@dataclass(frozen=True)
class AdjustPoints:
    request: RequestFingerprint
    member_id: str
    points: int
    reason: str


@dataclass(frozen=True)
class ImportedLine:
    sku: str
    quantity: Decimal
    amount_minor: int


@dataclass(frozen=True)
class ImportedPurchase:
    occurred_at: datetime
    amount_minor: int
    store_id: str = ""
    lines: Sequence[ImportedLine] = ()


@dataclass(frozen=True)
class MemberToImport:
    """One member of a legacy CRM, as read from the request."""

    external_id: str
    identities: Sequence[ChannelIdentity]
    profile: Profile = field(default_factory=Profile)
    preferences: dict[str, str] = field(default_factory=dict)
    consents: Sequence[tuple[ConsentChannel, bool]] = ()
    purchases: Sequence[ImportedPurchase] = ()
    store_id: str = ""


@dataclass(frozen=True)
class UnreadableMember:
    """A member of the request that could not even be read (a malformed identity, profile or purchase)."""

    external_id: str
    reason: str
    message: str


@dataclass(frozen=True)
class ImportMembers:
    request: RequestFingerprint
    members: Sequence[MemberToImport | UnreadableMember]
    actor: Actor = field(default_factory=Actor)


@dataclass(frozen=True)
class ImportResult:
    """What an import did with one member: status is created, existing or rejected (with reason and message)."""

    external_id: str
    member_id: str
    status: str
    reason: str = ""
    message: str = ""
    purchases_imported: int = 0


@dataclass(frozen=True)
class Registered:
    """The identity's owner, and whether it was created by this call."""

    member_id: str
    created: bool


@dataclass(frozen=True)
class MemberUpdated:
    member_id: str
    changed: list[str]


@dataclass(frozen=True)
class MemberAnswers:
    """How each command's answer is kept in the request-id store (the entrypoint's wire format)."""

    registered: ReplyCodec[Registered]
    updated: ReplyCodec[MemberUpdated]
    linked: ReplyCodec[LinkOutcome]
    undone: ReplyCodec[UndoOutcome]
    erased: ReplyCodec[ErasureOutcome]
    redeemed: ReplyCodec[BookedEntry]
    adjusted: ReplyCodec[BookedEntry]
    imported: ReplyCodec[list[ImportResult]]
