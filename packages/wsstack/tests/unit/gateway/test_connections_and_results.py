"""Connection ids, the registry, limits, integration results and close details."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from wsstack.gateway.core import (
    Connection,
    ConnectionRegistry,
    Limits,
    client_close_details,
    connect_status,
    default_api_id,
    error_frame,
    message_reply,
    new_connection_id,
    new_request_id,
    server_close_details,
)
from wsstack.model import InvocationResult, Route

AWS_ID = re.compile(r"[A-Za-z0-9_-]{15}=")


def test_connection_ids_look_like_aws_ones() -> None:
    ids = {new_connection_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(AWS_ID.fullmatch(i) for i in ids)


def test_request_ids_look_like_aws_ones() -> None:
    assert AWS_ID.fullmatch(new_request_id())


def test_api_id_is_stable_and_aws_shaped() -> None:
    assert default_api_id("ChatWebSocketApi") == default_api_id("ChatWebSocketApi")
    assert default_api_id("ChatWebSocketApi") != default_api_id("OtherApi")
    assert re.fullmatch(r"[0-9a-z]{10}", default_api_id("ChatWebSocketApi"))


def test_limits_default_to_aws_values_and_are_configurable() -> None:
    limits = Limits()
    assert (limits.idle_timeout, limits.max_connection_duration) == (600, 7200)
    assert (limits.max_frame_bytes, limits.max_message_bytes) == (32 * 1024, 128 * 1024)
    assert limits.integration_timeout == 29.0
    assert Limits(idle_timeout=0.5).idle_timeout == 0.5


def test_registry_add_get_touch_remove() -> None:
    registry = ConnectionRegistry()
    record = Connection("AAAAAAAAAAAAAAA=", connected_at=100.0, source_ip="127.0.0.1", user_agent="ua")
    registry.add(record)

    assert "AAAAAAAAAAAAAAA=" in registry and len(registry) == 1
    assert registry.get("AAAAAAAAAAAAAAA=") is record
    assert record.last_active_at == 100.0

    registry.touch("AAAAAAAAAAAAAAA=", now=160.5)
    assert record.describe() == {
        "connectedAt": "1970-01-01T00:01:40.000Z",
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "ua"},
        "lastActiveAt": "1970-01-01T00:02:40.500Z",
    }

    assert registry.remove("AAAAAAAAAAAAAAA=") is record
    assert registry.get("AAAAAAAAAAAAAAA=") is None
    assert registry.remove("AAAAAAAAAAAAAAA=") is None


def test_registry_refuses_duplicate_ids() -> None:
    registry = ConnectionRegistry()
    registry.add(Connection("AAAAAAAAAAAAAAA=", 1.0, "127.0.0.1"))
    with pytest.raises(ValueError, match="duplicate"):
        registry.add(Connection("AAAAAAAAAAAAAAA=", 2.0, "127.0.0.1"))


def ok(payload: Any) -> InvocationResult:
    return InvocationResult(request_id="r", payload=payload)


FAILED = InvocationResult(request_id="r", error={"errorMessage": "boom", "errorType": "RuntimeError"})


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (ok({"statusCode": 200}), 200),
        (ok({"statusCode": 204, "body": ""}), 200),
        (ok({"statusCode": "200"}), 200),
        (ok(None), 200),
        (ok({"body": "hi"}), 200),
        (ok({"statusCode": 401}), 401),
        (ok({"statusCode": 403, "body": "no"}), 403),
        (ok({"statusCode": 500}), 500),
        (ok({"statusCode": "abc"}), 502),
        (ok({"statusCode": True}), 502),
        (ok({"statusCode": 99}), 502),
        (FAILED, 502),
    ],
)
def test_connect_status(result: InvocationResult, status: int) -> None:
    assert connect_status(result) == status


ONE_WAY = Route("notify", "NotifyFn")
TWO_WAY = Route("echo", "EchoFn", two_way=True)


def test_error_frame_is_the_aws_json() -> None:
    assert json.loads(error_frame("Forbidden", "cid", "rid")) == {
        "message": "Forbidden",
        "connectionId": "cid",
        "requestId": "rid",
    }


def test_failed_integration_replies_internal_server_error_on_any_route() -> None:
    for route in (ONE_WAY, TWO_WAY):
        reply = message_reply(FAILED, route, connection_id="cid", request_id="rid")
        assert reply is not None
        assert json.loads(reply) == {"message": "Internal server error", "connectionId": "cid", "requestId": "rid"}


def test_one_way_route_sends_nothing_back() -> None:
    assert message_reply(ok({"statusCode": 200, "body": "x"}), ONE_WAY, connection_id="c", request_id="r") is None


def test_two_way_route_sends_the_body() -> None:
    reply = message_reply(ok({"statusCode": 200, "body": '{"ok":true}'}), TWO_WAY, connection_id="c", request_id="r")
    assert reply == '{"ok":true}'


@pytest.mark.parametrize("payload", [None, {"statusCode": 200}, "plain", {"body": None}])
def test_two_way_route_without_a_body_sends_nothing(payload: Any) -> None:
    assert message_reply(ok(payload), TWO_WAY, connection_id="c", request_id="r") is None


def test_two_way_route_with_a_non_string_body_is_an_error() -> None:
    reply = message_reply(ok({"body": {"a": 1}}), TWO_WAY, connection_id="c", request_id="r")
    assert reply is not None and json.loads(reply)["message"] == "Internal server error"


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (1005, "", (1005, "Client-side close frame status not set")),
        (1000, "bye", (1000, "bye")),
        (1001, "", (1001, "")),
        (4001, "custom", (4001, "custom")),
        (None, "", (1006, "")),
    ],
)
def test_client_close_details(code: int | None, reason: str, expected: tuple[int, str]) -> None:
    assert client_close_details(code, reason) == expected


def test_server_close_details() -> None:
    assert server_close_details(1001) == (1001, "Going away")
    assert server_close_details(1009)[0] == 1009
    assert server_close_details(1003)[0] == 1003
