"""The demo retailer's records: plain, frozen dataclasses in the shape the services load.

Every record is immutable and hashable so a service can keep, compare and de-duplicate
them freely. Money is ``Decimal`` with exactly two places (yuan); quantities are
``Decimal`` too, because loose produce is sold by the kilogram (three places) while
packaged goods are whole pieces (no places). Timestamps are timezone-aware in China
Standard Time, the zone every store, receipt and business date of the chain lives in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import StrEnum

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")
"""The chain's one time zone (China has no daylight saving, so a fixed offset is exact)."""


class LocationKind(StrEnum):
    """Where stock can stand and, except for the warehouse, where sales happen."""

    STORE = "store"
    WAREHOUSE = "warehouse"
    ONLINE = "online"


class Channel(StrEnum):
    """How a customer buys; a location serves some of them, a member registers through one."""

    STORE = "store"  # at a till in the store, through a POS terminal
    ONLINE = "online"  # the app / web shop
    MINI_PROGRAM = "mini_program"  # the WeChat mini-program (home delivery)
    CLICK_AND_COLLECT = "click_and_collect"  # ordered online, picked up at the store


class StoreFormat(StrEnum):
    """The store's size class; it sets its traffic, till count and services."""

    HYPERMARKET = "hypermarket"
    SUPERMARKET = "supermarket"
    COMMUNITY = "community"


class Unit(StrEnum):
    """The unit a SKU is priced and counted in."""

    PIECE = "piece"
    KG = "kg"
    BOX = "box"


class SettlementMode(StrEnum):
    """How the chain pays a supplier (purchase: for goods received; consignment: a share of sales)."""

    PURCHASE = "purchase"
    CONSIGNMENT = "consignment"


class HolidayKind(StrEnum):
    """What sort of calendar event moves demand."""

    PUBLIC_HOLIDAY = "public_holiday"  # statutory days off: shoppers have weekend habits
    TRADITIONAL_FESTIVAL = "traditional_festival"  # no day off, but festive food shopping
    SHOPPING_FESTIVAL = "shopping_festival"  # e-commerce events (618, Double 11)
    SHOPPING_SEASON = "shopping_season"  # the run-up weeks before a festival


class Occasion(StrEnum):
    """A recurring calendar event, the same every year (a ``Holiday`` is one year's instance)."""

    NEW_YEAR = "new_year"
    SPRING_FESTIVAL_SHOPPING = "spring_festival_shopping"
    SPRING_FESTIVAL = "spring_festival"
    LANTERN_FESTIVAL = "lantern_festival"
    WOMENS_DAY = "womens_day"
    QINGMING = "qingming"
    LABOUR_DAY = "labour_day"
    DAY_520 = "day_520"
    MID_YEAR_618_PRESALE = "mid_year_618_presale"
    MID_YEAR_618 = "mid_year_618"
    DRAGON_BOAT = "dragon_boat"
    QIXI = "qixi"
    MID_AUTUMN_SHOPPING = "mid_autumn_shopping"
    MID_AUTUMN = "mid_autumn"
    NATIONAL_DAY = "national_day"
    DOUBLE_11_PRESALE = "double_11_presale"
    DOUBLE_11 = "double_11"
    DOUBLE_12 = "double_12"
    CHRISTMAS = "christmas"


class MemberTier(StrEnum):
    """Loyalty tier, lowest first."""

    NORMAL = "normal"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"


class Gender(StrEnum):
    """As registered; campaigns target by it, so the demo has both."""

    FEMALE = "female"
    MALE = "male"


class IdentityKind(StrEnum):
    """An identifier by which a channel recognises a member; each value belongs to one member."""

    PHONE = "phone"
    WECHAT_UNIONID = "wechat_unionid"
    WECHAT_OPENID = "wechat_openid"  # of the chain's one mini-program, see DemoRetailer.wechat_app_id
    APP_USER_ID = "app_user_id"
    POS_CARD = "pos_card"


