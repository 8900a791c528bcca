"""Pricing: scheduled changes per SKU, for claiming only each SKU's earliest due change.

The scheduler claims a due change only when no earlier scheduled change of the same SKU
exists (so replicas apply a SKU's changes in order). This partial index makes that check
one index probe per candidate whatever the planner believes about the table, which
matters right after thousands of changes were scheduled at once and before autovacuum has
analysed them.

Revision ID: pricing_0002
Revises: pricing_0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "pricing_0002"
down_revision = "pricing_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX price_change_scheduled_by_sku ON price_change (sku, effective_at, change_id) "
        "WHERE state = 'scheduled'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX price_change_scheduled_by_sku")
