"""Event builders: validated with the Powertools WebSocket models and checked field by field."""

from __future__ import annotations

import re

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)

from wsstack.gateway.core import (
    Connection,
    HandshakeRequest,
    StageContext,
    build_authorizer_event,
    build_connect_event,
    build_disconnect_event,
    build_message_event,
    format_iso8601,
    format_request_time,
)

NOW = 1707472800.25  # 09/Feb/2024:10:00:00.250 UTC
CONNECTED = 1707472790.5
STAGE = StageContext(api_id="abcde12345", stage="dev", domain_name="127.0.0.1:8080")


def handshake(target: str = "/dev?token=abc&tag=a&tag=b") -> HandshakeRequest:
    return HandshakeRequest.from_http(
        target,
        [
            ("Host", "127.0.0.1:8080"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "+W5xw47OHh3OTFsWKjGu9Q=="),
            ("Sec-WebSocket-Version", "13"),
            ("User-Agent", "ChatApp/1.0"),
            ("X-Custom", "one"),
            ("X-Custom", "two"),
        ],
        "10.0.0.7",
        server_port=8080,
        now=NOW,
    )


def connection(*, authorized: bool = False) -> Connection:
    record = Connection("L0SM9cOFvHcCIhw=", CONNECTED, "10.0.0.7", "ChatApp/1.0")
    if authorized:
        record.authorizer = {"principalId": "user-1", "integrationLatency": 12, "userId": "user-1"}
    return record


def assert_common_context(context: dict[str, object], route_key: str, event_type: str) -> None:
    assert context["routeKey"] == route_key
    assert context["eventType"] == event_type
    assert context["messageDirection"] == "IN"
    assert context["stage"] == "dev"
    assert context["apiId"] == "abcde12345"
    assert context["domainName"] == "127.0.0.1:8080"
    assert context["connectionId"] == "L0SM9cOFvHcCIhw="
    assert context["connectedAt"] == 1707472790500
    assert context["requestTimeEpoch"] == 1707472800250
    assert context["requestTime"] == "09/Feb/2024:10:00:00 +0000"
    assert context["requestId"] == context["extendedRequestId"] == "REQ1234567890ab="
    assert context["identity"] == {"sourceIp": "10.0.0.7", "userAgent": "ChatApp/1.0"}


def test_connect_event_matches_the_powertools_model() -> None:
    event = build_connect_event(STAGE, handshake(), connection(), request_id="REQ1234567890ab=", now=NOW)

    model = APIGatewayWebSocketConnectEventModel.model_validate(event)

    assert model.request_context.event_type == "CONNECT"
    assert_common_context(event["requestContext"], "$connect", "CONNECT")
    assert event["isBase64Encoded"] is False
    assert "messageId" not in event["requestContext"]
    assert "body" not in event
    assert "authorizer" not in event["requestContext"]


def test_connect_event_headers_drop_hop_by_hop_and_add_forwarding() -> None:
    event = build_connect_event(STAGE, handshake(), connection(), request_id="REQ1234567890ab=", now=NOW)

    headers = event["headers"]
    assert "Upgrade" not in headers and "Connection" not in headers
    assert headers["Sec-WebSocket-Key"] == "+W5xw47OHh3OTFsWKjGu9Q=="
    assert headers["X-Forwarded-For"] == "10.0.0.7"
    assert headers["X-Forwarded-Port"] == "8080"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", headers["X-Amzn-Trace-Id"])
    # single-value maps keep the last value, multi-value maps keep all
    assert headers["X-Custom"] == "two"
    assert event["multiValueHeaders"]["X-Custom"] == ["one", "two"]


def test_connect_event_query_string_present_only_when_sent() -> None:
    with_query = build_connect_event(STAGE, handshake(), connection(), request_id="REQ1234567890ab=", now=NOW)
    assert with_query["queryStringParameters"] == {"token": "abc", "tag": "b"}
    assert with_query["multiValueQueryStringParameters"] == {"token": ["abc"], "tag": ["a", "b"]}

    without = build_connect_event(STAGE, handshake("/dev"), connection(), request_id="REQ1234567890ab=", now=NOW)
    assert "queryStringParameters" not in without
    assert "multiValueQueryStringParameters" not in without


