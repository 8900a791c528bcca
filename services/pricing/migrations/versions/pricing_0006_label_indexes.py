"""Pricing: the label table keeps only the indexes its queries use.

Every change of a label's ``state`` is an update with new entries in every index of the table.
``label_by_state (store_id, state, label_id)`` took one on every such update for two queries: a
store's sent labels in label order (the acknowledgement poll, every round) and the staff's
listing filtered by state; ``label_sent (store_id, sent_at) WHERE state = 'sent'`` was ordered
by a column no query orders by. One partial index ``label_sent (store_id, label_id) WHERE state
= 'sent'`` now serves the poll (``test_query_plans``); a listing by another state walks the
store's labels by primary key, filtering (some milliseconds for a store of 20,000 labels, on a
page a person asked for).

Measured in the 50,000-label storm of ``make bench`` (fillfactor 70 in place), four alternating
runs each: PostgreSQL CPU 9.99, 9.27, 9.62, 11.25 s before and 8.60, 9.06, 10.31, 9.27 s after
(mean 10.0 -> 9.3 s); seconds until every label confirmed 15.5, 15.7, 15.4, 19.8 before and
15.0, 14.6, 17.2, 15.8 after. A first try without the fillfactor was inconclusive (two pairs).

Revision ID: pricing_0006
Revises: pricing_0005
Create Date: 2026-12-07
"""

from alembic import op

revision = "pricing_0006"
down_revision = "pricing_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX label_by_state")
    op.execute("DROP INDEX label_sent")
    op.execute("CREATE INDEX label_sent ON label (store_id, label_id) WHERE state = 'sent'")


def downgrade() -> None:
    op.execute("DROP INDEX label_sent")
    op.execute("CREATE INDEX label_sent ON label (store_id, sent_at) WHERE state = 'sent'")
    op.execute("CREATE INDEX label_by_state ON label (store_id, state, label_id)")
