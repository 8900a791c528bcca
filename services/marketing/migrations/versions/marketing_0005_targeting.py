"""Marketing: a campaign may target the share of its audience most likely to buy.

Revision ID: marketing_0005
Revises: marketing_0004
Create Date: 2026-12-06
"""

from alembic import op

revision = "marketing_0005"
down_revision = "marketing_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE campaign ADD COLUMN target text NOT NULL DEFAULT 'everyone' "
        "CHECK (target IN ('everyone', 'propensity')), "
        "ADD COLUMN target_percent integer CHECK (target_percent BETWEEN 1 AND 100), "
        "ADD CONSTRAINT campaign_target_percent CHECK ((target = 'everyone') = (target_percent IS NULL))"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE campaign DROP CONSTRAINT campaign_target_percent, DROP COLUMN target_percent, DROP COLUMN target"
    )
