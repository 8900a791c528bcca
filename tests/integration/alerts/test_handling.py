"""People acting on the feed over gRPC: newest first with filters and paging, acknowledge and resolve
with who and when, optimistic versions, request-id replays, a store's staff confined to their store,
suppliers without a feed, and webhooks kept by headquarters with their URLs masked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from retail.alerts.v1 import alerts_service_pb2 as pb
from retail.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from retail.common.v1 import identifiers_pb2, paging_pb2

from servicekit.db import UnitOfWork
from services.alerts.bootstrap import AlertsApp
from services.alerts.domain.alerts import AlertKind, Finding, Severity
from tests.integration.alerts.conftest import fetch
from tests.integration.alerts.support import HQ, manager, reason, rid, supplier_user
from tests.support.clock import HandClock

START = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


async def seed(
    app: AlertsApp,
    unit_of_work: Callable[[], UnitOfWork],
    store: str,
    subject: str,
    at: datetime,
    kind: AlertKind = AlertKind.LOW_STOCK,
) -> str:
    async with unit_of_work() as uow:
        raised = await app.services.findings.raise_finding(
            uow, Finding(kind, Severity.WARNING, store, "", subject, f"{subject} at {store}", {}, "", at)
        )
        await uow.commit()
    return raised.alert.alert_id


async def test_the_feed_is_newest_first_filtered_and_paged(
    stub: pb_grpc.AlertsServiceAsyncStub, app: AlertsApp, unit_of_work: Callable[[], UnitOfWork], unique: str
) -> None:
    store, other = f"S{unique}", f"T{unique}"
    ids = [await seed(app, unit_of_work, store, f"SKU{n}", START + timedelta(minutes=n)) for n in range(5)]
    await seed(app, unit_of_work, other, "SKU0", START + timedelta(minutes=9))
    await seed(app, unit_of_work, store, "CAT", START + timedelta(minutes=7), AlertKind.SALES_ANOMALY)
    seen: list[str] = []
    token = ""
    while True:
        answer = await stub.ListAlerts(
            pb.ListAlertsRequest(
                actor=HQ,
                store_id=store,
                kinds=[pb.ALERT_KIND_LOW_STOCK],
                page=paging_pb2.PageRequest(page_size=2, page_token=token),
            )
        )
        assert len(answer.alerts) <= 2
        seen += [alert.alert_id for alert in answer.alerts]
        token = answer.page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))
    everything = await stub.ListAlerts(pb.ListAlertsRequest(actor=HQ, store_id=store))
    assert everything.alerts[0].kind == pb.ALERT_KIND_SALES_ANOMALY
    # A store manager gets their own store whatever they ask.
    own = await stub.ListAlerts(pb.ListAlertsRequest(actor=manager(other), store_id=store))
    assert {a.store_id for a in own.alerts} == {other}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ListAlerts(pb.ListAlertsRequest(actor=HQ, page=paging_pb2.PageRequest(page_token="nonsense")))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_acknowledge_and_resolve_record_who_and_when_once(
    stub: pb_grpc.AlertsServiceAsyncStub,
    app: AlertsApp,
    unit_of_work: Callable[[], UnitOfWork],
    clock: HandClock,
    alerts_url: str,
    unique: str,
) -> None:
    store = f"S{unique}"
    alert_id = await seed(app, unit_of_work, store, "SKU1", START)
    me = manager(store)
    clock.advance(minutes=5)
    request = pb.AcknowledgeAlertRequest(request_id=rid(), actor=me, alert_id=alert_id, expected_version=1)
    first = await stub.AcknowledgeAlert(request)
    assert first.alert.state == pb.ALERT_STATE_ACKNOWLEDGED
    assert first.alert.acknowledged_by == me.client_id
    assert first.alert.acknowledged_at.ToDatetime(tzinfo=UTC) == START + timedelta(minutes=5)
    assert first.alert.version == 2
    clock.advance(minutes=1)
    assert await stub.AcknowledgeAlert(request) == first  # a retry: the first answer, nothing changes
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stub.AcknowledgeAlert(pb.AcknowledgeAlertRequest(request_id=rid(), actor=me, alert_id=alert_id))
    assert (again.value.code(), reason(again.value)) == (grpc.StatusCode.FAILED_PRECONDITION, "alert-not-open")
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await stub.ResolveAlert(
            pb.ResolveAlertRequest(request_id=rid(), actor=me, alert_id=alert_id, expected_version=1, note="done")
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as long_note:
        await stub.ResolveAlert(pb.ResolveAlertRequest(request_id=rid(), actor=me, alert_id=alert_id, note="x" * 501))
    assert long_note.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    resolved = await stub.ResolveAlert(
        pb.ResolveAlertRequest(request_id=rid(), actor=me, alert_id=alert_id, expected_version=2, note="restocked")
    )
    assert (resolved.alert.state, resolved.alert.resolved_by, resolved.alert.resolution_note) == (
        pb.ALERT_STATE_RESOLVED,
        me.client_id,
        "restocked",
    )
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await stub.ResolveAlert(pb.ResolveAlertRequest(request_id=rid(), actor=me, alert_id=alert_id))
    assert reason(twice.value) == "alert-already-resolved"
    changes = await fetch(
        alerts_url, "SELECT subject FROM outbox WHERE event_type = 'retail.alerts.v1.AlertStateChanged' ORDER BY id"
    )
    assert [row["subject"] for row in changes] == [f"retail.alerts.v1.alert_state_changed.{store}"] * 2
    # Once resolved, the same finding opens a new alert.
    assert await seed(app, unit_of_work, store, "SKU1", START + timedelta(hours=1)) != alert_id


async def test_another_stores_alert_is_not_found_and_suppliers_have_no_feed(
    stub: pb_grpc.AlertsServiceAsyncStub,
    app: AlertsApp,
    unit_of_work: Callable[[], UnitOfWork],
    alerts_url: str,
    unique: str,
) -> None:
    alert_id = await seed(app, unit_of_work, f"S{unique}", "SKU1", START)
    stranger = manager(f"T{unique}")
    for call in (
        stub.GetAlert(pb.GetAlertRequest(actor=stranger, alert_id=alert_id)),
        stub.AcknowledgeAlert(pb.AcknowledgeAlertRequest(request_id=rid(), actor=stranger, alert_id=alert_id)),
        stub.ResolveAlert(pb.ResolveAlertRequest(request_id=rid(), actor=stranger, alert_id=alert_id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await call
        assert (hidden.value.code(), reason(hidden.value)) == (grpc.StatusCode.NOT_FOUND, "alert-not-found")
    rows = await fetch(alerts_url, "SELECT state, version FROM alert WHERE alert_id = $1", alert_id)
    assert [(r["state"], r["version"]) for r in rows] == [("open", 1)]
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.GetAlert(pb.GetAlertRequest(actor=supplier_user("SUP1"), alert_id=alert_id))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as denied_list:
        await stub.ListAlerts(pb.ListAlertsRequest(actor=supplier_user("SUP1")))
    assert denied_list.value.code() == grpc.StatusCode.PERMISSION_DENIED
    got = await stub.GetAlert(pb.GetAlertRequest(actor=manager(f"S{unique}"), alert_id=alert_id))
    assert got.alert.alert_id == alert_id


async def test_webhooks_are_headquarters_with_masked_urls(
    stub: pb_grpc.AlertsServiceAsyncStub, app: AlertsApp, unique: str
) -> None:
    url = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=secret{unique}"
    hook = pb.Webhook(
        name="Ops group",
        url=url,
        format=pb.WEBHOOK_FORMAT_WECOM,
        kinds=[pb.ALERT_KIND_SALES_ANOMALY],
        min_severity=pb.SEVERITY_WARNING,
        role=identifiers_pb2.STAFF_ROLE_STORE_MANAGER,
    )
    put = pb.PutWebhookRequest(request_id=rid(), actor=HQ, webhook=hook)
    created = await stub.PutWebhook(put)
    assert created.webhook.webhook_id
    assert created.webhook.url == f"https://qyapi.weixin.qq.com/…{url[-4:]}"
    assert "secret" not in str(created)
    assert await stub.PutWebhook(put) == created  # a retry creates nothing more
    listed = await stub.ListWebhooks(pb.ListWebhooksRequest(actor=HQ))
    assert [(w.webhook_id, w.name, w.url) for w in listed.webhooks] == [
        (created.webhook.webhook_id, "Ops group", created.webhook.url)
    ]
    for actor in (manager(f"S{unique}"), supplier_user("SUP1")):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub.PutWebhook(pb.PutWebhookRequest(request_id=rid(), actor=actor, webhook=hook))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    for bad in ("ftp://example.com/x", "not a url", "https://"):
        bad_hook = pb.Webhook(name="x", url=bad, format=pb.WEBHOOK_FORMAT_DINGTALK)
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await stub.PutWebhook(pb.PutWebhookRequest(request_id=rid(), actor=HQ, webhook=bad_hook))
        assert (invalid.value.code(), reason(invalid.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid-webhook")
    await stub.DeleteWebhook(pb.DeleteWebhookRequest(request_id=rid(), actor=HQ, webhook_id=created.webhook.webhook_id))
    assert not (await stub.ListWebhooks(pb.ListWebhooksRequest(actor=HQ))).webhooks
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.DeleteWebhook(
            pb.DeleteWebhookRequest(request_id=rid(), actor=HQ, webhook_id=created.webhook.webhook_id)
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
