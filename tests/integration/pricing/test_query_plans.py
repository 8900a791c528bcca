"""The statements that run every second on every replica must stay index probes as the label
table grows: a store chain holds hundreds of thousands of labels, almost all acknowledged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from services.pricing.adapters import label_store
from services.pricing.bootstrap import PricingApp
from tests.integration.pricing.conftest import Clock, store_of_labels

SETTLED_LABELS = 20_000
NONE_SENT = SETTLED_LABELS + 1  # a `sent_every` no label number reaches


async def plan_of(app: PricingApp, marker: str, run: Callable[[AsyncSession], Awaitable[object]]) -> str:
    """EXPLAIN of the exact statement containing ``marker`` that ``run`` sends (captured, then rolled back)."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if marker in statement:
            sent.append((statement, parameters))

    event.listen(app.connected.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with app.services.pricing._uow() as uow:
            await run(uow.session)
            [(statement, parameters)] = sent
            connection = await uow.session.connection()
            rows = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            return "\n".join(row[0] for row in rows)
    finally:
        event.remove(app.connected.engine.sync_engine, "before_cursor_execute", capture)


def settled(sent_every: int) -> str:
    """Acknowledged labels, but for every ``sent_every``-th (sent) and every thousandth (given up)."""
    return f"CASE WHEN g % 1000 = 0 THEN 'given_up' WHEN g % {sent_every} = 0 THEN 'sent' ELSE 'acknowledged' END"


async def test_claiming_due_labels_probes_the_due_index_also_for_given_up_labels(app: PricingApp, clock: Clock) -> None:
    await store_of_labels(app, SETTLED_LABELS, settled(sent_every=NONE_SENT))

    plan = await plan_of(app, "UPDATE label", lambda session: label_store.claim_due(session, clock.now(), 1000))

    assert "label_due" in plan, plan
    assert "Seq Scan on label" not in plan, plan


async def test_the_acknowledgement_poll_reads_a_stores_sent_labels_from_their_own_index(app: PricingApp) -> None:
    await store_of_labels(app, SETTLED_LABELS, settled(sent_every=97))

    plan = await plan_of(app, "state = 'sent'", lambda session: label_store.sent_labels(session, "S1", 500))

    assert "label_sent" in plan, plan
    assert "Seq Scan on label" not in plan, plan
    assert "Sort" not in plan, plan  # read in label order from the index, page after page
