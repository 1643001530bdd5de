"""API keys on $connect: which key a handshake presents, as API Gateway selects it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wsstack.gateway.core import HandshakeRequest, find_api_key, interpret_authorizer_result
from wsstack.model import ApiKey, InvocationResult

HEADER = "$request.header.x-api-key"
AUTHORIZER = "$context.authorizer.usageIdentifierKey"
GOOD = ApiKey("GoodKey", "abcdefghij", "good-key-0123456789abcdef")
OFF = ApiKey("OffKey", "klmnopqrst", "off-key-0123456789abcdefg", enabled=False)
KEYS = (GOOD, OFF)


def handshake(*headers: tuple[str, str]) -> HandshakeRequest:
    return HandshakeRequest.from_http("/dev", list(headers), "10.0.0.7", server_port=1, now=0.0)


def test_the_x_api_key_header_selects_the_key_whatever_its_case() -> None:
    assert find_api_key(HEADER, handshake(("x-api-key", GOOD.value)), KEYS) == GOOD
    assert find_api_key(HEADER, handshake(("X-API-Key", GOOD.value)), KEYS) == GOOD


def test_missing_unknown_and_disabled_keys_select_nothing() -> None:
    assert find_api_key(HEADER, handshake(), KEYS) is None
    assert find_api_key(HEADER, handshake(("x-api-key", "")), KEYS) is None
    assert find_api_key(HEADER, handshake(("x-api-key", "someone-elses-key-012345")), KEYS) is None
    assert find_api_key(HEADER, handshake(("x-api-key", OFF.value)), KEYS) is None


def test_the_authorizers_usage_identifier_key_selects_the_key_when_the_api_says_so() -> None:
    presented = handshake(("x-api-key", "ignored-header-0123456789"))

    assert find_api_key(AUTHORIZER, presented, KEYS, usage_identifier_key=GOOD.value) == GOOD
    assert find_api_key(AUTHORIZER, handshake(("x-api-key", GOOD.value)), KEYS) is None


def test_the_authorizer_decision_carries_its_usage_identifier_key() -> None:
    payload = {
        "principalId": "p",
        "usageIdentifierKey": GOOD.value,
        "policyDocument": {"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}]},
    }

    decision = interpret_authorizer_result(InvocationResult("r", payload=payload), "arn:x")

    assert decision.allowed and decision.usage_identifier_key == GOOD.value


@settings(max_examples=300, deadline=None)
@given(value=st.text(st.characters(codec="latin-1", exclude_characters="\r\n\x00"), max_size=40),
       name=st.sampled_from(["x-api-key", "X-Api-Key", "x-api-keys", "api-key"]))
def test_only_the_exact_value_of_an_enabled_key_in_the_x_api_key_header_selects_it(value: str, name: str) -> None:
    found = find_api_key(HEADER, handshake((name, value)), KEYS)

    assert found == (GOOD if name.lower() == "x-api-key" and value == GOOD.value else None)
