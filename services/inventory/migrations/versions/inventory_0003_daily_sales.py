"""Inventory: daily sold quantities per SKU and location, for forecasts and KPIs.

Two sources, kept apart so each stays idempotent: `journal` is accumulated from the sales
journal (once per sale, through the consumer's inbox), `import` is upserted by backfills of
a previous system (importing the same file twice changes nothing).

Revision ID: inventory_0003
Revises: inventory_0002
Create Date: 2026-11-24
"""

from alembic import op

revision = "inventory_0003"
down_revision = "inventory_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE daily_sales (
            location_id text NOT NULL,
            sku text NOT NULL,
            day date NOT NULL,
            source text NOT NULL CHECK (source IN ('journal', 'import')),
            quantity numeric(14, 3) NOT NULL,
            PRIMARY KEY (location_id, sku, day, source)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE daily_sales")
