"""The one paging rule of every list route: ``page: Paging`` in its parameters.

- ``page_size`` is 1 to ``MAX_PAGE_SIZE`` (settings; at most 500, the most any backend
  serves in one page), default :data:`DEFAULT_PAGE_SIZE` or the cap when
  lower. The OpenAPI document's ``maximum`` is that same setting (:func:`document_page_size`),
  so the schema and the refusal never disagree.
- ``page_token`` is opaque: the gateway signs the backend's own cursor together with the
  listing it belongs to (the path and every other query parameter). A token that is not
  one the gateway handed out for this listing — garbage, tampered with, from another
  listing or filter, or signed by a key no longer configured — is refused with
  :data:`INVALID_PAGE_TOKEN`; it never silently answers the first page, and a backend never
  sees anything but its own cursors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from retail.common.v1 import paging_pb2

from gateway.http import problems
from gateway.http.resources import Resources

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_TOKEN_LENGTH = 512
INVALID_PAGE_TOKEN = problems.ProblemType("invalid-page-token", "The page token is not one of this listing", 422)

_TOKEN_VERSION = b"\x01"
_MAC_BYTES = 16
_KEY_PURPOSE = b"retail-gateway/page-token/v1"
_BASE64URL = r"^[A-Za-z0-9_-]+$"
# Query parameters that move through a listing rather than choose it.
_PAGING_PARAMETERS = frozenset({"page_size", "page_token"})


@lru_cache(maxsize=8)
def _page_token_keys(signing_keys: tuple[tuple[str, bytes], ...]) -> tuple[bytes, ...]:
    """One page-token key per access-token signing key (the first signs): rotating those rotates these."""
    return tuple(hmac.new(key, _KEY_PURPOSE, hashlib.sha256).digest() for _, key in signing_keys)


def _mac(key: bytes, listing: bytes, cursor: bytes) -> bytes:
    return hmac.new(key, listing + b"\x00" + cursor, hashlib.sha256).digest()[:_MAC_BYTES]


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Page:
    """Which page a list request asks for: its size and the backend's cursor (empty: the first page)."""

    size: int
    cursor: str
    listing: bytes
    keys: tuple[bytes, ...] = field(repr=False)

    def request(self, *, size: int | None = None) -> paging_pb2.PageRequest:
        """The backend's ``PageRequest`` (``size`` overrides the page size asked for)."""
        return paging_pb2.PageRequest(page_size=size or self.size, page_token=self.cursor)

    def next_token(self, backend_cursor: str) -> str | None:
        """The ``next_page_token`` to answer for the backend's next cursor; None on the last page."""
        if not backend_cursor:
            return None
        cursor = backend_cursor.encode()
        return _encode(_TOKEN_VERSION + _mac(self.keys[0], self.listing, cursor) + cursor)


def _listing_of(request: Request) -> bytes:
    query = request.query_params.multi_items()
    chosen = sorted((name, value) for name, value in query if name not in _PAGING_PARAMETERS)
    return f"{request.url.path}?{urlencode(chosen)}".encode()


def _refused(detail: str, location: str, kind: str, problem_type: problems.ProblemType) -> problems.ProblemError:
    error = {"location": location, "message": detail, "type": kind}
    return problems.ProblemError(problem_type, detail, extensions={"errors": [error]})


def _cursor_of(token: str, listing: bytes, keys: tuple[bytes, ...]) -> str:
    try:
        raw = _decode(token)
    except (binascii.Error, ValueError):
        raw = b""
    version, mac, cursor = raw[:1], raw[1 : 1 + _MAC_BYTES], raw[1 + _MAC_BYTES :]
    signed = any(hmac.compare_digest(mac, _mac(key, listing, cursor)) for key in keys)
    if version == _TOKEN_VERSION and cursor and signed:
        # Only the gateway signs, and it signs the text cursors backends hand out.
        return cursor.decode()
    raise _refused(
        "page_token is not one this listing handed out (with these filters); start again without it",
        "query.page_token",
        "invalid_page_token",
        INVALID_PAGE_TOKEN,
    )


async def page_of(
    request: Request,
    resources: Resources,
    page_size: Annotated[
        int, Query(description="items per page, 1 to the `maximum` stated here (`MAX_PAGE_SIZE` of the deployment)")
    ] = DEFAULT_PAGE_SIZE,
    page_token: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_PAGE_TOKEN_LENGTH,
            pattern=_BASE64URL,
            description="`next_page_token` of the previous page, with the same other parameters; opaque",
        ),
    ] = None,
) -> Page:
    """The page a list request asks for, its size within the cap and its token verified."""
    cap = resources.settings.max_page_size
    if "page_size" not in request.query_params:
        page_size = min(DEFAULT_PAGE_SIZE, cap)
    if not 1 <= page_size <= cap:
        detail = f"page_size must be from 1 to {cap}"
        raise _refused(detail, "query.page_size", "page_size_out_of_range", problems.VALIDATION_ERROR)
    keys = _page_token_keys(tuple(resources.settings.signing_keys))
    listing = _listing_of(request)
    cursor = _cursor_of(page_token, listing, keys) if page_token is not None else ""
    return Page(size=page_size, cursor=cursor, listing=listing, keys=keys)


Paging = Annotated[Page, Depends(page_of)]


def document_page_size(openapi: dict[str, Any], cap: int) -> None:
    """State the deployment's page-size cap as the ``maximum`` of every ``page_size`` parameter."""
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter.get("name") == "page_size":
                    limits = {"format": "int32", "minimum": 1, "maximum": cap, "default": min(DEFAULT_PAGE_SIZE, cap)}
                    parameter["schema"].update(limits)
