"""The trading calendar: Chinese public holidays, festivals and shopping events, and weekdays.

The published part is fixed data (the State Council's 2026 holiday schedule, the
traditional festivals, the e-commerce events, and the tail of 2025). The demo's history
ends yesterday, so it may reach years the table does not list: :func:`holidays_between`
then moves each of 2026's events to the same month and day of that year (an approximation
for the lunar festivals, which drift, and good enough for a demo's demand shape). It
depends only on the years asked for, never on today's date. Uplifts are this demo's
assumptions, tuned so effects are clearly visible: stores get busy before the Spring
Festival and during golden week, online sales peak on 618 and Double 11 and pause while
couriers are home for the Spring Festival.
"""

from __future__ import annotations

import dataclasses
from datetime import date

from demodata.model import Holiday, HolidayKind, LocationKind, Occasion

PUBLIC = HolidayKind.PUBLIC_HOLIDAY
FESTIVAL = HolidayKind.TRADITIONAL_FESTIVAL
SHOPPING = HolidayKind.SHOPPING_FESTIVAL
SEASON = HolidayKind.SHOPPING_SEASON


def _holiday(row: tuple[Occasion, str, str, HolidayKind, str, str, float, float]) -> Holiday:
    occasion, name, name_en, kind, start, end, store_uplift, online_uplift = row
    first = date.fromisoformat(start)
    return Holiday(
        holiday_id=f"{occasion.value.upper()}_{first.year}",
        occasion=occasion,
        name=name,
        name_en=name_en,
        kind=kind,
        start=first,
        end=date.fromisoformat(end or start),
        day_off=kind is PUBLIC,
        store_uplift=store_uplift,
        online_uplift=online_uplift,
    )


_O = Occasion
_ROWS: tuple[tuple[Occasion, str, str, HolidayKind, str, str, float, float], ...] = (
    # occasion, name, English name, kind, first day, last day ("": same), store uplift, online uplift
    # 2025, autumn onwards: Mid-Autumn fell inside the eight-day National Day break.
    (_O.NATIONAL_DAY, "国庆节", "National Day golden week", PUBLIC, "2025-10-01", "2025-10-08", 1.35, 1.15),
    (_O.MID_AUTUMN, "中秋节", "Mid-Autumn Festival", PUBLIC, "2025-10-06", "", 1.2, 1.1),
    (_O.DOUBLE_11_PRESALE, "双11预售", "Double 11 pre-sale", SEASON, "2025-10-20", "2025-11-10", 1.03, 1.35),
    (_O.DOUBLE_11, "双11购物节", "Double 11 (Singles' Day)", SHOPPING, "2025-11-11", "", 1.15, 2.6),
    (_O.DOUBLE_12, "双12购物节", "Double 12", SHOPPING, "2025-12-12", "", 1.05, 1.6),
    (_O.CHRISTMAS, "圣诞节", "Christmas", FESTIVAL, "2025-12-24", "2025-12-25", 1.15, 1.1),
    # 2026
    (_O.NEW_YEAR, "元旦", "New Year's Day", PUBLIC, "2026-01-01", "2026-01-03", 1.25, 1.1),
    (_O.SPRING_FESTIVAL_SHOPPING, "年货节", "Spring Festival shopping", SEASON, "2026-02-01", "2026-02-14", 1.6, 1.4),
    (_O.SPRING_FESTIVAL, "春节", "Spring Festival", PUBLIC, "2026-02-15", "2026-02-23", 1.1, 0.6),
    (_O.LANTERN_FESTIVAL, "元宵节", "Lantern Festival", FESTIVAL, "2026-03-03", "", 1.15, 1.0),
    (_O.WOMENS_DAY, "三八女神节", "Women's Day", SHOPPING, "2026-03-08", "", 1.05, 1.3),
    (_O.QINGMING, "清明节", "Qingming Festival", PUBLIC, "2026-04-04", "2026-04-06", 1.1, 1.0),
    (_O.LABOUR_DAY, "劳动节", "Labour Day", PUBLIC, "2026-05-01", "2026-05-05", 1.3, 1.15),
    (_O.DAY_520, "520", "520 (sweethearts' day)", SHOPPING, "2026-05-20", "", 1.05, 1.2),
    (_O.MID_YEAR_618_PRESALE, "618预售", "618 pre-sale", SEASON, "2026-06-01", "2026-06-17", 1.0, 1.3),
    (_O.MID_YEAR_618, "618年中购物节", "618 mid-year shopping festival", SHOPPING, "2026-06-18", "", 1.1, 2.2),
    (_O.DRAGON_BOAT, "端午节", "Dragon Boat Festival", PUBLIC, "2026-06-19", "2026-06-21", 1.25, 1.05),
    (_O.QIXI, "七夕", "Qixi (Chinese Valentine's Day)", FESTIVAL, "2026-08-19", "", 1.05, 1.2),
    (_O.MID_AUTUMN_SHOPPING, "中秋备货", "Mid-Autumn shopping", SEASON, "2026-09-14", "2026-09-24", 1.2, 1.15),
    (_O.MID_AUTUMN, "中秋节", "Mid-Autumn Festival", PUBLIC, "2026-09-25", "2026-09-27", 1.35, 1.1),
    (_O.NATIONAL_DAY, "国庆节", "National Day golden week", PUBLIC, "2026-10-01", "2026-10-07", 1.4, 1.15),
    (_O.DOUBLE_11_PRESALE, "双11预售", "Double 11 pre-sale", SEASON, "2026-10-20", "2026-11-10", 1.03, 1.35),
    (_O.DOUBLE_11, "双11购物节", "Double 11 (Singles' Day)", SHOPPING, "2026-11-11", "", 1.15, 2.6),
    (_O.DOUBLE_12, "双12购物节", "Double 12", SHOPPING, "2026-12-12", "", 1.05, 1.6),
    (_O.CHRISTMAS, "圣诞节", "Christmas", FESTIVAL, "2026-12-24", "2026-12-25", 1.15, 1.1),
)

