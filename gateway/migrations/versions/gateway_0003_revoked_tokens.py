"""Access tokens revoked before they expire (a client signing out: RFC 7009's revocation).

Revision ID: gateway_0003
Revises: gateway_0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0003"
down_revision = "gateway_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_token",
        # The token's jti; a token is refused while its row exists (until it would have expired anyway).
        sa.Column("token_id", sa.Text, primary_key=True),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("revoked_token_by_client", "revoked_token", ["client_id", "expires_at"])


def downgrade() -> None:
    op.drop_table("revoked_token")
