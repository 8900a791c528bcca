"""PostgreSQL persistence of inter-store transfers (the stock they move is in ``stock_store``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory.domain.model import Transfer, TransferStatus


async def insert_transfer(session: AsyncSession, transfer: Transfer) -> None:
    await session.execute(
        text(
            "INSERT INTO transfer (transfer_id, sku, from_location, to_location, quantity, status) "
            "VALUES (:id, :sku, :source, :destination, :quantity, :status)"
        ),
        {
            "id": uuid.UUID(transfer.transfer_id),
            "sku": transfer.sku,
            "source": transfer.from_location,
            "destination": transfer.to_location,
            "quantity": transfer.quantity,
            "status": transfer.status.value,
        },
    )


async def load_transfer(session: AsyncSession, transfer_id: str, *, lock: bool) -> Transfer | None:
    try:
        tid = uuid.UUID(transfer_id)
    except ValueError:
        return None
    row = (
        await session.execute(
            text(
                "SELECT transfer_id, sku, from_location, to_location, quantity, status, received_quantity "
                "FROM transfer WHERE transfer_id = :id" + (" FOR UPDATE" if lock else "")
            ),
            {"id": tid},
        )
    ).first()
    if row is None:
        return None
    return Transfer(
        str(row.transfer_id),
        row.sku,
        row.from_location,
        row.to_location,
        row.quantity,
        TransferStatus(row.status),
        row.received_quantity,
    )


async def save_transfer(session: AsyncSession, transfer: Transfer) -> None:
    await session.execute(
        text(
            "UPDATE transfer SET status = :status, received_quantity = :received, updated_at = now() "
            "WHERE transfer_id = :id"
        ),
        {
            "status": transfer.status.value,
            "received": transfer.received_quantity,
            "id": uuid.UUID(transfer.transfer_id),
        },
    )


@dataclass(frozen=True)
class TransferRow:
    """A transfer as a list shows it: the transfer, when it was requested and when it last changed."""

    transfer: Transfer
    requested_at: datetime
    updated_at: datetime


async def list_transfers(
    session: AsyncSession,
    location_id: str,
    statuses: Sequence[TransferStatus],
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[TransferRow]:
    """Transfers into or out of a location, newest request first, after the (requested_at, id) cursor."""
    rows = await session.execute(
        text(
            "SELECT transfer_id, sku, from_location, to_location, quantity, status, received_quantity, created_at, "
            "updated_at FROM transfer WHERE (from_location = :location OR to_location = :location) "
            "AND (cardinality(CAST(:statuses AS text[])) = 0 OR status = ANY(CAST(:statuses AS text[]))) "
            "AND (CAST(:after_at AS timestamptz) IS NULL OR (created_at, transfer_id) < (:after_at, :after_id)) "
            "ORDER BY created_at DESC, transfer_id DESC LIMIT :limit"
        ),
        {
            "location": location_id,
            "statuses": [status.value for status in statuses],
            "after_at": after[0] if after else None,
            "after_id": uuid.UUID(after[1]) if after else uuid.UUID(int=0),
            "limit": limit,
        },
    )
    return [
        TransferRow(
            Transfer(
                str(row.transfer_id),
                row.sku,
                row.from_location,
                row.to_location,
                row.quantity,
                TransferStatus(row.status),
                row.received_quantity,
            ),
            row.created_at,
            row.updated_at,
        )
        for row in rows
    ]
