"""Inventory: inter-store transfers.

Revision ID: inventory_0002
Revises: inventory_0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "inventory_0002"
down_revision = "inventory_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE transfer (
            transfer_id uuid PRIMARY KEY,
            sku text NOT NULL REFERENCES item (sku),
            from_location text NOT NULL REFERENCES location (location_id),
            to_location text NOT NULL REFERENCES location (location_id),
            quantity numeric(14, 3) NOT NULL CHECK (quantity > 0),
            status text NOT NULL CHECK (status IN ('requested', 'dispatched', 'received', 'cancelled')),
            received_quantity numeric(14, 3) NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CHECK (from_location <> to_location)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE transfer")
