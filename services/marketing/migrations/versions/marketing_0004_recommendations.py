"""Marketing: each member's recommended items, written by the training run that backtested them.

Revision ID: marketing_0004
Revises: marketing_0003
Create Date: 2026-12-06
"""

from alembic import op

revision = "marketing_0004"
down_revision = "marketing_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE member_recommendation ("
        " member_id text NOT NULL,"
        " rank smallint NOT NULL CHECK (rank >= 1),"
        " sku text NOT NULL,"
        " model_version text NOT NULL,"
        " PRIMARY KEY (member_id, rank))"
    )
    op.execute("ALTER TABLE model_run ADD COLUMN recommendations jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE model_run DROP COLUMN recommendations")
    op.execute("DROP TABLE member_recommendation")
