"""The sample events in events/ have the shapes API Gateway sends (checked with Powertools)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerRequestEvent
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from aws_lambda_powertools.utilities.parser.models.apigw_websocket import (
    APIGatewayWebSocketConnectEventRequestContext,
)

from chat.domain.models import (
    KNOWN_ACTIONS,
    AckMessagesRequest,
    DeleteMessageRequest,
    FindUsersRequest,
    GetHistoryRequest,
    ListConversationsRequest,
    MarkReadRequest,
    SendMessageRequest,
    SyncMessagesRequest,
    direct_conversation_id,
)
from chat.domain.protocol import parse_frame

EVENTS = Path(__file__).resolve().parents[3] / "events"
MESSAGE_EVENTS = {
    "send_message": "sendMessage",
    "sync_messages": "syncMessages",
    "mark_read": "markRead",
    "ack_messages": "ackMessages",
    "list_conversations": "listConversations",
    "find_users": "findUsers",
    "delete_message": "deleteMessage",
    "get_history": "getHistory",
    "ping": "ping",
    "default": "$default",
}


def _load(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text())


def test_there_is_one_sample_event_per_function():
    assert {p.stem for p in EVENTS.glob("*.json")} == {"authorizer", "connect", "disconnect", *MESSAGE_EVENTS}


def test_authorizer_event_is_a_websocket_request_authorizer_event_with_a_token():
    raw = _load("authorizer")
    event = APIGatewayAuthorizerRequestEvent(raw)

    assert event.get_type == "REQUEST"
    assert event.method_arn.endswith("/dev/$connect")
    assert event.query_string_parameters["token"].count(".") == 2
    assert raw["multiValueQueryStringParameters"]["token"] == [event.query_string_parameters["token"]]
    assert raw["stageVariables"] == {}
    context = APIGatewayWebSocketConnectEventRequestContext.model_validate(raw["requestContext"])
    assert context.identity.user_agent
    assert "authorizer" not in raw["requestContext"]  # the authorizer runs before there is one


def test_connect_event_matches_the_powertools_model_and_carries_the_authorizer_context():
    raw = _load("connect")
    event = APIGatewayWebSocketConnectEventModel.model_validate(raw)

    assert event.request_context.route_key == "$connect"
    assert "messageId" not in raw["requestContext"]
    assert "body" not in raw
    authorizer = raw["requestContext"]["authorizer"]
    assert authorizer["userId"] == authorizer["principalId"]
    assert isinstance(authorizer["userName"], str)


def test_disconnect_event_matches_the_powertools_model():
    event = APIGatewayWebSocketDisconnectEventModel.model_validate(_load("disconnect"))

    assert event.request_context.disconnect_status_code == 1005
    assert event.request_context.disconnect_reason


@pytest.mark.parametrize(("name", "route_key"), MESSAGE_EVENTS.items())
def test_message_events_match_the_powertools_model(name, route_key):
    raw = _load(name)
    event = APIGatewayWebSocketMessageEventModel.model_validate(raw)

    assert event.request_context.route_key == route_key
    assert event.request_context.message_id
    assert "headers" not in raw
    assert set(raw["requestContext"]["authorizer"]) == {"principalId", "userId", "userName"}
    assert all(isinstance(v, str) for v in raw["requestContext"]["authorizer"].values())


def test_message_event_bodies_are_valid_frames_for_their_routes():
    send = parse_frame(SendMessageRequest, _load("send_message")["body"])
    sync = parse_frame(SyncMessagesRequest, _load("sync_messages")["body"])
    mark = parse_frame(MarkReadRequest, _load("mark_read")["body"])
    ack = parse_frame(AckMessagesRequest, _load("ack_messages")["body"])
    listing = parse_frame(ListConversationsRequest, _load("list_conversations")["body"])
    find = parse_frame(FindUsersRequest, _load("find_users")["body"])
    delete = parse_frame(DeleteMessageRequest, _load("delete_message")["body"])
    history = parse_frame(GetHistoryRequest, _load("get_history")["body"])
    default_action = json.loads(_load("default")["body"])["action"]

    sender = _load("send_message")["requestContext"]["authorizer"]["userId"]
    assert send.recipient_id != sender
    # The id the reference client gives the two users' conversation.
    assert send.conversation_id == direct_conversation_id(sender, send.recipient_id)
    assert sync.limit == 50
    # The recipient of the sample message confirms it, then reads it.
    assert ack.message_ids == [send.message_id]
    assert _load("ack_messages")["requestContext"]["authorizer"]["userId"] == send.recipient_id
    assert mark.conversation_id == send.conversation_id and mark.up_to == send.message_id
    assert _load("mark_read")["requestContext"]["authorizer"]["userId"] == send.recipient_id
    assert listing.limit == 20
    assert find.query == "Bo"
    assert delete.message_id == send.message_id
    # The sender reads back the sample message's conversation (on a new device, say).
    assert history.conversation_id == send.conversation_id and history.limit == 50
    assert json.loads(_load("get_history")["body"])["requestId"]
    assert default_action not in KNOWN_ACTIONS


def test_every_known_action_has_a_sample_event_routed_by_it():
    routed = {json.loads(_load(name)["body"])["action"] for name in MESSAGE_EVENTS if name != "default"}

    assert routed == set(KNOWN_ACTIONS)


def test_all_events_address_one_stage_and_each_user_their_own_connection():
    names = ["authorizer", "connect", "disconnect", *MESSAGE_EVENTS]
    contexts = {name: _load(name)["requestContext"] for name in names}

    assert {(c["apiId"], c["stage"], c["domainName"]) for c in contexts.values()} == {
        ("a1b2c3d4e5", "dev", "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com")}
    # The sender and the recipient of the sample message, each on one connection of their own.
    pairs = {(c["authorizer"]["userId"], c["connectionId"]) for c in contexts.values() if "authorizer" in c}
    assert len(pairs) == 2
    assert len({user for user, _ in pairs}) == len({connection for _, connection in pairs}) == 2
    # The authorizer runs for the sender's connection, before it has an identity.
    assert contexts["authorizer"]["connectionId"] == contexts["connect"]["connectionId"]
