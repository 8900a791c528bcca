"""How a command answers: rendered once, inside its transaction, and kept under its request id.

A command handler takes a :class:`Reply` from the entrypoint: ``render`` turns what the command
produced into the answer (the RPC's response, though the service layer never sees that type) and
``codec`` keeps it, so a retry with the same request id answers with the very first answer and
changes nothing (servicekit's request-id store: :func:`~servicekit.idempotency.replay` /
:func:`~servicekit.idempotency.keep_reply`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from servicekit.idempotency import ReplyCodec

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Reply(Generic[T, R]):
    codec: ReplyCodec[R]
    render: Callable[[T], R]
