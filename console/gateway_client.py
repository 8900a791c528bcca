"""The console's one way out: the gateway's public HTTP API, with the session's bearer token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

# Answers meaning the backend behind a route is not there (yet): the route does not exist on
# this gateway, or the gateway has no such backend / it is down.
NOT_DEPLOYED = frozenset({404, 501, 502, 503})


class SignInRefused(Exception):
    """The gateway refused the credentials; the message is safe to show."""


class GatewayUnreachable(Exception):
    """The gateway did not answer."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def problem(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("detail") or self.body.get("title") or self.status)
        return str(self.status)


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


class GatewayClient:
    def __init__(self, base_url: str, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)

    async def close(self) -> None:
        await self._http.aclose()

    async def issue_token(self, client_id: str, client_secret: str) -> IssuedToken:
        grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        try:
            response = await self._http.post("/v1/auth/token", data=grant)
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(str(exc)) from exc
        if response.status_code in (400, 401):
            raise SignInRefused("unknown client, wrong secret or revoked client")
        if response.status_code != 200:
            raise GatewayUnreachable(f"the gateway answered {response.status_code}")
        body = response.json()
        return IssuedToken(str(body["access_token"]), int(body["expires_in"]))

    async def revoke(self, token: str) -> Answer:
        """Give the token up (sign-out): from then on the gateway refuses it, whoever holds a copy."""
        return await self._call("POST", token, "/v1/auth/revoke")

    async def get(self, token: str, path: str, params: dict[str, Any] | None = None) -> Answer:
        return await self._call("GET", token, path, params=params)

    async def post(self, token: str, path: str, body: Any, idempotency_key: str) -> Answer:
        return await self._call("POST", token, path, json=body, headers={"Idempotency-Key": idempotency_key})

    async def _call(self, method: str, token: str, path: str, **kwargs: Any) -> Answer:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        params = {k: v for k, v in (kwargs.pop("params", None) or {}).items() if v is not None}
        try:
            response = await self._http.request(method, path, headers=headers, params=params, **kwargs)
        except httpx.HTTPError as exc:
            return Answer(503, {"detail": f"the gateway did not answer: {type(exc).__name__}"})
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        return Answer(response.status_code, body)
