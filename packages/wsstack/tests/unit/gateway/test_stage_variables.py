"""Stage variables in events: ``stageVariables`` as API Gateway adds them, without sockets.

AWS puts the stage's variables in every proxy integration event (CONNECT, MESSAGE,
DISCONNECT) when the stage has some, and leaves the key out when it has none; the REQUEST
authorizer's event always has the map, empty or not.
"""

from __future__ import annotations

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
)

NOW = 1707472800.25
VARIABLES = {"tableName": "Notes_dev", "featureFlag": "on"}
WITH = StageContext(api_id="abcde12345", stage="dev", domain_name="127.0.0.1:8080", stage_variables=VARIABLES)
WITHOUT = StageContext(api_id="abcde12345", stage="dev", domain_name="127.0.0.1:8080")
HANDSHAKE = HandshakeRequest.from_http("/dev", [("Host", "127.0.0.1:8080")], "10.0.0.7", server_port=8080, now=NOW)


def connection() -> Connection:
    return Connection("L0SM9cOFvHcCIhw=", NOW - 5, "10.0.0.7", "ChatApp/1.0")


def events(stage: StageContext) -> dict[str, dict[str, object]]:
    return {
        "connect": build_connect_event(stage, HANDSHAKE, connection(), request_id="R", now=NOW),
        "message": build_message_event(stage, connection(), route_key="note", body="{}", request_id="R",
                                       message_id="M", now=NOW),
        "disconnect": build_disconnect_event(stage, connection(), status_code=1000, reason="", request_id="R",
                                             now=NOW),
        "authorizer": build_authorizer_event(stage, HANDSHAKE, connection(), request_id="R", now=NOW),
    }


def test_every_event_carries_the_stage_variables() -> None:
    built = events(WITH)

    assert {kind: event["stageVariables"] for kind, event in built.items()} == dict.fromkeys(built, VARIABLES)
    APIGatewayWebSocketConnectEventModel.model_validate(built["connect"])
    APIGatewayWebSocketMessageEventModel.model_validate(built["message"])
    APIGatewayWebSocketDisconnectEventModel.model_validate(built["disconnect"])


def test_without_stage_variables_only_the_authorizer_event_has_the_key_and_it_is_empty() -> None:
    built = events(WITHOUT)

    assert [kind for kind, event in built.items() if "stageVariables" in event] == ["authorizer"]
    assert built["authorizer"]["stageVariables"] == {}


def test_an_event_gets_its_own_copy_of_the_variables() -> None:
    event = build_message_event(WITH, connection(), route_key="note", body="{}", request_id="R", message_id="M",
                                now=NOW)

    event["stageVariables"]["tableName"] = "changed"  # type: ignore[index]

    assert WITH.stage_variables["tableName"] == "Notes_dev"
