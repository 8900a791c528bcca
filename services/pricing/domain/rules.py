"""Price rules and the precedence engine: which regular price and which promotion apply to a sale.

Vocabulary
----------
* A **rule** (:class:`PriceRule`) prices one SKU in one currency, inside a validity window
  ``[valid_from, valid_to)`` (either end may be open), for a :class:`Scope`.
* A **REGULAR** rule carries ``price_fen``. The **base price** is the REGULAR rule with the
  empty, chain-wide scope; an **override** is a REGULAR rule with a narrower scope.
* A **PROMOTION** rule carries a **mechanic**: :class:`FixedPrice`, :class:`PercentOff` or
  :class:`MultiBuy` ("2 for 10.00" is ``MultiBuy(2, 1000)``). It never stands alone: it is
  applied to the regular price that won.
* A **scope** narrows a rule to a store *or* a store group (never both), a channel and a
  member tier. A tier rule matches only members of exactly that tier (a gold price is not
  a platinum price); a rule without a tier matches every buyer, members or not.

Precedence
----------
The regular price and the promotion are chosen **separately**, by the same steps. The
first step that tells two candidates apart decides:

====  ==========================  ==========================================================
step  compare                     winner
====  ==========================  ==========================================================
1     hard filters                only rules of the SKU, in the currency, with
                                  ``valid_from <= at < valid_to`` and a scope matching the
                                  context take part; the others are ignored
2     location of the scope       own store (2) > store group (1) > chain-wide (0)
3     member tier of the scope    a tier rule (1) > an all-members rule (0)
4     channel of the scope        a channel rule (1) > an all-channels rule (0)
5     ``priority``                higher
6     ``valid_from``              later (an open start counts as the earliest)
7     ``sequence``                higher (created later)
8     ``rule_id``                 greater string; only for data that breaks the uniqueness
                                  of sequences, so that the result never depends on order
====  ==========================  ==========================================================

Steps 2–4 are :meth:`Scope.specificity`, compared as a tuple: a store-level rule for all
members beats a chain-level gold-tier rule. A store in two groups that both have a rule
goes to step 5.

Applying the promotion
----------------------
* No REGULAR rule left after step 1 → :class:`NoPrice` (a ``FailedPrecondition``).
* The winning promotion is reported in :class:`EffectivePrice` ``.promotion`` and applied
  only when it lowers what the buyer pays (see :mod:`promotions` for each mechanic's rule);
  otherwise ``promotion_applied`` is false and ``promotion_note`` says why. A lower-ranked
  promotion is never tried instead: the winner replaces the others, as a store's own offer
  replaces the chain's.
* Quantities are above 0, at most 3 decimals (grams of a kg item) and at most 1,000,000.

Performance
-----------
:meth:`RuleSet.of` groups rules per SKU and kind and sorts each group once by the
precedence key (steps 2–8 do not depend on the sale). Pricing a line then walks one
SKU's rules in that order and takes the first that passes the hard filters. A
:class:`Decision` (the winners and the window of moments they hold for) can be kept and
reused for every later line of the same SKU and context inside that window.

API
---
* ``Channel``, ``MEMBER_TIERS``, ``RuleKind``, ``Scope``, ``CHAIN_WIDE``
* the mechanics ``FixedPrice``, ``PercentOff``, ``MultiBuy`` and ``Mechanic`` live in :mod:`promotions`
* ``PriceRule``, ``PriceContext``, ``EffectivePrice``, ``precedence_key(rule)``
* ``RuleSet.of(rules)`` with ``.price(ctx, quantity, *, weighed=False)``, ``.regular_rule(ctx)``,
  ``.promotion_rule(ctx)``, ``.decide(ctx)`` (a :class:`Decision`: the winners and the moments
  they hold between, whose ``.price(quantity, weighed=…)`` prices a line);
  ``effective_price(rules, ctx, quantity, *, weighed=False)`` for a one-off.
* ``find_conflicts(existing, new) -> list[RuleConflict]`` and ``check_conflicts(existing, new)``
  raising :class:`OverlappingRules` (an ``InvalidArgument``).
* ``validate_quantity(quantity) -> Decimal``
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TypeAlias

from servicekit.errors import FailedPrecondition, InvalidArgument
from services.pricing.domain.catalogue import validate_sku
from services.pricing.domain.money import DEFAULT_CURRENCY, round_half_up_fen, validate_currency, validate_fen
from services.pricing.domain.promotions import FixedPrice, Mechanic, MultiBuy, PercentOff, apply_promotion

MEMBER_TIERS = ("basic", "silver", "gold", "platinum")
MAX_QUANTITY = Decimal(1_000_000)
MAX_NAME_LENGTH = 120
_LOCATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", re.ASCII)
_RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", re.ASCII)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
_ONE = Decimal(1)


class NoPrice(FailedPrecondition):
    """No regular price applies to the SKU in this store, channel, currency and moment."""

    reason = "no-price"


class OverlappingRules(InvalidArgument):
    """A new rule would tie with another on every precedence step while both are valid: the
    request itself is ambiguous, so retrying it unchanged never helps."""

    reason = "overlapping-rules"


class Channel(enum.StrEnum):
    STORE = "store"
    ONLINE = "online"
    MINI_PROGRAM = "mini_program"


class RuleKind(enum.StrEnum):
    REGULAR = "regular"
    PROMOTION = "promotion"


def _is_aware(moment: object) -> bool:
    return isinstance(moment, datetime) and moment.tzinfo is not None and moment.utcoffset() is not None


def _check_location(value: str | None, field_name: str) -> None:
    if value is not None and (not isinstance(value, str) or _LOCATION_ID.fullmatch(value) is None):
        raise InvalidArgument(
            f"{field_name} {value!r} must be 1-64 letters, digits, '.', '_', ':' or '-'", details={"field": field_name}
        )


def _check_tier(tier: str | None, field_name: str) -> None:
    if tier is not None and tier not in MEMBER_TIERS:
        raise InvalidArgument(
            f"{field_name} {tier!r} must be one of {', '.join(MEMBER_TIERS)}", details={"field": field_name}
        )


def _check_channel(channel: Channel | str, field_name: str) -> Channel:
    try:
        return Channel(channel)
    except ValueError:
        choices = ", ".join(member.value for member in Channel)
        raise InvalidArgument(
            f"{field_name} {channel!r} must be one of {choices}", details={"field": field_name}
        ) from None


@dataclass(frozen=True, slots=True)
class Scope:
    """Where and for whom a rule applies; every field left ``None`` widens it."""

    store_id: str | None = None
    store_group: str | None = None
    channel: Channel | None = None
    member_tier: str | None = None

    def __post_init__(self) -> None:
        if self.store_id is not None and self.store_group is not None:
            raise InvalidArgument("a scope names either a store or a store group, not both", details={"field": "scope"})
        _check_location(self.store_id, "scope.store_id")
        _check_location(self.store_group, "scope.store_group")
        _check_tier(self.member_tier, "scope.member_tier")
        if self.channel is not None:
            # Accept the wire string, keep the enum: equality with PriceContext.channel stays exact.
            object.__setattr__(self, "channel", _check_channel(self.channel, "scope.channel"))

    def matches(self, ctx: PriceContext) -> bool:
        """Whether a sale in this context falls inside the scope."""
        if self.store_id is not None and self.store_id != ctx.store_id:
            return False
        if self.store_group is not None and self.store_group not in ctx.store_groups:
            return False
        if self.channel is not None and self.channel != ctx.channel:
            return False
        return self.member_tier is None or self.member_tier == ctx.member_tier

    def specificity(self) -> tuple[int, int, int]:
        """(location: store 2 / store group 1 / chain 0, tier 1/0, channel 1/0); higher is narrower."""
        location = 2 if self.store_id is not None else 1 if self.store_group is not None else 0
        return (location, int(self.member_tier is not None), int(self.channel is not None))

    def describe(self) -> str:
        """The scope in words, for messages and audit ("store S001, gold members, channel online")."""
        parts = []
        if self.store_id is not None:
            parts.append(f"store {self.store_id}")
        elif self.store_group is not None:
            parts.append(f"store group {self.store_group}")
        else:
            parts.append("chain-wide")
        if self.member_tier is not None:
            parts.append(f"{self.member_tier} members")
        if self.channel is not None:
            parts.append(f"channel {self.channel.value}")
        return ", ".join(parts)


CHAIN_WIDE = Scope()


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceRule:
    """One regular price or promotion for one SKU; see the module docstring for precedence."""

    rule_id: str
    sku: str
    kind: RuleKind
    scope: Scope = CHAIN_WIDE
    currency: str = DEFAULT_CURRENCY
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    priority: int = 0
    sequence: int = 0
    price_fen: int | None = None
    mechanic: Mechanic | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.rule_id, str) or _RULE_ID.fullmatch(self.rule_id) is None:
            raise InvalidArgument(
                f"rule_id {self.rule_id!r} must be 1-64 letters, digits, '.', '_', ':' or '-'",
                details={"field": "rule_id"},
            )
        validate_sku(self.sku)
        try:
            object.__setattr__(self, "kind", RuleKind(self.kind))
        except ValueError:
            raise InvalidArgument(
                f"kind {self.kind!r} must be regular or promotion", details={"field": "kind"}
            ) from None
        if not isinstance(self.scope, Scope):
            raise InvalidArgument("scope must be a Scope", details={"field": "scope"})
        validate_currency(self.currency)
        for name in ("valid_from", "valid_to"):
            moment = getattr(self, name)
            if moment is not None and not _is_aware(moment):
                raise InvalidArgument(
                    f"{name} must be a datetime with a time zone (naive times are ambiguous across stores)",
                    details={"field": name},
                )
        if self.valid_from is not None and self.valid_to is not None and self.valid_to <= self.valid_from:
            raise InvalidArgument(
                f"valid_to {self.valid_to.isoformat()} must be after valid_from {self.valid_from.isoformat()}",
                details={"field": "valid_to"},
            )
        for name in ("priority", "sequence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidArgument(f"{name} must be a whole number", details={"field": name})
        if self.kind is RuleKind.REGULAR:
            if self.price_fen is None:
                raise InvalidArgument("a regular price rule needs price_fen", details={"field": "price_fen"})
            validate_fen(self.price_fen, field="price_fen")
            if self.mechanic is not None:
                raise InvalidArgument("a regular price rule has no promotion mechanic", details={"field": "mechanic"})
        else:
            if not isinstance(self.mechanic, FixedPrice | PercentOff | MultiBuy):
                raise InvalidArgument(
                    "a promotion needs a mechanic: FixedPrice, PercentOff or MultiBuy", details={"field": "mechanic"}
                )
            if self.price_fen is not None:
                raise InvalidArgument(
                    "a promotion carries its price in its mechanic, not in price_fen", details={"field": "price_fen"}
                )
        if not isinstance(self.name, str) or len(self.name) > MAX_NAME_LENGTH:
            raise InvalidArgument(f"name must be at most {MAX_NAME_LENGTH} characters", details={"field": "name"})

    def in_force(self, at: datetime) -> bool:
        """Whether ``at`` lies in ``[valid_from, valid_to)``."""
        return (self.valid_from is None or self.valid_from <= at) and (self.valid_to is None or at < self.valid_to)

    def applies_to(self, ctx: PriceContext) -> bool:
        """Step 1 of the precedence: SKU, validity window, currency and scope."""
        return (
            self.sku == ctx.sku and self.currency == ctx.currency and self.in_force(ctx.at) and self.scope.matches(ctx)
        )

    def window_text(self) -> str:
        """The validity window as ``[from, to)`` in ISO 8601, ``…`` for an open end."""
        start = self.valid_from.isoformat() if self.valid_from is not None else "…"
        end = self.valid_to.isoformat() if self.valid_to is not None else "…"
        return f"[{start}, {end})"


PrecedenceKey: TypeAlias = tuple[tuple[int, int, int], int, tuple[bool, datetime], int, str]


def precedence_key(rule: PriceRule) -> PrecedenceKey:
    """Steps 2–8 of the precedence as one sortable key; the greatest key among applicable rules wins."""
    started = rule.valid_from is not None
    return (
        rule.scope.specificity(),
        rule.priority,
        (started, rule.valid_from if rule.valid_from is not None else _EARLIEST),
        rule.sequence,
        rule.rule_id,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceContext:
    """One sale line's circumstances: which SKU, where, through which channel, for whom, and when."""

    sku: str
    store_id: str
    store_groups: frozenset[str] = frozenset()
    channel: Channel
    member_tier: str | None = None
    at: datetime
    currency: str = DEFAULT_CURRENCY

    def __post_init__(self) -> None:
        validate_sku(self.sku)
        if self.store_id is None:
            raise InvalidArgument("store_id is required to price a sale", details={"field": "store_id"})
        _check_location(self.store_id, "store_id")
        if isinstance(self.store_groups, str) or not isinstance(self.store_groups, frozenset):
            raise InvalidArgument(
                "store_groups must be a frozenset of store group ids", details={"field": "store_groups"}
            )
        object.__setattr__(self, "channel", _check_channel(self.channel, "channel"))
        _check_tier(self.member_tier, "member_tier")
        if not _is_aware(self.at):
            raise InvalidArgument("at must be a datetime with a time zone", details={"field": "at"})
        validate_currency(self.currency)


