"""Inventory: goods received from suppliers and returned to them, each line applied once.

`supply_line` keeps every line of supply's GoodsReceived and GoodsReturnedToVendor events
inventory has taken in, keyed by (source, document_id, line_index): a line is inserted once,
and only the transaction that inserted it moves stock, so a redelivered or republished event
and two replicas handling it at the same moment apply it once. It is also the movement's
metadata — purchase order, supplier, rejected units, lot and expiry — which the ledger has no
columns for; `reference` is the movement's (`receipt:<id>#<line>`, `vendor-return:<id>#<line>`).

A line whose SKU or location inventory does not know waits as a `stock_discrepancy`, like a
sale's line, with `source` saying which movement it becomes once both exist.

Revision ID: inventory_0008
Revises: inventory_0007
Create Date: 2026-12-06
"""

from alembic import op

revision = "inventory_0008"
down_revision = "inventory_0007"
branch_labels = None
depends_on = None

UPGRADE = """
        CREATE TABLE supply_line (
            source text NOT NULL CHECK (source IN ('receipt', 'vendor_return')),
            document_id text NOT NULL,
            line_index integer NOT NULL CHECK (line_index >= 0),
            reference text NOT NULL UNIQUE,
            sku text NOT NULL,
            location_id text NOT NULL,
            quantity numeric(14, 3) NOT NULL CHECK (quantity >= 0),
            rejected numeric(14, 3) CHECK (rejected >= 0),
            reject_reason text NOT NULL DEFAULT '',
            po_id text NOT NULL DEFAULT '',
            po_line_number integer NOT NULL DEFAULT 0,
            supplier_id text NOT NULL DEFAULT '',
            lot text NOT NULL DEFAULT '',
            expiry_date text NOT NULL DEFAULT '',
            occurred_at timestamptz,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (source, document_id, line_index)
        );
        CREATE INDEX supply_line_by_level ON supply_line (sku, location_id);
        ALTER TABLE stock_discrepancy
            ADD COLUMN source text NOT NULL DEFAULT 'sale' CHECK (source IN ('sale', 'receipt', 'vendor_return'))
        """

DOWNGRADE = """
        DELETE FROM stock_discrepancy WHERE source <> 'sale';
        ALTER TABLE stock_discrepancy DROP COLUMN source;
        DROP TABLE supply_line
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
