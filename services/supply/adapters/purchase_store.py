"""Purchase orders, their lines and the replenishment suggestions placed on them, in PostgreSQL.

An order's row is the lock of everything that changes it (lines, receipts, returns, invoices):
commands take it ``FOR UPDATE`` first, so two receipts on one order are applied one after the
other and never together exceed a line's allowance (which the table's CHECK holds as well).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.supply.domain.purchase_orders import LineQuantities, PoStatus
from services.supply.domain.settlement import round_half_up_fen


@dataclass(frozen=True, slots=True)
class PoLine:
    line_number: int
    sku: str
    contract_id: str
    ordered: Decimal
    unit_cost_fen: int
    over_delivery_allowance: Decimal
    suggested: Decimal | None = None
    confirmed: Decimal | None = None
    accepted: Decimal = Decimal(0)
    rejected: Decimal = Decimal(0)
    returned: Decimal = Decimal(0)
    billed: Decimal = Decimal(0)
    last_arrival_at: datetime | None = None
    fully_delivered_at: datetime | None = None

    @property
    def quantities(self) -> LineQuantities:
        return LineQuantities(self.ordered, self.accepted, self.rejected, self.returned, self.billed)

    @property
    def value_fen(self) -> int:
        return round_half_up_fen(self.ordered * self.unit_cost_fen)


@dataclass(frozen=True, slots=True)
class StoredPurchaseOrder:
    po_id: str
    supplier_id: str
    location_id: str
    status: PoStatus
    origin: str
    business_day: date | None
    promised_date: date | None
    created_by: str
    approved_by: str
    supplier_note: str
    cancel_reason: str
    sent_at: datetime | None
    confirmed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    lines: tuple[PoLine, ...]
    suggestion_ids: tuple[str, ...]

    @property
    def total_fen(self) -> int:
        """Ordered value: per line ordered × unit cost, half up, summed."""
        return sum(line.value_fen for line in self.lines)

    def line(self, line_number: int) -> PoLine | None:
        for line in self.lines:
            if line.line_number == line_number:
                return line
        return None


_PO_COLUMNS = (
    "po_id, supplier_id, location_id, status, origin, business_day, promised_date, created_by, approved_by, "
    "supplier_note, cancel_reason, sent_at, confirmed_at, created_at, updated_at, version"
)
_LINE_COLUMNS = (
    "po_id, line_number, sku, contract_id, ordered, unit_cost_fen, over_delivery_allowance, suggested, confirmed, "
    "accepted, rejected, returned, billed, last_arrival_at, fully_delivered_at"
)


def _line(row: Any) -> PoLine:
    return PoLine(
        row.line_number,
        row.sku,
        row.contract_id,
        row.ordered,
        row.unit_cost_fen,
        row.over_delivery_allowance,
        row.suggested,
        row.confirmed,
        row.accepted,
        row.rejected,
        row.returned,
        row.billed,
        row.last_arrival_at,
        row.fully_delivered_at,
    )


async def _assemble(session: AsyncSession, rows: Sequence[Any]) -> list[StoredPurchaseOrder]:
    if not rows:
        return []
    ids = [row.po_id for row in rows]
    lines: dict[str, list[PoLine]] = {}
    for row in await session.execute(
        text(
            f"SELECT {_LINE_COLUMNS} FROM po_line WHERE po_id = ANY (CAST(:ids AS text[])) ORDER BY po_id, line_number"
        ),
        {"ids": ids},
    ):
        lines.setdefault(row.po_id, []).append(_line(row))
    suggestions: dict[str, list[str]] = {}
    for row in await session.execute(
        text(
            "SELECT po_id, suggestion_id FROM replenishment_suggestion WHERE po_id = ANY (CAST(:ids AS text[])) "
            "ORDER BY po_id, suggested_at, suggestion_id"
        ),
        {"ids": ids},
    ):
        suggestions.setdefault(row.po_id, []).append(row.suggestion_id)
    return [
        StoredPurchaseOrder(
            po_id=row.po_id,
            supplier_id=row.supplier_id,
            location_id=row.location_id,
            status=PoStatus(row.status),
            origin=row.origin,
            business_day=row.business_day,
            promised_date=row.promised_date,
            created_by=row.created_by,
            approved_by=row.approved_by,
            supplier_note=row.supplier_note,
            cancel_reason=row.cancel_reason,
            sent_at=row.sent_at,
            confirmed_at=row.confirmed_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            version=row.version,
            lines=tuple(lines.get(row.po_id, ())),
            suggestion_ids=tuple(suggestions.get(row.po_id, ())),
        )
        for row in rows
    ]


async def get_po(session: AsyncSession, po_id: str, *, lock: bool = False) -> StoredPurchaseOrder | None:
    rows = (
        await session.execute(
            text(f"SELECT {_PO_COLUMNS} FROM purchase_order WHERE po_id = :id{' FOR UPDATE' if lock else ''}"),
            {"id": po_id},
        )
    ).all()
    found = await _assemble(session, rows)
    return found[0] if found else None


async def list_pos(
    session: AsyncSession,
    *,
    supplier_id: str | None,
    location_id: str | None,
    statuses: Sequence[PoStatus],
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[StoredPurchaseOrder]:
    """Newest first."""
    rows = (
        await session.execute(
            text(
                f"SELECT {_PO_COLUMNS} FROM purchase_order WHERE "
                "(CAST(:supplier AS text) IS NULL OR supplier_id = :supplier) "
                "AND (CAST(:location AS text) IS NULL OR location_id = :location) "
                "AND (cardinality(CAST(:statuses AS text[])) = 0 OR status = ANY (CAST(:statuses AS text[]))) "
                "AND (CAST(:after_at AS timestamptz) IS NULL OR (created_at, po_id) < (:after_at, :after_id)) "
                "ORDER BY created_at DESC, po_id DESC LIMIT :limit"
            ),
            {
                "supplier": supplier_id,
                "location": location_id,
                "statuses": [status.value for status in statuses],
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else "",
                "limit": limit,
            },
        )
    ).all()
    return await _assemble(session, rows)


async def insert_po(
    session: AsyncSession,
    *,
    po_id: str,
    supplier_id: str,
    location_id: str,
    origin: str,
    business_day: date | None,
    promised_date: date | None,
    created_by: str,
    at: datetime,
) -> None:
    await session.execute(
        text(
            "INSERT INTO purchase_order (po_id, supplier_id, location_id, status, origin, business_day, promised_date, "
            "created_by, created_at, updated_at, version) VALUES (:id, :supplier, :location, 'draft', :origin, :day, "
            ":promised, :by, :at, :at, 1)"
        ),
        {
            "id": po_id,
            "supplier": supplier_id,
            "location": location_id,
            "origin": origin,
            "day": business_day,
            "promised": promised_date,
            "by": created_by,
            "at": at,
        },
    )


async def open_replenishment_draft(
    session: AsyncSession, *, new_po_id: str, supplier_id: str, location_id: str, business_day: date, at: datetime
) -> tuple[str, bool]:
    """The open replenishment draft of a supplier, location and day, locked; created when there is none.

    Returns its id and whether it was created now. Two consumers drafting for the same group at
    once meet on the unique index: one creates, the other waits and then takes the same draft."""
    created = await session.execute(
        text(
            "INSERT INTO purchase_order (po_id, supplier_id, location_id, status, origin, business_day, created_by, "
            "created_at, updated_at, version) VALUES (:id, :supplier, :location, 'draft', 'replenishment', :day, "
            "'replenishment', :at, :at, 1) ON CONFLICT (supplier_id, location_id, business_day) "
            "WHERE status = 'draft' AND origin = 'replenishment' DO NOTHING RETURNING po_id"
        ),
        {"id": new_po_id, "supplier": supplier_id, "location": location_id, "day": business_day, "at": at},
    )
    if created.first() is not None:
        return new_po_id, True
    row = (
        await session.execute(
            text(
                "SELECT po_id FROM purchase_order WHERE supplier_id = :supplier AND location_id = :location "
                "AND business_day = :day AND status = 'draft' AND origin = 'replenishment' FOR UPDATE"
            ),
            {"supplier": supplier_id, "location": location_id, "day": business_day},
        )
    ).first()
    if row is None:  # the draft was approved between the two statements: a new one collects the rest
        return await open_replenishment_draft(
            session,
            new_po_id=new_po_id,
            supplier_id=supplier_id,
            location_id=location_id,
            business_day=business_day,
            at=at,
        )
    return row.po_id, False


async def replace_lines(session: AsyncSession, po_id: str, lines: Sequence[PoLine]) -> None:
    await session.execute(text("DELETE FROM po_line WHERE po_id = :id"), {"id": po_id})
    await add_lines(session, po_id, lines)


async def add_lines(session: AsyncSession, po_id: str, lines: Sequence[PoLine]) -> None:
    if not lines:
        return
    await session.execute(
        text(
            "INSERT INTO po_line (po_id, line_number, sku, contract_id, ordered, unit_cost_fen, "
            "over_delivery_allowance, suggested) VALUES (:po, :number, :sku, :contract, :ordered, :cost, :allowance, "
            ":suggested)"
        ),
        [
            {
                "po": po_id,
                "number": line.line_number,
                "sku": line.sku,
                "contract": line.contract_id,
                "ordered": line.ordered,
                "cost": line.unit_cost_fen,
                "allowance": line.over_delivery_allowance,
                "suggested": line.suggested,
            }
            for line in lines
        ],
    )


async def resuggest_line(
    session: AsyncSession, po_id: str, line_number: int, ordered: Decimal, suggested: Decimal
) -> None:
    await session.execute(
        text("UPDATE po_line SET ordered = :ordered, suggested = :suggested WHERE po_id = :po AND line_number = :n"),
        {"po": po_id, "n": line_number, "ordered": ordered, "suggested": suggested},
    )


async def touch(session: AsyncSession, po_id: str, at: datetime, **columns: object) -> int:
    """Set an order's columns, bump its version and return the new version."""
    allowed = {"status", "promised_date", "approved_by", "supplier_note", "cancel_reason", "sent_at", "confirmed_at"}
    if not set(columns) <= allowed:
        raise ValueError(f"not a purchase order column: {sorted(set(columns) - allowed)}")
    assignments = "".join(f"{column} = :{column}, " for column in columns)
    row = (
        await session.execute(
            text(
                f"UPDATE purchase_order SET {assignments}updated_at = :at, version = version + 1 "
                "WHERE po_id = :id RETURNING version"
            ),
            {"id": po_id, "at": at, **columns},
        )
    ).one()
    return int(row.version)


