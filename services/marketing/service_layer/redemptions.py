"""Coupon uses: holds for a basket, redemptions from the SALES journal, releases, lapses and give-backs.

Each operation is one unit of work taking its row locks in the store's one order (coupon →
member's use counter → campaign budget), so every code is redeemed at most once and no
budget is overspent, whatever mix of app, mini-program, POS online and POS replay races for it:

* :meth:`CouponRedemptions.hold` checks the coupon (:func:`~services.marketing.domain.coupons.check_use`),
  prices the basket with the other coupons held for it, and reserves the use and its discount;
* :meth:`CouponRedemptions.apply_sale` (the journal consumer, in its own unit of work) turns the
  member's open hold into a redemption, or — a till that priced the code itself, online or after
  an offline spell — redeems it if it may still be used, and otherwise records a **redemption
  conflict**: the sale stands, the use is not counted, the store follows it up;
* a return of the sale gives each use back once the whole sale has come back, within the
  coupon's validity (see the policy in :mod:`~services.marketing.domain.coupons`);
* :meth:`CouponRedemptions.release` and :meth:`CouponRedemptions.lapse_due` end holds.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.clock import Clock, utc_now
from servicekit.db import UnitOfWork
from servicekit.errors import DomainError, FailedPrecondition, NotFound, PermissionDenied
from servicekit.idempotency import ReplyCodec, RequestFingerprint, keep_reply, replay
from services.marketing.adapters import coupon_store as store
from services.marketing.adapters.coupon_store import ConflictRow, HoldRow, RedemptionRow
from services.marketing.adapters.integration_events import (
    coupon_redeemed,
    coupon_use_given_back,
    redemption_conflict_recorded,
)
from services.marketing.domain.codes import MalformedCode, MistypedCode, read_code
from services.marketing.domain.coupons import (
    BudgetExhausted,
    CouponAlreadyUsed,
    MemberLimitReached,
    UseRequest,
    check_use,
    gives_back_on_return,
    hold_until,
)
from services.marketing.domain.discounts import BasketLine, price_coupons
from services.marketing.domain.offers import Channel, Offer
from services.marketing.domain.sales import JournalSale

log = logging.getLogger("marketing.redemptions")

LAPSE_BATCH = 500
MAX_CODES_PER_BASKET = 10


class UnknownCoupon(NotFound):
    reason = "coupon-not-found"


class HoldNotFound(NotFound):
    reason = "coupon-hold-not-found"


class NotYourHold(PermissionDenied):
    reason = "coupon-hold-not-yours"


class CampaignNotRunning(FailedPrecondition):
    reason = "campaign-not-running"


@dataclass(frozen=True, slots=True)
class BasketItem:
    sku: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class HoldCoupon:
    request: RequestFingerprint
    code: str  # as typed
    member_id: str
    store_id: str | None
    channel: Channel
    lines: tuple[BasketItem, ...]
    client_id: str
    with_codes: tuple[str, ...] = ()
    hold_for: timedelta | None = None


@dataclass(frozen=True, slots=True)
class HoldResult:
    hold_id: str
    code: str
    status: str
    discount_fen: int
    line_discounts_fen: tuple[int, ...]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ReleaseHold:
    request: RequestFingerprint
    hold_id: str
    client_id: str
    any_client: bool = False  # headquarters may release any client's hold


@dataclass(frozen=True, slots=True)
class SaleCoupons:
    """What a journal entry did to coupons (for logs and tests)."""

    redeemed: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    given_back: tuple[str, ...] = ()


def _hold_to_json(result: HoldResult) -> bytes:
    return json.dumps(
        {
            "hold_id": result.hold_id,
            "code": result.code,
            "status": result.status,
            "discount_fen": result.discount_fen,
            "line_discounts_fen": list(result.line_discounts_fen),
            "expires_at": result.expires_at.isoformat(),
        }
    ).encode()


def _hold_from_json(data: bytes) -> HoldResult:
    fields = json.loads(data)
    return HoldResult(
        fields["hold_id"],
        fields["code"],
        fields["status"],
        fields["discount_fen"],
        tuple(fields["line_discounts_fen"]),
        datetime.fromisoformat(fields["expires_at"]),
    )


# Kept answers when the entrypoint supplies no wire codec of its own (tools, tests).
HOLD_RESULT_JSON: ReplyCodec[HoldResult] = ReplyCodec(_hold_to_json, _hold_from_json)
TEXT: ReplyCodec[str] = ReplyCodec(str.encode, bytes.decode)


def new_hold_id() -> str:
    return f"H{secrets.token_hex(10)}"


class CouponRedemptions:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        hold_codec: ReplyCodec[HoldResult] | None = None,
        release_codec: ReplyCodec[str] | None = None,
        clock: Clock = utc_now,
        new_id: Callable[[], str] = new_hold_id,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._hold_codec = hold_codec or HOLD_RESULT_JSON
        self._release_codec = release_codec or TEXT
        self._clock = clock
        self._new_id = new_id

    async def hold(self, command: HoldCoupon) -> HoldResult:
        """Reserve a use for the basket; a retry of the same request answers with the first hold."""
        now = self._clock()
        expires_at = hold_until(now, command.hold_for)
        code = read_code(command.code).value
        others = tuple(dict.fromkeys(read_code(other).value for other in command.with_codes if other))
        if len(others) >= MAX_CODES_PER_BASKET:
            raise FailedPrecondition(f"at most {MAX_CODES_PER_BASKET} coupons per basket", reason="too-many-coupons")
        async with self._unit_of_work() as uow:
            session = uow.session
            if (first := await replay(session, command.request, self._hold_codec)) is not None:
                return first
            # Read and check first, without locks: only the claims at the end lock rows (the coupon's,
            # the member's, the campaign's, in the one order), so a hot code is locked for the claims alone.
            campaign_of = await store.coupon_campaigns(session, [code, *others])
            if code not in campaign_of:
                raise UnknownCoupon("no such coupon")
            missing = [other for other in others if other not in campaign_of]
            if missing:
                raise UnknownCoupon(f"no such coupon: {missing[0]}", details={"code": missing[0]})
            # Each read sees what was committed when it began: the member's uses are read before the
            # coupon, so a use of this code committed in between shows on the coupon as well, and the
            # refusal is "already used", not the member's limit (read the other way round, it was either).
            member_uses = await store.member_uses(session, campaign_of[code], command.member_id)
            coupon = await store.lock_coupon(session, code, lock=False)
            if coupon is None:
                raise UnknownCoupon("no such coupon")
            campaigns = await store.campaign_offers(session, sorted(set(campaign_of.values())))
            campaign = campaigns[coupon.campaign_id]
            if campaign.status not in ("launching", "running"):
                raise CampaignNotRunning("the coupon's campaign is not running")
            use = UseRequest(command.member_id, command.store_id, command.channel, now)
            check_use(coupon.use, campaign.terms, use, member_uses=member_uses)
            lines = await self._basket(session, command.lines)
            offers: list[tuple[str, Offer]] = [(code, campaign.offer)]
            offers += [(other, campaigns[campaign_of[other]].offer) for other in others if other != code]
            priced = price_coupons(lines, offers).coupons[0]
            campaign.budget.check_discount(priced.discount_fen)
            # The claims: each refuses what a concurrent hold or sale took since the checks above.
            if not await store.claim_use(session, code):
                raise CouponAlreadyUsed("the coupon has already been used")
            if not await store.claim_member_use(
                session, coupon.campaign_id, command.member_id, campaign.terms.per_member_limit
            ):
                raise MemberLimitReached(
                    f"a member may use this coupon {campaign.terms.per_member_limit} time(s)",
                    details={"per_member_limit": campaign.terms.per_member_limit},
                )
            if not await store.move_budget(session, coupon.campaign_id, held_fen=priced.discount_fen):
                raise BudgetExhausted("the campaign's discount budget is exhausted")
            hold = HoldRow(
                hold_id=self._new_id(),
                code=code,
                campaign_id=coupon.campaign_id,
                member_id=command.member_id,
                client_id=command.client_id,
                store_id=command.store_id,
                channel=command.channel.value,
                discount_fen=priced.discount_fen,
                line_discounts_fen=list(priced.line_discounts_fen),
                status="held",
                expires_at=expires_at,
            )
            await store.insert_hold(session, hold, now)
            result = HoldResult(hold.hold_id, code, "held", priced.discount_fen, priced.line_discounts_fen, expires_at)
            await keep_reply(session, command.request, self._hold_codec, result)
            await uow.commit()
        return result

    async def _basket(self, session: AsyncSession, items: tuple[BasketItem, ...]) -> list[BasketLine]:
        category = await store.categories(session, sorted({item.sku for item in items}))
        return [BasketLine(item.sku, category.get(item.sku, ""), item.amount_fen) for item in items]

    async def release(self, command: ReleaseHold) -> str:
        """Give a held use back; the hold's status after (``released``, or what it already was)."""
        now = self._clock()
        async with self._unit_of_work() as uow:
            session = uow.session
            if (first := await replay(session, command.request, self._release_codec)) is not None:
                return first
            found = await store.hold_code(session, command.hold_id)
            if found is None:
                raise HoldNotFound("no such hold")
            await store.lock_coupon(session, found)
            hold = await store.lock_hold(session, command.hold_id)
            assert hold is not None  # holds are never deleted
            if hold.client_id != command.client_id and not command.any_client:
                raise HoldNotFound("no such hold")  # another client's hold is not theirs to know of
            status = hold.status
            if status == "held":
                await self._end(session, hold, "released", now)
                status = "released"
            await keep_reply(session, command.request, self._release_codec, status)
            await uow.commit()
            return status

    async def _end(self, session: AsyncSession, hold: HoldRow, status: str, now: datetime) -> None:
        await store.lock_member_use(session, hold.campaign_id, hold.member_id)
        await store.move_use(session, hold.code, hold.campaign_id, hold.member_id, used=0, held=-1)
        await store.move_budget(session, hold.campaign_id, held_fen=-hold.discount_fen)
        await store.end_hold(session, hold.hold_id, status, now)

    async def lapse_due(self, limit: int = LAPSE_BATCH) -> int:
        """End holds past their time, one unit of work each (one coupon's locks at a time); how many."""
        now = self._clock()
        async with self._unit_of_work() as uow:
            due = await store.due_holds(uow.session, now, limit)
        lapsed = 0
        for hold_id, code in due:
            async with self._unit_of_work() as uow:
                await store.lock_coupon(uow.session, code)
                hold = await store.lock_hold(uow.session, hold_id)
                if hold is None or hold.status != "held" or hold.expires_at > now:
                    continue  # redeemed or released meanwhile
                await self._end(uow.session, hold, "lapsed", now)
                await uow.commit()
                lapsed += 1
        return lapsed

    async def apply_sale(self, uow: UnitOfWork, sale: JournalSale) -> SaleCoupons:
        """A journal entry's effect on coupons, in the consumer's unit of work (which commits it)."""
        if sale.is_return:
            return await self._apply_return(uow, sale)
        redeemed: list[str] = []
        conflicts: list[str] = []
        for typed in dict.fromkeys(sale.coupon_codes):
            outcome = await self._redeem(uow, sale, typed)
            (redeemed if outcome else conflicts).append(typed)
        return SaleCoupons(tuple(redeemed), tuple(conflicts))

    async def _redeem(self, uow: UnitOfWork, sale: JournalSale, typed: str) -> bool:
        """Redeem one code for the sale; False when it became a conflict."""
        session = uow.session
        now = self._clock()
        try:
            code = read_code(typed).value
        except (MalformedCode, MistypedCode):
            return await self._conflict(uow, sale, typed.strip()[:64] or "?", "unknown_code", None, 0)
        if await store.redemption_exists(session, code, sale.sale_id):
            return True
        if await store.conflict_exists(session, code, sale.sale_id):
            return False
        coupon = await store.lock_coupon(session, code)
        if coupon is None:
            return await self._conflict(uow, sale, code, "unknown_code", None, 0)
        campaign = (await store.campaign_offers(session, [coupon.campaign_id]))[coupon.campaign_id]
        hold = await store.open_hold_for(session, code, sale.member_id)
        if hold is not None:
            await store.lock_member_use(session, hold.campaign_id, hold.member_id)
            await store.move_use(session, code, hold.campaign_id, hold.member_id, used=1, held=-1)
            await store.move_budget(
                session, hold.campaign_id, held_fen=-hold.discount_fen, spent_fen=hold.discount_fen, redemptions=1
            )
            await store.end_hold(session, hold.hold_id, "redeemed", now, sale.sale_id)
            await self._record(uow, sale, code, coupon.campaign_id, hold.member_id, hold.discount_fen, hold.hold_id)
            return True
        # The till priced the code itself (online without a hold, or offline): redeem it if it may still be used.
        member_id = sale.member_id or coupon.use.member_id
        discount = await self._discount_on_sale(session, sale, code, campaign.offer)
        try:
            if member_id is None:
                raise FailedPrecondition("a coupon is used by a member", reason="coupon-no-member")
            used, held = await store.lock_member_use(session, coupon.campaign_id, member_id)
            request = UseRequest(member_id, sale.store_id, sale.channel, sale.occurred_at)
            check_use(coupon.use, campaign.terms, request, member_uses=used + held)
            campaign.budget.check_discount(discount)
        except CouponAlreadyUsed:
            first = await store.first_redemption(session, code)
            return await self._conflict(uow, sale, code, "already_used", coupon.campaign_id, discount, first)
        except DomainError as refusal:
            return await self._conflict(uow, sale, code, refusal.reason.replace("-", "_"), coupon.campaign_id, discount)
        if not await store.move_budget(session, coupon.campaign_id, spent_fen=discount, redemptions=1):
            return await self._conflict(uow, sale, code, "campaign_budget_exhausted", coupon.campaign_id, discount)
        await store.move_use(session, code, coupon.campaign_id, member_id, used=1, held=0)
        await self._record(uow, sale, code, coupon.campaign_id, member_id, discount, None)
        return True

    async def _discount_on_sale(self, session: AsyncSession, sale: JournalSale, code: str, offer: Offer) -> int:
        """What the coupon is worth on the sale's lines on its own (0 when the sale does not qualify:
        the till's own share of the discount per coupon is not in the journal)."""
        category = await store.categories(session, sorted({line.sku for line in sale.lines}))
        lines = [BasketLine(line.sku, category.get(line.sku, ""), line.gross_fen) for line in sale.lines]
        try:
            return price_coupons(lines, [(code, offer)]).discount_fen
        except DomainError:
            return 0

    async def _record(
        self,
        uow: UnitOfWork,
        sale: JournalSale,
        code: str,
        campaign_id: str,
        member_id: str | None,
        discount_fen: int,
        hold_id: str | None,
    ) -> None:
        redemption = RedemptionRow(
            code=code,
            sale_id=sale.sale_id,
            campaign_id=campaign_id,
            member_id=member_id,
            store_id=sale.store_id,
            channel=sale.channel.value,
            discount_fen=discount_fen,
            hold_id=hold_id,
            sale_gross_fen=sale.gross_fen,
            occurred_at=sale.occurred_at,
        )
        await store.insert_redemption(uow.session, redemption, self._clock())
        uow.publish(coupon_redeemed(redemption))

    async def _conflict(
        self,
        uow: UnitOfWork,
        sale: JournalSale,
        code: str,
        reason: str,
        campaign_id: str | None,
        discount_fen: int,
        redeemed_by: str | None = None,
    ) -> bool:
        conflict = ConflictRow(
            code=code,
            sale_id=sale.sale_id,
            reason=reason,
            campaign_id=campaign_id,
            store_id=sale.store_id,
            member_id=sale.member_id,
            discount_fen=discount_fen,
            redeemed_by_sale_id=redeemed_by,
            occurred_at=sale.occurred_at,
        )
        await store.insert_conflict(uow.session, conflict, self._clock())
        uow.publish(redemption_conflict_recorded(conflict))
        log.warning(
            "redemption conflict recorded",
            extra={"code_suffix": code[-4:], "sale_id": sale.sale_id, "store_id": sale.store_id, "reason": reason},
        )
        return False

    async def _apply_return(self, uow: UnitOfWork, sale: JournalSale) -> SaleCoupons:
        if not sale.original_sale_id:
            return SaleCoupons()
        session = uow.session
        now = self._clock()
        given_back = []
        for redemption in await store.redemptions_of_sale(session, sale.original_sale_id):
            coupon = await store.lock_coupon(session, redemption.code)
            returned = await store.add_returned(session, redemption.code, redemption.sale_id, sale.gross_fen)
            if coupon is None or returned is None:
                continue
            campaign = (await store.campaign_offers(session, [coupon.campaign_id]))[coupon.campaign_id]
            full = returned >= redemption.sale_gross_fen
            if not gives_back_on_return(campaign.terms, returned_at=sale.occurred_at, full_return=full):
                continue
            if redemption.member_id is not None:
                await store.lock_member_use(session, redemption.campaign_id, redemption.member_id)
            await store.move_use(
                session, redemption.code, redemption.campaign_id, redemption.member_id, used=-1, held=0
            )
            await store.move_budget(session, redemption.campaign_id, spent_fen=-redemption.discount_fen, redemptions=-1)
            await store.give_back(session, redemption.code, redemption.sale_id, sale.sale_id, now)
            uow.publish(coupon_use_given_back(redemption.code, redemption.campaign_id, sale.sale_id, now))
            given_back.append(redemption.code)
        return SaleCoupons(given_back=tuple(given_back))
