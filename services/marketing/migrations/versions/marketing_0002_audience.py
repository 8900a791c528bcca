"""Marketing's audience: the member and purchase projections, model scores, segments and their
frozen snapshots, and who in a campaign's audience was treated, held out or left out.

A member row follows the member service's events (no personal data: ids, tier, stages, the
home store, the channels consented to, erased and merged flags). A purchase row is one sale of
the SALES journal (or one imported purchase) with its amount net of returns so far; its lines
carry SKU and category for category rules. ``made_by`` keeps who bought, so undoing a merge can
give a member's purchases back.

Revision ID: marketing_0002
Revises: marketing_0001
Create Date: 2026-12-06
"""

from alembic import op

revision = "marketing_0002"
down_revision = "marketing_0001"
branch_labels = None
depends_on = None

SCHEMA = """
        CREATE TABLE member (
            member_id text PRIMARY KEY,
            tier text NOT NULL DEFAULT 'basic',
            lifecycle_stage text NOT NULL DEFAULT 'new',
            home_store_id text,
            consent text[] NOT NULL DEFAULT '{}',
            erased boolean NOT NULL DEFAULT false,
            merged_into text,
            registered_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        );
        CREATE INDEX member_active_by_stage ON member (lifecycle_stage) WHERE NOT erased AND merged_into IS NULL;
        CREATE TABLE purchase (
            sale_id text PRIMARY KEY,
            member_id text NOT NULL,
            made_by text NOT NULL,
            store_id text NOT NULL,
            occurred_at timestamptz NOT NULL,
            gross_fen bigint NOT NULL CHECK (gross_fen >= 0),
            net_fen bigint NOT NULL CHECK (net_fen >= 0),
            cost_fen bigint NOT NULL CHECK (cost_fen >= 0),
            returned_fen bigint NOT NULL DEFAULT 0 CHECK (returned_fen >= 0),
            imported boolean NOT NULL DEFAULT false
        );
        CREATE INDEX purchase_by_member ON purchase (member_id, occurred_at);
        CREATE INDEX purchase_by_time ON purchase (occurred_at);
        CREATE TABLE purchase_line (
            sale_id text NOT NULL REFERENCES purchase (sale_id),
            line_number integer NOT NULL,
            sku text NOT NULL,
            category text NOT NULL,
            quantity numeric(14, 3) NOT NULL,
            net_fen bigint NOT NULL,
            cost_fen bigint NOT NULL,
            PRIMARY KEY (sale_id, line_number)
        );
        CREATE INDEX purchase_line_by_category ON purchase_line (category, sale_id);
        CREATE TABLE member_score (
            member_id text PRIMARY KEY,
            engagement text,
            rfm_cell text,
            churn_risk double precision,
            p_active double precision,
            expected_purchases_90d double precision,
            model_version text,
            scored_at timestamptz NOT NULL
        );
        CREATE TABLE segment (
            segment_id text PRIMARY KEY,
            name text NOT NULL,
            description text NOT NULL DEFAULT '',
            rule jsonb NOT NULL,
            created_by text NOT NULL,
            created_at timestamptz NOT NULL
        );
        CREATE INDEX segment_by_time ON segment (created_at, segment_id);
        CREATE TABLE segment_snapshot (
            snapshot_id text PRIMARY KEY,
            segment_id text NOT NULL REFERENCES segment (segment_id),
            as_of timestamptz NOT NULL,
            members bigint NOT NULL,
            members_by_stage jsonb NOT NULL,
            created_at timestamptz NOT NULL
        );
        CREATE INDEX segment_snapshot_latest ON segment_snapshot (segment_id, as_of);
        CREATE TABLE snapshot_member (
            snapshot_id text NOT NULL REFERENCES segment_snapshot (snapshot_id),
            member_id text NOT NULL,
            lifecycle_stage text NOT NULL,
            PRIMARY KEY (snapshot_id, member_id)
        );
        -- Each audience member's place in a campaign: treatment, control, or excluded with the reason.
        CREATE TABLE campaign_member (
            campaign_id text NOT NULL REFERENCES campaign (campaign_id),
            member_id text NOT NULL,
            stratum text NOT NULL,
            grp text NOT NULL CHECK (grp IN ('treatment', 'control', 'excluded')),
            excluded_reason text,
            code text,
            PRIMARY KEY (campaign_id, member_id),
            CHECK ((grp = 'excluded') = (excluded_reason IS NOT NULL))
        );
        CREATE INDEX campaign_member_to_issue ON campaign_member (campaign_id, member_id)
            WHERE grp = 'treatment' AND code IS NULL;
        CREATE INDEX coupon_by_member_time ON coupon (member_id, issued_at) WHERE member_id IS NOT NULL
        """


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX coupon_by_member_time")
    op.execute(
        "DROP TABLE campaign_member, snapshot_member, segment_snapshot, segment, member_score, purchase_line, "
        "purchase, member"
    )