HOLIDAYS: tuple[Holiday, ...] = tuple(_holiday(row) for row in _ROWS)
"""Every published calendar event, in date order; events may overlap and then multiply."""

TEMPLATE_YEAR = 2026
"""The year whose events stand in for a year the table does not list."""


def holidays_between(first: date, last: date) -> tuple[Holiday, ...]:
    """The calendar events of every year from ``first`` to ``last``, in date order.

    A published event is used as it is; an occasion a year does not list is the template
    year's event moved to that year (same month and day).
    """
    published = {(holiday.occasion, holiday.start.year): holiday for holiday in HOLIDAYS}
    template = [holiday for holiday in HOLIDAYS if holiday.start.year == TEMPLATE_YEAR]  # every occasion once
    events = [
        published.get((holiday.occasion, year)) or _moved_to(holiday, year)
        for year in range(first.year, last.year + 1)
        for holiday in template
    ]
    return tuple(sorted(events, key=lambda holiday: (holiday.start, holiday.holiday_id)))


def _moved_to(holiday: Holiday, year: int) -> Holiday:
    # Every template event starts and ends within its year, so only the year changes.
    return dataclasses.replace(
        holiday,
        holiday_id=f"{holiday.occasion.value.upper()}_{year}",
        start=holiday.start.replace(year=year),
        end=holiday.end.replace(year=year),
    )


MAKE_UP_WORKDAYS: tuple[date, ...] = (
    date(2025, 9, 28),
    date(2025, 10, 11),
    date(2026, 1, 4),
    date(2026, 2, 14),
    date(2026, 2, 28),
    date(2026, 5, 9),
    date(2026, 9, 20),
    date(2026, 10, 10),
)
"""Weekend days that are official workdays (调休) to pay for long breaks: shoppers act as on a weekday."""

SEASON_LEAD_DAYS: dict[Occasion, int] = {
    Occasion.LANTERN_FESTIVAL: 20,
    Occasion.QINGMING: 18,
    Occasion.DRAGON_BOAT: 25,
    Occasion.MID_AUTUMN: 35,
}
"""How many days before its occasion festival food reaches the shelves."""

# Relative traffic Monday..Sunday. Stores feel the weekend strongly, online much less.
_STORE_WEEKDAY = (0.88, 0.86, 0.9, 0.94, 1.08, 1.45, 1.38)
_ONLINE_WEEKDAY = (1.02, 0.98, 0.97, 0.98, 1.0, 1.06, 1.1)
_SATURDAY = 5
_TUESDAY = 1


class TradingCalendar:
    """Answers how busy a kind of location is on a day, relative to an ordinary Monday-to-Sunday week."""

    def __init__(self, holidays: tuple[Holiday, ...] = HOLIDAYS, make_up_workdays: tuple[date, ...] = MAKE_UP_WORKDAYS):
        self.holidays = holidays
        self.make_up_workdays = frozenset(make_up_workdays)

    def holidays_on(self, day: date) -> list[Holiday]:
        return [holiday for holiday in self.holidays if holiday.contains(day)]

    def is_day_off(self, day: date) -> bool:
        """Whether most people do not work on ``day`` (weekend or statutory holiday, not a make-up workday)."""
        if day in self.make_up_workdays:
            return False
        return day.weekday() >= _SATURDAY or any(holiday.day_off for holiday in self.holidays_on(day))

    def demand_factor(self, kind: LocationKind, day: date) -> float:
        """Expected traffic on ``day`` relative to an average day, before trend and noise."""
        weekday_factors = _ONLINE_WEEKDAY if kind is LocationKind.ONLINE else _STORE_WEEKDAY
        holidays = self.holidays_on(day)
        if day in self.make_up_workdays:
            factor = weekday_factors[_TUESDAY]
        elif any(holiday.day_off for holiday in holidays):
            factor = max(weekday_factors[_SATURDAY], weekday_factors[day.weekday()])
        else:
            factor = weekday_factors[day.weekday()]
        for holiday in holidays:
            factor *= holiday.online_uplift if kind is LocationKind.ONLINE else holiday.store_uplift
        return factor

    def in_season(self, occasion: Occasion, day: date) -> bool:
        """Whether festival food for ``occasion`` is on sale on ``day``."""
        lead_days = SEASON_LEAD_DAYS.get(occasion, 14)
        return any(
            holiday.occasion is occasion and (holiday.start - day).days <= lead_days and day <= holiday.end
            for holiday in self.holidays
        )
