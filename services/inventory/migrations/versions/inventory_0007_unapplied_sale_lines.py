"""Inventory: journaled sale lines that could not be applied are kept as discrepancies, never dropped.

A sale that happened at a till is a fact: what inventory can apply it applies, and what it
cannot is a `stock_discrepancy` of its own kind — a line whose SKU or location inventory
does not know (`unknown_sku`, `unknown_location`: it waits, with its quantity, and is applied
once when both exist; `applied_at` says when) or whose quantity cannot move stock
(`unreadable_quantity`, with the text in `detail`). Rows recorded before are the sales that
took on-hand below zero (`negative_stock`), the only kind that has an `on_hand_after`.

A journal entry records each such line once: (sale_id, sku, kind) is unique among them.

Items pricing's catalogue already described become known to inventory (`item`): from now
on the catalogue consumer registers each SKU it sees, and this backfills the ones it saw.

Revision ID: inventory_0007
Revises: inventory_0006
Create Date: 2026-11-25
"""

from alembic import op

revision = "inventory_0007"
down_revision = "inventory_0006"
branch_labels = None
depends_on = None

UPGRADE = """
        ALTER TABLE stock_discrepancy
            ADD COLUMN kind text NOT NULL DEFAULT 'negative_stock'
                CHECK (kind IN ('negative_stock', 'unknown_sku', 'unknown_location', 'unreadable_quantity')),
            ADD COLUMN quantity numeric(14, 3) CHECK (quantity > 0),
            ADD COLUMN is_return boolean NOT NULL DEFAULT false,
            ADD COLUMN detail text NOT NULL DEFAULT '',
            ADD COLUMN applied_at timestamptz,
            ALTER COLUMN on_hand_after DROP NOT NULL,
            ADD CONSTRAINT stock_discrepancy_shortfall_has_on_hand
                CHECK ((kind = 'negative_stock') = (on_hand_after IS NOT NULL)),
            ADD CONSTRAINT stock_discrepancy_unapplied_line_has_quantity
                CHECK (kind NOT IN ('unknown_sku', 'unknown_location') OR quantity IS NOT NULL),
            ADD CONSTRAINT stock_discrepancy_only_waiting_lines_are_applied
                CHECK (applied_at IS NULL OR kind IN ('unknown_sku', 'unknown_location'));
        CREATE UNIQUE INDEX stock_discrepancy_one_per_line ON stock_discrepancy (sale_id, sku, kind)
            WHERE kind <> 'negative_stock';
        CREATE INDEX stock_discrepancy_waiting ON stock_discrepancy (sku, location_id)
            WHERE status = 'open' AND kind IN ('unknown_sku', 'unknown_location');
        CREATE INDEX stock_discrepancy_by_location ON stock_discrepancy (location_id, occurred_at);
        INSERT INTO item (sku, name, category_id, unit, sold_by_weight, supplier_id, active)
            SELECT sku, name, nullif(category, ''), coalesce(nullif(unit, ''), 'piece'), unit = 'kg',
                   nullif(supplier_id, ''), active
            FROM catalogue_item
            ON CONFLICT (sku) DO NOTHING
        """

DOWNGRADE = """
        DROP INDEX stock_discrepancy_by_location;
        DROP INDEX stock_discrepancy_waiting;
        DROP INDEX stock_discrepancy_one_per_line;
        DELETE FROM stock_discrepancy WHERE kind <> 'negative_stock';
        ALTER TABLE stock_discrepancy
            DROP CONSTRAINT stock_discrepancy_only_waiting_lines_are_applied,
            DROP CONSTRAINT stock_discrepancy_unapplied_line_has_quantity,
            DROP CONSTRAINT stock_discrepancy_shortfall_has_on_hand,
            ALTER COLUMN on_hand_after SET NOT NULL,
            DROP COLUMN applied_at,
            DROP COLUMN detail,
            DROP COLUMN is_return,
            DROP COLUMN quantity,
            DROP COLUMN kind
        """


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in UPGRADE.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE.split(";"):
        if statement.strip():
            op.execute(statement)
