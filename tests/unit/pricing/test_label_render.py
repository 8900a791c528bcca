"""Shelf-label pictures drawn by the service: Chinese names have glyphs, the regular price is
struck through where it is drawn, every tag size gets its own picture, and the hash the AP
will report follows from the picture alone (palette-only pixels survive the JPEG upload)."""

from __future__ import annotations

import dataclasses
import io

import pytest
from PIL import Image, ImageChops

from services.pricing.adapters.esl.base import LabelContent
from services.pricing.adapters.esl.render import (
    BLACK,
    WHITE,
    TagType,
    _font,
    draw_label,
    encode_jpeg,
    image_hash,
    raw_bitmap,
)

RED = (255, 0, 0)
TWO_NINE = TagType(0x01, 296, 128, RED, rotate_buffer=True)
SIZES = [TWO_NINE, TagType(0x00, 152, 152, RED), TagType(0x02, 400, 300, RED), TagType(0x33, 296, 128, None, True)]


def label(**changes: object) -> LabelContent:
    base = LabelContent(
        sku="SKU-1",
        name="东方树叶 乌龙茶 500毫升",
        unit="瓶",
        barcode="6901234567892",
        currency="CNY",
        price_fen=1290,
        regular_price_fen=None,
        promotion_text="",
        template="standard",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # test helper: fields by keyword


def ink(image: Image.Image, colour: tuple[int, int, int] = BLACK) -> set[tuple[int, int]]:
    rgb = image.convert("RGB")
    return {(x, y) for y in range(rgb.height) for x in range(rgb.width) if rgb.getpixel((x, y)) == colour}


def test_the_font_has_the_chinese_glyphs_of_article_names() -> None:
    font = _font(20, "Medium")
    missing = font.getmask(chr(0x10FFFD))  # a private-use code point: no font has it, the "tofu" box
    for glyph in "乌龙茶东方树叶毫升瓶":
        mask = font.getmask(glyph)
        assert mask.getbbox() is not None, glyph
        assert bytes(mask) != bytes(missing), glyph


def test_a_chinese_name_is_drawn_and_each_name_draws_differently() -> None:
    tea, water = draw_label(label(), TWO_NINE), draw_label(label(name="农夫山泉 矿泉水"), TWO_NINE)

    name_strip = (0, 0, 296, 28)
    assert len(ink(tea.crop(name_strip))) > 150
    assert ImageChops.difference(tea.crop(name_strip), water.crop(name_strip)).getbbox() is not None


def test_the_regular_price_is_struck_through_the_middle_of_its_digits() -> None:
    promoted = label(price_fen=990, regular_price_fen=1290, promotion_text="限时特价", template="promo")
    with_strike = draw_label(promoted, TWO_NINE)

    # The line is the one horizontal black run longer than any glyph, inside the digits' ink box.
    region = with_strike.crop((0, 45, 120, 80))
    rows: dict[int, int] = {}
    for _, y in ink(region):
        rows[y] = rows.get(y, 0) + 1
    strike_rows = [y for y, count in rows.items() if count >= 30]
    digit_rows = [y for y, count in rows.items() if count < 30]
    assert strike_rows
    assert min(digit_rows) < min(strike_rows) <= max(strike_rows) < max(digit_rows)
    assert ink(with_strike, RED)  # the promotion price and text in the accent colour


def test_no_strike_through_without_a_regular_price() -> None:
    plain = draw_label(label(), TWO_NINE).crop((0, 45, 120, 80))
    assert ink(plain) == set()


@pytest.mark.parametrize("tag", SIZES, ids=lambda t: f"{t.width}x{t.height}")
def test_each_tag_size_gets_a_picture_of_its_size_in_its_palette_only(tag: TagType) -> None:
    picture = draw_label(label(regular_price_fen=1590, promotion_text="8折"), tag)

    assert picture.size == (tag.width, tag.height)
    palette = {WHITE, BLACK} | ({tag.accent} if tag.accent else set())
    assert set(picture.get_flattened_data()) <= palette


@pytest.mark.parametrize("tag", SIZES, ids=lambda t: f"{t.width}x{t.height}")
def test_the_uploaded_jpeg_maps_back_to_exactly_the_drawn_pixels(tag: TagType) -> None:
    picture = draw_label(label(regular_price_fen=1590, promotion_text="限时特价"), tag)
    palette = [WHITE, BLACK] + ([tag.accent] if tag.accent else [])

    decoded = Image.open(io.BytesIO(encode_jpeg(picture))).convert("RGB").tobytes()
    pixels = [tuple(decoded[i : i + 3]) for i in range(0, len(decoded), 3)]
    nearest = [min(palette, key=lambda c: sum((a - b) ** 2 for a, b in zip(c, p, strict=True))) for p in pixels]

    assert nearest == list(picture.get_flattened_data())


def test_the_hash_is_stable_and_tells_contents_apart() -> None:
    def hash_of(content: LabelContent) -> str:
        return image_hash(raw_bitmap(draw_label(content, TWO_NINE), TWO_NINE))

    assert hash_of(label()) == hash_of(label())
    assert hash_of(label()) != hash_of(label(price_fen=1280))
    assert hash_of(label(template="shelf-b")) == hash_of(label())  # not drawn: the same picture, the same hash
    assert len(hash_of(label())) == 32
    assert hash_of(label()).endswith("0" * 16)
