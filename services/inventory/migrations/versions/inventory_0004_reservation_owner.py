"""Inventory: the client that owns a reservation (only it may commit, release or read it).

Revision ID: inventory_0004
Revises: inventory_0003
Create Date: 2026-11-24
"""

from alembic import op

revision = "inventory_0004"
down_revision = "inventory_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE reservation ADD COLUMN owner text NOT NULL DEFAULT ''")


def downgrade() -> None:
    op.execute("ALTER TABLE reservation DROP COLUMN owner")
