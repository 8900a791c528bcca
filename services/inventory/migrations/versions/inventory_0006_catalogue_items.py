"""Inventory: the local, read-only projection of pricing's catalogue items.

`catalogue_item` holds each item as the last applied `retail.pricing.v1.ItemChanged`
described it; a row only ever moves to a higher `version`, so late and repeated events
change nothing. No cost: inventory has no use for prices.

Revision ID: inventory_0006
Revises: inventory_0005
Create Date: 2026-11-24
"""

from alembic import op

revision = "inventory_0006"
down_revision = "inventory_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE catalogue_item (
            sku text PRIMARY KEY,
            name text NOT NULL,
            category text NOT NULL DEFAULT '',
            barcode text NOT NULL DEFAULT '',
            unit text NOT NULL DEFAULT '',
            supplier_id text NOT NULL DEFAULT '',
            active boolean NOT NULL,
            version bigint NOT NULL,
            updated_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE catalogue_item")
