"""Alerts: the feed (one open alert per dedup key), webhooks and their deliveries, and the
projections of other contexts' facts that explain a finding.

The kit's tables (outbox, inbox, request log) come from ``kit_0001``. ``alert_open_dedup`` is
the partial unique index that keeps one OPEN or ACKNOWLEDGED alert per dedup key, so two
concurrent identical findings can never both open one. Deliveries are rows, written with the
alert they forward: a crash loses none. Money is integer fen.

Revision ID: alerts_0001
Revises:
Create Date: 2026-12-06
"""

from alembic import op

revision = "alerts_0001"
down_revision = None
branch_labels = ("alerts",)
depends_on = "kit_0001"

SCHEMA = """
        CREATE TABLE alert (
            alert_id text PRIMARY KEY,
            kind text NOT NULL,
            severity smallint NOT NULL CHECK (severity BETWEEN 1 AND 3),
            state text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
            store_id text NOT NULL DEFAULT '',
            supplier_id text NOT NULL DEFAULT '',
            subject text NOT NULL,
            dedup_key text NOT NULL,
            summary text NOT NULL,
            facts jsonb NOT NULL DEFAULT '{}',
            -- [{"kind": "price_change", "score": 0.93, "summary": …, "facts": {…}, "occurred_at": …}, …]
            causes jsonb NOT NULL DEFAULT '[]',
            link text NOT NULL DEFAULT '',
            raised_at timestamptz NOT NULL,
            last_seen_at timestamptz NOT NULL,
            occurrences integer NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
            acknowledged_by text NOT NULL DEFAULT '',
            acknowledged_at timestamptz,
            resolved_by text NOT NULL DEFAULT '',
            resolved_at timestamptz,
            resolution_note text NOT NULL DEFAULT '' CHECK (length(resolution_note) <= 500),
            version bigint NOT NULL DEFAULT 1 CHECK (version >= 1)
        );
        CREATE UNIQUE INDEX alert_open_dedup ON alert (dedup_key) WHERE state <> 'resolved';
        CREATE INDEX alert_newest ON alert (raised_at DESC, alert_id DESC);
        CREATE INDEX alert_newest_by_store ON alert (store_id, raised_at DESC, alert_id DESC);

        CREATE TABLE webhook (
            webhook_id text PRIMARY KEY,
            name text NOT NULL,
            url text NOT NULL,
            format text NOT NULL CHECK (format IN ('wecom', 'dingtalk')),
            store_id text NOT NULL DEFAULT '',
            role text NOT NULL DEFAULT '',
            kinds text[] NOT NULL DEFAULT '{}',
            min_severity smallint NOT NULL DEFAULT 1,
            last_delivered_at timestamptz,
            last_error text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL
        );
        CREATE TABLE webhook_delivery (
            delivery_id bigserial PRIMARY KEY,
            webhook_id text NOT NULL REFERENCES webhook (webhook_id) ON DELETE CASCADE,
            alert_id text NOT NULL REFERENCES alert (alert_id),
            body jsonb NOT NULL,
            state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'given_up')),
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL,
            last_error text NOT NULL DEFAULT '',
            delivered_at timestamptz,
            created_at timestamptz NOT NULL,
            UNIQUE (webhook_id, alert_id)
        );
        CREATE INDEX webhook_delivery_due ON webhook_delivery (next_attempt_at) WHERE state = 'pending';

        -- Projections of other contexts' facts.
        CREATE TABLE sku_category (
            sku text PRIMARY KEY,
            category text NOT NULL,
            version bigint NOT NULL
        );
        CREATE INDEX sku_category_by_category ON sku_category (category, sku);
        CREATE TABLE price_state (
            store_id text NOT NULL,
            sku text NOT NULL,
            promoted boolean NOT NULL,
            unit_price_fen bigint,
            book_version bigint NOT NULL,
            PRIMARY KEY (store_id, sku)
        );
        CREATE TABLE price_change (
            store_id text NOT NULL,
            sku text NOT NULL,
            book_version bigint NOT NULL,
            old_unit_price_fen bigint,
            new_unit_price_fen bigint,
            promotion_started boolean NOT NULL,
            promotion_ended boolean NOT NULL,
            promoted boolean NOT NULL,
            change_id text NOT NULL DEFAULT '',
            effective_at timestamptz NOT NULL,
            PRIMARY KEY (store_id, sku, book_version)
        );
        CREATE INDEX price_change_by_store_time ON price_change (store_id, effective_at);
        CREATE TABLE stock_out (
            location_id text NOT NULL,
            sku text NOT NULL,
            since timestamptz NOT NULL,
            until timestamptz,
            PRIMARY KEY (location_id, sku, since)
        );
        CREATE UNIQUE INDEX stock_out_current ON stock_out (location_id, sku) WHERE until IS NULL;
        CREATE TABLE label_given_up (
            store_id text NOT NULL,
            label_id text NOT NULL,
            sku text NOT NULL,
            attempts integer NOT NULL,
            last_error text NOT NULL DEFAULT '',
            given_up_at timestamptz NOT NULL,
            PRIMARY KEY (store_id, label_id)
        );
        CREATE TABLE campaign (
            campaign_id text PRIMARY KEY,
            name text NOT NULL,
            store_id text NOT NULL DEFAULT '',
            ends_at timestamptz,
            launched_at timestamptz NOT NULL
        );
        CREATE TABLE terminal_seen (
            store_id text NOT NULL,
            terminal_id text NOT NULL,
            last_entry_at timestamptz NOT NULL,
            last_sale_id text NOT NULL,
            PRIMARY KEY (store_id, terminal_id)
        );
        CREATE TABLE store_journal (
            store_id text PRIMARY KEY,
            last_entry_at timestamptz NOT NULL
        );
        CREATE TABLE journal_silence (
            store_id text NOT NULL,
            since timestamptz NOT NULL,
            until timestamptz NOT NULL,
            PRIMARY KEY (store_id, since)
        );
"""


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE journal_silence, store_journal, terminal_seen, campaign, label_given_up, stock_out, "
        "price_change, price_state, sku_category, webhook_delivery, webhook, alert"
    )
