"""The demo retailer: deterministic, internally consistent, and shaped like a real chain's data."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import demodata.__main__ as cli
from demodata import (
    CHINA_STANDARD_TIME,
    Channel,
    DailySales,
    DemoRetailer,
    DemoScale,
    IdentityKind,
    LocationKind,
    Member,
    Sale,
    Unit,
    aggregate_daily_sales,
    is_valid_ean13,
    is_valid_luhn,
    to_json_line,
)

SEED = 20261124
# The history the shape tests below were written against: 2026-05-05 .. 2026-10-31.
END = date(2026, 10, 31)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def retailer() -> DemoRetailer:
    return DemoRetailer(seed=SEED, scale=DemoScale.demo(end_date=END))


@pytest.fixture(scope="module")
def sales(retailer: DemoRetailer) -> list[Sale]:
    """The whole demo-scale history, generated once for the module (a couple of seconds)."""
    return list(retailer.iter_sales())


@pytest.fixture(scope="module")
def daily(sales: list[Sale]) -> list[DailySales]:
    return list(aggregate_daily_sales(sales))


@pytest.fixture(scope="module")
def members(retailer: DemoRetailer) -> list[Member]:
    return list(retailer.iter_members())


def digest(records: Iterable[object]) -> str:
    """A fingerprint of records through their JSON form (the form the services load)."""
    hasher = hashlib.sha256()
    for record in records:
        hasher.update(to_json_line(record).encode())
        hasher.update(b"\n")
    return hasher.hexdigest()


def sample_digest(retailer: DemoRetailer) -> str:
    """Hash a sample of every kind of record: all reference data, every 97th member, three days of sales."""
    days = (retailer.history_start, date(2026, 10, 1), retailer.history_end)
    parts = [
        digest(retailer.locations),
        digest(retailer.categories),
        digest(retailer.skus),
        digest(retailer.suppliers),
        digest(retailer.promotions),
        digest(retailer.holidays),
        digest(retailer.clients),
        digest(retailer.member(index) for index in range(0, retailer.member_count, 97)),
        digest(sale for day in days for sale in retailer.sales_on(day)),
        digest(retailer.stock_levels()),
        retailer.wechat_app_id,
    ]
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def store_quantity_by_day(retailer: DemoRetailer, daily: list[DailySales]) -> dict[date, Decimal]:
    totals: dict[date, Decimal] = defaultdict(Decimal)
    store_ids = {store.location_id for store in retailer.stores}
    for row in daily:
        if row.location_id in store_ids:
            totals[row.business_date] += row.quantity
    return totals


def member_of(sale: Sale, members: list[Member]) -> Member:
    assert sale.member_id is not None
    return members[int(sale.member_id[1:]) - 1]


def is_money(value: Decimal) -> bool:
    return isinstance(value, Decimal) and value.as_tuple().exponent == -2


# -- determinism ---------------------------------------------------------------------------


def test_the_same_seed_gives_identical_data(retailer: DemoRetailer) -> None:
    assert sample_digest(DemoRetailer(seed=SEED, scale=DemoScale.demo(end_date=END))) == sample_digest(retailer)


def test_a_different_seed_gives_different_data(retailer: DemoRetailer) -> None:
    other = DemoRetailer(seed=SEED + 1, scale=DemoScale.demo(end_date=END))

    assert sample_digest(other) != sample_digest(retailer)
    assert [sku.name for sku in other.skus] != [sku.name for sku in retailer.skus]
    assert other.member(0) != retailer.member(0)
    assert other.sales_on(date(2026, 10, 1)) != retailer.sales_on(date(2026, 10, 1))


def test_the_data_does_not_depend_on_the_python_hash_seed(retailer: DemoRetailer) -> None:
    program = (
        "from tests.unit.test_demodata import END, sample_digest; from demodata import DemoRetailer, DemoScale; "
        f"print(sample_digest(DemoRetailer(seed={SEED}, scale=DemoScale.demo(end_date=END))))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", program],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }

    assert outputs == {sample_digest(retailer)}


def test_the_history_ends_on_the_end_date_it_is_given(retailer: DemoRetailer, sales: list[Sale]) -> None:
    assert retailer.history_end == END
    assert retailer.history_start == END - timedelta(days=179)
    assert sales[0].business_date == retailer.history_start
    assert sales[-1].business_date == retailer.history_end
    assert retailer.sales_on(END + timedelta(days=1)) == []


def test_by_default_the_history_ends_yesterday_in_china_and_promotions_run_today() -> None:
    today = datetime.now(CHINA_STANDARD_TIME).date()
    scale = dataclasses.replace(DemoScale.demo(), store_count=2, sku_count=40, member_count=50, history_days=7)

    retailer = DemoRetailer(seed=SEED, scale=scale)

    assert retailer.history_end == today - timedelta(days=1)
    assert retailer.sales_on(retailer.history_end)
    assert retailer.sales_on(today) == []
    # A chain always has promotions running and planned; the history shows the past part of each.
    assert any(promotion.start <= today <= promotion.end for promotion in DemoRetailer(seed=SEED).promotions)
    assert max(promotion.end for promotion in retailer.promotions) > retailer.history_end


def test_the_same_shape_on_any_end_date() -> None:
    later = DemoRetailer(seed=SEED, scale=DemoScale.demo(end_date=date(2031, 3, 15)))
    days = [later.history_end - timedelta(days=n) for n in range(14)]

    # Years the published calendar does not list get its events moved to the same month and day.
    assert [holiday.holiday_id for holiday in later.calendar.holidays_on(date(2030, 10, 2))] == ["NATIONAL_DAY_2030"]
    assert all(later.sales_on(day) for day in days)
    assert later.promotions != DemoRetailer(seed=SEED, scale=DemoScale.demo(end_date=END)).promotions
    assert len(later.promotions) == later.scale.promotion_count


# -- demand shapes -------------------------------------------------------------------------


def test_weekends_sell_clearly_more_than_weekdays(retailer: DemoRetailer, daily: list[DailySales]) -> None:
    by_day = store_quantity_by_day(retailer, daily)
    special = {day for day in by_day if retailer.calendar.holidays_on(day) or day in retailer.make_up_workdays}
    weekdays = [float(quantity) for day, quantity in by_day.items() if day not in special and day.weekday() < 5]
    weekends = [float(quantity) for day, quantity in by_day.items() if day not in special and day.weekday() >= 5]

    assert statistics.mean(weekends) > 1.25 * statistics.mean(weekdays)


def test_golden_week_sells_clearly_more_than_ordinary_days(retailer: DemoRetailer, daily: list[DailySales]) -> None:
    by_day = store_quantity_by_day(retailer, daily)
    golden_week = next(holiday for holiday in retailer.holidays if holiday.holiday_id == "NATIONAL_DAY_2026")
    holiday_days = [float(quantity) for day, quantity in by_day.items() if golden_week.contains(day)]
    ordinary_days = [float(quantity) for day, quantity in by_day.items() if not retailer.calendar.holidays_on(day)]

    assert len(holiday_days) == 7
    assert statistics.mean(holiday_days) > 1.3 * statistics.mean(ordinary_days)


def test_618_lifts_online_sales_on_the_day(retailer: DemoRetailer, daily: list[DailySales]) -> None:
    online_revenue: dict[date, Decimal] = defaultdict(Decimal)
    for row in daily:
        if row.location_id == "ONLINE01":
            online_revenue[row.business_date] += row.revenue
    june = [float(online_revenue[date(2026, 5, 25) + timedelta(days=n)]) for n in range(7)]

    assert float(online_revenue[date(2026, 6, 18)]) > 1.4 * statistics.mean(june)


def test_promotions_lift_their_skus_sales_within_their_window(retailer: DemoRetailer, daily: list[DailySales]) -> None:
    quantity = defaultdict(
        float, {(row.sku_code, row.location_id, row.business_date): float(row.quantity) for row in daily}
    )
    days = [retailer.history_start + timedelta(days=n) for n in range(retailer.scale.history_days)]
    lifts = []
    # Promotions still to come have no sales yet; those that started have a lift to show.
    for promotion in (promotion for promotion in retailer.promotions if promotion.start <= retailer.history_end):
        per_day = {
            day: sum(quantity[promotion.sku_code, place, day] for place in promotion.location_ids) for day in days
        }
        during = [sold for day, sold in per_day.items() if promotion.start <= day <= promotion.end]
        outside = [sold for day, sold in per_day.items() if not promotion.start <= day <= promotion.end]
        lifts.append(statistics.mean(during) / max(statistics.mean(outside), 1e-9))

    assert len(retailer.promotions) == retailer.scale.promotion_count
    assert len(lifts) > 0.8 * len(retailer.promotions)
    assert statistics.median(lifts) > 1.4
    assert sum(lift > 1.0 for lift in lifts) >= 0.8 * len(lifts)


def test_promoted_lines_carry_the_promotion_price_difference_as_discount(
    retailer: DemoRetailer, sales: list[Sale]
) -> None:
    promotions = {promotion.promotion_id: promotion for promotion in retailer.promotions}
    promoted = 0
    for sale in sales:
        for line in sale.lines:
            if line.promotion_id is None:
                assert line.discount_amount == Decimal("0.00")
                continue
            promoted += 1
            promotion = promotions[line.promotion_id]
            assert promotion.sku_code == line.sku_code
            assert promotion.applies(sale.location_id, sale.business_date)
            expected = ((line.unit_price - promotion.promo_price) * line.quantity).quantize(Decimal("0.01"))
            assert abs(line.discount_amount - expected) <= Decimal("0.01")

    assert promoted > 1_000


def test_festival_food_sells_only_in_its_season(retailer: DemoRetailer, daily: list[DailySales]) -> None:
    seasonal = {sku.sku_code: sku for sku in retailer.skus if sku.seasonal_occasion is not None}
    seasons = {sku.sku_code: occasion for sku in retailer.skus if (occasion := sku.seasonal_occasion) is not None}
    sold_on: dict[str, set[date]] = defaultdict(set)
    for row in daily:
        if row.sku_code in seasonal:
            sold_on[row.sku_code].add(row.business_date)
    mooncakes = [code for code, sku in seasonal.items() if "月饼" in sku.name]

    assert mooncakes
    assert all(date(2026, 8, 1) <= day <= date(2026, 9, 27) for code in mooncakes for day in sold_on[code])
    assert any(sold_on[code] for code in mooncakes)
    for code, days in sold_on.items():
        assert all(retailer.calendar.in_season(seasons[code], day) for day in days)


# -- catalogue, suppliers, locations -----------------------------------------------------


def test_every_barcode_is_a_valid_and_unique_ean13(retailer: DemoRetailer) -> None:
    barcodes = [sku.barcode for sku in retailer.skus]

    assert all(is_valid_ean13(barcode) for barcode in barcodes)
    assert len(set(barcodes)) == len(barcodes)
    assert all(barcode.startswith("20") for sku in retailer.skus if sku.sold_by_weight for barcode in [sku.barcode])
    assert all(barcode.startswith("69") for sku in retailer.skus if not sku.sold_by_weight for barcode in [sku.barcode])


def test_the_catalogue_has_a_two_level_tree_and_hundreds_of_skus(retailer: DemoRetailer) -> None:
    categories = {category.category_code: category for category in retailer.categories}
    leaves = {code for code, category in categories.items() if category.level == 2}

    assert len(retailer.skus) == 300
    assert all(categories[category.parent_code].level == 1 for category in categories.values() if category.parent_code)
    assert {sku.category_code for sku in retailer.skus} == leaves
    assert [sku.sku_code for sku in retailer.skus] == [f"SKU{n:05d}" for n in range(1, 301)]
    assert all(sku.unit is Unit.KG for sku in retailer.skus if sku.sold_by_weight)
    assert any(sku.sold_by_weight for sku in retailer.skus)
    assert any(sku.perishable for sku in retailer.skus)


def test_base_price_is_above_cost_and_money_has_two_places(retailer: DemoRetailer) -> None:
    for sku in retailer.skus:
        assert is_money(sku.base_price)
        assert is_money(sku.cost_price)
        assert Decimal("0.00") < sku.cost_price < sku.base_price
        assert sku.base_price / sku.cost_price < 3
    for promotion in retailer.promotions:
        assert is_money(promotion.promo_price)
        assert promotion.promo_price < retailer.sku(promotion.sku_code).base_price


def test_every_sku_has_exactly_one_existing_supplier(retailer: DemoRetailer) -> None:
    supplied = Counter(code for supplier in retailer.suppliers for code in supplier.sku_codes)

    assert 4 <= len(retailer.suppliers) <= 6
    assert all(retailer.supplier(sku.supplier_id).supplier_id == sku.supplier_id for sku in retailer.skus)
    assert supplied == Counter(sku.sku_code for sku in retailer.skus)
    assert all(code in retailer.supplier(retailer.sku(code).supplier_id).sku_codes for code in supplied)
    assert all(supplier.sku_codes for supplier in retailer.suppliers)
    for supplier in retailer.suppliers:
        assert (supplier.commission_rate is None) == (supplier.settlement_mode.value == "purchase")
    assert {supplier.settlement_mode.value for supplier in retailer.suppliers} == {"purchase", "consignment"}


def test_locations_are_stores_a_warehouse_and_an_online_shop(retailer: DemoRetailer) -> None:
    assert [store.location_id for store in retailer.stores] == [f"S{n:03d}" for n in range(1, 9)]
    assert [location.location_id for location in retailer.warehouses] == ["W01"]
    assert [location.location_id for location in retailer.online_locations] == ["ONLINE01"]
    assert len({store.city for store in retailer.stores}) >= 3
    assert all(store.opening_hours is not None and Channel.STORE in store.channels for store in retailer.stores)
    assert retailer.online_locations[0].opening_hours is None
    assert retailer.online_locations[0].fulfilled_from == "W01"
    assert retailer.warehouses[0].channels == ()


def test_clients_are_bound_to_existing_stores_and_suppliers(retailer: DemoRetailer) -> None:
    pos_clients = {client.client_id: client for client in retailer.clients if client.kind.value == "pos_terminal"}
    terminals = {terminal: store.location_id for store in retailer.stores for terminal in store.pos_terminal_ids}
    supplier_users = [client for client in retailer.clients if client.kind.value == "supplier_user"]

    assert {client_id: client.store_id for client_id, client in pos_clients.items()} == terminals
    assert {client.supplier_id for client in supplier_users} == {
        supplier.supplier_id for supplier in retailer.suppliers
    }
    assert len({client.client_id for client in retailer.clients}) == len(retailer.clients)
    assert all(client.secret.startswith("demo-") for client in retailer.clients)


# -- members -------------------------------------------------------------------------------


def test_ids_phones_and_identities_are_unique_at_demo_scale(members: list[Member]) -> None:
    values = [identity.value for member in members for identity in member.identities]

    assert [member.member_id for member in members] == [f"M{n:07d}" for n in range(1, 3_001)]
    assert len({member.phone for member in members}) == len(members)
    assert len(set(values)) == len(values)
    assert all(re.fullmatch(r"1[3-9]\d{9}", member.phone) for member in members)
    assert all(member.identity(IdentityKind.PHONE) == member.phone for member in members)


def test_members_have_some_but_not_all_channel_identities(members: list[Member]) -> None:
    kinds = Counter(identity.kind for member in members for identity in member.identities)
    cards = [member.identity(IdentityKind.POS_CARD) for member in members]
    unionids = [member.identity(IdentityKind.WECHAT_UNIONID) for member in members]

    assert kinds[IdentityKind.PHONE] == len(members)
    for kind in (
        IdentityKind.WECHAT_UNIONID,
        IdentityKind.WECHAT_OPENID,
        IdentityKind.APP_USER_ID,
        IdentityKind.POS_CARD,
    ):
        assert 0.1 * len(members) < kinds[kind] < 0.9 * len(members)
    assert all(is_valid_luhn(card) for card in cards if card)
    assert all(len(unionid) == 28 and unionid.startswith("o") for unionid in unionids if unionid)
    assert all(member.consent.wechat <= (member.identity(IdentityKind.WECHAT_OPENID) is not None) for member in members)


def test_members_register_in_id_order_before_the_history_ends(retailer: DemoRetailer, members: list[Member]) -> None:
    registered = [member.registered_at for member in members]
    store_ids = {store.location_id for store in retailer.stores}

    assert [moment.date() for moment in registered] == sorted(moment.date() for moment in registered)
    assert registered[-1].date() <= retailer.history_end
    assert all(member.home_store_id in store_ids for member in members)
    assert all(identity.bound_at >= member.registered_at for member in members for identity in member.identities)
    day = date(2026, 7, 1)
    count = retailer.members_registered_before(day)
    assert members[count - 1].registered_at.date() < day <= members[count].registered_at.date()


def test_a_member_is_computed_directly_at_benchmark_scale_and_equals_the_iterated_one() -> None:
    benchmark = DemoRetailer(seed=SEED, scale=DemoScale.benchmark(end_date=END))

    last = benchmark.member(999_999)  # would take the better part of a minute if it iterated

    assert benchmark.member_count == 1_000_000
    assert last.member_id == "M1000000"
    assert last == benchmark.member_by_id("M1000000")
    assert last.registered_at.date() <= benchmark.history_end
    *_, iterated = benchmark.iter_members(stop=2_001)
    assert iterated == benchmark.member(2_000)
    with pytest.raises(IndexError):
        benchmark.member(1_000_000)


# -- sales ---------------------------------------------------------------------------------


def test_every_sale_refers_to_existing_locations_skus_terminals_and_registered_members(
    retailer: DemoRetailer, sales: list[Sale], members: list[Member]
) -> None:
    selling = {location.location_id: location for location in retailer.selling_locations}
    for sale in sales:
        location = selling[sale.location_id]
        assert sale.channel in location.channels
        assert (sale.terminal_id is not None) == (sale.channel is Channel.STORE)
        assert sale.terminal_id is None or sale.terminal_id in location.pos_terminal_ids
        if sale.member_id is not None:
            member = member_of(sale, members)
            assert member.member_id == sale.member_id
            assert member.registered_at < sale.occurred_at
        else:
            assert sale.channel is Channel.STORE
        for line in sale.lines:
            sku = retailer.sku(line.sku_code)
            assert not (sku.sold_by_weight and location.kind is LocationKind.ONLINE)
            assert line.unit_price == sku.base_price


def test_sales_happen_within_opening_hours_on_their_business_date(retailer: DemoRetailer, sales: list[Sale]) -> None:
    for sale in sales:
        hours = retailer.location(sale.location_id).opening_hours
        assert sale.occurred_at.date() == sale.business_date
        assert sale.occurred_at.utcoffset() == timedelta(hours=8)
        assert hours is None or hours.contains(sale.occurred_at.time())
    assert [sale.occurred_at for sale in sales] == sorted(sale.occurred_at for sale in sales)


def test_sale_ids_are_unique_and_readable(sales: list[Sale]) -> None:
    ids = [sale.sale_id for sale in sales]

    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"(S\d{3}|ONLINE01)-2026\d{4}-\d{5}", sale_id) for sale_id in ids)


def test_sale_amounts_are_two_place_decimals_that_add_up(retailer: DemoRetailer, sales: list[Sale]) -> None:
    for sale in sales:
        assert sale.lines
        for line in sale.lines:
            assert all(map(is_money, (line.unit_price, line.gross_amount, line.discount_amount, line.net_amount)))
            assert line.net_amount == line.gross_amount - line.discount_amount >= Decimal("0.00")
            assert line.quantity > 0
            assert line.quantity.as_tuple().exponent == (-3 if retailer.sku(line.sku_code).sold_by_weight else 0)
        assert all(map(is_money, (sale.gross_amount, sale.discount_amount, sale.total_amount)))
        assert sale.total_amount == sum((line.net_amount for line in sale.lines), Decimal("0.00"))
        assert sale.total_amount == sum((payment.amount for payment in sale.payments), Decimal("0.00"))


def test_about_sixty_percent_of_receipts_are_by_members_mostly_at_their_home_store(
    sales: list[Sale], members: list[Member]
) -> None:
    by_members = [sale for sale in sales if sale.member_id is not None]
    in_store = [sale for sale in by_members if sale.location_id != "ONLINE01"]
    at_home = [sale for sale in in_store if member_of(sale, members).home_store_id == sale.location_id]
    purchases = Counter(sale.member_id for sale in by_members)

    assert 0.5 < len(by_members) / len(sales) < 0.7
    assert 0.8 < len(at_home) / len(in_store) < 0.95  # some shop near work, or at a bigger store
    assert max(purchases.values()) > 3 * statistics.median(purchases.values())  # loyal regulars and rare visitors


def test_online_sales_are_booked_at_the_online_location(sales: list[Sale]) -> None:
    online = [sale for sale in sales if sale.location_id == "ONLINE01"]

    assert 0.05 < len(online) / len(sales) < 0.3
    assert {sale.channel for sale in online} == {Channel.ONLINE, Channel.MINI_PROGRAM}


def test_daily_sales_add_up_to_the_receipts(retailer: DemoRetailer, sales: list[Sale], daily: list[DailySales]) -> None:
    keys = [(row.business_date, row.location_id, row.sku_code) for row in daily]

    assert len(set(keys)) == len(keys)
    assert keys == sorted(keys)
    assert sum(row.revenue for row in daily) == sum(sale.total_amount for sale in sales)
    assert sum(row.sale_count for row in daily) == sum(len(sale.lines) for sale in sales)
    assert all(is_money(row.revenue) and row.revenue == row.gross_amount - row.discount_amount for row in daily)
    first_day = retailer.history_start
    assert [row for row in daily if row.business_date == first_day] == list(retailer.daily_sales(first_day, first_day))


def test_stock_levels_cover_each_locations_assortment(retailer: DemoRetailer) -> None:
    levels = list(retailer.stock_levels())
    per_location = Counter(level.location_id for level in levels)
    loose = sum(sku.sold_by_weight for sku in retailer.skus)

    assert per_location["W01"] == len(retailer.skus)
    assert all(per_location[store.location_id] == len(retailer.skus) for store in retailer.stores)
    assert per_location["ONLINE01"] == len(retailer.skus) - loose
    assert all(level.on_hand >= 0 and level.safety_stock >= 0 for level in levels)
    assert any(level.on_hand == 0 for level in levels)
    assert all(
        level.on_hand.as_tuple().exponent == (-3 if retailer.sku(level.sku_code).sold_by_weight else 0)
        for level in levels
    )


# -- scale and command line ----------------------------------------------------------------


def test_impossible_scales_are_refused() -> None:
    with pytest.raises(ValueError, match="store_count"):
        DemoScale(store_count=0)
    with pytest.raises(ValueError, match="member_count"):
        DemoScale(member_count=10_000_000)
    with pytest.raises(ValueError, match="members_since"):
        DemoScale(members_since=date(2026, 10, 1))


def test_the_command_line_writes_one_json_lines_file_per_record_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny = dataclasses.replace(
        DemoScale.demo(), store_count=2, sku_count=40, supplier_count=2, member_count=50, history_days=2
    )
    monkeypatch.setitem(cli._SCALES, "demo", lambda: tiny)

    assert cli.main(["--jsonl", str(tmp_path)]) == 0

    retailer = DemoRetailer(seed=SEED, scale=tiny)
    members = (tmp_path / "members.jsonl").read_text(encoding="utf-8").splitlines()
    sales = [json.loads(line) for line in (tmp_path / "sales.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(members) == 50
    assert json.loads(members[0])["member_id"] == "M0000001"
    assert len(sales) == len(list(retailer.iter_sales()))
    assert Decimal(sales[0]["total_amount"]) == retailer.sales_on(retailer.history_start)[0].total_amount
    for name in (
        "locations",
        "categories",
        "skus",
        "suppliers",
        "promotions",
        "holidays",
        "clients",
        "stock_levels",
        "daily_sales",
    ):
        assert (tmp_path / f"{name}.jsonl").stat().st_size > 0
    assert cli.main(["--summary"]) == 0
    assert "members             50" in capsys.readouterr().out
