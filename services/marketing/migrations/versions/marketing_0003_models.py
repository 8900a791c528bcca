"""Marketing: model training runs (one at a time per kind, one serving) and where scores came from.

Revision ID: marketing_0003
Revises: marketing_0002
Create Date: 2026-12-06
"""

from alembic import op

revision = "marketing_0003"
down_revision = "marketing_0002"
branch_labels = None
depends_on = None

SCHEMA = """
        CREATE TABLE model_run (
            model_version text PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('repurchase')),
            status text NOT NULL CHECK (status IN ('queued', 'training', 'succeeded', 'failed')),
            horizon_days integer NOT NULL CHECK (horizon_days BETWEEN 7 AND 365),
            requested_by text NOT NULL,
            requested_at timestamptz NOT NULL,
            started_at timestamptz,
            finished_at timestamptz,
            as_of date,
            training_members bigint,
            served_model text,
            backtest jsonb,
            bgnbd jsonb,
            error text,
            serving boolean NOT NULL DEFAULT false,
            CHECK (NOT serving OR status = 'succeeded')
        );
        CREATE UNIQUE INDEX model_run_one_serving ON model_run (kind) WHERE serving;
        CREATE UNIQUE INDEX model_run_one_open ON model_run (kind) WHERE status IN ('queued', 'training');
        CREATE INDEX model_run_by_time ON model_run (kind, requested_at);
        ALTER TABLE member_score ALTER COLUMN scored_at SET DEFAULT now()
        """


def upgrade() -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE model_run")