@dataclass(frozen=True, slots=True)
class EffectivePrice:
    """What a line costs, and which rules decided it."""

    unit_price_fen: int
    regular_price_fen: int
    regular_rule: PriceRule
    promotion: PriceRule | None
    promotion_applied: bool
    quantity: Decimal
    line_total_fen: int
    currency: str
    # Why the winning promotion was not applied (empty when it was, or when there is none).
    promotion_note: str = ""

    @property
    def regular_line_total_fen(self) -> int:
        """What the line would cost at the regular price."""
        return round_half_up_fen(Decimal(self.regular_price_fen) * self.quantity)

    @property
    def saving_fen(self) -> int:
        """What the promotion saves the buyer on this line (0 when none applied)."""
        return self.regular_line_total_fen - self.line_total_fen


def validate_quantity(quantity: Decimal | int) -> Decimal:
    """A line quantity as Decimal: above 0, at most 3 decimals, at most :data:`MAX_QUANTITY`."""
    if isinstance(quantity, bool) or not isinstance(quantity, Decimal | int):
        raise InvalidArgument("quantity must be a Decimal (never a float)", details={"field": "quantity"})
    value = Decimal(quantity)
    if not value.is_finite() or value <= 0 or value > MAX_QUANTITY:
        raise InvalidArgument(
            f"quantity {value} must be above 0 and at most {MAX_QUANTITY}", details={"field": "quantity"}
        )
    if (value * 1000) % 1 != 0:
        raise InvalidArgument(f"quantity {value} has more than 3 decimals", details={"field": "quantity"})
    return value


