"""The marketing service's one composition root (the shape every service shares: :mod:`servicekit.composition`)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from retail.marketing.v1 import marketing_service_pb2

from servicekit.clock import Clock, utc_now
from servicekit.composition import Connections, connections, service_server
from servicekit.db import UnitOfWork
from servicekit.eventing import Subscription
from servicekit.grpc_server import GrpcServer
from servicekit.lifecycle import every
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
from services.marketing.service_layer.uplift import UpliftModels
from services.marketing.settings import MarketingSettings

SERVICE_NAME = "marketing"
GRPC_SERVICE = marketing_service_pb2.DESCRIPTOR.services_by_name["MarketingService"].full_name


@dataclass(frozen=True)
class MarketingServices:
    segments: Segments
    campaigns: Campaigns
    redemptions: CouponRedemptions
    coupons: CouponBook
    reports: Reports
    models: RepurchaseModels
    uplift: UpliftModels
    scoring: Scoring
    projections: Projections


def wire(
    settings: MarketingSettings,
    unit_of_work: Callable[[], UnitOfWork],
    training: ThreadPoolExecutor,
    *,
    clock: Clock = utc_now,
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
        uplift=UpliftModels(unit_of_work, training, clock=clock),
        scoring=Scoring(unit_of_work, clock=clock),
        projections=Projections(redemptions),
    )


@dataclass
class MarketingApp:
    server: GrpcServer
    services: MarketingServices
    connected: Connections
    directory: MemberServiceDirectory
    training: ThreadPoolExecutor

    async def close(self) -> None:
        self.training.shutdown(wait=False, cancel_futures=True)
        await self.directory.close()
        await self.connected.close()


def build(
    settings: MarketingSettings, *, clock: Clock = utc_now, directory: MemberDirectory | None = None
) -> MarketingApp:
    connected = connections(settings, SERVICE_NAME)
    unit_of_work = connected.unit_of_work
    # Model training takes minutes of CPU: on threads of its own, never on the event loop.
    training = ThreadPoolExecutor(max_workers=settings.model_workers, thread_name_prefix="model-training")
    services = wire(settings, unit_of_work, training, clock=clock)
    members = MemberServiceDirectory(settings.member_service_target, timeout=settings.member_lookup_timeout_seconds)
    servicer = MarketingServicer(
        segments=services.segments,
        campaigns=services.campaigns,
        redemptions=services.redemptions,
        coupons=services.coupons,
        reports=services.reports,
        models=services.models,
        scoring=services.scoring,
        uplift=services.uplift,
        clock=clock,
    )
    server = service_server(
        SERVICE_NAME,
        settings,
        connected,
        registrations=[register(servicer)],
        service_names=[GRPC_SERVICE],
        own_stream=MARKETING_STREAM,
        subscriptions=[
            Subscription(
                sales_consumer(settings.marketing_sales_durable),
                sales_handlers(services.projections, directory or members),
                unit_of_work,
            ),
            # Until the member and pricing streams exist these retry; nothing else waits for them.
            Subscription(
                member_consumer(settings.marketing_members_durable), member_handlers(services.projections), unit_of_work
            ),
            Subscription(
                catalogue_consumer(settings.marketing_catalogue_durable),
                catalogue_handlers(services.projections),
                unit_of_work,
            ),
        ],
        jobs=[
            every("coupon hold lapses", settings.hold_sweep_seconds, services.redemptions.lapse_due, again=bool),
            every("campaign launches", settings.launch_poll_seconds, services.campaigns.run_launches, again=bool),
            every("campaign ends", settings.hold_sweep_seconds, services.campaigns.end_due),
            every("member tags", settings.tag_refresh_seconds, services.scoring.refresh, first_run_now=False),
            every("model training", settings.training_poll_seconds, services.models.train_next, again=bool),
            every("uplift training", settings.training_poll_seconds, services.uplift.train_next, again=bool),
        ],
    )
    return MarketingApp(server, services, connected, members, training)
