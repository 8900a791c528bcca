"""A reservation refused for a channel explains itself: what its locations hold, and what is held elsewhere."""

from __future__ import annotations

from decimal import Decimal

from services.inventory.domain.model import LocationStock, StockPosition, channel_shortfall


def held(location_id: str, kind: str, channels: tuple[str, ...], on_hand: int, reserved: int = 0) -> LocationStock:
    position = StockPosition("MILK", location_id, on_hand=Decimal(on_hand), reserved=Decimal(reserved))
    return LocationStock(position, kind, channels)


def located(facts: object) -> list[str]:
    assert isinstance(facts, list)
    return [fact["location_id"] for fact in facts]


STOCK = [
    held("S001", "store", ("store", "mini_program"), 3),
    held("S002", "store", ("store", "mini_program"), 5, reserved=1),
    held("S003", "store", ("store",), 0),
    held("W01", "warehouse", (), 50),
]


def test_without_split_it_says_no_single_location_has_it_all_though_together_they_do() -> None:
    refusal = channel_shortfall("MILK", "mini_program", Decimal(5), STOCK, allow_split=False)

    assert str(refusal) == (
        "7 of MILK available for channel mini_program (draws from: S002, S001), 5 requested; no single location "
        "has it all (at most 4 at one), allow_split would; not promisable to mini_program: "
        "50 at W01 (warehouse, serves no sales channel)"
    )
    assert (refusal.details["available"], refusal.details["available_total"]) == ("4", "7")
    assert located(refusal.details["draws_from"]) == ["S002", "S001"]


def test_with_split_the_available_amount_is_the_channels_total_and_empty_stock_elsewhere_is_not_named() -> None:
    refusal = channel_shortfall("MILK", "mini_program", Decimal(8), STOCK, allow_split=True)

    assert refusal.details["available"] == refusal.details["available_total"] == "7"
    assert "allow_split would" not in str(refusal)
    assert located(refusal.details["not_promisable"]) == ["W01"]


def test_a_channel_no_location_serves_draws_from_nothing() -> None:
    refusal = channel_shortfall("MILK", "click_and_collect", Decimal(1), STOCK, allow_split=False)

    assert str(refusal).startswith("0 of MILK available for channel click_and_collect (draws from: no location")
    assert refusal.details["draws_from"] == []
    assert located(refusal.details["not_promisable"]) == ["W01", "S002", "S001"]
