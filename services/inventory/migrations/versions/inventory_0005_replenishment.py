"""Inventory: replenishment planning — supplier lead time per item, and what runs last reported.

`item.lead_time_days` is the supplier's lead time (NULL: the service's default).
`replenishment_report` keeps, per SKU and location, the order quantity and the alert the
replenishment runs last published, so a run publishes only what changed since.

Revision ID: inventory_0005
Revises: inventory_0004
Create Date: 2026-11-24
"""

from alembic import op

revision = "inventory_0005"
down_revision = "inventory_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # asyncpg runs one statement per call.
    op.execute("ALTER TABLE item ADD COLUMN lead_time_days integer CHECK (lead_time_days BETWEEN 0 AND 60)")
    op.execute(
        """
        CREATE TABLE replenishment_report (
            location_id text NOT NULL,
            sku text NOT NULL,
            suggested_quantity numeric(14, 3) NOT NULL,
            alert_kind text CHECK (alert_kind IN ('low_stock', 'overstock')),
            as_of date NOT NULL,
            reported_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (location_id, sku)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE replenishment_report")
    op.execute("ALTER TABLE item DROP COLUMN lead_time_days")
