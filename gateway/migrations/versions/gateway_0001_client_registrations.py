"""The gateway's client registrations.

Revision ID: gateway_0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "gateway_0001"
down_revision = None
branch_labels = ("gateway",)
depends_on = "kit_0001"

# Which client is bound to what (gateway.domain.clients enforces the same rules).
_CHECKS = {
    "kind_known": "kind IN ('app', 'pos_terminal', 'supplier_user', 'staff')",
    "staff_role_known": "staff_role IS NULL OR staff_role IN ('store_guide', 'store_manager', 'headquarters')",
    "staff_role_only_for_staff": "(staff_role IS NOT NULL) = (kind = 'staff')",
    "terminal_only_for_pos_terminal": "(terminal_id IS NOT NULL) = (kind = 'pos_terminal')",
    "supplier_only_for_supplier_user": "(supplier_id IS NOT NULL) = (kind = 'supplier_user')",
    "store_for_terminals_and_store_staff": (
        "(store_id IS NOT NULL) = "
        "(kind = 'pos_terminal' OR coalesce(staff_role IN ('store_guide', 'store_manager'), false))"
    ),
    # Refuses a plaintext secret written by mistake.
    "secret_is_scrypt_hash": "secret_hash LIKE 'scrypt$%'",
    "client_id_not_blank": "length(client_id) BETWEEN 3 AND 128",
    "display_name_not_blank": "length(btrim(display_name)) > 0",
}


def upgrade() -> None:
    op.create_table(
        "client_registration",
        sa.Column("client_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("store_id", sa.Text, nullable=True),
        sa.Column("terminal_id", sa.Text, nullable=True),
        sa.Column("supplier_id", sa.Text, nullable=True),
        sa.Column("staff_role", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        *(sa.CheckConstraint(condition, name=f"client_registration_{name}") for name, condition in _CHECKS.items()),
    )


def downgrade() -> None:
    op.drop_table("client_registration")
