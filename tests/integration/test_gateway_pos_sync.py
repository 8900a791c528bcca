"""POS sales into the journal through the real gateway, PostgreSQL and NATS JetStream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from retail.sales.v1 import events_pb2
from sqlalchemy import text

from devstack.servers import free_port
from gateway.domain.clients import ClientKind, StaffRole
from gateway.operations.maintenance import prune_gateway_tables
from gateway.settings import GatewaySettings
from servicekit.telemetry import configure_tracing
from tests.support.gateway import (
    RunningGateway,
    assert_problem,
    gateway_schema,
    gateway_settings,
    idempotency_key,
    running_gateway,
)
from tests.support.messaging import jetstream, read_all

__all__ = ["gateway_schema", "gateway_settings"]


@pytest.fixture
async def gateway(gateway_settings: Callable[..., GatewaySettings]) -> AsyncIterator[RunningGateway]:
    async with running_gateway(gateway_settings(rate_limit_burst=1000)) as running:
        yield running


@pytest.fixture
def store(unique: str) -> str:
    return f"S{unique}"


def a_sale(store: str, **overrides: Any) -> dict[str, Any]:
    sale: dict[str, Any] = {
        "sale_id": f"{store}-POS01-{uuid.uuid4().hex[:12]}",
        "kind": "sale",
        "store_id": store,
        "occurred_at": (datetime.now(UTC) - timedelta(hours=5)).isoformat(),
        "lines": [
            {"sku": "SKU-000123", "quantity": "2", "unit_price": "12.50", "discount": "1.00"},
            {"sku": "SKU-000456", "quantity": "0.455", "unit_price": "39.90"},
        ],
        "payments": [{"method": "wechat_pay", "amount": "42.15"}],
    }
    return sale | overrides


async def journal(nats_url: str, store: str) -> list[tuple[str, dict[str, str], bytes]]:
    async with jetstream(nats_url) as (_, js):
        return await read_all(js, "SALES", f"retail.sales.v1.sale_recorded.{store}")


async def post_batch(gateway: RunningGateway, headers: dict[str, str], sales: list[dict[str, Any]]) -> Any:
    return await gateway.http.post("/v1/pos/sales/batch", json={"sales": sales}, headers=headers | idempotency_key())


async def test_valid_sales_are_journaled_with_the_headers_consumers_expect(
    gateway: RunningGateway, store: str, nats_url: str
) -> None:
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store)
    member_sale = a_sale(store, member={"type": "phone", "value": "+86 138 0013 8000"}, coupon_codes=["CPN-1"])
    sales = [member_sale, a_sale(store)]
    response = await post_batch(gateway, terminal, sales)

    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    assert [result["status"] for result in response.json()["results"]] == ["accepted", "accepted"]
    messages = await journal(nats_url, store)
    assert [headers["Nats-Msg-Id"] for _, headers, _ in messages] == [sale["sale_id"] for sale in sales]
    subject, headers, payload = messages[0]
    assert subject == f"retail.sales.v1.sale_recorded.{store}"
    assert headers["Retail-Event-Type"] == "retail.sales.v1.SaleRecorded"
    assert datetime.fromisoformat(headers["Retail-Occurred-At"]) == datetime.fromisoformat(member_sale["occurred_at"])
    event = events_pb2.SaleRecorded.FromString(payload)
    assert (event.sale_id, event.location_id, event.kind) == (member_sale["sale_id"], store, events_pb2.SALE_KIND_SALE)
    assert event.terminal_id == event.submitted_by
    assert [line.quantity.value for line in event.lines] == ["2", "0.455"]
    assert [line.line_total.minor_units for line in event.lines] == [2400, 1815]
    assert event.total.minor_units == 4215
    assert event.total.currency_code == "CNY"
    assert event.member.type == events_pb2.MEMBER_IDENTIFIER_TYPE_PHONE
    assert len(event.member.identity_hash) == 32
    assert b"13800138000" not in payload
    assert list(event.coupon_codes) == ["CPN-1"]


async def test_the_same_batch_sent_three_times_at_once_is_journaled_once_per_sale(
    gateway: RunningGateway, store: str, nats_url: str
) -> None:
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store)
    sales = [a_sale(store) for _ in range(20)]
    answers = await asyncio.gather(*(post_batch(gateway, terminal, sales) for _ in range(3)))

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    for number, sale in enumerate(sales):
        statuses = sorted(answer.json()["results"][number]["status"] for answer in answers)
        assert statuses == ["accepted", "duplicate", "duplicate"], sale["sale_id"]
    messages = await journal(nats_url, store)
    assert sorted(headers["Nats-Msg-Id"] for _, headers, _ in messages) == sorted(s["sale_id"] for s in sales)


async def test_a_replay_long_after_the_duplicate_window_is_still_a_duplicate(
    gateway: RunningGateway, store: str, nats_url: str
) -> None:
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store)
    old, new = a_sale(store), a_sale(store)
    # Journaled days ago: JetStream has long forgotten the message id, the gateway has not.
    async with gateway.resources.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO journaled_sale (sale_id, kind, location_id, submitted_by, occurred_at, recorded_at)"
                " VALUES (:id, 'sale', :store, 'S-POS', now() - interval '3 days', now() - interval '3 days')"
            ),
            {"id": old["sale_id"], "store": store},
        )
    response = await post_batch(gateway, terminal, [old, new])
    assert [result["status"] for result in response.json()["results"]] == ["duplicate", "accepted"]
    assert [headers["Nats-Msg-Id"] for _, headers, _ in await journal(nats_url, store)] == [new["sale_id"]]


async def test_each_bad_sale_is_rejected_with_its_reason_and_never_blocks_the_good_ones(
    gateway: RunningGateway, store: str, nats_url: str
) -> None:
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store)
    good = a_sale(store)
    line = {"sku": "SKU-1", "quantity": "1", "unit_price": "5.00"}
    bad = {
        "store-mismatch": a_sale(store, store_id="S999"),
        "occurred-in-future": a_sale(store, occurred_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()),
        "occurred-too-long-ago": a_sale(store, occurred_at="1970-01-01T08:00:00+08:00"),
        "non-positive-quantity": a_sale(store, lines=[line | {"quantity": "-1"}], payments=[]),
        "invalid-quantity": a_sale(store, lines=[line | {"quantity": "100001"}], payments=[]),
        "invalid-amount": a_sale(store, lines=[line | {"unit_price": "5.001"}], payments=[]),
        "unknown-original-sale": a_sale(store, kind="return", original_sale_id="never-sold", payments=[]),
        "original-only-for-returns": a_sale(store, original_sale_id=good["sale_id"]),
        "payments-do-not-add-up": a_sale(store, payments=[{"method": "cash", "amount": "1.00"}]),
    }
    # A return of a sale earlier in the same batch is fine.
    returned = a_sale(store, kind="return", original_sale_id=good["sale_id"], payments=[])
    response = await post_batch(gateway, terminal, [good, *bad.values(), returned])

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["status"] == results[-1]["status"] == "accepted"
    for (reason, sale), result in zip(bad.items(), results[1:-1], strict=True):
        assert result == {"sale_id": sale["sale_id"], "status": "rejected", "problem": result["problem"]}
        assert result["problem"]["reason"] == reason
        assert result["problem"]["type"] == "https://problems.retail-platform.dev/sale-rejected"
    assert response.json()["rejected"] == len(bad)
    journaled = [headers["Nats-Msg-Id"] for _, headers, _ in await journal(nats_url, store)]
    assert journaled == [good["sale_id"], returned["sale_id"]]  # the sale before its return
    later_return = a_sale(store, kind="return", original_sale_id=good["sale_id"], payments=[])
    assert (await post_batch(gateway, terminal, [later_return])).json()["accepted"] == 1


async def test_a_sale_older_than_the_configured_max_age_is_refused_and_a_younger_one_journaled(
    gateway_settings: Callable[..., GatewaySettings], store: str, nats_url: str
) -> None:
    async with running_gateway(gateway_settings(sale_max_age_seconds=3600)) as gateway:
        terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store)
        now = datetime.now(UTC)
        young, old = (a_sale(store, occurred_at=(now - timedelta(minutes=m)).isoformat()) for m in (50, 70))
        response = await post_batch(gateway, terminal, [young, old])
    [accepted, refused] = response.json()["results"]
    assert accepted["status"] == "accepted"
    assert (refused["status"], refused["problem"]["reason"]) == ("rejected", "occurred-too-long-ago")
    assert refused["problem"]["location"] == "occurred_at"
    assert "3600 s" in refused["problem"]["detail"]
    assert [headers["Nats-Msg-Id"] for _, headers, _ in await journal(nats_url, store)] == [young["sale_id"]]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        (b'{"sales": [', None),
        ({"sales": "many"}, "body.sales"),
        ({"sales": [], "extra": 1}, "body.extra"),
        ({"sales": []}, "body.sales"),
        ("unknown field in a sale", "body.sales.1.colour"),
        ("wrong type", "body.sales.0.lines.0.quantity"),
        ("too many sales", "body.sales"),
    ],
)
async def test_a_malformed_batch_is_refused_as_a_whole_and_nothing_is_journaled(
    gateway: RunningGateway, store: str, nats_url: str, body: Any, location: str | None
) -> None:
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store)
    if body == "unknown field in a sale":
        body = {"sales": [a_sale(store), a_sale(store, colour="red")]}
    elif body == "wrong type":
        body = {"sales": [a_sale(store, lines=[{"sku": "SKU-1", "quantity": 2, "unit_price": "1.00"}])]}
    elif body == "too many sales":
        body = {"sales": [a_sale(store) for _ in range(501)]}
    headers = terminal | idempotency_key() | {"content-type": "application/json"}
    content = body if isinstance(body, bytes) else None
    response = await gateway.http.post(
        "/v1/pos/sales/batch", content=content, json=None if content else body, headers=headers
    )
    problem = assert_problem(response, 422, "validation-error")
    if location is not None:
        assert location in [error["location"] for error in problem["errors"]]
    assert await journal(nats_url, store) == []


async def test_only_pos_terminals_may_upload_sales(gateway: RunningGateway, store: str, nats_url: str) -> None:
    others = [
        await gateway.client_headers(ClientKind.APP),
        await gateway.client_headers(ClientKind.SUPPLIER_USER, supplier_id="SUP01"),
        await gateway.client_headers(ClientKind.STAFF, store_id=store, staff_role=StaffRole.STORE_MANAGER),
        await gateway.client_headers(ClientKind.STAFF, staff_role=StaffRole.HEADQUARTERS),
    ]
    for headers in others:
        assert_problem(await post_batch(gateway, headers, [a_sale(store)]), 403, "forbidden")
    assert_problem(await post_batch(gateway, {}, [a_sale(store)]), 401, "unauthenticated")
    assert await journal(nats_url, store) == []


async def test_a_terminal_of_another_store_cannot_write_this_stores_sales(
    gateway: RunningGateway, store: str, nats_url: str
) -> None:
    intruder = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=f"{store}X")
    response = await post_batch(gateway, intruder, [a_sale(store)])
    assert response.json()["results"][0]["problem"]["reason"] == "store-mismatch"
    assert await journal(nats_url, store) == []


async def test_a_terminal_reads_its_start_up_data(gateway: RunningGateway, store: str) -> None:
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store)
    before = datetime.now(UTC)
    body = (await gateway.http.get("/v1/pos/sync", headers=terminal)).json()
    assert before <= datetime.fromisoformat(body["server_time"]) <= datetime.now(UTC)
    assert body["store"]["store_id"] == store
    assert body["store"]["max_sales_per_batch"] == 500
    assert set(body["datasets"]) == {"price_book", "catalogue"}
    # This gateway has no pricing backend: the terminal is told to keep its cached copies.
    for dataset in body["datasets"].values():
        assert (dataset["available"], dataset["version"]) == (False, None)
        assert dataset["note"] == "the pricing service is not configured; keep the cached copy"


async def test_while_pricing_is_unreachable_the_sync_still_answers_and_says_to_keep_the_cached_data(
    gateway_settings: Callable[..., GatewaySettings], store: str
) -> None:
    nobody = f"pricing=127.0.0.1:{free_port()}"
    async with running_gateway(gateway_settings(gateway_backends=nobody), wait_for_backends=False) as gateway:
        terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store)
        answer = await gateway.http.get("/v1/pos/sync", headers=terminal)
    assert answer.status_code == 200, answer.text
    assert answer.json()["store"]["store_id"] == store
    for dataset in answer.json()["datasets"].values():
        assert (dataset["available"], dataset["version"]) == (False, None)
        assert dataset["note"].startswith("the pricing service is unavailable")


async def test_without_the_journal_the_batch_is_503_and_a_resend_later_is_answered_afresh(
    gateway_settings: Callable[..., GatewaySettings], store: str
) -> None:
    unreachable = f"nats://127.0.0.1:{free_port()}"
    async with running_gateway(gateway_settings(nats_url=unreachable, nats_startup_wait_seconds=0)) as gateway:
        terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store)
        key = idempotency_key()
        body = {"sales": [a_sale(store)]}
        first = await gateway.http.post("/v1/pos/sales/batch", json=body, headers=terminal | key)
        again = await gateway.http.post("/v1/pos/sales/batch", json=body, headers=terminal | key)
        async with gateway.resources.engine.connect() as connection:
            journaled = (await connection.execute(text("SELECT count(*) FROM journaled_sale"))).scalar_one()
    assert_problem(first, 503, "service-unavailable")
    assert first.headers["retry-after"]
    assert_problem(again, 503, "service-unavailable")  # not a replay of the failure: tried again
    assert journaled == 0


async def test_housekeeping_prunes_old_idempotency_records_and_journaled_sale_ids_only(
    gateway: RunningGateway, store: str
) -> None:
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store)
    await post_batch(gateway, terminal, [a_sale(store)])
    async with gateway.resources.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO idempotency_record (client_id, idempotency_key, fingerprint, state, claimed_at)"
                " VALUES ('old-client', 'k', '\\x00', 'in_flight', now() - interval '8 days')"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO journaled_sale (sale_id, kind, location_id, submitted_by, occurred_at, recorded_at)"
                " VALUES ('ancient', 'sale', :store, 'x', now() - interval '200 days', now() - interval '121 days')"
            ),
            {"store": store},
        )
    deleted = await prune_gateway_tables(gateway.resources.engine)
    assert deleted == {"idempotency_record": 1, "journaled_sale": 1}
    assert await prune_gateway_tables(gateway.resources.engine) == {"idempotency_record": 0, "journaled_sale": 0}


async def test_the_journal_entry_continues_the_terminals_trace(
    gateway: RunningGateway, store: str, nats_url: str
) -> None:
    configure_tracing("gateway-tests")
    trace_id = uuid.uuid4().hex
    terminal = await gateway.client_headers(ClientKind.POS_TERMINAL, store_id=store)
    traced = terminal | {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}
    response = await post_batch(gateway, traced, [a_sale(store)])
    assert response.json()["accepted"] == 1
    [(_, headers, _)] = await journal(nats_url, store)
    assert headers["traceparent"].split("-")[1] == trace_id
