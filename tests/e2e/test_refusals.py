"""Bad tokens are refused at the handshake; bad input gets an error frame and stores nothing."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import jwt
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chatclient import ChatSession, conversation_id, sign_in

from .conftest import PASSWORD

pytestmark = pytest.mark.e2e


def _connections_of(stack, *subs: str) -> set[str]:
    """The connection ids stored for these users (never the whole shared table: other
    tests' connections come and go while this one runs)."""
    table = stack.table("UserConnectionsTable")
    found: set[str] = set()
    for sub in subs:
        item = stack.dynamodb().get_item(TableName=table, Key={"userId": {"S": sub}}, ConsistentRead=True)
        found |= set(item.get("Item", {}).get("connectionIds", {}).get("SS", []))
    return found


def _handshake_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused, connect(url, open_timeout=10):
        pass
    return refused.value.response.status_code


def _expired_copy(token: str) -> str:
    """The same claims, expired, signed with the emulator's own Cognito key."""
    from joserfc import jwk
    from joserfc import jwt as jose_jwt
    from moto.utilities.utils import load_resource

    key = jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    return jose_jwt.encode({"kid": "dummy", "alg": "RS256"}, claims, key)


@pytest.fixture
def wrong_client_token(stack, named_user):
    """A valid token of the same pool, issued to another app client (removed afterwards)."""
    username, _ = named_user("eve")
    cognito = stack.target.cognito()
    other = cognito.create_user_pool_client(
        UserPoolId=stack.target.user_pool_id, ClientName=f"other-{uuid.uuid4().hex[:6]}",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    try:
        yield sign_in(replace(stack.target, user_pool_client_id=other), username, PASSWORD).id_token
    finally:
        cognito.delete_user_pool_client(UserPoolId=stack.target.user_pool_id, ClientId=other)


def test_tokens_that_must_not_connect_are_refused_and_nothing_is_stored(stack, new_user, wrong_client_token):
    if not stack.local:
        pytest.skip("needs the emulator's key and tables")
    url = stack.target.websocket_url
    alice = new_user("alice")
    valid = alice.id_token
    eve = jwt.decode(wrong_client_token, options={"verify_signature": False})["sub"]

    assert _handshake_status(url) == 401  # no token at all: the authorizer is not even asked
    assert _handshake_status(f"{url}?token=not-a-jwt") == 403
    assert _handshake_status(f"{url}?token={_expired_copy(valid)}") == 403
    assert _handshake_status(f"{url}?token={wrong_client_token}") == 403

    assert _connections_of(stack, alice.sub, eve) == set()


@pytest.mark.parametrize(
    ("fields", "field_named"),
    [
        ({"content": "   "}, "content"),
        ({"recipientId": None}, "recipientId"),
        ({"conversationId": None}, "conversationId"),
        # "#" is the conversation item's own key; ids have one shape, checked at the edge.
        ({"recipientId": "#"}, "recipientId"),
        ({"recipientId": "x#y"}, "recipientId"),
        ({"messageId": "m 1"}, "messageId"),
    ],
)
def test_invalid_send_gets_validation_error_and_stores_nothing(stack, new_user, fields, field_named):
    alice, bob = new_user("alice"), new_user("bob")
    message_id = str(uuid.uuid4())
    frame = {"messageId": message_id, "conversationId": conversation_id(alice.sub, bob.sub),
             "recipientId": bob.sub, "content": "hi"}
    frame.update(fields)
    frame = {k: v for k, v in frame.items() if v is not None}
    message_id = frame["messageId"]
    with ChatSession(stack.target, alice.id_token) as a:
        a.send("sendMessage", **frame)
        error = a.receive()
    assert error["type"] == "error"
    assert error["code"] == "VALIDATION_ERROR"
    assert field_named in error["message"]
    if stack.local:
        stored = stack.dynamodb().get_item(TableName=stack.table("MessagesTable"),
                                           Key={"messageId": {"S": message_id}})
        assert "Item" not in stored


def test_content_over_the_limit_is_payload_too_large_and_stores_nothing(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    message_id = str(uuid.uuid4())
    with ChatSession(stack.target, alice.id_token) as a:
        a.send("sendMessage", messageId=message_id, conversationId=conversation_id(alice.sub, bob.sub),
               recipientId=bob.sub, content="x" * 4001)
        error = a.receive()
    assert (error["type"], error["code"], error["messageId"]) == ("error", "PAYLOAD_TOO_LARGE", message_id)
    if stack.local:
        stored = stack.dynamodb().get_item(TableName=stack.table("MessagesTable"),
                                           Key={"messageId": {"S": message_id}})
        assert "Item" not in stored


def test_a_recipient_who_is_no_user_of_the_pool_is_not_found_and_nothing_is_stored(stack, new_user):
    alice = new_user("alice")
    stranger = str(uuid.uuid4())
    message_id = str(uuid.uuid4())
    with ChatSession(stack.target, alice.id_token) as a:
        a.send("sendMessage", messageId=message_id, conversationId=conversation_id(alice.sub, stranger),
               recipientId=stranger, content="anyone there?")
        error = a.receive()
    assert (error["type"], error["code"], error["messageId"]) == ("error", "NOT_FOUND", message_id)
    if stack.local:
        stored = stack.dynamodb().get_item(TableName=stack.table("MessagesTable"),
                                           Key={"messageId": {"S": message_id}})
        assert "Item" not in stored
