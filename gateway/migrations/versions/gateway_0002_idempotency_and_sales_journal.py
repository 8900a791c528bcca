"""Idempotency records of POST requests, and the sale ids the gateway has journaled.

Revision ID: gateway_0002
Revises: gateway_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0002"
down_revision = "gateway_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_record",
        sa.Column("client_id", sa.Text, primary_key=True),
        sa.Column("idempotency_key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        # The exact bytes of the first answer, so that every replay is byte-identical.
        sa.Column("response_body", sa.Text, nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('in_flight', 'completed')", name="idempotency_record_state_known"),
        sa.CheckConstraint(
            "(state = 'completed') = (status_code IS NOT NULL AND completed_at IS NOT NULL)",
            name="idempotency_record_completed_has_response",
        ),
    )
    op.create_index("idempotency_record_claimed_at", "idempotency_record", ["claimed_at"])
    op.create_table(
        "journaled_sale",
        sa.Column("sale_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("location_id", sa.Text, nullable=False),
        sa.Column("submitted_by", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("stream_sequence", sa.BigInteger, nullable=True),
        sa.CheckConstraint("kind IN ('sale', 'return')", name="journaled_sale_kind_known"),
    )


def downgrade() -> None:
    op.drop_table("journaled_sale")
    op.drop_table("idempotency_record")
