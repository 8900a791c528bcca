"""The marketing service's one composition root: real dependencies wired together.

Nothing connects at import time; :func:`build` returns the server and what it holds, and
:func:`wire` is the part that tests and tools reuse with a unit of work and clock of theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from retail.marketing.v1 import marketing_service_pb2
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db import UnitOfWork, create_engine, units_of_work
from servicekit.eventing import Subscription, relay_and_consume
from servicekit.grpc_server import GrpcServer, database_and_broker_checks
from servicekit.lifecycle import every
from servicekit.maintenance import kit_maintenance
from servicekit.nats_connection import NatsConnection
from services.marketing.adapters.integration_events import MARKETING_STREAM
from services.marketing.adapters.member_directory import MemberServiceDirectory
from services.marketing.entrypoints.consumers import (
    MemberDirectory,
    catalogue_consumer,
    catalogue_handlers,
    member_consumer,
    member_handlers,
    sales_consumer,
    sales_handlers,
)
from services.marketing.entrypoints.grpc_api import MarketingServicer, register
from services.marketing.service_layer.campaigns import Campaigns
from services.marketing.service_layer.coupons import CouponBook
from services.marketing.service_layer.models import RepurchaseModels
from services.marketing.service_layer.projections import Projections
from services.marketing.service_layer.redemptions import TEXT, CouponRedemptions
from services.marketing.service_layer.reports import Reports
from services.marketing.service_layer.scoring import Scoring
from services.marketing.service_layer.segments import Segments
from services.marketing.settings import MarketingSettings

SERVICE_NAME = "marketing"
GRPC_SERVICE = marketing_service_pb2.DESCRIPTOR.services_by_name["MarketingService"].full_name
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class MarketingServices:
    segments: Segments
    campaigns: Campaigns
    redemptions: CouponRedemptions
    coupons: CouponBook
    reports: Reports
    models: RepurchaseModels
    scoring: Scoring
    projections: Projections


def wire(
    settings: MarketingSettings,
    unit_of_work: Callable[[], UnitOfWork],
    training: ThreadPoolExecutor,
    *,
    clock: Clock = _utc_now,
) -> MarketingServices:
    """The application services over a unit of work, with the settings' policies."""
    redemptions = CouponRedemptions(unit_of_work, clock=clock)
    return MarketingServices(
        segments=Segments(unit_of_work, segment_codec=TEXT, snapshot_codec=TEXT, clock=clock),
        campaigns=Campaigns(unit_of_work, clock=clock, issue_batch=settings.coupon_issue_batch),
        redemptions=redemptions,
        coupons=CouponBook(unit_of_work, clock=clock),
        reports=Reports(unit_of_work, clock=clock),
        models=RepurchaseModels(unit_of_work, training, clock=clock),
        scoring=Scoring(unit_of_work, clock=clock),
        projections=Projections(redemptions),
    )


@dataclass
class MarketingApp:
    server: GrpcServer
    services: MarketingServices
    engine: AsyncEngine
    nats: NatsConnection
    directory: MemberServiceDirectory
    training: ThreadPoolExecutor

    async def close(self) -> None:
        self.training.shutdown(wait=False, cancel_futures=True)
        await self.directory.close()
        await self.nats.close()
        await self.engine.dispose()


def build(
    settings: MarketingSettings, *, clock: Clock = _utc_now, directory: MemberDirectory | None = None
) -> MarketingApp:
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        application_name=SERVICE_NAME,
    )
    unit_of_work = units_of_work(engine)
    # Model training takes minutes of CPU: on threads of its own, never on the event loop.
    training = ThreadPoolExecutor(max_workers=settings.model_workers, thread_name_prefix="model-training")
    services = wire(settings, unit_of_work, training, clock=clock)
    members = MemberServiceDirectory(settings.member_service_target, timeout=settings.member_lookup_timeout_seconds)
    nats = NatsConnection(settings.nats_url, name=SERVICE_NAME)
    server = GrpcServer(
        name=SERVICE_NAME,
        port=settings.grpc_port,
        host=settings.grpc_host,
        registrations=[
            register(
                MarketingServicer(
                    segments=services.segments,
                    campaigns=services.campaigns,
                    redemptions=services.redemptions,
                    coupons=services.coupons,
                    reports=services.reports,
                    models=services.models,
                    scoring=services.scoring,
                    clock=clock,
                )
            )
        ],
        service_names=[GRPC_SERVICE],
        readiness_checks=database_and_broker_checks(engine, nats),
        background=[
            relay_and_consume(
                nats,
                database_url=settings.database_url,
                own_stream=MARKETING_STREAM,
                replicas=settings.jetstream_replicas,
                subscriptions=[
                    Subscription(
                        sales_consumer(settings.marketing_sales_durable),
                        sales_handlers(services.projections, directory or members),
                        unit_of_work,
                    ),
                    # Until the member and pricing streams exist these retry; nothing else waits for them.
                    Subscription(
                        member_consumer(settings.marketing_members_durable),
                        member_handlers(services.projections),
                        unit_of_work,
                    ),
                    Subscription(
                        catalogue_consumer(settings.marketing_catalogue_durable),
                        catalogue_handlers(services.projections),
                        unit_of_work,
                    ),
                ],
            ),
            every("coupon hold lapses", settings.hold_sweep_seconds, services.redemptions.lapse_due, again=bool),
            every("campaign launches", settings.launch_poll_seconds, services.campaigns.run_launches, again=bool),
            every("member tags", settings.tag_refresh_seconds, services.scoring.refresh, first_run_now=False),
            every("model training", settings.training_poll_seconds, services.models.train_next, again=bool),
            kit_maintenance(engine),
        ],
        shutdown_grace=settings.shutdown_grace_seconds,
    )
    return MarketingApp(server, services, engine, nats, members, training)
