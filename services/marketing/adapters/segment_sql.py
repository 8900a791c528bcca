"""A segment rule compiled to one SQL condition over the member projection, evaluated by PostgreSQL.

:func:`compile_rule` turns a parsed rule (:mod:`services.marketing.domain.segments`) into a
``WHERE`` fragment over ``member m LEFT JOIN member_score s`` with every value bound as a
parameter (never spliced into the text), so a segment over a million members is one set-based
statement. Purchase conditions are correlated subqueries on ``purchase`` (indexed by member and
time) counting only sales not fully returned, over the window back from the evaluation moment
``:as_of``:

* ``days_since_last_purchase`` of a member who never bought is taken as "longer than any
  bound": ``>``, ``>=`` and ``!=`` hold, ``<``, ``<=`` and ``=`` do not;
* a model score, engagement tag or RFM cell of an unscored member is unknown, and no comparison
  with it holds, ``not_in`` included; a member without a home store is in no list of stores.

:data:`AUDIENCE` is the population every segment is drawn from: members neither erased nor
merged into another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.marketing.domain.segments import AllOf, AnyOf, Condition, Not, Rule

AUDIENCE = "NOT m.erased AND m.merged_into IS NULL"
FROM = "member m LEFT JOIN member_score s ON s.member_id = m.member_id"
NEVER_DAYS = 2_147_483_647
SQL_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

# A purchase counts unless it has been returned in full.
_KEPT = "p.member_id = m.member_id AND NOT (p.net_fen > 0 AND p.returned_fen >= p.net_fen)"
_IN_WINDOW = "p.occurred_at >= CAST(:as_of AS timestamptz) - make_interval(days => :{window})"
_MEMBER_COLUMNS = {"tier": "m.tier", "lifecycle_stage": "m.lifecycle_stage", "home_store": "m.home_store_id"}
_SCORE_COLUMNS = {
    "engagement": "s.engagement",
    "rfm_cell": "s.rfm_cell",
    "churn_risk": "s.churn_risk",
    "p_active": "s.p_active",
    "expected_purchases_90d": "s.expected_purchases_90d",
}


@dataclass
class CompiledRule:
    sql: str
    params: dict[str, Any] = field(default_factory=dict)


class _Compiler:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return name

    def rule(self, rule: Rule) -> str:
        if isinstance(rule, AllOf):
            return "(" + " AND ".join(self.rule(child) for child in rule.rules) + ")"
        if isinstance(rule, AnyOf):
            return "(" + " OR ".join(self.rule(child) for child in rule.rules) + ")"
        if isinstance(rule, Not):
            return f"(NOT COALESCE({self.rule(rule.rule)}, false))"
        return "COALESCE(" + self.condition(rule) + ", false)"

    def condition(self, c: Condition) -> str:
        if c.op in ("in", "not_in"):
            if c.attribute in _SCORE_COLUMNS:  # unknown for an unscored member: neither in nor not in
                column, values = _SCORE_COLUMNS[c.attribute], self.bind(list(c.value))
                return f"({column} = ANY(:{values}))" if c.op == "in" else f"({column} <> ALL(:{values}))"
            expression = self.membership(c)
            return expression if c.op == "in" else f"NOT {expression}"
        operator = SQL_OPS[c.op]
        value = self.bind(c.value)
        if c.attribute == "consent":
            held = f"(CAST(:{self.bind(c.channel)} AS text) = ANY(m.consent))"
            return held if c.value else f"NOT {held}"
        if c.attribute in _SCORE_COLUMNS:
            return f"({_SCORE_COLUMNS[c.attribute]} {operator} :{value})"
        if c.attribute == "days_since_last_purchase":
            last = f"(SELECT max(p.occurred_at) FROM purchase p WHERE {_KEPT})"
            days = f"COALESCE(EXTRACT(DAY FROM CAST(:as_of AS timestamptz) - {last})::int, {NEVER_DAYS})"
            return f"({days} {operator} :{value})"
        window = self.bind(c.window_days)
        scope = f"FROM purchase p WHERE {_KEPT} AND {_IN_WINDOW.format(window=window)}"
        if c.attribute == "purchases":
            return f"((SELECT count(*) {scope}) {operator} :{value})"
        if c.attribute == "spend_fen":
            return f"((SELECT COALESCE(sum(p.net_fen - p.returned_fen), 0) {scope}) {operator} :{value})"
        if c.attribute == "average_basket_fen":
            average = f"(SELECT COALESCE(sum(p.net_fen - p.returned_fen) / NULLIF(count(*), 0), 0) {scope})"
            return f"({average} {operator} :{value})"
        raise ValueError(f"no SQL for {c.attribute} {c.op}")  # parse_rule admits nothing else

    def membership(self, c: Condition) -> str:
        values = self.bind(list(c.value))
        if c.attribute in _MEMBER_COLUMNS:  # a member without a home store is in no list of stores
            return f"COALESCE({_MEMBER_COLUMNS[c.attribute]} = ANY(:{values}), false)"
        window = self.bind(c.window_days)
        scope = f"FROM purchase p WHERE {_KEPT} AND {_IN_WINDOW.format(window=window)}"
        if c.attribute == "store_visited":
            return f"EXISTS (SELECT 1 {scope} AND p.store_id = ANY(:{values}))"
        if c.attribute == "category_bought":
            return (
                f"EXISTS (SELECT 1 {scope} AND EXISTS (SELECT 1 FROM purchase_line l "
                f"WHERE l.sale_id = p.sale_id AND l.category = ANY(:{values})))"
            )
        raise ValueError(f"no SQL for {c.attribute} {c.op}")


def compile_rule(rule: Rule) -> CompiledRule:
    """The rule as a SQL condition over :data:`FROM` (needs ``:as_of`` bound besides its own parameters)."""
    compiler = _Compiler()
    sql = compiler.rule(rule)
    return CompiledRule(sql, compiler.params)
