"""Asserting a gRPC service's refusals: the status code and the stable reason it sends along."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from servicekit.grpc_server import REASON_METADATA_KEY


def reasons_of(error: grpc.aio.AioRpcError) -> list[str]:
    """The reason slugs in an RPC error's trailing metadata."""
    metadata: Any = error.trailing_metadata() or ()
    return [value for key, value in metadata if key == REASON_METADATA_KEY]


async def refused(call: Any, code: grpc.StatusCode, reason: str) -> str:
    """Await a call that must fail with ``code`` and ``reason``; returns the message."""
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    error = failure.value
    assert error.code() == code, error.details()
    reasons = reasons_of(error)
    assert reasons == [reason], (reasons, error.details())
    return str(error.details())
