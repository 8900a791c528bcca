"""Inventory: items, locations, stock levels, the movement ledger, reservations, discrepancies.

Revision ID: inventory_0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "inventory_0001"
down_revision = None
branch_labels = ("inventory",)
depends_on = "kit_0001"


SCHEMA = """
        CREATE TABLE item (
            sku text PRIMARY KEY,
            name text NOT NULL,
            category_id text,
            unit text NOT NULL DEFAULT 'piece',
            sold_by_weight boolean NOT NULL DEFAULT false,
            supplier_id text,
            active boolean NOT NULL DEFAULT true,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE location (
            location_id text PRIMARY KEY,
            name text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('store', 'warehouse', 'online')),
            city text NOT NULL DEFAULT '',
            channels text[] NOT NULL DEFAULT '{}',
            active boolean NOT NULL DEFAULT true
        );
        CREATE TABLE stock_level (
            sku text NOT NULL REFERENCES item (sku),
            location_id text NOT NULL REFERENCES location (location_id),
            on_hand numeric(14, 3) NOT NULL DEFAULT 0,
            reserved numeric(14, 3) NOT NULL DEFAULT 0 CHECK (reserved >= 0),
            in_transit numeric(14, 3) NOT NULL DEFAULT 0 CHECK (in_transit >= 0),
            safety_stock numeric(14, 3) NOT NULL DEFAULT 0 CHECK (safety_stock >= 0),
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (sku, location_id)
        );
        CREATE INDEX stock_level_by_location ON stock_level (location_id, sku);
        -- The ledger: every change of a stock level, and nothing else changes one.
        CREATE TABLE stock_movement (
            id bigserial PRIMARY KEY,
            sku text NOT NULL,
            location_id text NOT NULL,
            kind text NOT NULL,
            on_hand_delta numeric(14, 3) NOT NULL DEFAULT 0,
            reserved_delta numeric(14, 3) NOT NULL DEFAULT 0,
            in_transit_delta numeric(14, 3) NOT NULL DEFAULT 0,
            reference text NOT NULL DEFAULT '',
            recorded_at timestamptz NOT NULL DEFAULT now(),
            FOREIGN KEY (sku, location_id) REFERENCES stock_level (sku, location_id)
        );
        CREATE INDEX stock_movement_by_level ON stock_movement (sku, location_id);
        CREATE TABLE reservation (
            reservation_id uuid PRIMARY KEY,
            sku text NOT NULL REFERENCES item (sku),
            channel text NOT NULL DEFAULT '',
            status text NOT NULL CHECK (status IN ('active', 'committed', 'fulfilled', 'released', 'expired')),
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            closed_at timestamptz,
            sale_id text NOT NULL DEFAULT ''
        );
        CREATE INDEX reservation_expiring ON reservation (expires_at) WHERE status = 'active';
        CREATE TABLE reservation_allocation (
            reservation_id uuid NOT NULL REFERENCES reservation (reservation_id),
            location_id text NOT NULL REFERENCES location (location_id),
            quantity numeric(14, 3) NOT NULL CHECK (quantity > 0),
            PRIMARY KEY (reservation_id, location_id)
        );
        -- Sales that took on-hand below zero: applied, and flagged for the store to investigate.
        CREATE TABLE stock_discrepancy (
            discrepancy_id uuid PRIMARY KEY,
            sku text NOT NULL,
            location_id text NOT NULL,
            sale_id text NOT NULL,
            on_hand_after numeric(14, 3) NOT NULL,
            occurred_at timestamptz,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved'))
        );
        CREATE INDEX stock_discrepancy_open ON stock_discrepancy (location_id) WHERE status = 'open';
        """


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE stock_discrepancy, reservation_allocation, reservation, stock_movement, stock_level, location, item"
    )
