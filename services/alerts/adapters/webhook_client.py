"""POSTing a robot's JSON body over HTTP (httpx), as the delivery worker's poster."""

from __future__ import annotations

import httpx


class WebhookFailed(Exception):
    """The robot answered with a status that is not 2xx, or said so in its body."""


class WebhookClient:
    def __init__(self, *, timeout_seconds: float = 5.0) -> None:
        self._client = httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False)

    async def post(self, url: str, body: dict[str, object]) -> None:
        try:
            response = await self._client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise WebhookFailed(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise WebhookFailed(f"HTTP {response.status_code}: {response.text[:200]}")
        # WeCom and DingTalk answer 200 with {"errcode": 0} on success, another code on a refusal.
        try:
            answer = response.json()
        except ValueError:
            return
        if isinstance(answer, dict) and answer.get("errcode", 0) not in (0, "0"):
            raise WebhookFailed(f"errcode {answer.get('errcode')}: {str(answer.get('errmsg', ''))[:200]}")

    async def close(self) -> None:
        await self._client.aclose()
