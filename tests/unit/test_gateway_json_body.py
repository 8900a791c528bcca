"""The gateway's self-written JSON answers (orjson) must be the bytes FastAPI writes for the same
body (``json.dumps`` with its options), for every body of the kinds the gateway writes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.http.json_body import json_bytes, json_text


def fastapi_json(body: Any) -> bytes:
    """What ``fastapi.responses.JSONResponse`` renders."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


# What model_dump(mode="json") gives: strings (Chinese article names, control characters, quotes and
# backslashes in free text), 64-bit integers, booleans, null, and floats written without an exponent.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.text()
    | st.sampled_from(["福临门 花生油 5L", 'say "hi"\\', "line\nbreak\ttab\x00\x1f\x7f", "\u2028\u2029"])
    | st.floats(min_value=-1e15, max_value=1e15, allow_nan=False).filter(lambda x: x == 0 or abs(x) >= 1e-4)
)
bodies = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5), max_leaves=30
)


@given(bodies)
def test_the_bytes_are_fastapis_for_every_body_the_gateway_writes(body: Any) -> None:
    assert json_bytes(body) == fastapi_json(body)
    assert json_text(body) == fastapi_json(body).decode("utf-8")


def test_a_float_needing_an_exponent_keeps_its_value() -> None:
    """The one documented difference in form: the exponent is written unpadded, the number is the same."""
    for value in (1e-5, 2.5e-7, 1e16, -3e20):
        assert json.loads(json_bytes([value])) == [value]
