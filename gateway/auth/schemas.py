"""The auth HTTP models: what a request carries and what an answer holds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.http import problems


class TokenRequest(BaseModel):
    """OAuth2 client-credentials grant (RFC 6749 §4.4)."""

    model_config = ConfigDict(extra="forbid")

    grant_type: str = Field(description="always client_credentials", examples=["client_credentials"])
    client_id: str | None = Field(default=None, max_length=128, examples=["S001-POS01"])
    client_secret: str | None = Field(default=None, max_length=512, examples=["the-secret-issued-at-registration"])
    scope: str | None = Field(
        default=None,
        max_length=2000,
        description="space-separated subset of the client's scopes; all of them when omitted",
        examples=["pos:sales:write pos:sync:read"],
    )


class TokenResponse(BaseModel):
    access_token: str = Field(description="a JWT (HS256) to send as Authorization: Bearer <token>")
    token_type: str = Field(examples=["Bearer"])
    expires_in: int = Field(description="seconds until the token expires", examples=[900])
    scope: str = Field(description="the scopes the token carries, space-separated")


OAuthErrorCode = Literal["invalid_request", "invalid_client", "unsupported_grant_type", "invalid_scope"]


class OAuthProblem(problems.Problem):
    """A token error in both shapes: RFC 9457 problem details carrying RFC 6749 §5.2's members,
    so OAuth2 client libraries read `error` and `error_description` as they expect."""

    error: OAuthErrorCode = Field(description="the OAuth2 error code (RFC 6749 §5.2)", examples=["invalid_client"])
    error_description: str = Field(description="the same as `detail`: what went wrong, for a developer")
