"""``POST /v1/auth/token``: OAuth2 client credentials for a short-lived bearer token;
``POST /v1/auth/revoke``: a client gives its token up before it expires (signing out)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from gateway.auth.schemas import OAuthErrorCode, OAuthProblem, TokenRequest, TokenResponse
from gateway.domain.scopes import CATALOGUE
from gateway.http import problems
from gateway.http.resources import Resources
from gateway.http.routing import ContextRouter
from gateway.security.authorisation import TOKEN_URL, admit_bearer, enforce_rate_limit

router = ContextRouter(tags=["auth"])
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


_SCHEMA_REF = {"$ref": "#/components/schemas/TokenRequest"}
_EXAMPLE = {"grant_type": "client_credentials", "client_id": "S001-POS01", "client_secret": "…"}


def document_token_request(openapi: dict[str, Any]) -> None:
    """Add the token request's schema to the document's components (the body is read by hand, in two media types)."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas["TokenRequest"] = TokenRequest.model_json_schema(ref_template="#/components/schemas/{model}")


def oauth_error(
    code: OAuthErrorCode,
    detail: str,
    status: int,
    *,
    problem_type: problems.ProblemType | None = None,
    extensions: dict[str, Any] | None = None,
) -> problems.ProblemError:
    """An OAuth2 error (RFC 6749 §5.2) as a problem document with ``error`` and ``error_description``.

    ``invalid_client`` is 401 with an HTTP Basic challenge (RFC 6749 §5.2: the client may
    authenticate with Basic); the others are 400. Token answers are never cached.
    """
    if problem_type is None:
        problem_type = problems.UNAUTHENTICATED if status == 401 else problems.BAD_REQUEST
    headers = {"WWW-Authenticate": 'Basic realm="retail", charset="UTF-8"'} if status == 401 else {}
    return problems.ProblemError(
        problem_type,
        detail,
        status=status,
        extensions={"error": code, "error_description": detail, **(extensions or {})},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache", **headers},
    )


@router.post(
    TOKEN_URL,
    summary="Exchange client credentials for an access token",
    response_model=TokenResponse,
    responses=problems.problem_responses(400, 401, 415, model=OAuthProblem) | problems.problem_responses(429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                # The form is RFC 6749's encoding; the same fields as JSON are accepted too, but
                # documenting both under one schema makes generated SDKs send a form labelled JSON.
                FORM: {"schema": _SCHEMA_REF, "example": _EXAMPLE},
            },
        }
    },
)
async def issue_token(
    request: Request,
    resources: Resources,
    authorization: Annotated[
        str | None, Header(description="optional HTTP Basic client authentication (RFC 6749 §2.3.1)")
    ] = None,
) -> Any:
    """**No scope**: this is how a client gets its token. Form-encoded (as OAuth2 libraries send
    it; the same fields as an `application/json` object are accepted too); the client may
    authenticate with HTTP Basic instead of body parameters.

    The token is a JWT signed with HS256 whose header names its signing key (`kid`); it
    carries the client's kind, scopes and bindings (store, terminal, supplier, staff role)
    and expires after `expires_in` seconds. Errors are problem documents that also carry
    RFC 6749's `error` and `error_description`: 400 `invalid_request`,
    `unsupported_grant_type` or `invalid_scope`; 401 `invalid_client` with
    `WWW-Authenticate: Basic` (unknown client, wrong secret or revoked: deliberately
    indistinguishable); 415 `invalid_request` for another media type; 429 over the rate
    limit. No `Idempotency-Key`: issuing a token changes nothing.
    """
    token_request = await _read_token_request(request)
    client_id, secret = token_request.client_id, token_request.client_secret
    if authorization and authorization.lower().startswith("basic "):
        client_id, secret = _basic_credentials(authorization[6:])
    if token_request.grant_type != "client_credentials":
        raise oauth_error("unsupported_grant_type", "only grant_type=client_credentials is supported", 400)
    if not client_id or not secret:
        raise oauth_error("invalid_request", "client_id and client_secret are required", 400)
    enforce_rate_limit(resources.rate_limiter, f"token:{client_id}")
    requested = frozenset(token_request.scope.split()) if token_request.scope else None
    if requested is not None and not requested <= CATALOGUE.keys():
        raise oauth_error("invalid_scope", "unknown scopes requested", 400)
    outcome = await resources.authenticator.issue(client_id, secret, requested)
    if outcome == "invalid_client":
        raise oauth_error("invalid_client", "unknown client, wrong secret or revoked client", 401)
    if outcome == "invalid_scope":
        raise oauth_error("invalid_scope", "the client does not hold every requested scope", 400)
    assert not isinstance(outcome, str)
    request.state.client_id = outcome.client_id
    request.state.client_kind = outcome.kind
    body = TokenResponse(
        access_token=resources.authenticator.sign(outcome),
        token_type="Bearer",  # noqa: S106 - the OAuth2 token type, not a password
        expires_in=outcome.expires_at - outcome.issued_at,
        scope=" ".join(sorted(outcome.scopes)),
    )
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.post(
    "/v1/auth/revoke",
    summary="Revoke the bearer token of this request",
    status_code=204,
    responses=problems.problem_responses(401, 429),
)
async def revoke_token(
    request: Request,
    resources: Resources,
    authorization: Annotated[str | None, Header(description="Bearer <the token to revoke>")] = None,
) -> Response:
    """**No scope**: a client gives up the token it presents, e.g. when a person signs out, so
    that a copy of it opens nothing any more. `204`; from then on the token is `401` on
    this gateway pod at once and on every pod within `CLIENT_CACHE_SECONDS`. Only the token
    itself can revoke itself (RFC 7009's intent, with the token as its own credential); a
    token already revoked, expired or invalid is `401`. No `Idempotency-Key`: revoking twice
    is the same as once.
    """
    await admit_bearer(request, resources, authorization, resources.authenticator.revoke)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


async def _read_token_request(request: Request) -> TokenRequest:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    try:
        if content_type == FORM:
            fields: Any = {name: values[-1] for name, values in parse_qs(raw.decode(), keep_blank_values=True).items()}
        elif content_type == JSON:
            fields = json.loads(raw)
        else:
            detail = f"send the grant as {FORM} or {JSON}"
            raise oauth_error("invalid_request", detail, 415, problem_type=problems.UNSUPPORTED_MEDIA_TYPE)
    except (UnicodeDecodeError, ValueError):
        raise oauth_error("invalid_request", "the body is not valid form data or JSON", 400) from None
    if not isinstance(fields, dict):
        raise oauth_error("invalid_request", "the body must be an object of grant parameters", 400)
    try:
        return TokenRequest.model_validate(fields)
    except ValidationError as exc:
        errors = problems.field_errors(exc.errors())
        raise oauth_error(
            "invalid_request",
            "the grant parameters are invalid: " + "; ".join(f"{e['location']}: {e['message']}" for e in errors),
            400,
            extensions={"errors": errors},
        ) from None


def _basic_credentials(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise oauth_error("invalid_client", "malformed HTTP Basic credentials", 401) from None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise oauth_error("invalid_client", "malformed HTTP Basic credentials", 401)
    return client_id, secret