class PaymentMethod(StrEnum):
    """How a receipt was paid (cash at tills only; the mini-program only takes WeChat Pay)."""

    WECHAT_PAY = "wechat_pay"
    ALIPAY = "alipay"
    UNIONPAY_CARD = "unionpay_card"
    CASH = "cash"


class ClientKind(StrEnum):
    """The four kinds of API client the gateway knows, each with its own binding."""

    APP_BACKEND = "app_backend"
    POS_TERMINAL = "pos_terminal"  # bound to one store
    SUPPLIER_USER = "supplier_user"  # bound to one supplier
    STAFF = "staff"  # has a role; store roles are bound to one store


class StaffRole(StrEnum):
    """What a staff client may see: guides no contact details, headquarters every store."""

    STORE_GUIDE = "store_guide"
    STORE_MANAGER = "store_manager"
    HEADQUARTERS = "headquarters"


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Daily trading hours in local time; ``closes`` is after ``opens`` on the same day."""

    opens: time
    closes: time

    def contains(self, moment: time) -> bool:
        """Whether a till can ring up a sale at ``moment`` (closing time itself is outside)."""
        return self.opens <= moment < self.closes


@dataclass(frozen=True, slots=True)
class Location:
    """A store, the distribution centre or the online shop: anywhere stock stands.

    ``opening_hours`` is ``None`` for the online location, which trades around the
    clock. ``pos_terminal_ids`` are the store's tills (``S001-POS01``); every in-store
    sale names one and every one is a demo POS client. ``fulfilled_from`` is the
    warehouse that ships the online location's orders.
    """

    location_id: str
    kind: LocationKind
    name: str
    city: str
    district: str
    address: str
    region: str
    latitude: float
    longitude: float
    opening_hours: OpeningHours | None
    channels: tuple[Channel, ...]
    opened_on: date
    store_format: StoreFormat | None
    pos_terminal_ids: tuple[str, ...]
    fulfilled_from: str | None


@dataclass(frozen=True, slots=True)
class Category:
    """One node of the two-level category tree: departments (``C01``) and their leaves (``C0101``)."""

    category_code: str
    name: str
    name_en: str
    parent_code: str | None
    level: int


@dataclass(frozen=True, slots=True)
class Sku:
    """One sellable item of the catalogue.

    ``category_code`` is always a leaf. Loose produce and meat are ``sold_by_weight``
    with ``unit`` kg and prices per kilogram; their ``barcode`` is the in-store
    variable-measure EAN-13 (prefix ``20``, PLU, zeroed weight field). Packaged goods
    carry a GS1 China EAN-13 (prefix ``69``). ``seasonal_occasion`` marks festival food
    (mooncakes, zongzi...) that only sells in the weeks before its occasion.
    """

    sku_code: str
    name: str
    brand: str
    specification: str
    category_code: str
    barcode: str
    unit: Unit
    cost_price: Decimal
    base_price: Decimal
    supplier_id: str
    shelf_life_days: int | None
    perishable: bool
    sold_by_weight: bool
    seasonal_occasion: Occasion | None


@dataclass(frozen=True, slots=True)
class Supplier:
    """A supplier and the SKUs it alone supplies.

    ``commission_rate`` is the chain's share of consignment sales (``None`` for purchase
    settlement); ``category_codes`` are the departments it serves.
    """

    supplier_id: str
    name: str
    settlement_mode: SettlementMode
    commission_rate: Decimal | None
    lead_time_days: int
    payment_terms_days: int
    category_codes: tuple[str, ...]
    sku_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Holiday:
    """One year's instance of an occasion: inclusive dates and the demand uplift it brings.

    ``day_off`` days are statutory holidays on which people shop like on a Saturday;
    the uplift factors multiply on top of that (and of each other where events overlap).
    """

    holiday_id: str
    occasion: Occasion
    name: str
    name_en: str
    kind: HolidayKind
    start: date
    end: date
    day_off: bool
    store_uplift: float
    online_uplift: float

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class Promotion:
    """A time-bounded price cut on one SKU at some locations (inclusive dates).

    ``promo_price`` is ``base_price * (1 - discount_rate)`` rounded to the fen; a sale
    line under the promotion keeps the base ``unit_price`` and carries the difference as
    its discount. ``expected_uplift`` is the factor by which the promotion multiplies the
    SKU's unit sales while it runs.
    """

    promotion_id: str
    name: str
    sku_code: str
    discount_rate: Decimal
    promo_price: Decimal
    start: date
    end: date
    location_ids: tuple[str, ...]
    expected_uplift: float

    def applies(self, location_id: str, day: date) -> bool:
        return self.start <= day <= self.end and location_id in self.location_ids


@dataclass(frozen=True, slots=True)
class ChannelIdentity:
    """One identifier of a member in one channel and when it was bound to the member."""

    kind: IdentityKind
    value: str
    bound_at: datetime


@dataclass(frozen=True, slots=True)
class MarketingConsent:
    """What the member agreed to be contacted through (PIPL requires opt-in per channel)."""

    sms: bool
    wechat: bool
    app_push: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Member:
    """A loyalty member as registered, with every channel identity bound so far.

    ``identities`` always holds the ``PHONE`` identity (members register with their
    mobile number) and, depending on how they shop, WeChat unionid and openid, app user
    id and POS card number.
    """

    member_id: str
    name: str
    gender: Gender
    birthday: date
    phone: str
    registered_at: datetime
    registration_channel: Channel
    home_store_id: str
    tier: MemberTier
    identities: tuple[ChannelIdentity, ...]
    consent: MarketingConsent

    def identity(self, kind: IdentityKind) -> str | None:
        """The member's identifier of ``kind``, or ``None`` when they never used that channel."""
        for identity in self.identities:
            if identity.kind is kind:
                return identity.value
        return None