def _first_applicable(ordered: tuple[PriceRule, ...], ctx: PriceContext) -> PriceRule | None:
    for rule in ordered:
        if rule.applies_to(ctx):
            return rule
    return None


@dataclass(frozen=True, slots=True)
class Decision:
    """Which rules price one SKU in one context (store, channel, tier, currency), from ``since``
    (inclusive) until ``until`` (exclusive; None: no rule's window ends or starts later)."""

    regular: PriceRule
    promotion: PriceRule | None
    currency: str
    since: datetime
    until: datetime | None

    def holds_at(self, at: datetime) -> bool:
        return self.since <= at and (self.until is None or at < self.until)

    def price(self, quantity: Decimal, *, weighed: bool = False) -> EffectivePrice:
        """The line for ``quantity`` (already validated: see :func:`validate_quantity`)."""
        regular_fen = self.regular.price_fen
        assert regular_fen is not None  # PriceRule guarantees it for REGULAR rules
        promotion = self.promotion
        if promotion is None:
            line_total = round_half_up_fen(Decimal(regular_fen) * quantity)
            return EffectivePrice(
                regular_fen, regular_fen, self.regular, None, False, quantity, line_total, self.currency
            )
        assert promotion.mechanic is not None  # PriceRule guarantees it for PROMOTION rules
        unit, line_total, applied, note = apply_promotion(regular_fen, promotion.mechanic, quantity, weighed)
        return EffectivePrice(
            unit, regular_fen, self.regular, promotion, applied, quantity, line_total, self.currency, note
        )


