"""The one deterministic demo retailer every service of the platform seeds from.

A Chinese supermarket chain (禾悦超市) with stores around the Yangtze delta, a
distribution centre, an online shop, a catalogue, suppliers, members and months of
sales history, all derived from one integer seed. Pure Python (no database, network or
numpy); the same seed, scale and end date always give identical records. The history ends
yesterday unless you pin ``DemoScale.end_date`` (tests do).

    from demodata import DemoRetailer, DemoScale

    retailer = DemoRetailer(seed=20261124, scale=DemoScale.demo())   # history ends yesterday
    pinned = DemoRetailer(scale=DemoScale.demo(end_date=date(2026, 10, 31)))
    retailer.stores, retailer.warehouses, retailer.online_locations, retailer.locations
    retailer.categories, retailer.skus, retailer.suppliers, retailer.promotions
    retailer.holidays, retailer.make_up_workdays, retailer.calendar, retailer.clients
    retailer.member_count, retailer.member(0), retailer.member_by_id("M0000001")
    for member in retailer.iter_members(): ...           # streamed, constant memory
    for sale in retailer.iter_sales(): ...               # receipts in time order, day by day
    retailer.sales_on(date(2026, 10, 1))                 # one day, generated on its own
    for row in retailer.daily_sales(): ...               # (date, location, SKU) totals
    for level in retailer.stock_levels(): ...            # on hand at the end of the history
    retailer.calendar.is_day_off(day), retailer.expected_daily_quantity("S001")

What each service loads:

* inventory: ``locations`` (stores, ``W01``, ``ONLINE01``), ``stock_levels()`` as
  opening balances as of the end of the history, ``iter_sales()`` / ``daily_sales()``
  as history (already reflected in the stock levels, so not replayed as movements).
* member: ``iter_members()`` with their ``identities`` and ``consent``; purchases are
  the sales with a ``member_id``.
* pricing: ``categories``, ``skus`` (cost, base price, barcode, supplier), ``promotions``
  (those still running or planned: promotions reach four weeks past the history).
* supply: ``suppliers`` (settlement mode, commission, lead time, their ``sku_codes``).
* gateway: ``clients`` (POS tills bound to stores, supplier users bound to suppliers,
  staff roles, app back ends) with reproducible local-development-only secrets.

Identifier formats (all fixed width, sortable, stable for a given seed and scale):

=================  =========================  =====================================
record             format                     example
=================  =========================  =====================================
store              ``S`` + 3 digits           ``S001``
warehouse          ``W`` + 2 digits           ``W01``
online location    ``ONLINE`` + 2 digits      ``ONLINE01``
POS terminal       store + ``-POS`` + 2       ``S001-POS01`` (also its client id)
category           ``C`` + 2 (+ 2 for leaf)   ``C01`` department, ``C0101`` leaf
SKU                ``SKU`` + 5 digits         ``SKU00001``
supplier           ``SUP`` + 3 digits         ``SUP001``
member             ``M`` + 7 digits           ``M0000001`` (index 0)
promotion          ``PROMO`` + 4 digits       ``PROMO0001``
sale               location-date-sequence     ``S001-20261001-00042``
holiday            occasion + year            ``NATIONAL_DAY_2026``
client             see ``clients``            ``SUP001-USER01``, ``S001-MGR01``
=================  =========================  =====================================

Values: money is ``Decimal`` with exactly two places (yuan); quantities are
``Decimal`` (whole pieces, or kg with three places for loose goods); timestamps are
timezone-aware in China Standard Time (+08:00). Barcodes are valid EAN-13, phone
numbers plausible mainland mobiles (``1[3-9]`` + 9 digits), POS cards pass Luhn;
phones, WeChat ids, app user ids and card numbers are unique by construction.

The sales history covers ``DemoScale.history_days`` days (180 at demo scale) ending on
``DemoScale.end_date`` (default yesterday in China time) and shows a clear weekend
peak, holiday and festival uplift (the public holidays and shopping events of
:func:`demodata.retail_calendar.holidays_between`), promotion uplift, festival food in season
only, a mild growth trend and noise. About 60 % of receipts are by members; online,
mini-program and click-and-collect orders always are. Members only buy after they
registered (ids are in registration order), about 90 % of their store visits at their
home store, and how often they shop varies from lapsed to weekly regulars. Volumes are
scaled down from a real chain (about 40 receipts per store and day at demo scale) so the
whole demo history generates in about two seconds.

Determinism: every record depends only on the seed, the scale (with its end date) and this
package's code (never on ``PYTHONHASHSEED`` or generation order; the clock only picks the
default end date, once, when the scale is made); a change to the generator
that alters the data for a given seed should be treated like a schema change.

Command line: ``python -m demodata [--seed N] [--scale demo|benchmark] [--end-date YYYY-MM-DD]
[--summary | --jsonl DIR]``.
"""

from demodata.codes import ean13_check_digit, is_valid_ean13, is_valid_luhn, luhn_check_digit
from demodata.export import to_json_line, to_record, write_jsonl
from demodata.model import (
    CHINA_STANDARD_TIME,
    Category,
    Channel,
    ChannelIdentity,
    ClientKind,
    DailySales,
    DemoClient,
    Gender,
    Holiday,
    HolidayKind,
    IdentityKind,
    Location,
    LocationKind,
    MarketingConsent,
    Member,
    MemberTier,
    Occasion,
    OpeningHours,
    Payment,
    PaymentMethod,
    Promotion,
    Sale,
    SaleLine,
    SettlementMode,
    Sku,
    StaffRole,
    StockLevel,
    StoreFormat,
    Supplier,
    Unit,
)
from demodata.promotions import PLANNED_DAYS
from demodata.retail_calendar import HOLIDAYS, MAKE_UP_WORKDAYS, TradingCalendar, holidays_between
from demodata.retailer import DEFAULT_SEED, DemoRetailer
from demodata.sales import aggregate_daily_sales
from demodata.scale import DemoScale, yesterday_in_china

__all__ = [
    "CHINA_STANDARD_TIME",
    "DEFAULT_SEED",
    "HOLIDAYS",
    "MAKE_UP_WORKDAYS",
    "PLANNED_DAYS",
    "Category",
    "Channel",
    "ChannelIdentity",
    "ClientKind",
    "DailySales",
    "DemoClient",
    "DemoRetailer",
    "DemoScale",
    "Gender",
    "Holiday",
    "HolidayKind",
    "IdentityKind",
    "Location",
    "LocationKind",
    "MarketingConsent",
    "Member",
    "MemberTier",
    "Occasion",
    "OpeningHours",
    "Payment",
    "PaymentMethod",
    "Promotion",
    "Sale",
    "SaleLine",
    "SettlementMode",
    "Sku",
    "StaffRole",
    "StockLevel",
    "StoreFormat",
    "Supplier",
    "TradingCalendar",
    "Unit",
    "aggregate_daily_sales",
    "ean13_check_digit",
    "holidays_between",
    "is_valid_ean13",
    "is_valid_luhn",
    "luhn_check_digit",
    "to_json_line",
    "to_record",
    "write_jsonl",
    "yesterday_in_china",
]
