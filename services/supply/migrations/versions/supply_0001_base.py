"""Supply: suppliers, their contracts (items with unit cost, pack size and minimum order; rebate
tiers and quality bands as data) and the catalogue projection (SKU → supplier).

The kit's tables (outbox, inbox, request log) come from ``kit_0001``. Money is integer fen,
quantities ``numeric(14, 3)``, rates ``numeric(5, 4)`` (at most 100%). Two contracts of one
supplier may not cover one SKU over overlapping windows: the service checks it with the
supplier's row locked, so two concurrent contracts never both pass.

Revision ID: supply_0001
Revises:
Create Date: 2026-12-06
"""

from alembic import op

revision = "supply_0001"
down_revision = None
branch_labels = ("supply",)
depends_on = "kit_0001"

SCHEMA = """
        CREATE TABLE supplier (
            supplier_id text PRIMARY KEY,
            code text NOT NULL UNIQUE,
            name text NOT NULL,
            payment_terms_days integer NOT NULL CHECK (payment_terms_days BETWEEN 0 AND 365),
            active boolean NOT NULL,
            version bigint NOT NULL CHECK (version >= 1),
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        );
        CREATE TABLE contract (
            contract_id text PRIMARY KEY,
            supplier_id text NOT NULL REFERENCES supplier (supplier_id),
            mode text NOT NULL CHECK (mode IN ('purchase', 'consignment', 'concession')),
            valid_from date NOT NULL,
            valid_until date,
            commission_rate numeric(5, 4) CHECK (commission_rate BETWEEN 0 AND 1),
            -- store id → rate (text of a decimal), where a store's commission differs.
            store_commission_rates jsonb NOT NULL DEFAULT '{}',
            allows_direct_delivery boolean NOT NULL DEFAULT false,
            rejects_billed boolean NOT NULL DEFAULT false,
            over_delivery_allowance numeric(5, 4) NOT NULL DEFAULT 0 CHECK (over_delivery_allowance BETWEEN 0 AND 1),
            price_tolerance numeric(5, 4) NOT NULL DEFAULT 0 CHECK (price_tolerance BETWEEN 0 AND 1),
            cycle text NOT NULL DEFAULT 'monthly' CHECK (cycle IN ('monthly', 'days')),
            cycle_days integer CHECK (cycle_days BETWEEN 1 AND 366),
            cycle_anchor date,
            -- [{"threshold_fen": int, "rate": "0.02"}, …] and [{"score_below": "90", "rate": "0.01"}, …]
            rebate_tiers jsonb NOT NULL DEFAULT '[]',
            quality_bands jsonb NOT NULL DEFAULT '[]',
            created_by text NOT NULL,
            created_at timestamptz NOT NULL,
            CHECK (valid_until IS NULL OR valid_until > valid_from),
            CHECK (cycle = 'monthly' OR (cycle_days IS NOT NULL AND cycle_anchor IS NOT NULL))
        );
        CREATE INDEX contract_by_supplier ON contract (supplier_id, valid_from DESC, contract_id);
        CREATE TABLE contract_item (
            contract_id text NOT NULL REFERENCES contract (contract_id),
            sku text NOT NULL,
            -- Purchase and consignment: agreed fen per unit (none for a concession).
            unit_cost_fen bigint CHECK (unit_cost_fen BETWEEN 0 AND 1000000000000),
            pack_size numeric(14, 3) NOT NULL DEFAULT 1 CHECK (pack_size > 0),
            minimum_order numeric(14, 3) NOT NULL DEFAULT 0 CHECK (minimum_order >= 0),
            PRIMARY KEY (contract_id, sku)
        );
        CREATE INDEX contract_item_by_sku ON contract_item (sku, contract_id);
        -- Pricing's catalogue as supply needs it: whose SKU it is (newest version wins).
        CREATE TABLE catalogue_item (
            sku text PRIMARY KEY,
            supplier_id text,
            category text NOT NULL,
            name text NOT NULL,
            version bigint NOT NULL,
            updated_at timestamptz NOT NULL
        );
        CREATE INDEX catalogue_item_by_supplier ON catalogue_item (supplier_id, sku) WHERE supplier_id IS NOT NULL
        """


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE catalogue_item, contract_item, contract, supplier")