_NO_RULES: tuple[PriceRule, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class RuleSet:
    """Rules indexed per SKU and kind, each list sorted once by :func:`precedence_key` (best first)."""

    regular_by_sku: Mapping[str, tuple[PriceRule, ...]] = field(default_factory=dict)
    promotions_by_sku: Mapping[str, tuple[PriceRule, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, rules: Iterable[PriceRule]) -> RuleSet:
        """Index the rules; O(n log n) once, so that pricing a line never sorts."""
        regular: dict[str, list[PriceRule]] = {}
        promotions: dict[str, list[PriceRule]] = {}
        for rule in rules:
            bucket = regular if rule.kind is RuleKind.REGULAR else promotions
            bucket.setdefault(rule.sku, []).append(rule)
        return cls(
            regular_by_sku=MappingProxyType(
                {sku: tuple(sorted(group, key=precedence_key, reverse=True)) for sku, group in regular.items()}
            ),
            promotions_by_sku=MappingProxyType(
                {sku: tuple(sorted(group, key=precedence_key, reverse=True)) for sku, group in promotions.items()}
            ),
        )

    def regular_rule(self, ctx: PriceContext) -> PriceRule:
        """The winning REGULAR rule; :class:`NoPrice` when none applies."""
        rule = _first_applicable(self.regular_by_sku.get(ctx.sku, _NO_RULES), ctx)
        if rule is None:
            raise NoPrice(
                f"no price for SKU {ctx.sku} in store {ctx.store_id} "
                f"(channel {ctx.channel.value}, currency {ctx.currency}, at {ctx.at.isoformat()})",
                details={"sku": ctx.sku, "store_id": ctx.store_id, "currency": ctx.currency},
            )
        return rule

    def promotion_rule(self, ctx: PriceContext) -> PriceRule | None:
        """The winning PROMOTION rule, applied or not; ``None`` when none applies."""
        return _first_applicable(self.promotions_by_sku.get(ctx.sku, _NO_RULES), ctx)

    def decide(self, ctx: PriceContext) -> Decision:
        """The winning REGULAR rule and promotion, and the moments around ``ctx.at`` between which
        they stay the winners (:class:`NoPrice` when no regular rule applies).

        Only a rule's window depends on the moment, and a window opens or closes only at one of
        its bounds, so the winners stay the same from the latest bound of the SKU's rules at or
        before ``ctx.at`` until the next one after it.
        """
        regular = self.regular_rule(ctx)
        promotion = self.promotion_rule(ctx)
        since, until = _EARLIEST, None
        for group in (self.regular_by_sku.get(ctx.sku, _NO_RULES), self.promotions_by_sku.get(ctx.sku, _NO_RULES)):
            for rule in group:
                for bound in (rule.valid_from, rule.valid_to):
                    if bound is None:
                        continue
                    if bound <= ctx.at:
                        since = max(since, bound)
                    elif until is None or bound < until:
                        until = bound
        return Decision(regular, promotion, ctx.currency, since, until)

    def price(self, ctx: PriceContext, quantity: Decimal = _ONE, *, weighed: bool = False) -> EffectivePrice:
        """The regular price, the promotion on top of it, and the line total for ``quantity``.

        ``weighed`` marks goods sold by weight (unit kg): multi-buy never applies to them, not
        even at a whole 2.000 kg.
        """
        amount = validate_quantity(quantity)
        return self.decide(ctx).price(amount, weighed=weighed)

    def __len__(self) -> int:
        return sum(len(group) for group in self.regular_by_sku.values()) + sum(
            len(group) for group in self.promotions_by_sku.values()
        )


def effective_price(
    rules: Iterable[PriceRule], ctx: PriceContext, quantity: Decimal = _ONE, *, weighed: bool = False
) -> EffectivePrice:
    """Price one line from loose rules; for many lines build a :class:`RuleSet` once instead."""
    return RuleSet.of(rule for rule in rules if rule.sku == ctx.sku).price(ctx, quantity, weighed=weighed)


@dataclass(frozen=True, slots=True)
class RuleConflict:
    """Two rules that would tie on every precedence step up to ``valid_from`` while both are valid."""

    first: PriceRule
    second: PriceRule

    def message(self) -> str:
        what = "promotions" if self.first.kind is RuleKind.PROMOTION else "regular prices"
        return (
            f"overlapping {what} with the same priority: {self.first.rule_id} {self.first.window_text()} "
            f"and {self.second.rule_id} {self.second.window_text()} "
            f"(SKU {self.first.sku}, {self.first.scope.describe()}, {self.first.currency}, "
            f"priority {self.first.priority})"
        )


_ConflictKey: TypeAlias = tuple[str, RuleKind, Scope, str, int]


def find_conflicts(existing: Iterable[PriceRule], new: Iterable[PriceRule]) -> list[RuleConflict]:
    """Pairs (new, existing) or (new, new) with the same SKU, kind, scope, currency and priority whose
    windows overlap. Overlaps among existing rules alone are not reported. A new rule with the rule_id
    of an existing one replaces it (an edit), so the two are not compared.

    The list is non-empty exactly when there is at least one overlap; each overlapping rule appears in
    at least one pair, not necessarily in every pair. Sweep per group: O(n log n).
    """
    new_rules = list(new)
    new_ids: set[str] = set()
    for rule in new_rules:
        if rule.rule_id in new_ids:
            raise InvalidArgument(
                f"rule_id {rule.rule_id} appears twice in one change", details={"rule_id": rule.rule_id}
            )
        new_ids.add(rule.rule_id)
    groups: dict[_ConflictKey, list[tuple[datetime, datetime, str, bool, PriceRule]]] = {}
    for is_new, rules in ((False, (rule for rule in existing if rule.rule_id not in new_ids)), (True, new_rules)):
        for rule in rules:
            key = (rule.sku, rule.kind, rule.scope, rule.currency, rule.priority)
            start = rule.valid_from if rule.valid_from is not None else _EARLIEST
            end = rule.valid_to if rule.valid_to is not None else _LATEST
            groups.setdefault(key, []).append((start, end, rule.rule_id, is_new, rule))
    conflicts: list[RuleConflict] = []
    for members in groups.values():
        if len(members) < 2 or not any(member[3] for member in members):
            continue
        members.sort(key=lambda member: (member[0], member[1], member[2]))
        # The furthest-reaching earlier window of each origin: if any earlier window overlaps, that one does.
        reach_existing: tuple[datetime, PriceRule] | None = None
        reach_new: tuple[datetime, PriceRule] | None = None
        for start, end, _, is_new, rule in members:
            candidates = (reach_existing, reach_new) if is_new else (reach_new,)
            for candidate in candidates:
                if candidate is not None and candidate[0] > start:
                    conflicts.append(RuleConflict(candidate[1], rule))
            if is_new:
                if reach_new is None or end > reach_new[0]:
                    reach_new = (end, rule)
            elif reach_existing is None or end > reach_existing[0]:
                reach_existing = (end, rule)
    conflicts.sort(key=lambda conflict: (conflict.first.rule_id, conflict.second.rule_id))
    return conflicts


def check_conflicts(existing: Iterable[PriceRule], new: Iterable[PriceRule]) -> None:
    """Refuse new rules that overlap another rule with the same SKU, kind, scope, currency and priority.

    Such rules would be decided only by ``valid_from`` and ``sequence``, which nobody setting
    up a promotion means; raising :class:`OverlappingRules` asks them to pick a priority or
    fix the window. All overlaps are listed in ``details["conflicts"]``.
    """
    conflicts = find_conflicts(existing, new)
    if conflicts:
        raise OverlappingRules(
            conflicts[0].message() + (f" (and {len(conflicts) - 1} more overlaps)" if len(conflicts) > 1 else ""),
            details={
                "conflicts": [
                    {
                        "rule_id": conflict.first.rule_id,
                        "window": conflict.first.window_text(),
                        "other_rule_id": conflict.second.rule_id,
                        "other_window": conflict.second.window_text(),
                    }
                    for conflict in conflicts
                ]
            },
        )
