"""Shelf-label images drawn by the pricing service itself, and the hash the access point gives them.

Why server-side. The OpenEPaperLink AP draws JSON templates with the fonts on its own flash,
remaps the fonts a template names, and none of them has Chinese glyphs; what it draws cannot
be predicted bit for bit. So the service draws every label itself, with Pillow and Noto Sans
CJK SC (SIL Open Font License 1.1, from the pinned ``manimgx-fonts-cjk`` wheel), at the tag's
own size and colours (the AP's ``/tagtypes/<hwType>.json``), and uploads the finished picture.

The picture holds only the tag's palette colours (text is drawn without anti-aliasing), and it
travels as a quality-100 JPEG without chroma subsampling: the AP's JPEG decoder may be a level
or two off, but with ``dither=0`` it maps every pixel back to the nearest palette colour, which
is the drawn one. So the bitmap the AP builds, and the md5 it reports as the tag's ``hash``
once the tag took it, follow from the drawing alone: :func:`image_hash` computes that hash,
and the adapter acknowledges a label when the tag reports it.

The bitmap layout modelled here is the AP's uncompressed one (a 1-bit plane of black, then
one of the accent colour for 3-colour tags, rows top to bottom, most significant bit first,
the picture turned a quarter when the tag type says ``rotatebuffer``). Tag types the AP
sends compressed (zlib / G5) hash their compressed file instead; see docs/pricing.md.

Drawing is deterministic for a given Pillow and font version (both pinned); upgrading either
may change hashes, which only means every label is pushed once more.
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources

from PIL import Image, ImageDraw, ImageFont

from services.pricing.adapters.esl.base import LabelContent, format_fen

__all__ = ["TagType", "draw_label", "encode_jpeg", "image_hash", "prepare_upload", "raw_bitmap"]

_FONT_PACKAGE = "manimgx_fonts_cjk"
_FONT_FILE = "NotoSansCJK-VF.otf.ttc"
_FONT_INDEX_SC = 2  # the collection holds JP, KR, SC, TC, HK; SC has the simplified Chinese glyph forms
_BASE_WIDTH, _BASE_HEIGHT = 296, 128  # the layout is designed at 2.9" size and scaled

# FreeType faces are not thread-safe and the fonts are cached: one drawing at a time.
_DRAWING = threading.Lock()

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)


@dataclass(frozen=True)
class TagType:
    """What the AP's ``/tagtypes/<hwType>.json`` says about a tag's display."""

    hw_type: int
    width: int
    height: int
    accent: RGB | None  # the third colour (red or yellow), None for black-and-white tags
    rotate_buffer: bool = False


@cache
def _font(size: int, weight: str) -> ImageFont.FreeTypeFont:
    source = resources.files(_FONT_PACKAGE).joinpath(_FONT_FILE)
    with resources.as_file(source) as path:
        font = ImageFont.truetype(str(path), size, index=_FONT_INDEX_SC, layout_engine=ImageFont.Layout.BASIC)
    font.set_variation_by_name(weight)
    return font


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    """``text``, shortened with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def draw_label(content: LabelContent, tag: TagType) -> Image.Image:
    """The label picture at the tag's size, only in the tag's palette colours.

    Layout (scaled from 296×128): article name top left, promotion text and the struck-through
    regular price below it, the price large at the right, currency/unit under the price, and
    a rule with barcode and SKU at the bottom. The strike-through line is placed from the ink
    box of the regular price as drawn, so it crosses the digits whatever the font and size.
    """
    scale = min(tag.width / _BASE_WIDTH, tag.height / _BASE_HEIGHT)

    def px(value: float) -> int:
        return max(1, round(value * scale))

    accent = tag.accent or BLACK
    image = Image.new("RGB", (tag.width, tag.height), WHITE)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"  # no anti-aliasing: every pixel stays a palette colour
    margin = px(4)
    name_font = _font(px(20), "Medium")
    small_font = _font(px(13), "Regular")
    price_font = _font(px(46), "Bold")

    draw.text((margin, px(2)), _fit(draw, content.name, name_font, tag.width - 2 * margin), font=name_font, fill=BLACK)
    promoted = content.regular_price_fen is not None or bool(content.promotion_text)
    if content.promotion_text:
        text = _fit(draw, content.promotion_text, small_font, tag.width // 2)
        draw.text((margin, px(32)), text, font=small_font, fill=accent)
    if content.regular_price_fen is not None:
        regular = format_fen(content.regular_price_fen)
        origin = (margin, px(54))
        draw.text(origin, regular, font=small_font, fill=BLACK)
        left, top, right, bottom = draw.textbbox(origin, regular, font=small_font)
        middle = (top + bottom) // 2
        draw.line([(left - 1, middle), (right + 1, middle)], fill=BLACK, width=px(1.5))
    price = format_fen(content.price_fen)
    draw.text((tag.width - margin, px(26)), price, font=price_font, fill=accent if promoted else BLACK, anchor="ra")
    unit = f"{content.currency}/{content.unit}"
    draw.text((tag.width - margin, px(84)), unit, font=small_font, fill=BLACK, anchor="ra")
    rule = px(104)
    draw.line([(0, rule), (tag.width, rule)], fill=BLACK, width=1)
    footer = _fit(draw, f"{content.barcode}  SKU {content.sku}", small_font, tag.width - 2 * margin)
    draw.text((margin, rule + px(3)), footer, font=small_font, fill=BLACK)
    return image


def encode_jpeg(image: Image.Image) -> bytes:
    """The picture as the AP's image upload takes it: a JPEG, here quality 100 and 4:4:4."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=100, subsampling=0)
    return out.getvalue()


def raw_bitmap(image: Image.Image, tag: TagType) -> bytes:
    """The AP's uncompressed bitmap of a palette-only picture: black plane, then accent plane."""
    if tag.rotate_buffer:
        image = image.transpose(Image.Transpose.ROTATE_90)
    rgb = image.convert("RGB")
    data = rgb.tobytes()
    planes = []
    for colour in [BLACK] + ([tag.accent] if tag.accent is not None else []):
        wanted = bytes(colour)
        mask = bytes(255 if data[i : i + 3] == wanted else 0 for i in range(0, len(data), 3))
        planes.append(Image.frombytes("L", rgb.size, mask).convert("1", dither=Image.Dither.NONE).tobytes())
    return b"".join(planes)


def image_hash(raw: bytes) -> str:
    """The tag's ``hash`` as ``get_db`` prints it once the tag took this bitmap.

    The AP keeps the first 8 bytes of the md5 as the data version and prints all 16 bytes of
    its md5 field, the last 8 zero: 32 lower-case hex digits.
    """
    return hashlib.md5(raw, usedforsecurity=False).digest()[:8].hex() + "0" * 16


def prepare_upload(content: LabelContent, tag: TagType) -> tuple[bytes, str]:
    """The JPEG to upload for ``content`` on a tag of type ``tag``, and the hash the tag will
    report once it shows it. Thread-safe (callers run it off the event loop: ~10-20 ms)."""
    with _DRAWING:
        picture = draw_label(content, tag)
    return encode_jpeg(picture), image_hash(raw_bitmap(picture, tag))
