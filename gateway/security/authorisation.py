"""Authorisation as FastAPI dependencies: every route declares the scope it needs.

A route declares ``principal: Annotated[Principal, Depends(require(POS_SALES_WRITE))]``;
the dependency authenticates the bearer token (401 when missing, expired, badly signed,
of another algorithm or of a revoked client), applies the client's rate limit (429),
checks the scope (403) and returns the :class:`Principal`, whose ``ensure_*`` methods
check ownership of each object the route touches.
"""

from collections.abc import Awaitable, Callable, Coroutine
from functools import cache
from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2

from gateway.domain.scopes import CATALOGUE
from gateway.domain.tokens import InvalidToken
from gateway.http import problems
from gateway.http.resources import Resources, resources_of
from gateway.security.authentication import Principal
from gateway.security.rate_limits import RateLimiter, retry_after_header

TOKEN_URL = "/v1/auth/token"  # noqa: S105 - a path

oauth2_client_credentials = OAuth2(
    flows=OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL, scopes=CATALOGUE)),
    scheme_name="client_credentials",
    description="OAuth2 client credentials: exchange client_id and client_secret at "
    f"`{TOKEN_URL}` for a short-lived bearer token.",
    auto_error=False,
)

__all__ = ["TOKEN_URL", "Principal", "enforce_rate_limit", "require", "unauthenticated"]


def unauthenticated(detail: str) -> problems.ProblemError:
    """401 with the challenge RFC 6750 asks for."""
    return problems.ProblemError(
        problems.UNAUTHENTICATED, detail, headers={"WWW-Authenticate": 'Bearer realm="retail", error="invalid_token"'}
    )


async def admit_bearer(
    request: Request,
    resources: Resources,
    authorization: str | None,
    check: Callable[[str], Awaitable[Principal]],
) -> Principal:
    """The client presenting ``Authorization: Bearer <token>``, as ``check`` accepts the token
    (authenticating it, or revoking it), recorded on the request for the access log and held to
    its rate limit; 401 without a bearer token or when ``check`` refuses it."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("a bearer token is required (Authorization: Bearer <token>)")
    try:
        principal = await check(token.strip())
    except InvalidToken as exc:
        raise unauthenticated(f"the token was refused: {exc}") from None
    request.state.client_id = principal.client_id
    request.state.client_kind = principal.kind.value
    enforce_rate_limit(resources.rate_limiter, principal.client_id)
    return principal


@cache
def require(scope: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the authenticated client, which must hold ``scope`` and be within its rate limit."""
    if scope not in CATALOGUE:
        raise ValueError(f"{scope!r} is not in the scope catalogue")

    async def authorised_principal(
        request: Request,
        authorization: Annotated[str | None, Security(oauth2_client_credentials, scopes=[scope])],
    ) -> Principal:
        resources = resources_of(request)
        principal = await admit_bearer(request, resources, authorization, resources.authenticator.authenticate)
        if scope not in principal.scopes:
            raise problems.ProblemError(
                problems.FORBIDDEN,
                f"this route needs the scope {scope!r}",
                extensions={"required_scope": scope},
                headers={"WWW-Authenticate": f'Bearer realm="retail", error="insufficient_scope", scope="{scope}"'},
            )
        return principal

    return authorised_principal


def enforce_rate_limit(limiter: RateLimiter, client_id: str) -> None:
    wait = limiter.acquire(client_id)
    if wait > 0:
        raise problems.ProblemError(
            problems.TOO_MANY_REQUESTS,
            "this client is over its rate limit; retry after the time in Retry-After",
            headers={"Retry-After": retry_after_header(wait)},
        )