def test_connect_event_carries_the_authorizer_when_authorized() -> None:
    event = build_connect_event(STAGE, handshake(), connection(authorized=True), request_id="REQ1234567890ab=", now=NOW)
    assert event["requestContext"]["authorizer"]["principalId"] == "user-1"
    assert event["requestContext"]["authorizer"]["userId"] == "user-1"


def test_message_event_matches_the_powertools_model() -> None:
    event = build_message_event(
        STAGE,
        connection(authorized=True),
        route_key="sendMessage",
        body='{"action":"sendMessage"}',
        request_id="REQ1234567890ab=",
        message_id="MSG1234567890ab=",
        now=NOW,
    )

    model = APIGatewayWebSocketMessageEventModel.model_validate(event)

    assert model.body == '{"action":"sendMessage"}'
    assert model.request_context.message_id == "MSG1234567890ab="
    assert_common_context(event["requestContext"], "sendMessage", "MESSAGE")
    assert event["isBase64Encoded"] is False
    assert "headers" not in event and "multiValueHeaders" not in event
    assert event["requestContext"]["authorizer"] == {
        "principalId": "user-1",
        "integrationLatency": 12,
        "userId": "user-1",
    }


def test_disconnect_event_matches_the_powertools_model() -> None:
    event = build_disconnect_event(
        STAGE,
        connection(authorized=True),
        status_code=1005,
        reason="Client-side close frame status not set",
        request_id="REQ1234567890ab=",
        now=NOW,
    )

    model = APIGatewayWebSocketDisconnectEventModel.model_validate(event)

    assert model.request_context.disconnect_status_code == 1005
    assert model.request_context.disconnect_reason == "Client-side close frame status not set"
    assert_common_context(event["requestContext"], "$disconnect", "DISCONNECT")
    # AWS sends a fixed header set on $disconnect, not the handshake's headers.
    assert event["headers"] == {"Host": "127.0.0.1:8080", "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    assert "messageId" not in event["requestContext"]
    assert "body" not in event
    assert event["requestContext"]["authorizer"]["principalId"] == "user-1"


def test_authorizer_event_has_the_request_shape() -> None:
    event = build_authorizer_event(
        STAGE, handshake("/dev"), connection(authorized=True), request_id="REQ1234567890ab=", now=NOW
    )

    assert event["type"] == "REQUEST"
    assert event["methodArn"] == "arn:aws:execute-api:us-east-1:123456789012:abcde12345/dev/$connect"
    # the authorizer sees every header, including the hop-by-hop ones
    assert event["headers"]["Upgrade"] == "websocket"
    assert event["multiValueHeaders"]["X-Custom"] == ["one", "two"]
    # these maps are always present, even when empty
    assert event["queryStringParameters"] == {}
    assert event["multiValueQueryStringParameters"] == {}
    assert event["stageVariables"] == {}
    assert_common_context(event["requestContext"], "$connect", "CONNECT")
    # the authorizer runs before there is an authorizer context
    assert "authorizer" not in event["requestContext"]


def test_identity_omits_a_missing_user_agent() -> None:
    record = Connection("L0SM9cOFvHcCIhw=", CONNECTED, "10.0.0.7")
    event = build_message_event(STAGE, record, route_key="$default", body="x", request_id="r", message_id="m", now=NOW)
    assert event["requestContext"]["identity"] == {"sourceIp": "10.0.0.7"}


def test_forwarded_for_appends_to_an_existing_chain() -> None:
    request = HandshakeRequest.from_http(
        "/dev", [("X-Forwarded-For", "203.0.113.9")], "10.0.0.7", server_port=1, now=NOW
    )
    assert request.header("x-forwarded-for") == "203.0.113.9, 10.0.0.7"


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [(0, "01/Jan/1970:00:00:00 +0000"), (1731324924.553, "11/Nov/2024:11:35:24 +0000")],
)
def test_request_time_format(epoch: float, expected: str) -> None:
    assert format_request_time(epoch) == expected


def test_iso8601_format_has_milliseconds_and_z() -> None:
    assert format_iso8601(1707472800.25) == "2024-02-09T10:00:00.250Z"
