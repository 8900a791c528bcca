"""Supply: purchase orders and their lines, replenishment suggestions (placed or not), goods
receipts, returns to vendor and supplier invoices.

What the service keeps under concurrency is also held here, so that a bug can fail a
transaction but never break it:

* a suggestion is claimed once by its id (``replenishment_suggestion``'s key), so redelivered
  events and two consumer replicas never make two PO lines of it;
* one open replenishment draft per supplier, receiving location and business day
  (``purchase_order_open_draft``) collects that day's suggestions;
* a line never receives beyond its ordered quantity × (1 + the contract's over-delivery
  allowance), copied onto the line when it is ordered;
* a rejected quantity always has its reason; nothing is returned that was not accepted.

Revision ID: supply_0002
Revises: supply_0001
Create Date: 2026-12-06
"""

from alembic import op

revision = "supply_0002"
down_revision = "supply_0001"
branch_labels = None
depends_on = None

SCHEMA = """
        CREATE TABLE purchase_order (
            po_id text PRIMARY KEY,
            supplier_id text NOT NULL REFERENCES supplier (supplier_id),
            location_id text NOT NULL,
            status text NOT NULL CHECK (status IN ('draft', 'approved', 'sent', 'confirmed', 'partially_received',
                'received', 'closed', 'cancelled')),
            origin text NOT NULL CHECK (origin IN ('manual', 'replenishment')),
            -- Replenishment drafts: the business day whose suggestions the draft collects.
            business_day date,
            promised_date date,
            created_by text NOT NULL,
            approved_by text NOT NULL DEFAULT '',
            supplier_note text NOT NULL DEFAULT '',
            cancel_reason text NOT NULL DEFAULT '',
            sent_at timestamptz,
            confirmed_at timestamptz,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            version bigint NOT NULL CHECK (version >= 1),
            CHECK (origin = 'manual' OR business_day IS NOT NULL)
        );
        CREATE UNIQUE INDEX purchase_order_open_draft ON purchase_order (supplier_id, location_id, business_day)
            WHERE status = 'draft' AND origin = 'replenishment';
        CREATE INDEX purchase_order_newest ON purchase_order (created_at DESC, po_id DESC);
        CREATE INDEX purchase_order_by_supplier ON purchase_order (supplier_id, created_at DESC, po_id DESC);
        CREATE INDEX purchase_order_by_location ON purchase_order (location_id, created_at DESC, po_id DESC);
        CREATE INDEX purchase_order_due ON purchase_order (supplier_id, promised_date)
            WHERE promised_date IS NOT NULL;
        CREATE TABLE po_line (
            po_id text NOT NULL REFERENCES purchase_order (po_id),
            line_number integer NOT NULL CHECK (line_number >= 1),
            sku text NOT NULL,
            contract_id text NOT NULL REFERENCES contract (contract_id),
            ordered numeric(14, 3) NOT NULL CHECK (ordered > 0),
            unit_cost_fen bigint NOT NULL CHECK (unit_cost_fen >= 0),
            over_delivery_allowance numeric(5, 4) NOT NULL CHECK (over_delivery_allowance BETWEEN 0 AND 1),
            suggested numeric(14, 3) CHECK (suggested >= 0),
            confirmed numeric(14, 3) CHECK (confirmed >= 0 AND confirmed <= ordered),
            accepted numeric(14, 3) NOT NULL DEFAULT 0 CHECK (accepted >= 0),
            rejected numeric(14, 3) NOT NULL DEFAULT 0 CHECK (rejected >= 0),
            returned numeric(14, 3) NOT NULL DEFAULT 0 CHECK (returned >= 0 AND returned <= accepted),
            billed numeric(14, 3) NOT NULL DEFAULT 0 CHECK (billed >= 0),
            last_arrival_at timestamptz,
            fully_delivered_at timestamptz,
            PRIMARY KEY (po_id, line_number),
            UNIQUE (po_id, sku),
            CHECK (accepted + rejected <= ordered * (1 + over_delivery_allowance))
        );
        -- Each suggestion once: placed on a draft's line, or kept unplaced with the reason.
        CREATE TABLE replenishment_suggestion (
            suggestion_id text PRIMARY KEY,
            location_id text NOT NULL,
            sku text NOT NULL,
            supplier_id text,
            suggested numeric(14, 3) NOT NULL CHECK (suggested >= 0),
            business_day date NOT NULL,
            -- placed on a draft's line, unplaced (no supplier, no contract…: see reason) or not_due (nothing to order).
            status text NOT NULL CHECK (status IN ('placed', 'unplaced', 'not_due')),
            reason text NOT NULL DEFAULT '',
            po_id text REFERENCES purchase_order (po_id),
            line_number integer,
            suggested_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL,
            CHECK ((status = 'placed') = (po_id IS NOT NULL)),
            CHECK (status <> 'unplaced' OR reason <> '')
        );
        CREATE INDEX replenishment_suggestion_by_po ON replenishment_suggestion (po_id) WHERE po_id IS NOT NULL;
        CREATE INDEX replenishment_suggestion_unplaced ON replenishment_suggestion (recorded_at DESC, suggestion_id)
            WHERE status = 'unplaced';
        CREATE TABLE goods_receipt (
            receipt_id text PRIMARY KEY,
            po_id text REFERENCES purchase_order (po_id),
            supplier_id text NOT NULL REFERENCES supplier (supplier_id),
            location_id text NOT NULL,
            received_at timestamptz NOT NULL,
            received_by text NOT NULL,
            recorded_at timestamptz NOT NULL
        );
        CREATE INDEX goods_receipt_newest ON goods_receipt (received_at DESC, receipt_id DESC);
        CREATE INDEX goods_receipt_by_supplier ON goods_receipt (supplier_id, received_at DESC, receipt_id DESC);
        CREATE INDEX goods_receipt_by_po ON goods_receipt (po_id, received_at DESC) WHERE po_id IS NOT NULL;
        CREATE TABLE receipt_line (
            receipt_id text NOT NULL REFERENCES goods_receipt (receipt_id),
            line_number integer NOT NULL CHECK (line_number >= 1),
            po_line_number integer NOT NULL DEFAULT 0,
            sku text NOT NULL,
            contract_id text NOT NULL REFERENCES contract (contract_id),
            unit_cost_fen bigint NOT NULL CHECK (unit_cost_fen >= 0),
            accepted numeric(14, 3) NOT NULL CHECK (accepted >= 0),
            rejected numeric(14, 3) NOT NULL CHECK (rejected >= 0),
            reject_reason text NOT NULL DEFAULT '',
            lot text NOT NULL DEFAULT '',
            expiry_date date,
            PRIMARY KEY (receipt_id, line_number),
            CHECK (accepted + rejected > 0),
            CHECK (rejected = 0 OR reject_reason <> '')
        );
        CREATE TABLE vendor_return (
            return_id text PRIMARY KEY,
            po_id text NOT NULL REFERENCES purchase_order (po_id),
            supplier_id text NOT NULL REFERENCES supplier (supplier_id),
            location_id text NOT NULL,
            returned_at timestamptz NOT NULL,
            returned_by text NOT NULL
        );
        CREATE INDEX vendor_return_by_po ON vendor_return (po_id, returned_at);
        CREATE TABLE vendor_return_line (
            return_id text NOT NULL REFERENCES vendor_return (return_id),
            line_number integer NOT NULL CHECK (line_number >= 1),
            po_line_number integer NOT NULL,
            sku text NOT NULL,
            contract_id text NOT NULL REFERENCES contract (contract_id),
            unit_cost_fen bigint NOT NULL CHECK (unit_cost_fen >= 0),
            quantity numeric(14, 3) NOT NULL CHECK (quantity > 0),
            reason text NOT NULL,
            PRIMARY KEY (return_id, line_number)
        );
        CREATE TABLE supplier_invoice (
            invoice_id text PRIMARY KEY,
            supplier_id text NOT NULL REFERENCES supplier (supplier_id),
            invoice_number text NOT NULL,
            po_id text NOT NULL REFERENCES purchase_order (po_id),
            matched boolean NOT NULL,
            recorded_by text NOT NULL,
            recorded_at timestamptz NOT NULL,
            UNIQUE (supplier_id, invoice_number)
        );
        CREATE INDEX supplier_invoice_by_po ON supplier_invoice (po_id);
        CREATE INDEX supplier_invoice_by_supplier ON supplier_invoice (supplier_id, recorded_at);
        CREATE TABLE invoice_line (
            invoice_id text NOT NULL REFERENCES supplier_invoice (invoice_id),
            line_number integer NOT NULL CHECK (line_number >= 1),
            po_line_number integer NOT NULL,
            quantity numeric(14, 3) NOT NULL CHECK (quantity > 0),
            unit_cost_fen bigint NOT NULL CHECK (unit_cost_fen >= 0),
            match_result text NOT NULL CHECK (match_result IN ('matched', 'quantity_above_received',
                'price_above_order')),
            expected_fen bigint NOT NULL,
            PRIMARY KEY (invoice_id, line_number)
        )
        """


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE invoice_line, supplier_invoice, vendor_return_line, vendor_return, receipt_line, goods_receipt, "
        "replenishment_suggestion, po_line, purchase_order"
    )
