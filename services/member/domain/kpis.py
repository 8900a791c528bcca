"""Member KPIs per period and store, from sale facts in the sales journal.

Input
-----
A :class:`SaleFact` is one journal entry: a sale or a return, with the member's id (``None``
for an anonymous shopper), the store, the time and the amount in fen. The amount is never
negative; ``kind`` says which way it goes. The period is half-open, ``start <= occurred_at <
end``. When ``store_id`` is given, only that store's facts count. A return counts at the store
and member given on the return fact.

The journal is delivered at least once, so a fact seen twice under the same ``entry_id``
counts once. ``entry_id`` is the journal entry's own id (a return has its own, not its
sale's). Two *different* facts under one id raise ``ValueError``.

Definitions
-----------
* **sales count**: the number of sale facts. Returns never change a count: a shopper who
  bought and then brought the goods back still made the visit.
* **net sales**: sale amounts minus return amounts in the period. A return lowers the period
  in which it happens, which may not be the period of its sale.
* **active members**: distinct members with at least one sale in the period. A return alone
  does not make a member active.
* **repeat-purchase rate (复购率)**: members with at least 2 sales ÷ members with at least 1
  sale. ``None`` when no member bought.
* **average basket (客单价)**: net sales ÷ sales count, in fen, rounded half to even.
  ``None`` without sales. ``member_average_basket_minor`` is the same over member sales only.
* **member share of sales**: member net sales ÷ all net sales. ``None`` when all net sales are
  zero or below. In a period where returns dominate the share can leave 0–1, because it
  reports the net amounts as they are.

Rates are ``Decimal`` to four places (half to even), like the inventory KPIs.

API
---
``SaleKind``, ``SaleFact``, ``MemberKpis``, ``member_kpis(facts, start, end, store_id=None)``,
``member_kpis_by_store(facts, start, end) -> dict[str, MemberKpis]``.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

RATE_PLACES = Decimal("0.0001")


class SaleKind(enum.StrEnum):
    SALE = "sale"
    RETURN = "return"


@dataclass(frozen=True, slots=True)
class SaleFact:
    """One journal entry (``entry_id`` is its own id): a sale or a return of ``amount_minor`` fen (never negative)."""

    entry_id: str
    member_id: str | None
    store_id: str
    occurred_at: datetime
    amount_minor: int
    kind: SaleKind = SaleKind.SALE

    def __post_init__(self) -> None:
        if self.amount_minor < 0:
            raise ValueError(f"{self.entry_id}: amount_minor must not be negative (kind says sale or return)")


@dataclass(frozen=True, slots=True)
class MemberKpis:
    """Member KPIs of one period (``start`` inclusive, ``end`` exclusive), for one store or all (``None``)."""

    start: datetime
    end: datetime
    store_id: str | None
    sales_count: int
    member_sales_count: int
    gross_sales_minor: int
    returns_minor: int
    net_sales_minor: int
    member_net_sales_minor: int
    active_members: int
    repeat_members: int
    repeat_purchase_rate: Decimal | None
    average_basket_minor: int | None
    member_average_basket_minor: int | None
    member_share_of_sales: Decimal | None


def member_kpis(facts: Iterable[SaleFact], start: datetime, end: datetime, store_id: str | None = None) -> MemberKpis:
    """The KPIs of the facts in ``[start, end)``, for ``store_id`` or for all stores."""
    if start >= end:
        raise ValueError("the period must end after it starts")
    in_scope = [
        fact
        for fact in _unique(facts)
        if start <= fact.occurred_at < end and (store_id is None or fact.store_id == store_id)
    ]
    sales = [fact for fact in in_scope if fact.kind is SaleKind.SALE]
    returns = [fact for fact in in_scope if fact.kind is SaleKind.RETURN]
    member_sales = [fact for fact in sales if fact.member_id is not None]
    gross = sum(fact.amount_minor for fact in sales)
    returned = sum(fact.amount_minor for fact in returns)
    member_net = sum(fact.amount_minor for fact in member_sales) - sum(
        fact.amount_minor for fact in returns if fact.member_id is not None
    )
    net = gross - returned
    sales_per_member = Counter(fact.member_id for fact in member_sales)
    active = len(sales_per_member)
    repeat = sum(1 for count in sales_per_member.values() if count >= 2)
    return MemberKpis(
        start=start,
        end=end,
        store_id=store_id,
        sales_count=len(sales),
        member_sales_count=len(member_sales),
        gross_sales_minor=gross,
        returns_minor=returned,
        net_sales_minor=net,
        member_net_sales_minor=member_net,
        active_members=active,
        repeat_members=repeat,
        repeat_purchase_rate=_rate(repeat, active) if active else None,
        average_basket_minor=round(Fraction(net, len(sales))) if sales else None,
        member_average_basket_minor=round(Fraction(member_net, len(member_sales))) if member_sales else None,
        member_share_of_sales=_rate(member_net, net) if net > 0 else None,
    )


def member_kpis_by_store(facts: Iterable[SaleFact], start: datetime, end: datetime) -> dict[str, MemberKpis]:
    """:func:`member_kpis` for every store with a fact in the period, by store id in ascending order."""
    unique = _unique(facts)
    stores = sorted({fact.store_id for fact in unique if start <= fact.occurred_at < end})
    return {store: member_kpis(unique, start, end, store) for store in stores}


def _unique(facts: Iterable[SaleFact]) -> list[SaleFact]:
    seen: dict[str, SaleFact] = {}
    for fact in facts:
        known = seen.setdefault(fact.entry_id, fact)
        if known != fact:
            raise ValueError(f"two different facts share the id {fact.entry_id}")
    return list(seen.values())


def _rate(part: int, whole: int) -> Decimal:
    return (Decimal(part) / Decimal(whole)).quantize(RATE_PLACES)
