"""Marketing databases for tests: the kit's and marketing's migrations, copied per test."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import UnitOfWork, create_engine, units_of_work
from servicekit.idempotency import RequestFingerprint
from servicekit.messaging import StreamSpec, ensure_stream
from servicekit.settings import load_settings, to_plain_url
from services.marketing.adapters.offer_json import offer_to_json, terms_to_json
from services.marketing.bootstrap import MarketingApp, build
from services.marketing.domain.offers import CouponTerms, Offer
from services.marketing.migrate import VERSIONS
from services.marketing.settings import MarketingSettings
from tests.conftest import Infra, create_database_from, service_template
from tests.support.clock import HandClock
from tests.support.messaging import jetstream, streams_left_as_found


@pytest.fixture(autouse=True)
async def leave_streams_as_found(nats_url: str) -> AsyncIterator[None]:
    """What a marketing test publishes to the shared streams (journal storms, member events) and the
    consumers it makes are gone after it, so no later test of another service replays them."""
    async with streams_left_as_found(nats_url):
        yield


@pytest.fixture(scope="session")
def marketing_template(infra: Infra, kit_template: str) -> str:
    return service_template(infra, kit_template, VERSIONS)


@pytest.fixture
def marketing_url(infra: Infra, marketing_template: str) -> str:
    return create_database_from(infra, marketing_template)


@pytest.fixture
def clock() -> HandClock:
    return HandClock(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))


@pytest.fixture
async def engine(marketing_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(marketing_url, pool_size=30, max_overflow=30)
    yield engine
    await engine.dispose()


@pytest.fixture
def unit_of_work(engine: AsyncEngine) -> Callable[[], UnitOfWork]:
    return units_of_work(engine)


async def running_campaign(
    url: str,
    campaign_id: str,
    offer: Offer,
    terms: CouponTerms,
    *,
    coupons: dict[str, str | None],
    use_limit: int = 1,
    max_discount_fen: int | None = None,
    items: dict[str, str] | None = None,
) -> None:
    """A running campaign with its coupons (code → member, None for a generic code) and catalogue items."""
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        async with connection.transaction():
            for sku, category in (items or {}).items():
                await connection.execute(
                    "INSERT INTO item (sku, category, cost_fen, version, updated_at) VALUES ($1, $2, 0, 1, now()) "
                    "ON CONFLICT DO NOTHING",
                    sku,
                    category,
                )
            await connection.execute(
                "INSERT INTO campaign (campaign_id, name, status, offer, terms, valid_from, valid_until, "
                "per_member_limit, control_fraction_bp, max_discount_fen, issued, created_by, created_at) "
                "VALUES ($1, $1, 'running', $2, $3, $4, $5, $6, 1000, $7, $8, 'test', now())",
                campaign_id,
                json.dumps(offer_to_json(offer)),
                json.dumps(terms_to_json(terms)),
                terms.valid_from,
                terms.valid_until,
                terms.per_member_limit,
                max_discount_fen,
                len(coupons),
            )
            for code, member_id in coupons.items():
                await connection.execute(
                    "INSERT INTO coupon (code, campaign_id, member_id, issued_to, use_limit, issued_at) "
                    "VALUES ($1, $2, $3, $3, $4, now())",
                    code,
                    campaign_id,
                    member_id,
                    use_limit,
                )
    finally:
        await connection.close()


async def fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(to_plain_url(url))
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


def request(request_id: str | None = None, *, method: str = "test", body: bytes = b"") -> RequestFingerprint:
    """A command's request fingerprint: a fresh id unless one is given (to retry it)."""
    identifier = request_id or uuid.uuid4().hex
    return RequestFingerprint(identifier, method, hashlib.sha256(method.encode() + b"\0" + body).digest())


@pytest.fixture
async def app(marketing_url: str, nats_url: str, unique: str) -> AsyncIterator[MarketingApp]:
    settings = load_settings(
        MarketingSettings,
        app_env="test",
        database_url=marketing_url,
        nats_url=nats_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        member_service_target="127.0.0.1:9",  # journal entries here name members by id: never asked
        marketing_sales_durable=f"marketing-sales-{unique}",
        marketing_members_durable=f"marketing-members-{unique}",
        marketing_catalogue_durable=f"marketing-catalogue-{unique}",
        launch_poll_seconds=0.05,
        tag_refresh_seconds=0,
    )
    async with jetstream(nats_url) as (_, js):
        await ensure_stream(js, StreamSpec("SALES", ["retail.sales.v1.>"]))
        await ensure_stream(js, StreamSpec("MEMBER", ["retail.member.v1.>"]))
        await ensure_stream(js, StreamSpec("PRICING", ["retail.pricing.v1.>"]))
    marketing = build(settings)
    await marketing.server.start()
    yield marketing
    await marketing.server.stop()
    await marketing.close()
