"""PostgreSQL persistence of inter-store transfers (the stock they move is in ``stock_store``)."""

from __future__ import annotations

import uuid

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
