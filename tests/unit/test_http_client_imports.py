"""The HTTP client (httpx over httpcore: shelf-label stations, alert webhooks) asks on every
request which async library runs it, by ``import sniffio``. Without sniffio installed that
import fails each time, after a search of every folder on ``sys.path`` (about 30 us, four times
a request: a quarter of a small request's CPU). The pinned requirements install it, so the
question is answered from ``sys.modules`` and never reaches an import finder."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

import httpcore._synchronization as synchronization


class CountingFinder(MetaPathFinder):
    """Finds nothing; counts the imports that were not already in ``sys.modules``."""

    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        self.searched.append(fullname)
        return None


def test_asking_which_async_library_runs_searches_for_no_module() -> None:
    finder = CountingFinder()

    async def ask() -> list[str]:
        return [synchronization.current_async_library() for _ in range(100)]

    sys.meta_path.insert(0, finder)
    try:
        answers = asyncio.run(ask())
    finally:
        sys.meta_path.remove(finder)

    assert set(answers) == {"asyncio"}
    assert finder.searched == []
