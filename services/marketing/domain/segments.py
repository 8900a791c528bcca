"""Segment rules: which members a campaign may target, as a tree a marketer writes and staff can read.

A rule is JSON: ``{"all": [rule, …]}``, ``{"any": [rule, …]}``, ``{"not": rule}``, or a
condition on one attribute of the member::

    {"attribute": "engagement", "op": "in", "value": ["at_risk", "sleeping"]}
    {"attribute": "purchases", "window_days": 90, "op": ">=", "value": 2}
    {"attribute": "category_bought", "window_days": 180, "op": "not_in", "value": ["baby"]}
    {"attribute": "consent", "channel": "sms", "op": "=", "value": true}
    {"attribute": "churn_risk", "op": ">=", "value": 0.7}

:data:`ATTRIBUTES` is the whole vocabulary: each attribute's kind, the operators it takes and
whether it needs a ``window_days`` (the purchases of the last N days, counted back from the
evaluation's moment, so a segment evaluated daily moves with the calendar) or a ``channel``.
:func:`parse_rule` checks a rule against it and raises :class:`InvalidRule` naming the path of
the first bad node (``all[1].any[0].op``) — saved rules are always valid, and evaluation is the
database's job (one set-based query, compiled from the tree by the adapter).

Money is integer fen; ``days_since_last_purchase`` of a member who never bought is unknown, so
``>=`` conditions on it hold (they have been away longer than any bound) and ``<`` ones do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeGuard

from servicekit.errors import InvalidArgument

MAX_DEPTH = 8
MAX_CONDITIONS = 64
MAX_LIST = 500
MAX_WINDOW_DAYS = 3 * 366
MAX_COUNT = 10**6
MAX_FEN = 10**12


class InvalidRule(InvalidArgument):
    reason = "invalid-segment-rule"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path or 'rule'}: {message}", details={"path": path or "rule"})
        self.path = path


class Kind(StrEnum):
    CHOICE = "choice"  # one of a closed set of words
    IDS = "ids"  # store ids, category names: an open set
    COUNT = "count"
    MONEY = "money"  # fen
    DAYS = "days"
    SCORE = "score"  # 0.0 to 1.0
    RFM = "rfm"  # a cell "543": recency, frequency, monetary quintiles 1–5
    FLAG = "flag"


COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
MEMBERSHIP = ("in", "not_in")
# The member service's lifecycle stages (from its events) …
LIFECYCLE_STAGES = ("new", "active", "repeat", "dormant", "churned")
# … and marketing's own engagement tag, from purchases and the churn model (see member_tags).
ENGAGEMENT_STAGES = ("new", "active", "at_risk", "sleeping", "lost")
CONSENT_CHANNELS = ("sms", "app_push", "wechat", "email")


@dataclass(frozen=True, slots=True)
class Attribute:
    kind: Kind
    ops: tuple[str, ...]
    windowed: bool = False
    needs_channel: bool = False
    choices: tuple[str, ...] = ()


ATTRIBUTES: Mapping[str, Attribute] = {
    "tier": Attribute(Kind.IDS, MEMBERSHIP),
    "lifecycle_stage": Attribute(Kind.CHOICE, MEMBERSHIP, choices=LIFECYCLE_STAGES),
    "engagement": Attribute(Kind.CHOICE, MEMBERSHIP, choices=ENGAGEMENT_STAGES),
    "home_store": Attribute(Kind.IDS, MEMBERSHIP),
    "store_visited": Attribute(Kind.IDS, MEMBERSHIP, windowed=True),
    "consent": Attribute(Kind.FLAG, ("=",), needs_channel=True),
    "days_since_last_purchase": Attribute(Kind.DAYS, COMPARISONS),
    "purchases": Attribute(Kind.COUNT, COMPARISONS, windowed=True),
    "spend_fen": Attribute(Kind.MONEY, COMPARISONS, windowed=True),
    "average_basket_fen": Attribute(Kind.MONEY, COMPARISONS, windowed=True),
    "category_bought": Attribute(Kind.IDS, MEMBERSHIP, windowed=True),
    "rfm_cell": Attribute(Kind.RFM, MEMBERSHIP),
    "churn_risk": Attribute(Kind.SCORE, COMPARISONS),
    "p_active": Attribute(Kind.SCORE, COMPARISONS),
    "expected_purchases_90d": Attribute(Kind.COUNT, COMPARISONS),
}


@dataclass(frozen=True, slots=True)
class Condition:
    attribute: str
    op: str
    value: Any  # int, float, bool or a tuple of strings, as the attribute's kind says
    window_days: int | None = None
    channel: str | None = None

    def to_json(self) -> dict[str, Any]:
        node: dict[str, Any] = {"attribute": self.attribute}
        if self.window_days is not None:
            node["window_days"] = self.window_days
        if self.channel is not None:
            node["channel"] = self.channel
        node["op"] = self.op
        node["value"] = list(self.value) if isinstance(self.value, tuple) else self.value
        return node


@dataclass(frozen=True, slots=True)
class AllOf:
    rules: tuple[Rule, ...]

    def to_json(self) -> dict[str, Any]:
        return {"all": [rule.to_json() for rule in self.rules]}


@dataclass(frozen=True, slots=True)
class AnyOf:
    rules: tuple[Rule, ...]

    def to_json(self) -> dict[str, Any]:
        return {"any": [rule.to_json() for rule in self.rules]}


@dataclass(frozen=True, slots=True)
class Not:
    rule: Rule

    def to_json(self) -> dict[str, Any]:
        return {"not": self.rule.to_json()}


Rule = Condition | AllOf | AnyOf | Not


def parse_rule(node: object) -> Rule:
    """The rule ``node`` (decoded JSON) describes, or :class:`InvalidRule` naming what is wrong where."""
    counter = [0]
    return _parse(node, "", 0, counter)


def conditions(rule: Rule) -> list[Condition]:
    """Every condition of the tree, left to right."""
    if isinstance(rule, Condition):
        return [rule]
    if isinstance(rule, Not):
        return conditions(rule.rule)
    return [condition for child in rule.rules for condition in conditions(child)]


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def _parse(node: object, path: str, depth: int, counter: list[int]) -> Rule:
    if depth > MAX_DEPTH:
        raise InvalidRule(path, f"rules nest at most {MAX_DEPTH} deep")
    if not isinstance(node, dict):
        raise InvalidRule(path, "a rule is an object")
    if "attribute" in node:
        counter[0] += 1
        if counter[0] > MAX_CONDITIONS:
            raise InvalidRule(path, f"a segment has at most {MAX_CONDITIONS} conditions")
        return _condition(node, path)
    if len(node) != 1:
        raise InvalidRule(path, 'a rule is one of "all", "any", "not" or a condition with an "attribute"')
    ((key, value),) = node.items()
    if key == "not":
        return Not(_parse(value, _join(path, "not"), depth + 1, counter))
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise InvalidRule(_join(path, key), f'"{key}" takes a non-empty list of rules')
        rules = tuple(_parse(child, f"{_join(path, key)}[{i}]", depth + 1, counter) for i, child in enumerate(value))
        return AllOf(rules) if key == "all" else AnyOf(rules)
    raise InvalidRule(_join(path, key), f'unknown combinator "{key}"; use "all", "any" or "not"')


def _condition(node: dict[str, Any], path: str) -> Condition:
    name = node["attribute"]
    attribute = ATTRIBUTES.get(name) if isinstance(name, str) else None
    if attribute is None:
        raise InvalidRule(_join(path, "attribute"), f"unknown attribute {name!r}; known: {', '.join(ATTRIBUTES)}")
    allowed = {"attribute", "op", "value"} | ({"window_days"} if attribute.windowed else set())
    allowed |= {"channel"} if attribute.needs_channel else set()
    for key in node:
        if key not in allowed:
            raise InvalidRule(_join(path, key), f"{name} takes no {key!r}")
    op = node.get("op")
    if op not in attribute.ops:
        raise InvalidRule(
            _join(path, "op"), f"unknown operator {op!r} for {name}; use one of {', '.join(attribute.ops)}"
        )
    window = None
    if attribute.windowed:
        window = node.get("window_days")
        if not _is_int(window) or not 1 <= window <= MAX_WINDOW_DAYS:
            raise InvalidRule(_join(path, "window_days"), f"{name} needs window_days, 1 to {MAX_WINDOW_DAYS}")
    channel = None
    if attribute.needs_channel:
        channel = node.get("channel")
        if channel not in CONSENT_CHANNELS:
            raise InvalidRule(_join(path, "channel"), f"{name} needs a channel: {', '.join(CONSENT_CHANNELS)}")
    value = _value(attribute, node.get("value"), _join(path, "value"), name)
    return Condition(name, op, value, window, channel)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _value(attribute: Attribute, value: object, path: str, name: str) -> Any:
    kind = attribute.kind
    if kind in (Kind.CHOICE, Kind.IDS, Kind.RFM):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            raise InvalidRule(path, f"{name} takes a list of 1 to {MAX_LIST} values")
        for item in value:
            if not isinstance(item, str) or not 0 < len(item) <= 64:
                raise InvalidRule(path, f"{name} values are strings of 1 to 64 characters")
            if kind is Kind.CHOICE and item not in attribute.choices:
                raise InvalidRule(path, f"unknown {name} {item!r}; use {', '.join(attribute.choices)}")
            if kind is Kind.RFM and not (len(item) == 3 and all(c in "12345" for c in item)):
                raise InvalidRule(path, f"an RFM cell is three digits 1–5, e.g. '543', not {item!r}")
        return tuple(sorted(set(value)))
    if kind is Kind.FLAG:
        if not isinstance(value, bool):
            raise InvalidRule(path, f"{name} takes true or false")
        return value
    if kind is Kind.SCORE:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise InvalidRule(path, f"{name} is a score from 0 to 1")
        return float(value)
    bound = {Kind.COUNT: MAX_COUNT, Kind.MONEY: MAX_FEN, Kind.DAYS: 100 * 366}[kind]
    if not _is_int(value) or not 0 <= value <= bound:
        raise InvalidRule(path, f"{name} takes a whole number from 0 to {bound}")
    return value
