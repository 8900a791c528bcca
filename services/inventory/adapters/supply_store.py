"""PostgreSQL persistence of the goods receipts' and returns to vendor's lines inventory took in.

A line is a ``supply_line`` row keyed by (source, document_id, line_index): the claim that
makes it move stock once, and the movement's metadata (purchase order, supplier, rejected
units, lot, expiry) the ledger has no columns for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory.domain.model import SupplyLine


async def claim_supply_lines(
    session: AsyncSession,
    lines: Sequence[SupplyLine],
    *,
    location_id: str,
    po_id: str,
    supplier_id: str,
    occurred_at: datetime | None,
) -> set[int]:
    """Keep the lines of a goods receipt or return to vendor; the indexes of those kept now.

    A line kept before (the event redelivered or republished) is not returned; a transaction
    keeping the same line at the same moment waits for this one and then finds it kept, so
    each line is applied by exactly one transaction.
    """
    if not lines:
        return set()
    claimed = await session.execute(
        text(
            "INSERT INTO supply_line (source, document_id, line_index, reference, sku, location_id, quantity, "
            "rejected, reject_reason, po_id, po_line_number, supplier_id, lot, expiry_date, occurred_at) "
            "SELECT v.source, v.document_id, v.line_index, v.reference, v.sku, :location, v.quantity, v.rejected, "
            "v.reject_reason, :po, v.po_line_number, :supplier, v.lot, v.expiry_date, :occurred "
            "FROM unnest(CAST(:sources AS text[]), CAST(:documents AS text[]), CAST(:indexes AS integer[]), "
            "CAST(:references AS text[]), CAST(:skus AS text[]), CAST(:quantities AS numeric[]), "
            "CAST(:rejected AS numeric[]), CAST(:reasons AS text[]), CAST(:po_lines AS integer[]), "
            "CAST(:lots AS text[]), CAST(:expiries AS text[])) AS v(source, document_id, line_index, reference, sku, "
            "quantity, rejected, reject_reason, po_line_number, lot, expiry_date) "
            # In key order, so two transactions keeping overlapping lines never deadlock on them.
            "ORDER BY v.source, v.document_id, v.line_index "
            "ON CONFLICT DO NOTHING RETURNING line_index"
        ),
        {
            "location": location_id,
            "po": po_id,
            "supplier": supplier_id,
            "occurred": occurred_at,
            "sources": [line.source.value for line in lines],
            "documents": [line.document_id for line in lines],
            "indexes": [line.line_index for line in lines],
            "references": [line.reference for line in lines],
            "skus": [line.sku for line in lines],
            "quantities": [line.quantity for line in lines],
            "rejected": [line.rejected for line in lines],
            "reasons": [line.reject_reason for line in lines],
            "po_lines": [line.po_line_number for line in lines],
            "lots": [line.lot for line in lines],
            "expiries": [line.expiry_date for line in lines],
        },
    )
    return {row.line_index for row in claimed}
