"""Pricing: given-up labels are due again (their slow retry), so the due-label index covers them.

The pushers claim labels that are pending, failed or given up and past ``next_attempt_at``;
the partial index ``label_due`` covered only the first two, and a predicate it does not
imply makes the planner scan the whole label table on every push round.

Revision ID: pricing_0003
Revises: pricing_0002
Create Date: 2026-11-24
"""

from alembic import op

revision = "pricing_0003"
down_revision = "pricing_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX label_due")
    op.execute("CREATE INDEX label_due ON label (next_attempt_at) WHERE state IN ('pending', 'failed', 'given_up')")


def downgrade() -> None:
    op.execute("DROP INDEX label_due")
    op.execute("CREATE INDEX label_due ON label (next_attempt_at) WHERE state IN ('pending', 'failed')")
