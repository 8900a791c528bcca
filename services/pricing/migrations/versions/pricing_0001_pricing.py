"""Pricing: stores, the item catalogue, price rules, scheduled changes, POS price books, shelf labels, markdowns.

Money is integer fen (``*_fen``). A store's POS price book is materialised in
``book_entry``: one row per store and SKU holding the entry as the POS receives it, stamped
with the store's ``book_version`` of the transaction that last changed it, so a delta since
version N is an index range scan.

Revision ID: pricing_0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "pricing_0001"
down_revision = None
branch_labels = ("pricing",)
depends_on = "kit_0001"

_ID = "'^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'"

SCHEMA = f"""
        CREATE TABLE store (
            store_id text PRIMARY KEY CHECK (store_id ~ {_ID}),
            name text NOT NULL,
            price_groups text[] NOT NULL DEFAULT '{{}}',
            currency text NOT NULL DEFAULT 'CNY' CHECK (currency ~ '^[A-Z]{{3}}$'),
            label_station_kind text NOT NULL DEFAULT '' CHECK (label_station_kind IN ('', 'openepaperlink', 'batch')),
            label_station_url text NOT NULL DEFAULT '',
            book_version bigint NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        -- Item versions come from one sequence, so "changed since version N" spans the catalogue.
        CREATE SEQUENCE item_version START 1;
        CREATE TABLE item (
            sku text PRIMARY KEY,
            name text NOT NULL,
            category text NOT NULL,
            barcode text NOT NULL,
            unit text NOT NULL CHECK (unit IN ('piece', 'kg', 'box')),
            cost_fen bigint NOT NULL CHECK (cost_fen >= 0),
            supplier_id text NOT NULL,
            store_ids text[] NOT NULL DEFAULT '{{}}',
            active boolean NOT NULL DEFAULT true,
            version bigint NOT NULL,
            updated_at timestamptz NOT NULL
        );
        CREATE INDEX item_by_version ON item (version);
        CREATE INDEX item_by_supplier ON item (supplier_id, sku);
        CREATE SEQUENCE price_rule_sequence START 1;
        CREATE TABLE price_rule (
            rule_id text PRIMARY KEY,
            sku text NOT NULL REFERENCES item (sku),
            kind text NOT NULL CHECK (kind IN ('regular', 'promotion')),
            store_id text,
            store_group text,
            channel text CHECK (channel IN ('store', 'online', 'mini_program')),
            member_tier text,
            currency text NOT NULL,
            valid_from timestamptz,
            valid_to timestamptz,
            priority integer NOT NULL DEFAULT 0,
            sequence bigint NOT NULL DEFAULT nextval('price_rule_sequence'),
            price_fen bigint CHECK (price_fen >= 0),
            mechanic text CHECK (mechanic IN ('fixed_price', 'percent_off', 'multi_buy')),
            percent_off numeric(5, 2),
            multi_buy_quantity integer,
            bundle_price_fen bigint,
            name text NOT NULL DEFAULT '',
            change_id text,
            CHECK (store_id IS NULL OR store_group IS NULL),
            CHECK (valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from),
            CHECK ((kind = 'regular') = (price_fen IS NOT NULL)),
            CHECK ((kind = 'promotion') = (mechanic IS NOT NULL))
        );
        CREATE INDEX price_rule_by_sku ON price_rule (sku);
        -- Moments at which a SKU's prices change by a rule's window: its book entries are recomputed then.
        CREATE TABLE price_timer (
            sku text NOT NULL,
            due_at timestamptz NOT NULL,
            PRIMARY KEY (due_at, sku)
        );
        CREATE TABLE price_change (
            change_id text PRIMARY KEY,
            sku text NOT NULL REFERENCES item (sku),
            price_fen bigint NOT NULL CHECK (price_fen >= 0),
            currency text NOT NULL,
            effective_at timestamptz NOT NULL,
            store_ids text[] NOT NULL DEFAULT '{{}}',
            channel text CHECK (channel IN ('store', 'online', 'mini_program')),
            state text NOT NULL DEFAULT 'scheduled' CHECK (state IN ('scheduled', 'applied')),
            applied_at timestamptz,
            override_reason text NOT NULL DEFAULT '',
            markdown_id text,
            created_at timestamptz NOT NULL,
            created_by text NOT NULL DEFAULT ''
        );
        CREATE INDEX price_change_due ON price_change (effective_at) WHERE state = 'scheduled';
        CREATE INDEX price_change_by_sku ON price_change (sku, effective_at DESC);
        CREATE TABLE price_audit (
            audit_id bigserial PRIMARY KEY,
            occurred_at timestamptz NOT NULL,
            actor text NOT NULL,
            sku text NOT NULL,
            action text NOT NULL,
            detail jsonb NOT NULL DEFAULT '{{}}'
        );
        CREATE INDEX price_audit_by_sku ON price_audit (sku, occurred_at);
        -- The POS price book: the entry exactly as served (a serialized PriceBookEntry without
        -- its version), the version it last changed in, and the till price for the parity audit.
        CREATE TABLE book_entry (
            store_id text NOT NULL REFERENCES store (store_id),
            sku text NOT NULL,
            version bigint NOT NULL,
            removed boolean NOT NULL DEFAULT false,
            unit_price_fen bigint,
            entry bytea NOT NULL,
            PRIMARY KEY (store_id, sku)
        );
        CREATE INDEX book_entry_by_version ON book_entry (store_id, version);
        CREATE INDEX book_entry_by_sku ON book_entry (sku);
        -- Shelf labels: what each should show (desired), what was pushed (sent) and what it confirmed (acked).
        CREATE TABLE label (
            store_id text NOT NULL REFERENCES store (store_id),
            label_id text NOT NULL,
            sku text NOT NULL REFERENCES item (sku),
            template text NOT NULL DEFAULT 'standard',
            state text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sent', 'acknowledged', 'failed', 'given_up')),
            desired jsonb,
            desired_digest text,
            desired_price_fen bigint,
            pending_since timestamptz NOT NULL DEFAULT now(),
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            last_error text NOT NULL DEFAULT '',
            ticket text NOT NULL DEFAULT '',
            sent_digest text,
            sent_price_fen bigint,
            sent_at timestamptz,
            acked_digest text,
            acked_price_fen bigint,
            acked_at timestamptz,
            online boolean NOT NULL DEFAULT true,
            battery_mv integer,
            last_seen timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (store_id, label_id)
        );
        CREATE INDEX label_due ON label (next_attempt_at) WHERE state IN ('pending', 'failed');
        CREATE INDEX label_sent ON label (store_id, sent_at) WHERE state = 'sent';
        CREATE INDEX label_by_sku ON label (store_id, sku);
        CREATE INDEX label_by_state ON label (store_id, state, label_id);
        CREATE TABLE markdown (
            markdown_id text PRIMARY KEY,
            store_id text NOT NULL REFERENCES store (store_id),
            sku text NOT NULL REFERENCES item (sku),
            current_price_fen bigint NOT NULL,
            suggested_price_fen bigint NOT NULL,
            floor_price_fen bigint NOT NULL,
            percent_off numeric(5, 2) NOT NULL,
            reason text NOT NULL,
            state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'approved', 'rejected', 'withdrawn')),
            change_id text,
            created_at timestamptz NOT NULL,
            decided_at timestamptz,
            decided_by text
        );
        CREATE UNIQUE INDEX markdown_one_open ON markdown (store_id, sku) WHERE state = 'open';
        CREATE INDEX markdown_by_store ON markdown (store_id, state, sku)
        """


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE markdown, label, book_entry, price_audit, price_change, price_timer, price_rule, item, store"
    )
    op.execute("DROP SEQUENCE price_rule_sequence")
    op.execute("DROP SEQUENCE item_version")
