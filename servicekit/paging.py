"""Page tokens of a service's list RPCs: the key the next page continues after, opaque to clients.

A token is the key, prefixed and URL-safe base64 encoded without padding; a token that is not
one the service gave out is refused with a precise reason instead of silently restarting the
list. The gateway signs the tokens it hands to its own clients on top of this.
"""

from __future__ import annotations

import base64
import binascii

from servicekit.errors import InvalidArgument

_PREFIX = "k:"


class InvalidPageToken(InvalidArgument):
    reason = "invalid-page-token"


def page_token(key: str) -> str:
    """The token of a page that continues after ``key`` ('' on the last page)."""
    return base64.urlsafe_b64encode(f"{_PREFIX}{key}".encode()).decode().rstrip("=") if key else ""


def page_key(token: str) -> str:
    """The key a token continues after ('' for the first page)."""
    if not token:
        return ""
    try:
        key = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidPageToken("page_token is not one this service gave out") from None
    if not key.startswith(_PREFIX):
        raise InvalidPageToken("page_token is not one this service gave out")
    return key[len(_PREFIX) :]
