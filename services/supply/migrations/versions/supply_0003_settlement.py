"""Supply: settlement — accruals, statements, the SALES journal as settlement needs it.

* ``accrual``: one signed line of money owed to a supplier, unique by what it accrues
  (``source_id``), written once as its fact arrives. ``statement_id`` is the one issued
  statement showing it (NULL: still open), set when the statement is issued, so an accrual can
  never be on two statements; ``late`` says its own period had been issued by then. A draft
  is not copied onto its accruals: it shows its contract's open accruals in its window
  ``[first_day, period_end)``, so a month-end run is an aggregation, not an update of every
  line (its rebate and quality lines are the only rows that name a draft).
* ``statement``: one per contract and period (``UNIQUE (contract_id, period_start)``, and an id
  named by them), so a rerun of a statement run, also after a crash, redrafts it instead of
  adding one. ``total_fen`` is the sum of its lines as drafted (for an issued statement, for good).
* ``journal_sale``: every journal entry by id (its store and business day), so an entry
  delivered again (also past the inbox, under another event id) changes nothing, and a return
  can tell an original sale supply has seen from one it has not seen yet.
* ``unmatched_line``: a journal line of a consignment or concession SKU that cannot accrue (yet):
  a return whose original sale has not arrived (``waiting``, applied when it does), a return of
  more than was sold (``excess``), or a line whose quantity or amount is unusable
  (``invalid``) — kept, never lost, and reported by the reconciliation check.
* ``sales_day``: per store, SKU and business day, what sold and came back, for the portal.

Revision ID: supply_0003
Revises: supply_0002
Create Date: 2026-12-06
"""

from alembic import op

revision = "supply_0003"
down_revision = "supply_0002"
branch_labels = None
depends_on = None

SCHEMA = """
        CREATE TABLE statement (
            statement_id text PRIMARY KEY,
            supplier_id text NOT NULL,
            contract_id text NOT NULL,
            mode text NOT NULL CHECK (mode IN ('purchase', 'consignment', 'concession')),
            period_start date NOT NULL,
            period_end date NOT NULL,
            -- A draft shows its contract's open accruals from first_day (earlier: late) to period_end.
            first_day date NOT NULL,
            status text NOT NULL CHECK (status IN ('draft', 'issued', 'confirmed', 'disputed', 'approved', 'paid')),
            total_fen bigint NOT NULL DEFAULT 0,
            line_count bigint NOT NULL DEFAULT 0,
            late_line_count bigint NOT NULL DEFAULT 0,
            drafted_at timestamptz NOT NULL,
            issued_at timestamptz,
            issued_by text NOT NULL DEFAULT '',
            confirmed_at timestamptz,
            disputed_at timestamptz,
            approved_at timestamptz,
            approved_by text NOT NULL DEFAULT '',
            paid_at timestamptz,
            payment_reference text NOT NULL DEFAULT '',
            version bigint NOT NULL DEFAULT 1,
            UNIQUE (contract_id, period_start),
            CHECK (period_end > period_start),
            CHECK (first_day <= period_start),
            CHECK (status = 'draft' OR issued_at IS NOT NULL),
            CHECK (status <> 'paid' OR payment_reference <> '')
        );
        CREATE INDEX statement_by_supplier ON statement (supplier_id, period_start DESC, statement_id DESC);
        CREATE INDEX statement_newest ON statement (period_start DESC, statement_id DESC);
        CREATE TABLE accrual (
            source_id text PRIMARY KEY,
            supplier_id text NOT NULL,
            contract_id text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('receipt', 'return_to_vendor', 'sale', 'customer_return', 'fee',
                'quality_deduction', 'rebate')),
            occurred_on date NOT NULL,
            amount_fen bigint NOT NULL,
            sku text NOT NULL DEFAULT '',
            store_id text NOT NULL DEFAULT '',
            quantity numeric(14, 3) NOT NULL DEFAULT 0,
            base_fen bigint NOT NULL DEFAULT 0,
            unit_cost_fen bigint NOT NULL DEFAULT 0,
            commission_rate numeric(5, 4),
            reverses text REFERENCES accrual (source_id),
            -- A sale or customer return: the journal entry (sale_id) it came from.
            sale_id text,
            description text NOT NULL DEFAULT '',
            statement_id text REFERENCES statement (statement_id),
            late boolean NOT NULL DEFAULT false,
            dispute_comment text NOT NULL DEFAULT '',
            recorded_at timestamptz NOT NULL,
            CHECK ((kind = 'customer_return') = (reverses IS NOT NULL))
        );
        CREATE INDEX accrual_open ON accrual (contract_id, occurred_on) WHERE statement_id IS NULL;
        CREATE INDEX accrual_by_statement ON accrual (statement_id) WHERE statement_id IS NOT NULL;
        CREATE INDEX accrual_by_sale ON accrual (sale_id) WHERE sale_id IS NOT NULL;
        CREATE INDEX accrual_by_reversed ON accrual (reverses) WHERE reverses IS NOT NULL;
        CREATE TABLE journal_sale (
            sale_id text PRIMARY KEY,
            store_id text NOT NULL,
            business_day date NOT NULL,
            is_return boolean NOT NULL
        );
        CREATE TABLE unmatched_line (
            source_id text PRIMARY KEY,
            sale_id text NOT NULL,
            line_number integer NOT NULL,
            original_sale_id text NOT NULL DEFAULT '',
            status text NOT NULL CHECK (status IN ('waiting', 'excess', 'invalid')),
            sku text NOT NULL,
            store_id text NOT NULL,
            quantity numeric(14, 3) NOT NULL,
            revenue_fen bigint NOT NULL,
            occurred_on date NOT NULL,
            detail text NOT NULL DEFAULT '',
            recorded_at timestamptz NOT NULL
        );
        CREATE INDEX unmatched_line_waiting ON unmatched_line (original_sale_id) WHERE status = 'waiting';
        CREATE TABLE sales_day (
            store_id text NOT NULL,
            sku text NOT NULL,
            business_day date NOT NULL,
            sold numeric(16, 3) NOT NULL DEFAULT 0,
            sold_fen bigint NOT NULL DEFAULT 0,
            returned numeric(16, 3) NOT NULL DEFAULT 0,
            returned_fen bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (sku, business_day, store_id)
        )
        """


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE sales_day, unmatched_line, journal_sale, accrual, statement")