async def confirm_lines(session: AsyncSession, po_id: str, confirmed: dict[int, Decimal]) -> None:
    await session.execute(
        text(
            "UPDATE po_line l SET confirmed = v.quantity FROM unnest(CAST(:numbers AS integer[]), "
            "CAST(:quantities AS numeric[])) AS v(number, quantity) WHERE l.po_id = :po AND l.line_number = v.number"
        ),
        {"po": po_id, "numbers": list(confirmed), "quantities": list(confirmed.values())},
    )


async def set_received(
    session: AsyncSession,
    po_id: str,
    line_number: int,
    *,
    accepted: Decimal,
    rejected: Decimal,
    arrived_at: datetime,
    fully_delivered_at: datetime | None,
) -> None:
    await session.execute(
        text(
            "UPDATE po_line SET accepted = :accepted, rejected = :rejected, "
            "last_arrival_at = GREATEST(last_arrival_at, :at), "
            "fully_delivered_at = COALESCE(fully_delivered_at, :full) WHERE po_id = :po AND line_number = :n"
        ),
        {
            "po": po_id,
            "n": line_number,
            "accepted": accepted,
            "rejected": rejected,
            "at": arrived_at,
            "full": fully_delivered_at,
        },
    )


async def set_returned(session: AsyncSession, po_id: str, line_number: int, returned: Decimal) -> None:
    await session.execute(
        text("UPDATE po_line SET returned = :returned WHERE po_id = :po AND line_number = :n"),
        {"po": po_id, "n": line_number, "returned": returned},
    )


