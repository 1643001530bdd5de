"""REQUEST authorizer: identity-source pre-check and IAM policy interpretation."""

from __future__ import annotations

from typing import Any

import pytest

from wsstack.gateway.core import HandshakeRequest, interpret_authorizer_result, missing_identity_sources
from wsstack.model import Authorizer, InvocationResult

ARN = "arn:aws:execute-api:us-east-1:123456789012:abcde12345/dev/$connect"


def policy(effect: str, resource: Any = ARN, action: Any = "execute-api:Invoke") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": action, "Effect": effect, "Resource": resource}],
    }


def ok(payload: Any) -> InvocationResult:
    return InvocationResult(request_id="r", payload=payload)


def test_allow_lets_the_connection_through_with_principal_and_string_context() -> None:
    decision = interpret_authorizer_result(
        ok(
            {
                "principalId": "user-1",
                "policyDocument": policy("Allow"),
                "context": {"userId": "user-1", "level": 3, "ratio": 1.5, "admin": True, "off": False},
            }
        ),
        ARN,
    )

    assert decision.allowed and decision.status == 200
    assert decision.principal_id == "user-1"
    assert decision.context == {"userId": "user-1", "level": "3", "ratio": "1.5", "admin": "true", "off": "false"}
    assert decision.request_context_authorizer(7) == {
        "principalId": "user-1",
        "integrationLatency": 7,
        **decision.context,
    }


def test_deny_is_403() -> None:
    decision = interpret_authorizer_result(ok({"principalId": "u", "policyDocument": policy("Deny")}), ARN)
    assert decision.status == 403 and not decision.allowed


def test_explicit_deny_wins_over_allow() -> None:
    document = policy("Allow")
    document["Statement"].append({"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": ARN})
    decision = interpret_authorizer_result(ok({"principalId": "u", "policyDocument": document}), ARN)
    assert decision.status == 403


def test_allow_for_another_resource_is_403() -> None:
    other = "arn:aws:execute-api:us-east-1:123456789012:otherapi99/dev/$connect"
    decision = interpret_authorizer_result(ok({"principalId": "u", "policyDocument": policy("Allow", other)}), ARN)
    assert decision.status == 403


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:execute-api:us-east-1:123456789012:abcde12345/*",
        "arn:aws:execute-api:*:*:abcde12345/dev/*",
        [ARN],
        "*",
    ],
)
def test_wildcard_resources_match(resource: Any) -> None:
    decision = interpret_authorizer_result(ok({"principalId": "u", "policyDocument": policy("Allow", resource)}), ARN)
    assert decision.allowed


@pytest.mark.parametrize("action", ["execute-api:*", "*", ["execute-api:Invoke"], "EXECUTE-API:invoke"])
def test_action_forms_match(action: Any) -> None:
    decision = interpret_authorizer_result(
        ok({"principalId": "u", "policyDocument": policy("Allow", action=action)}), ARN
    )
    assert decision.allowed


def test_statement_may_be_a_single_object() -> None:
    document = {"Version": "2012-10-17", "Statement": policy("Allow")["Statement"][0]}
    decision = interpret_authorizer_result(ok({"principalId": "u", "policyDocument": document}), ARN)
    assert decision.allowed


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "Allow",
        {"isAuthorized": True},  # the HTTP-API simple format is not accepted on WebSocket APIs
        {"policyDocument": policy("Allow")},  # no principalId
        {"principalId": "u"},  # no policy
        {"principalId": "u", "policyDocument": {"Version": "2012-10-17"}},
        {"principalId": "u", "policyDocument": policy("Maybe")},
        {"principalId": "u", "policyDocument": policy("Allow"), "context": {"nested": {"a": 1}}},
        {"principalId": "u", "policyDocument": policy("Allow"), "context": ["a"]},
    ],
)
def test_malformed_responses_are_500(payload: Any) -> None:
    decision = interpret_authorizer_result(ok(payload), ARN)
    assert decision.status == 500
    assert decision.detail  # says why, for the log


def test_function_error_is_500() -> None:
    result = InvocationResult(request_id="r", error={"errorMessage": "boom", "errorType": "RuntimeError"})
    assert interpret_authorizer_result(result, ARN).status == 500


def test_unauthorized_error_is_401() -> None:
    result = InvocationResult(request_id="r", error={"errorMessage": "Unauthorized", "errorType": "Exception"})
    assert interpret_authorizer_result(result, ARN).status == 401


def handshake(target: str, headers: list[tuple[str, str]] | None = None) -> HandshakeRequest:
    return HandshakeRequest.from_http(target, headers or [], "127.0.0.1", server_port=1, now=0)


def test_identity_sources_present() -> None:
    authorizer = Authorizer("Auth", "AuthFn", ("route.request.querystring.token", "route.request.header.X-Device"))
    request = handshake("/dev?token=abc", [("x-device", "phone")])
    assert missing_identity_sources(authorizer, request) == []


def test_identity_sources_missing_or_empty() -> None:
    authorizer = Authorizer("Auth", "AuthFn", ("route.request.querystring.token", "route.request.header.X-Device"))
    assert missing_identity_sources(authorizer, handshake("/dev")) == list(authorizer.identity_sources)
    assert missing_identity_sources(authorizer, handshake("/dev?token=", [("X-Device", "p")])) == [
        "route.request.querystring.token"
    ]


def test_query_string_names_are_case_sensitive() -> None:
    authorizer = Authorizer("Auth", "AuthFn", ("route.request.querystring.token",))
    assert missing_identity_sources(authorizer, handshake("/dev?Token=abc")) == ["route.request.querystring.token"]


def test_no_identity_sources_means_no_pre_check() -> None:
    assert missing_identity_sources(Authorizer("Auth", "AuthFn"), handshake("/dev")) == []
