"""Member: legacy imports — which member each imported external id became, and imported sale facts.

An external id maps to one member for good, so importing it again answers that member and
changes nothing. Imported purchases are sale facts marked ``imported``: they count for purchase
profiles, lifecycle and KPIs, never for points (they have no ledger entry) nor for tier spend.

Revision ID: member_0003
Revises: member_0002
Create Date: 2026-12-06
"""

from alembic import op

revision = "member_0003"
down_revision = "member_0002"
branch_labels = None
depends_on = None


SCHEMA = """
        CREATE TABLE member_import (
            external_id text PRIMARY KEY CHECK (char_length(external_id) BETWEEN 1 AND 64),
            member_id text NOT NULL REFERENCES member (member_id),
            created boolean NOT NULL,
            imported_at timestamptz NOT NULL,
            imported_by text NOT NULL DEFAULT ''
        );
        CREATE INDEX member_import_by_member ON member_import (member_id);
        ALTER TABLE sale_fact ADD COLUMN imported boolean NOT NULL DEFAULT false
        """


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("ALTER TABLE sale_fact DROP COLUMN imported")
    op.execute("DROP TABLE member_import")