async def set_billed(session: AsyncSession, po_id: str, line_number: int, billed: Decimal) -> None:
    await session.execute(
        text("UPDATE po_line SET billed = :billed WHERE po_id = :po AND line_number = :n"),
        {"po": po_id, "n": line_number, "billed": billed},
    )


# ---- replenishment suggestions -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Suggestion:
    suggestion_id: str
    location_id: str
    sku: str
    supplier_id: str | None
    suggested: Decimal
    business_day: date
    suggested_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSuggestion:
    suggestion: Suggestion
    status: str
    reason: str
    po_id: str | None
    recorded_at: datetime


async def claim_suggestion(
    session: AsyncSession, suggestion: Suggestion, status: str, reason: str, at: datetime
) -> bool:
    """Record a suggestion once by its id; False when it was already recorded (a redelivery, another replica)."""
    row = await session.execute(
        text(
            "INSERT INTO replenishment_suggestion (suggestion_id, location_id, sku, supplier_id, suggested, "
            "business_day, status, reason, suggested_at, recorded_at) VALUES (:id, :location, :sku, :supplier, "
            ":suggested, :day, :status, :reason, :suggested_at, :at) ON CONFLICT (suggestion_id) DO NOTHING RETURNING 1"
        ),
        {
            "id": suggestion.suggestion_id,
            "location": suggestion.location_id,
            "sku": suggestion.sku,
            "supplier": suggestion.supplier_id,
            "suggested": suggestion.suggested,
            "day": suggestion.business_day,
            "status": status,
            "reason": reason,
            "suggested_at": suggestion.suggested_at,
            "at": at,
        },
    )
    return row.first() is not None


