"""Plain request fields the servicer checks before it maps anything: page sizes and days."""

from __future__ import annotations

from datetime import date

from retail.common.v1 import paging_pb2

from servicekit.errors import InvalidArgument

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def page_size(page: paging_pb2.PageRequest) -> int:
    size = page.page_size or DEFAULT_PAGE_SIZE
    if not 0 < size <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE}", reason="invalid-page-size")
    return size


def parse_day(text: str, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"{what} must be YYYY-MM-DD", reason="invalid-date") from None
