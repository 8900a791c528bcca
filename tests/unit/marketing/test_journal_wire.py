"""A journal entry marketing cannot fully read is still kept: odd values are read as nothing, never as an error."""

from datetime import UTC, datetime
from decimal import Decimal

from services.marketing.domain.offers import Channel
from services.marketing.domain.sales import JournalSale, SaleLine
from services.marketing.entrypoints.wire import map_quantity


def test_a_quantity_that_could_not_be_stored_reads_as_zero() -> None:
    assert map_quantity("2.5") == Decimal("2.5")
    assert map_quantity("99999999999.999") == Decimal("99999999999.999")
    for text in ("1e20", "100000000000", "-1", "NaN", "Infinity", "two"):
        assert map_quantity(text) == 0


def test_a_negative_line_adds_nothing_to_the_sales_gross() -> None:
    sale = JournalSale(
        "S1",
        False,
        "S001",
        Channel.STORE,
        None,
        datetime(2026, 12, 1, tzinfo=UTC),
        (SaleLine("A", Decimal(1), 1_000, 900), SaleLine("B", Decimal(1), -500, -500)),
    )
    assert sale.gross_fen == 1_000
