"""Forwarding to a real local HTTP receiver (the first attempt fails with 500, the retry is accepted,
in the WeCom and DingTalk shapes), and the periodic look for silent POS terminals within opening hours."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from retail.alerts.v1 import alerts_service_pb2 as pb
from retail.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from retail.sales.v1 import events_pb2 as sales_events
from sqlalchemy import text

from servicekit.db import UnitOfWork
from servicekit.protowire import timestamp
from services.alerts.adapters.webhook_client import WebhookClient
from services.alerts.bootstrap import AlertsApp
from services.alerts.domain.alerts import AlertKind, Finding, Severity
from services.alerts.domain.causes import Cause, CauseKind
from services.alerts.domain.webhooks import RetryPolicy
from services.alerts.service_layer.deliveries import Deliveries
from services.alerts.service_layer.terminal_watch import LOCK
from tests.integration.alerts.conftest import fetch
from tests.integration.alerts.support import HQ, Robot, eventually, publish, rid, running_robot
from tests.support.clock import HandClock


@pytest.fixture
def receiver() -> Iterator[Robot]:
    """A robot that answers 500 to the first POST of each path, then 200."""
    with running_robot(fail_first=True) as robot:
        yield robot


async def test_a_new_alert_reaches_both_robots_after_one_failed_attempt(
    stub: pb_grpc.AlertsServiceAsyncStub,
    app: AlertsApp,
    unit_of_work: Callable[[], UnitOfWork],
    clock: HandClock,
    receiver: Robot,
    alerts_url: str,
    unique: str,
) -> None:
    store = f"S{unique}"
    for name, fmt in (("wecom", pb.WEBHOOK_FORMAT_WECOM), ("dingtalk", pb.WEBHOOK_FORMAT_DINGTALK)):
        hook = pb.Webhook(name=name, url=f"{receiver.url}/{name}", format=fmt, store_id=store)
        await stub.PutWebhook(pb.PutWebhookRequest(request_id=rid(), actor=HQ, webhook=hook))
    # A webhook of another store is not written a delivery.
    other = pb.Webhook(name="other", url=f"{receiver.url}/other", format=pb.WEBHOOK_FORMAT_WECOM, store_id="ELSE")
    await stub.PutWebhook(pb.PutWebhookRequest(request_id=rid(), actor=HQ, webhook=other))
    cause = Cause(CauseKind.PRICE_CHANGE, 0.93, "Till price raised on 8 of 8 SKUs of DAIRY", {"skus": "A,B"})
    finding = Finding(
        AlertKind.SALES_ANOMALY,
        Severity.WARNING,
        store,
        "",
        "DAIRY",
        "DAIRY sold 41 units, below 72–128",
        {"business_date": "2026-12-03"},
        f"/overview?store={store}",
        clock(),
        (cause,),
    )
    for _ in range(2):  # the second only bumps the alert: no second delivery
        async with unit_of_work() as uow:
            await app.services.findings.raise_finding(uow, finding)
            await uow.commit()
    pending = await fetch(alerts_url, "SELECT state, attempts FROM webhook_delivery")
    assert [(row["state"], row["attempts"]) for row in pending] == [("pending", 0)] * 2

    # Another worker than the one that wrote the rows sends them: deliveries live in rows, not in memory.
    client = WebhookClient(timeout_seconds=5)
    worker = Deliveries(
        unit_of_work, client.post, policy=RetryPolicy(max_attempts=3, base=timedelta(seconds=5)), clock=clock
    )
    try:
        assert await worker.deliver_due() == 2
        failed = await fetch(alerts_url, "SELECT state, attempts, last_error, next_attempt_at FROM webhook_delivery")
        assert {(r["state"], r["attempts"]) for r in failed} == {("pending", 1)}
        assert all(r["last_error"].startswith("HTTP 500") for r in failed)
        assert {r["next_attempt_at"] for r in failed} == {clock() + timedelta(seconds=5)}
        assert await worker.deliver_due() == 0  # not due yet
        clock.advance(seconds=5)
        assert await worker.deliver_due() == 2
    finally:
        await client.close()
    done = await fetch(alerts_url, "SELECT state, attempts, delivered_at FROM webhook_delivery")
    assert {(r["state"], r["attempts"], r["delivered_at"]) for r in done} == {("delivered", 2, clock())}
    assert sorted((path, status) for path, status, _ in receiver.received) == [
        ("/dingtalk", 200),
        ("/dingtalk", 500),
        ("/wecom", 200),
        ("/wecom", 500),
    ]
    bodies = {path: body for path, status, body in receiver.received if status == 200}
    wecom, dingtalk = bodies["/wecom"], bodies["/dingtalk"]
    assert wecom["msgtype"] == "markdown"
    assert set(wecom["markdown"]) == {"content"}
    content = wecom["markdown"]["content"]
    assert "DAIRY sold 41 units" in content
    assert "Till price raised on 8 of 8 SKUs of DAIRY" in content
    assert dingtalk["msgtype"] == "markdown"
    assert set(dingtalk["markdown"]) == {"title", "text"}
    assert dingtalk["markdown"]["text"] == content
    assert "sales anomaly" in dingtalk["markdown"]["title"]
    hooks = {w.name: w for w in (await stub.ListWebhooks(pb.ListWebhooksRequest(actor=HQ))).webhooks}
    assert hooks["wecom"].last_delivered_at.ToDatetime(tzinfo=UTC) == clock()
    assert hooks["wecom"].last_error == ""
    assert not hooks["other"].HasField("last_delivered_at")


async def test_a_delivery_is_given_up_after_its_attempts(
    stub: pb_grpc.AlertsServiceAsyncStub,
    app: AlertsApp,
    unit_of_work: Callable[[], UnitOfWork],
    clock: HandClock,
    alerts_url: str,
    unique: str,
) -> None:
    # Nothing listens on this port: every attempt fails.
    hook = pb.Webhook(name="down", url="http://127.0.0.1:9/robot", format=pb.WEBHOOK_FORMAT_WECOM)
    await stub.PutWebhook(pb.PutWebhookRequest(request_id=rid(), actor=HQ, webhook=hook))
    async with unit_of_work() as uow:
        finding = Finding(AlertKind.LOW_STOCK, Severity.WARNING, f"S{unique}", "", "SKU", "low", {}, "", clock())
        await app.services.findings.raise_finding(uow, finding)
        await uow.commit()
    client = WebhookClient(timeout_seconds=2)
    worker = Deliveries(
        unit_of_work, client.post, policy=RetryPolicy(max_attempts=2, base=timedelta(seconds=1)), clock=clock
    )
    try:
        assert await worker.deliver_due() == 1
        clock.advance(seconds=1)
        assert await worker.deliver_due() == 1
        clock.advance(hours=1)
        assert await worker.deliver_due() == 0
    finally:
        await client.close()
    rows = await fetch(alerts_url, "SELECT state, attempts, last_error FROM webhook_delivery")
    assert [(r["state"], r["attempts"]) for r in rows] == [("given_up", 2)]
    assert rows[0]["last_error"]
    (listed,) = (await stub.ListWebhooks(pb.ListWebhooksRequest(actor=HQ))).webhooks
    assert listed.last_error == rows[0]["last_error"]


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def sale(store: str, terminal: str, n: int, at: datetime) -> sales_events.SaleRecorded:
    return sales_events.SaleRecorded(
        sale_id=f"{store}-{terminal}-{n}",
        location_id=store,
        terminal_id=terminal,
        occurred_at=timestamp(at),
        recorded_at=timestamp(at),
    )


async def test_silent_terminals_are_found_within_opening_hours_only(
    stub: pb_grpc.AlertsServiceAsyncStub,
    app: AlertsApp,
    unit_of_work: Callable[[], UnitOfWork],
    clock: HandClock,
    alerts_url: str,
    nats_url: str,
    unique: str,
) -> None:
    store = f"S{unique}"
    subject = f"retail.sales.v1.sale_recorded.{store}"
    await publish(nats_url, subject, sale(store, "T1", 1, local(3, 9)), sale(store, "T2", 1, local(3, 9)))

    async def seen(count: int) -> Callable[[], object]:
        async def check() -> bool:
            rows = await fetch(alerts_url, "SELECT count(*) AS n FROM terminal_seen WHERE store_id = $1", store)
            return bool(rows[0]["n"] == count)

        return check

    await eventually(await seen(2))
    watch = app.services.terminal_watch
    clock.now = local(3, 10)
    assert await watch.check() == 0  # an hour of opening hours: allowed
    await publish(nats_url, subject, sale(store, "T2", 2, local(3, 11)))

    async def t2_at_eleven() -> bool:
        rows = await fetch(
            alerts_url, "SELECT last_entry_at FROM terminal_seen WHERE terminal_id = 'T2' AND store_id = $1", store
        )
        return bool(rows and rows[0]["last_entry_at"] == local(3, 11))

    await eventually(t2_at_eleven)
    clock.now = local(3, 11, 30)
    assert await watch.check() == 1
    (t1,) = (await stub.ListAlerts(pb.ListAlertsRequest(actor=HQ, store_id=store))).alerts
    assert (t1.kind, t1.subject, t1.severity) == (pb.ALERT_KIND_TERMINAL_SILENT, "T1", pb.SEVERITY_WARNING)
    assert t1.facts["silent_open_minutes"] == "150"
    assert not t1.causes

    # Another replica holds the round: this one skips it.
    async with unit_of_work() as holder:
        await holder.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": LOCK})
        assert await watch.check() == 0

    clock.now = local(3, 21, 30)  # both silent now: the store's POS is not syncing
    assert await watch.check() == 2
    alerts = {a.subject: a for a in (await stub.ListAlerts(pb.ListAlertsRequest(actor=HQ, store_id=store))).alerts}
    assert alerts["T1"].occurrences == 2
    assert alerts["T1"].alert_id == t1.alert_id
    assert alerts["T2"].severity == pb.SEVERITY_CRITICAL
    assert [c.kind for c in alerts["T2"].causes] == [pb.CAUSE_KIND_POS_NOT_SYNCING]

    # Overnight does not count: last entries at 21:50, next morning 08:30 is 40 open minutes later.
    await publish(nats_url, subject, sale(store, "T1", 3, local(3, 21, 50)), sale(store, "T2", 3, local(3, 21, 50)))

    async def both_late() -> bool:
        rows = await fetch(alerts_url, "SELECT min(last_entry_at) AS at FROM terminal_seen WHERE store_id = $1", store)
        return bool(rows[0]["at"] == local(3, 21, 50))

    await eventually(both_late)
    for alert in alerts.values():
        await stub.ResolveAlert(pb.ResolveAlertRequest(request_id=rid(), actor=HQ, alert_id=alert.alert_id))
    clock.now = local(4, 8, 30)
    assert await watch.check() == 0
    # The store's silences of 30 minutes or more are kept as spells for the day's anomalies.
    spells = await fetch(
        alerts_url, "SELECT since, until FROM journal_silence WHERE store_id = $1 ORDER BY since", store
    )
    assert [(r["since"], r["until"]) for r in spells] == [
        (local(3, 9), local(3, 11)),
        (local(3, 11), local(3, 21, 50)),
    ]
