"""Pricing: label pages keep room for the next version of their rows (fillfactor 70).

A label row is rewritten four times per price change (its desired content, the claim that
sends it, the station's ticket, the acknowledgement), and more by status refreshes. An update
that changes no indexed column (the ticket, the online state and battery) can stay on its page
as a heap-only tuple, with no new index entries, only if the page has room; at the default
fillfactor of 100 the pages are full and such updates move the row. Measured over the 50,000
label storm of ``make bench`` (``bench/pricing.py``, with ``pg_stat_user_tables``), four runs
each, alternating: heap-only updates of ``label`` 26,000 → 46,500 of 200,000; PostgreSQL CPU
12.8 → 11.4 s (means); seconds until every label confirmed 18.6 → 16.1 (means; 16.4–21.8
before, 14.7–16.7 after). The price is about 43% more pages for the table (each filled to 70%).

The setting applies to pages filled from now on; an existing table gets it throughout only when
rewritten (``VACUUM FULL label`` or pg_repack in a maintenance window), which this migration
does not do, as it would lock the table.

Revision ID: pricing_0005
Revises: pricing_0004
Create Date: 2026-12-07
"""

from alembic import op

revision = "pricing_0005"
down_revision = "pricing_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE label SET (fillfactor = 70)")


def downgrade() -> None:
    op.execute("ALTER TABLE label RESET (fillfactor)")
