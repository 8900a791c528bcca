"""Inventory: sales anomalies found per store, leaf category and business day, each raised once.

`sales_anomaly` holds every finding under its natural key (location, category, business day):
a finding is inserted once, and only the transaction that inserted it writes the
SalesAnomalyDetected event to the outbox, so a rerun and two replicas evaluating the same day
raise it exactly once. `sales_anomaly_evaluation` records which closed days of a location the
periodic run has evaluated, so it looks at each once (a day evaluated again on request still
raises nothing already raised).

Revision ID: inventory_0009
Revises: inventory_0008
Create Date: 2026-12-06
"""

from alembic import op

revision = "inventory_0009"
down_revision = "inventory_0008"
branch_labels = None
depends_on = None

UPGRADE = """
        CREATE TABLE sales_anomaly (
            location_id text NOT NULL,
            category text NOT NULL,
            business_date date NOT NULL,
            anomaly_id uuid NOT NULL UNIQUE,
            direction text NOT NULL CHECK (direction IN ('below', 'above')),
            method text NOT NULL CHECK (method IN ('forecast', 'seasonal_baseline')),
            actual_units numeric(14, 3) NOT NULL,
            expected_units numeric(14, 3) NOT NULL,
            lower_units numeric(14, 3) NOT NULL,
            upper_units numeric(14, 3) NOT NULL,
            skus text[] NOT NULL,
            detected_at timestamptz NOT NULL,
            PRIMARY KEY (location_id, category, business_date)
        );
        CREATE TABLE sales_anomaly_evaluation (
            location_id text NOT NULL,
            business_date date NOT NULL,
            categories integer NOT NULL,
            anomalies integer NOT NULL,
            evaluated_at timestamptz NOT NULL,
            PRIMARY KEY (location_id, business_date)
        )
        """

DOWNGRADE = """
        DROP TABLE sales_anomaly_evaluation;
        DROP TABLE sales_anomaly
        """


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in UPGRADE.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE.split(";"):
        if statement.strip():
            op.execute(statement)
