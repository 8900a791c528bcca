"""Member: points ledger with lots and debt, tiers with history, sale facts, the item category projection.

A member's points balance equals the sum of their ledger entries; a lot's remaining equals
its points minus the draws on it; balance = lots remaining − debt (services/member/domain/points.py).
Sale facts are the SALES journal as this context keeps it: one row per sale or return, once.

Revision ID: member_0002
Revises: member_0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "member_0002"
down_revision = "member_0001"
branch_labels = None
depends_on = None


SCHEMA = """
        ALTER TABLE member ADD COLUMN tier text NOT NULL DEFAULT 'basic';
        ALTER TABLE member ADD COLUMN tier_since timestamptz NOT NULL DEFAULT now();
        ALTER TABLE member ADD COLUMN points_balance bigint NOT NULL DEFAULT 0;
        ALTER TABLE member ADD COLUMN points_debt bigint NOT NULL DEFAULT 0 CHECK (points_debt >= 0);
        ALTER TABLE member ADD COLUMN lifecycle_stage text NOT NULL DEFAULT 'new'
            CHECK (lifecycle_stage IN ('new', 'active', 'repeat', 'dormant', 'churned'));
        CREATE INDEX member_lifecycle_review ON member (member_id) WHERE status = 'active';
        -- The ledger: every change of a points balance, and nothing else changes one.
        CREATE TABLE points_entry (
            entry_id bigserial PRIMARY KEY,
            member_id text NOT NULL REFERENCES member (member_id),
            kind text NOT NULL CHECK (kind IN ('earn', 'redeem', 'expire', 'reverse', 'adjust', 'settle_debt')),
            points bigint NOT NULL CHECK (points <> 0 OR kind = 'settle_debt'),
            sale_id text NOT NULL DEFAULT '',
            reference text NOT NULL DEFAULT '',
            reason text NOT NULL DEFAULT '',
            store_id text NOT NULL DEFAULT '',
            recorded_at timestamptz NOT NULL
        );
        CREATE INDEX points_entry_by_member ON points_entry (member_id, entry_id);
        -- A sale earns once and each return reverses once, whatever the journal redelivers.
        CREATE UNIQUE INDEX points_entry_once_per_sale ON points_entry (sale_id, kind) WHERE sale_id <> '';
        -- The points of one earn or positive adjustment, spent soonest-expiring first.
        CREATE TABLE points_lot (
            lot_id bigserial PRIMARY KEY,
            member_id text NOT NULL REFERENCES member (member_id),
            entry_id bigint NOT NULL REFERENCES points_entry (entry_id),
            points bigint NOT NULL CHECK (points >= 0),
            remaining bigint NOT NULL CHECK (remaining >= 0 AND remaining <= points),
            earned_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            sale_id text NOT NULL DEFAULT ''
        );
        CREATE INDEX points_lot_open ON points_lot (member_id, expires_at) WHERE remaining > 0;
        CREATE INDEX points_lot_due ON points_lot (expires_at) WHERE remaining > 0;
        -- What each entry took from which lot: a lot's remaining is its points minus its draws.
        CREATE TABLE points_draw (
            entry_id bigint NOT NULL REFERENCES points_entry (entry_id),
            lot_id bigint NOT NULL REFERENCES points_lot (lot_id),
            points bigint NOT NULL CHECK (points > 0),
            PRIMARY KEY (entry_id, lot_id)
        );
        CREATE INDEX points_draw_by_lot ON points_draw (lot_id);
        CREATE TABLE tier_change (
            id bigserial PRIMARY KEY,
            member_id text NOT NULL REFERENCES member (member_id),
            from_tier text NOT NULL,
            to_tier text NOT NULL,
            reason text NOT NULL CHECK (reason IN ('upgrade', 'downgrade', 'merge', 'import')),
            qualifying_spend_minor bigint NOT NULL DEFAULT 0,
            changed_at timestamptz NOT NULL
        );
        CREATE INDEX tier_change_by_member ON tier_change (member_id, id);
        -- The SALES journal as this context keeps it: each sale and return once, members' or not.
        CREATE TABLE sale_fact (
            sale_id text PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('sale', 'return')),
            member_id text REFERENCES member (member_id),
            store_id text NOT NULL,
            occurred_at timestamptz NOT NULL,
            amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
            original_sale_id text NOT NULL DEFAULT '',
            categories text[] NOT NULL DEFAULT '{}',
            points bigint NOT NULL DEFAULT 0,
            lot_id bigint,
            reversal_pending boolean NOT NULL DEFAULT false,
            recorded_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX sale_fact_by_member ON sale_fact (member_id, occurred_at) WHERE member_id IS NOT NULL;
        CREATE INDEX sale_fact_by_store ON sale_fact (store_id, occurred_at);
        CREATE INDEX sale_fact_returns ON sale_fact (original_sale_id) WHERE kind = 'return';
        -- Read-only projection of the catalogue: which category a SKU belongs to (earn rules, favourites).
        CREATE TABLE item_category (
            sku text PRIMARY KEY,
            category_id text NOT NULL,
            department_id text NOT NULL DEFAULT ''
        )
        """


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE item_category, sale_fact, tier_change, points_draw, points_lot, points_entry")
    for column in ("lifecycle_stage", "points_debt", "points_balance", "tier_since", "tier"):
        op.execute(f"ALTER TABLE member DROP COLUMN {column}")
