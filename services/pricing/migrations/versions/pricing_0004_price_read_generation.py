"""Pricing: one generation number that every committed change of the price rules or the catalogue raises.

Effective prices are read through an in-process cache of items and rules
(``services/pricing/adapters/price_read_cache.py``). Each read first asks this one-row
table's ``generation`` (with the store row, in one statement); a cache filled under an
older generation is dropped. The number is raised by deferred constraint triggers, that is
at the commit of a transaction that inserted, updated or deleted ``price_rule`` or ``item``
rows, once per transaction: the change and the new generation become visible together, so
a read that starts after a change committed can never be answered from what was cached
before it. Taken at commit, after every other lock the transaction takes, the row's lock
adds no deadlock; it does make transactions that change rules or items commit one after the
other (each waits for the previous one's commit to be flushed), which bounds such writes to
the rate of commits the disk allows — fine for price and catalogue changes, which are rare
and which the scheduler applies hundreds of SKUs per transaction.

Revision ID: pricing_0004
Revises: pricing_0003
Create Date: 2026-12-06
"""

from alembic import op

revision = "pricing_0004"
down_revision = "pricing_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE price_read_generation (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            generation bigint NOT NULL
        )
    """)
    op.execute("INSERT INTO price_read_generation (generation) VALUES (1)")
    # Row triggers (a constraint trigger cannot be per statement) that raise the number once per
    # transaction: the transaction-local setting remembers that it was done.
    op.execute("""
        CREATE FUNCTION raise_price_read_generation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF coalesce(current_setting('pricing.read_generation_raised', true), '') = '' THEN
                UPDATE price_read_generation SET generation = generation + 1;
                PERFORM set_config('pricing.read_generation_raised', 'yes', true);
            END IF;
            RETURN NULL;
        END
        $$
    """)
    for table in ("price_rule", "item"):
        op.execute(f"""
            CREATE CONSTRAINT TRIGGER {table}_raises_price_read_generation
            AFTER INSERT OR UPDATE OR DELETE ON {table}
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION raise_price_read_generation()
        """)


def downgrade() -> None:
    for table in ("price_rule", "item"):
        op.execute(f"DROP TRIGGER {table}_raises_price_read_generation ON {table}")
    op.execute("DROP FUNCTION raise_price_read_generation()")
    op.execute("DROP TABLE price_read_generation")