async def place_suggestion(session: AsyncSession, suggestion_id: str, po_id: str, line_number: int) -> None:
    await session.execute(
        text(
            "UPDATE replenishment_suggestion SET status = 'placed', reason = '', po_id = :po, line_number = :n "
            "WHERE suggestion_id = :id"
        ),
        {"id": suggestion_id, "po": po_id, "n": line_number},
    )


async def list_unplaced(
    session: AsyncSession, *, location_id: str | None, after: tuple[datetime, str] | None, limit: int
) -> list[StoredSuggestion]:
    rows = await session.execute(
        text(
            "SELECT suggestion_id, location_id, sku, supplier_id, suggested, business_day, suggested_at, status, "
            "reason, po_id, recorded_at FROM replenishment_suggestion WHERE status = 'unplaced' "
            "AND (CAST(:location AS text) IS NULL OR location_id = :location) "
            "AND (CAST(:after_at AS timestamptz) IS NULL OR (recorded_at, suggestion_id) < (:after_at, :after_id)) "
            "ORDER BY recorded_at DESC, suggestion_id DESC LIMIT :limit"
        ),
        {
            "location": location_id,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else "",
            "limit": limit,
        },
    )
    return [
        StoredSuggestion(
            Suggestion(
                row.suggestion_id,
                row.location_id,
                row.sku,
                row.supplier_id,
                row.suggested,
                row.business_day,
                row.suggested_at,
            ),
            row.status,
            row.reason,
            row.po_id,
            row.recorded_at,
        )
        for row in rows
    ]
