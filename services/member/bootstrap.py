"""The member service's one composition root (the shape every service shares: :mod:`servicekit.composition`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from retail.member.v1 import member_service_pb2

from servicekit.clock import Clock, utc_now
from servicekit.composition import Connections, connections, service_server
from servicekit.db import UnitOfWork
from servicekit.eventing import Subscription
from servicekit.grpc_server import GrpcServer
from servicekit.lifecycle import every
from services.member.adapters.personal_data import DataKeyring, PersonalDataCodec
from services.member.domain.lifecycle import LifecyclePolicy
from services.member.domain.points import PointsPolicy
from services.member.domain.tiers import DEFAULT_TIER_POLICY, TierPolicy
from services.member.entrypoints.grpc_api import MemberServicer, register
from services.member.entrypoints.sales_consumer import MEMBER_STREAM, sales_consumer, sales_handlers
from services.member.entrypoints.wire import MEMBER_ANSWERS
from services.member.service_layer.journal_sales import SalesJournal
from services.member.service_layer.loyalty import LoyaltyPolicies
from services.member.service_layer.loyalty_queries import LoyaltyQueries
from services.member.service_layer.member_imports import MemberImports
from services.member.service_layer.member_kpis import MemberKpiReports
from services.member.service_layer.members import MemberService
from services.member.service_layer.points_book import EXPIRY_BATCH, PointsBook
from services.member.service_layer.tier_review import TierReview
from services.member.settings import MemberSettings

SERVICE_NAME = "member"
GRPC_SERVICE = member_service_pb2.DESCRIPTOR.services_by_name["MemberService"].full_name


@dataclass(frozen=True)
class MemberServices:
    """The member service's handlers, one per seam of the context."""

    members: MemberService
    sales: SalesJournal
    points: PointsBook
    tiers: TierReview
    queries: LoyaltyQueries
    kpis: MemberKpiReports
    imports: MemberImports
    codec: PersonalDataCodec


def policies(settings: MemberSettings) -> LoyaltyPolicies:
    return LoyaltyPolicies(
        points=PointsPolicy(
            points_per_yuan=settings.points_per_yuan,
            category_multipliers=settings.category_multipliers,
            expiry_days=settings.points_expiry_days,
        ),
        tiers=TierPolicy(
            DEFAULT_TIER_POLICY.tiers, window_days=settings.tier_window_days, grace_days=settings.tier_grace_days
        ),
        lifecycle=LifecyclePolicy(
            new_days=settings.lifecycle_new_days,
            dormant_after_days=settings.lifecycle_dormant_after_days,
            churned_after_days=settings.lifecycle_churned_after_days,
            repeat_min_purchases=settings.lifecycle_repeat_min_purchases,
        ),
    )


def wire(settings: MemberSettings, unit_of_work: Callable[[], UnitOfWork], *, clock: Clock = utc_now) -> MemberServices:
    """The application services over a unit of work, with the settings' keys and policies."""
    codec = PersonalDataCodec(DataKeyring(settings.data_keys))
    rules = policies(settings)
    tiers = TierReview(unit_of_work, rules, clock=clock)
    return MemberServices(
        members=MemberService(unit_of_work, codec, settings.lookup_key, tiers, MEMBER_ANSWERS, clock=clock),
        sales=SalesJournal(rules, tiers, clock=clock),
        points=PointsBook(unit_of_work, rules, MEMBER_ANSWERS, clock=clock),
        tiers=tiers,
        queries=LoyaltyQueries(unit_of_work),
        kpis=MemberKpiReports(unit_of_work, lifecycle=rules.lifecycle, clock=clock),
        imports=MemberImports(unit_of_work, codec, settings.lookup_key, tiers, MEMBER_ANSWERS, clock=clock),
        codec=codec,
    )


@dataclass
class MemberApp:
    server: GrpcServer
    services: MemberServices
    connected: Connections

    async def close(self) -> None:
        await self.connected.close()


def build(settings: MemberSettings, *, clock: Clock = utc_now) -> MemberApp:
    connected = connections(settings, SERVICE_NAME)
    services = wire(settings, connected.unit_of_work, clock=clock)
    server = service_server(
        SERVICE_NAME,
        settings,
        connected,
        registrations=[
            register(
                MemberServicer(
                    services.members, services.points, services.queries, services.kpis, services.imports, clock=clock
                )
            )
        ],
        service_names=[GRPC_SERVICE],
        own_stream=MEMBER_STREAM,
        subscriptions=[
            Subscription(
                sales_consumer(settings.sales_consumer_durable), sales_handlers(services.sales), connected.unit_of_work
            )
        ],
        jobs=[
            every(
                "points expiry",
                settings.points_expiry_sweep_seconds,
                services.points.expire_due,
                again=lambda expired: expired == EXPIRY_BATCH,
            ),
            # Every member's tier (downgrades after grace) and lifecycle stage; the first roll after one interval.
            every(
                "member review",
                settings.member_review_seconds,
                _review_step(services.tiers),
                again=bool,
                first_run_now=False,
            ),
        ],
    )
    return MemberApp(server, services, connected)


def _review_step(tiers: TierReview) -> Callable[[], Awaitable[str]]:
    """One batch of the tier and lifecycle review; a roll resumes where it stopped, and starts over when done."""
    cursor = ""

    async def step() -> str:
        nonlocal cursor
        cursor = await tiers.review(after_member_id=cursor)
        return cursor

    return step
