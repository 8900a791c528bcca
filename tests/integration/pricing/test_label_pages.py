"""Label rows are rewritten several times per price change; the pages keep room for that.

A ticket or status update changes no indexed column, so PostgreSQL can write the new version on
the row's own page without new index entries (a heap-only tuple), but only if the page has room:
the label table is filled to 70% (migration ``pricing_0005``)."""

from __future__ import annotations

from sqlalchemy import text

from services.pricing.adapters import label_store
from services.pricing.bootstrap import PricingApp
from tests.integration.pricing.conftest import store_of_labels

LABELS = 3_000
PAGE_OF = "(ctid::text::point)[0]::bigint"


async def pages(app: PricingApp) -> dict[str, int]:
    async with app.connected.engine.connect() as connection:
        rows = await connection.execute(text(f"SELECT label_id, {PAGE_OF} AS page FROM label WHERE store_id = 'S1'"))
        return {row.label_id: row.page for row in rows}


async def test_recording_tickets_rewrites_the_labels_on_their_own_pages(app: PricingApp) -> None:
    await store_of_labels(app, LABELS, "'sent'")
    before = await pages(app)
    assert len(set(before.values())) > 10  # the labels fill many pages, each as full as the table allows
    # A push round's answers: every fourth label of the store gets its ticket, in one statement.
    ticketed = sorted(before)[::4]

    async with app.services.pricing._uow() as uow:
        await label_store.record_tickets(uow.session, "S1", [(label, "d", f"T-{label}") for label in ticketed])
        await uow.commit()

    after = await pages(app)
    async with app.connected.engine.connect() as connection:
        rows = await connection.execute(text("SELECT label_id, ticket FROM label WHERE ticket <> ''"))
        tickets: dict[str, str] = {row.label_id: row.ticket for row in rows}
    assert tickets == {label: f"T-{label}" for label in ticketed}
    moved = [label for label in ticketed if after[label] != before[label]]
    assert moved == []
    assert after == before
