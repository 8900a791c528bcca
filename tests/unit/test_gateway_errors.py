"""How gRPC failures and HTTP errors become RFC 9457 problems (no I/O)."""

from __future__ import annotations

import json
import re

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata
from starlette.exceptions import HTTPException
from starlette.requests import Request

from gateway.http import problems
from gateway.http.grpc_errors import (
    REASON_METADATA_KEY,
    RPC_STATUS_TO_PROBLEM,
    handle_rpc_error,
    rpc_error_problem,
    rpc_problem,
)


def rpc_error(code: grpc.StatusCode, details: str, *trailing: tuple[str, str]) -> AioRpcError:
    return AioRpcError(code, Metadata(), Metadata(*trailing), details, None)


def body_of(response: problems.ProblemResponse) -> dict[str, object]:
    return json.loads(bytes(response.body))  # type: ignore[no-any-return]


def test_every_grpc_error_code_has_an_http_mapping() -> None:
    error_codes = set(grpc.StatusCode) - {grpc.StatusCode.OK}
    assert set(RPC_STATUS_TO_PROBLEM) == error_codes


@pytest.mark.parametrize(
    ("code", "status", "slug"),
    [
        (grpc.StatusCode.NOT_FOUND, 404, "not-found"),
        (grpc.StatusCode.ALREADY_EXISTS, 409, "already-exists"),
        (grpc.StatusCode.INVALID_ARGUMENT, 422, "invalid-argument"),
        (grpc.StatusCode.FAILED_PRECONDITION, 409, "failed-precondition"),
        (grpc.StatusCode.ABORTED, 409, "concurrent-modification"),
        (grpc.StatusCode.OUT_OF_RANGE, 400, "out-of-range"),
        (grpc.StatusCode.PERMISSION_DENIED, 403, "forbidden"),
        (grpc.StatusCode.UNAUTHENTICATED, 401, "unauthenticated"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "too-many-requests"),
        (grpc.StatusCode.UNAVAILABLE, 503, "service-unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "service-timeout"),
        (grpc.StatusCode.UNIMPLEMENTED, 501, "not-implemented"),
        (grpc.StatusCode.CANCELLED, 503, "request-cancelled"),
        (grpc.StatusCode.INTERNAL, 500, "internal-error"),
        (grpc.StatusCode.UNKNOWN, 500, "internal-error"),
        (grpc.StatusCode.DATA_LOSS, 500, "internal-error"),
    ],
)
def test_grpc_status_maps_to_http_status_and_problem_type(code: grpc.StatusCode, status: int, slug: str) -> None:
    mapped = rpc_problem(code)
    assert (mapped.status, mapped.problem_type.slug) == (status, slug)


def test_ok_arriving_as_an_error_is_an_internal_error() -> None:
    assert rpc_problem(grpc.StatusCode.OK).status == 500


def test_not_found_with_a_reason_becomes_a_404_problem_carrying_the_service_message_and_reason() -> None:
    error = rpc_error(
        grpc.StatusCode.NOT_FOUND, "sku 4711 is not in the catalogue", (REASON_METADATA_KEY, "sku-unknown")
    )
    response = rpc_error_problem(error, instance="/v1/skus/4711")
    assert response.status_code == 404
    assert response.media_type == "application/problem+json"
    assert body_of(response) == {
        "type": "https://problems.retail-platform.dev/not-found",
        "title": "Not found",
        "status": 404,
        "detail": "sku 4711 is not in the catalogue",
        "instance": "/v1/skus/4711",
        "trace_id": None,
        "reason": "sku-unknown",
    }


def test_a_problem_without_a_reason_has_no_reason_member() -> None:
    response = rpc_error_problem(rpc_error(grpc.StatusCode.ALREADY_EXISTS, "exists"), instance="/x")
    assert "reason" not in body_of(response)


def test_a_malformed_reason_is_dropped_rather_than_echoed() -> None:
    error = rpc_error(grpc.StatusCode.NOT_FOUND, "gone", (REASON_METADATA_KEY, "<script>alert(1)</script>"))
    assert "reason" not in body_of(rpc_error_problem(error, instance="/x"))


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS]
)
def test_server_side_failures_never_show_the_service_message(code: grpc.StatusCode) -> None:
    error = rpc_error(code, "failed to connect to all addresses; ipv4:10.0.3.7:50051: connection refused")
    body = body_of(rpc_error_problem(error, instance="/x"))
    assert "10.0.3.7" not in json.dumps(body)
    assert body["detail"]