@dataclass(frozen=True, slots=True)
class SaleLine:
    """One SKU on a receipt.

    ``gross_amount`` is ``unit_price * quantity`` rounded half-up to the fen,
    ``net_amount = gross_amount - discount_amount``; ``promotion_id`` names the
    promotion that gave the discount.
    """

    sku_code: str
    quantity: Decimal
    unit_price: Decimal
    gross_amount: Decimal
    discount_amount: Decimal
    net_amount: Decimal
    promotion_id: str | None


@dataclass(frozen=True, slots=True)
class Payment:
    """One tender of a receipt; a tuple of them allows split payments later."""

    method: PaymentMethod
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Sale:
    """One receipt: a completed sale at a location, as the sales journal records it.

    ``terminal_id`` is set for in-store till sales only; ``member_id`` is set when the
    customer identified as a member (always for online, mini-program and click-and-collect
    orders). Payments add up to ``total_amount``, the sum of the lines' net amounts.
    """

    sale_id: str
    location_id: str
    channel: Channel
    business_date: date
    occurred_at: datetime
    terminal_id: str | None
    member_id: str | None
    lines: tuple[SaleLine, ...]
    payments: tuple[Payment, ...]
    gross_amount: Decimal
    discount_amount: Decimal
    total_amount: Decimal


@dataclass(frozen=True, slots=True)
class DailySales:
    """Sales of one SKU at one location on one business date (the forecasting grain).

    ``revenue`` is net of discounts; ``sale_count`` is how many receipts held the SKU.
    """

    business_date: date
    location_id: str
    sku_code: str
    quantity: Decimal
    gross_amount: Decimal
    discount_amount: Decimal
    revenue: Decimal
    sale_count: int


@dataclass(frozen=True, slots=True)
class StockLevel:
    """Stock of one SKU at one location at the end of the sales history (``as_of``).

    It is the state *after* every sale in the history: load it as the opening balance
    and do not also replay the history's sales as stock movements.
    """

    location_id: str
    sku_code: str
    on_hand: Decimal
    safety_stock: Decimal
    as_of: datetime


@dataclass(frozen=True, slots=True)
class DemoClient:
    """An API client registration for the local stack, with its binding.

    ``secret`` is derived from the seed so demo scripts are reproducible: it is for the
    local development stack only and must never be registered anywhere else.
    """

    client_id: str
    kind: ClientKind
    display_name: str
    secret: str
    store_id: str | None
    supplier_id: str | None
    staff_role: StaffRole | None
