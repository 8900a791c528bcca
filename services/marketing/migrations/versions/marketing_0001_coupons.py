"""Marketing: the item projection, campaigns with their budget counters, coupons, holds, redemptions
and redemption conflicts.

Money is integer fen (``*_fen``). The counters that limits are checked against live on the
rows they limit, and CHECK constraints hold the invariants the service keeps under concurrency
(``used + held <= use_limit`` per coupon, ``spent + held <= max_discount`` per campaign), so a
bug can fail a transaction but never overspend a budget.

Revision ID: marketing_0001
Revises:
Create Date: 2026-12-06
"""

from alembic import op

revision = "marketing_0001"
down_revision = None
branch_labels = ("marketing",)
depends_on = "kit_0001"

SCHEMA = """
        -- Pricing's catalogue as marketing needs it: a category for offers and rules, a cost for margins.
        CREATE TABLE item (
            sku text PRIMARY KEY,
            category text NOT NULL,
            cost_fen bigint NOT NULL CHECK (cost_fen >= 0),
            version bigint NOT NULL,
            updated_at timestamptz NOT NULL
        );
        CREATE TABLE campaign (
            campaign_id text PRIMARY KEY,
            name text NOT NULL,
            status text NOT NULL CHECK (status IN ('draft', 'approved', 'launching', 'running', 'ended')),
            snapshot_id text,
            offer jsonb NOT NULL,
            terms jsonb NOT NULL,
            valid_from timestamptz NOT NULL,
            valid_until timestamptz NOT NULL,
            per_member_limit integer NOT NULL CHECK (per_member_limit >= 1),
            control_fraction_bp integer NOT NULL CHECK (control_fraction_bp BETWEEN 100 AND 5000),
            frequency_cap integer NOT NULL DEFAULT 0 CHECK (frequency_cap >= 0),
            store_id text,
            attribution_days integer NOT NULL DEFAULT 14 CHECK (attribution_days BETWEEN 0 AND 365),
            contact_channels text[] NOT NULL DEFAULT '{}',
            max_coupons bigint CHECK (max_coupons > 0),
            max_discount_fen bigint CHECK (max_discount_fen > 0),
            issued bigint NOT NULL DEFAULT 0 CHECK (issued >= 0),
            spent_fen bigint NOT NULL DEFAULT 0 CHECK (spent_fen >= 0),
            held_fen bigint NOT NULL DEFAULT 0 CHECK (held_fen >= 0),
            redemptions bigint NOT NULL DEFAULT 0 CHECK (redemptions >= 0),
            created_by text NOT NULL,
            approved_by text,
            created_at timestamptz NOT NULL,
            launched_at timestamptz,
            CHECK (valid_until > valid_from),
            CHECK (max_coupons IS NULL OR issued <= max_coupons),
            CHECK (max_discount_fen IS NULL OR spent_fen + held_fen <= max_discount_fen)
        );
        CREATE INDEX campaign_by_store ON campaign (store_id, created_at);
        -- One row per code. member_id follows merges, issued_to is who it was issued to (merge undo
        -- moves it back). A member gets at most one coupon per campaign.
        CREATE TABLE coupon (
            code text PRIMARY KEY,
            campaign_id text NOT NULL REFERENCES campaign (campaign_id),
            member_id text,
            issued_to text,
            use_limit bigint NOT NULL CHECK (use_limit >= 1),
            used bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
            held bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
            state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'void')),
            issued_at timestamptz NOT NULL,
            CHECK (used + held <= use_limit),
            CHECK ((member_id IS NULL) = (issued_to IS NULL))
        );
        CREATE UNIQUE INDEX coupon_once_per_member ON coupon (campaign_id, issued_to) WHERE issued_to IS NOT NULL;
        CREATE INDEX coupon_by_member ON coupon (member_id, campaign_id) WHERE member_id IS NOT NULL;
        -- Per member and campaign (one offer per campaign): uses redeemed and held, for per_member_limit.
        CREATE TABLE member_coupon_use (
            campaign_id text NOT NULL REFERENCES campaign (campaign_id),
            member_id text NOT NULL,
            used bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
            held bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
            PRIMARY KEY (campaign_id, member_id)
        );
        CREATE TABLE coupon_hold (
            hold_id text PRIMARY KEY,
            code text NOT NULL REFERENCES coupon (code),
            campaign_id text NOT NULL,
            member_id text NOT NULL,
            client_id text NOT NULL,
            store_id text,
            channel text NOT NULL CHECK (channel IN ('app', 'mini_program', 'store')),
            discount_fen bigint NOT NULL CHECK (discount_fen >= 0),
            line_discounts_fen bigint[] NOT NULL,
            status text NOT NULL CHECK (status IN ('held', 'redeemed', 'released', 'lapsed')),
            expires_at timestamptz NOT NULL,
            created_at timestamptz NOT NULL,
            ended_at timestamptz,
            sale_id text
        );
        CREATE INDEX coupon_hold_due ON coupon_hold (expires_at) WHERE status = 'held';
        CREATE INDEX coupon_hold_open_by_code ON coupon_hold (code, member_id) WHERE status = 'held';
        -- A code used by a sale of the SALES journal: once per (code, sale), however often it is delivered.
        CREATE TABLE redemption (
            code text NOT NULL REFERENCES coupon (code),
            sale_id text NOT NULL,
            campaign_id text NOT NULL,
            member_id text,
            store_id text NOT NULL,
            channel text NOT NULL,
            discount_fen bigint NOT NULL CHECK (discount_fen >= 0),
            hold_id text,
            -- The sale's amount before coupons, and how much of it has come back by returns so far.
            sale_gross_fen bigint NOT NULL CHECK (sale_gross_fen >= 0),
            returned_fen bigint NOT NULL DEFAULT 0 CHECK (returned_fen >= 0),
            occurred_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL,
            given_back_at timestamptz,
            given_back_by text,
            PRIMARY KEY (code, sale_id)
        );
        CREATE INDEX redemption_by_campaign ON redemption (campaign_id, occurred_at);
        -- A use a till accepted that could not count (already used elsewhere, expired, unknown…): the
        -- sale stands, the use is not counted, the store follows it up.
        CREATE TABLE redemption_conflict (
            code text NOT NULL,
            sale_id text NOT NULL,
            reason text NOT NULL,
            campaign_id text,
            store_id text NOT NULL,
            member_id text,
            discount_fen bigint NOT NULL CHECK (discount_fen >= 0),
            redeemed_by_sale_id text,
            occurred_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL,
            PRIMARY KEY (code, sale_id)
        );
        CREATE INDEX redemption_conflict_by_store ON redemption_conflict (store_id, occurred_at);
        CREATE INDEX redemption_conflict_by_campaign ON redemption_conflict (campaign_id, occurred_at)
        """


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE redemption_conflict, redemption, coupon_hold, member_coupon_use, coupon, campaign, item")