# ---- every 503 says when to retry -----------------------------------------------------------------


def a_request(path: str = "/v1/stock/SKU00030") -> Request:
    return Request({"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""})


@pytest.mark.parametrize("code", [code for code, mapped in RPC_STATUS_TO_PROBLEM.items() if mapped.status == 503])
def test_a_backend_call_failing_with_a_503_code_says_when_to_retry(code: grpc.StatusCode) -> None:
    response = rpc_error_problem(rpc_error(code, "connection refused"), instance="/x")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"


@pytest.mark.parametrize(
    "kind",
    [kind for kind in vars(problems).values() if isinstance(kind, problems.ProblemType) and kind.status == 503],
    ids=lambda kind: kind.slug,
)
def test_every_503_problem_type_says_when_to_retry(kind: problems.ProblemType) -> None:
    assert problems.problem_response(kind, "unavailable", instance="/x").headers["Retry-After"] == "2"


async def test_503s_from_every_handler_say_when_to_retry() -> None:
    answers = [
        await problems.handle_problem_error(
            a_request(), problems.ProblemError(problems.SERVICE_UNAVAILABLE, "the member service is not configured")
        ),
        await problems.handle_http_exception(a_request(), HTTPException(status_code=503)),
        await problems.handle_database_unavailable(a_request(), ConnectionRefusedError()),
        await handle_rpc_error(a_request(), rpc_error(grpc.StatusCode.UNAVAILABLE, "connection refused")),
    ]
    assert [(answer.status_code, answer.headers.get("Retry-After")) for answer in answers] == [(503, "2")] * 4


def test_a_503_that_names_its_own_retry_time_keeps_it_and_sends_one() -> None:
    response = problems.problem_response(
        problems.SERVICE_UNAVAILABLE, "the sales journal is unavailable", instance="/x", headers={"retry-after": "7"}
    )
    assert response.headers.getlist("Retry-After") == ["7"]


def test_answers_other_than_503_carry_no_retry_after_unless_given_one() -> None:
    assert "Retry-After" not in problems.problem_response(problems.SERVICE_TIMEOUT, "slow", instance="/x").headers
    assert "Retry-After" not in problems.problem_response(problems.NOT_FOUND, "gone", instance="/x").headers


def test_problem_type_uris_are_stable_and_unique() -> None:
    kinds = [value for value in vars(problems).values() if isinstance(value, problems.ProblemType)]
    assert len({kind.uri for kind in kinds}) == len(kinds)
    for kind in kinds:
        assert re.fullmatch(r"https://problems\.retail-platform\.dev/[a-z]+(-[a-z]+)*", kind.uri)
        assert 400 <= kind.status <= 599


def test_an_http_status_without_a_problem_type_of_its_own_is_about_blank_with_the_status_phrase() -> None:
    kind = problems.problem_type_for_status(418)
    assert (kind.uri, kind.title, kind.status) == ("about:blank", "I'm a Teapot", 418)


def test_problem_body_has_the_rfc_9457_members_and_extensions_cannot_override_them() -> None:
    body = problems.problem_body(
        problems.FAILED_PRECONDITION,
        "the reservation was already committed",
        instance="/v1/reservations/r-1:release",
        extensions={"status": 200, "type": "spoofed", "reservation_state": "committed"},
    )
    assert body == {
        "type": "https://problems.retail-platform.dev/failed-precondition",
        "title": "Not possible in the current state",
        "status": 409,
        "detail": "the reservation was already committed",
        "instance": "/v1/reservations/r-1:release",
        "trace_id": None,
        "reservation_state": "committed",
    }


def test_validation_errors_name_location_and_message_but_never_the_rejected_input() -> None:
    entries = problems.field_errors(
        [
            {"type": "missing", "loc": ("body", "sku"), "msg": "Field required", "input": {"phone": "13800138000"}},
            {
                "type": "greater_than",
                "loc": ("body", "lines", 0, "quantity"),
                "msg": "Input should be > 0",
                "input": -1,
            },
        ]
    )
    assert entries == [
        {"location": "body.sku", "message": "Field required", "type": "missing"},
        {"location": "body.lines.0.quantity", "message": "Input should be > 0", "type": "greater_than"},
    ]
    assert "13800138000" not in json.dumps(entries)
