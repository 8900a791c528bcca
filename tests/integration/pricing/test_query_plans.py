"""The statements that run every second on every replica must stay index probes as the label
table grows: a store chain holds hundreds of thousands of labels, almost all acknowledged."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text

from services.pricing.adapters import label_store
from services.pricing.bootstrap import PricingApp
from tests.integration.pricing.conftest import Clock, put_item, put_store

SETTLED_LABELS = 20_000


async def plan_of_claim(app: PricingApp, clock: Clock) -> str:
    """EXPLAIN of the exact statement the pushers' claim sends (captured, then rolled back)."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "UPDATE label" in statement:
            sent.append((statement, parameters))

    event.listen(app.connected.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with app.services.pricing._uow() as uow:
            await label_store.claim_due(uow.session, clock.now(), 1000)
            [(statement, parameters)] = sent
            connection = await uow.session.connection()
            rows = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            return "\n".join(row[0] for row in rows)
    finally:
        event.remove(app.connected.engine.sync_engine, "before_cursor_execute", capture)


async def test_claiming_due_labels_probes_the_due_index_also_for_given_up_labels(app: PricingApp, clock: Clock) -> None:
    await put_store(app, "S1", station_kind="batch", station_url="http://127.0.0.1:9/")
    await put_item(app, "SKU-P", cost_fen=100)
    async with app.services.pricing._uow() as uow:
        await uow.session.execute(
            text(
                "INSERT INTO label (store_id, label_id, sku, state, desired_digest, next_attempt_at) "
                "SELECT 'S1', 'L' || lpad(g::text, 6, '0'), 'SKU-P', "
                "       CASE WHEN g % 1000 = 0 THEN 'given_up' ELSE 'acknowledged' END, 'd', now() "
                "FROM generate_series(1, :n) AS g"
            ),
            {"n": SETTLED_LABELS},
        )
        await uow.commit()
    async with app.connected.engine.connect() as connection:
        await connection.execute(text("ANALYZE label"))
        await connection.commit()

    plan = await plan_of_claim(app, clock)

    assert "label_due" in plan, plan
    assert "Seq Scan on label" not in plan, plan
