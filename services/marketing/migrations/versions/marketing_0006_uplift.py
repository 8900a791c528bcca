"""Marketing: uplift model runs, every member's uplift score, and campaigns targeted by uplift.

An uplift run has no purchase horizon (it learns from past campaigns' attribution windows), so
``horizon_days`` is required of repurchase runs only.

Revision ID: marketing_0006
Revises: marketing_0005
Create Date: 2026-12-06
"""

from alembic import op

revision = "marketing_0006"
down_revision = "marketing_0005"
branch_labels = None
depends_on = None

SCHEMA = """
        ALTER TABLE model_run DROP CONSTRAINT model_run_kind_check,
            ADD CONSTRAINT model_run_kind_check CHECK (kind IN ('repurchase', 'uplift')),
            ALTER COLUMN horizon_days DROP NOT NULL,
            ADD CONSTRAINT model_run_horizon CHECK (kind <> 'repurchase' OR horizon_days IS NOT NULL);
        CREATE TABLE member_uplift (
            member_id text PRIMARY KEY,
            uplift double precision NOT NULL,
            model_version text NOT NULL,
            scored_at timestamptz NOT NULL
        );
        ALTER TABLE campaign DROP CONSTRAINT campaign_target_check,
            ADD CONSTRAINT campaign_target_check CHECK (target IN ('everyone', 'propensity', 'uplift'))
        """


def upgrade() -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DELETE FROM model_run WHERE kind = 'uplift'")
    op.execute("UPDATE campaign SET target = 'propensity' WHERE target = 'uplift'")
    op.execute(
        "ALTER TABLE campaign DROP CONSTRAINT campaign_target_check, "
        "ADD CONSTRAINT campaign_target_check CHECK (target IN ('everyone', 'propensity'))"
    )
    op.execute("DROP TABLE member_uplift")
    op.execute(
        "ALTER TABLE model_run DROP CONSTRAINT model_run_horizon, ALTER COLUMN horizon_days SET NOT NULL, "
        "DROP CONSTRAINT model_run_kind_check, ADD CONSTRAINT model_run_kind_check CHECK (kind IN ('repurchase'))"
    )
