"""The subprotocol of a new connection is the one its $connect integration returned, or none."""

from __future__ import annotations

from typing import Any

import pytest

from wsstack.gateway.core import connect_subprotocol
from wsstack.model import InvocationResult


def _ok(payload: Any) -> InvocationResult:
    return InvocationResult(request_id="r", payload=payload)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "chat.v2"}}, "chat.v2"),
        ({"statusCode": 200, "headers": {"sec-websocket-protocol": "chat.v2"}}, "chat.v2"),  # any case
        ({"statusCode": 200, "multiValueHeaders": {"Sec-WebSocket-Protocol": ["chat.v2"]}}, "chat.v2"),
        ({"statusCode": 200}, None),  # API Gateway never picks one itself
        ({"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": ""}}, None),
        ({"statusCode": 200, "headers": {"X-Other": "chat.v2"}}, None),
        ({"statusCode": 200, "headers": "Sec-WebSocket-Protocol: chat.v2"}, None),  # malformed headers
        (None, None),
        ("chat.v2", None),
    ],
)
def test_subprotocol_comes_only_from_the_connect_response_headers(payload: Any, expected: str | None) -> None:
    assert connect_subprotocol(_ok(payload)) == expected


def test_a_failed_connect_chooses_no_subprotocol() -> None:
    failed = InvocationResult(request_id="r", error={"errorMessage": "x", "errorType": "ValueError"})

    assert connect_subprotocol(failed) is None
