"""Handlers over in-memory fakes: what a client sees for each outcome, and what is stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_fakes import InMemoryMessageStore

from chat.config import Container, override
from chat.domain.errors import InvalidToken
from chat.domain.models import Connection, Identity
from chat.handlers import ack_messages, authorizer, connect, default, disconnect, send_message, sync_messages

from .conftest import ENVIRON

INTERNAL_FRAME = {"type": "error", "code": "INTERNAL", "message": "Something went wrong on our side; please retry."}


def _send_body(**changes):
    body = {
        "action": "sendMessage",
        "messageId": "m-1",
        "conversationId": "conv-ab",
        "recipientId": "5f1e8a3c-bob",
        "content": "hello",
    }
    body.update(changes)
    return body


# ------------------------------------------------------------------ $default


def test_unknown_action_gets_an_error_frame_naming_the_known_actions(
    backend, notifier, ws_event, alice, lambda_context
):
    notifier.open("A1")
    event = ws_event("default", connection_id="A1", user=alice, body={"action": "dance"})

    result = default.lambda_handler(event, lambda_context)

    assert result == {"statusCode": 400}
    assert notifier.frames_for("A1") == [
        {
            "type": "error",
            "code": "VALIDATION_ERROR",
            "message": "Unknown action 'dance'. Known actions: sendMessage, syncMessages, markRead, "
            "ackMessages, listConversations, findUsers, deleteMessage, getHistory, ping.",
        }
    ]


def test_a_non_json_frame_is_told_it_must_be_a_json_object_with_an_action(
    backend, notifier, ws_event, alice, lambda_context
):
    notifier.open("A1")

    default.lambda_handler(ws_event("default", connection_id="A1", user=alice, body="hello?"), lambda_context)

    [error] = notifier.frames_for("A1")
    assert error["message"] == 'The frame must be a JSON object with an "action" field.'


def test_a_caller_gone_before_its_error_frame_is_forgotten_like_any_gone_connection(
    backend, connections, notifier, connect, ws_event, alice, lambda_context, caplog
):
    connect(alice, "A-left")
    connect(alice, "A-phone")
    notifier.close("A-left")
    event = ws_event("default", connection_id="A-left", user=alice, body={"action": "dance"})

    result = default.lambda_handler(event, lambda_context)

    assert result == {"statusCode": 400}
    assert notifier.gone == ["A-left"]
    # That connection id and no other.
    assert connections.connection_ids_by_user([alice.user_id]) == {alice.user_id: ["A-phone"]}
    assert "A-left" not in connections.rows
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


# ------------------------------------------------------------------ sendMessage


def test_send_message_handler_stores_and_acks(backend, messages, notifier, ws_event, alice, lambda_context):
    notifier.open("A1")

    result = send_message.lambda_handler(ws_event("send_message", connection_id="A1", user=alice, body=_send_body()),
                                         lambda_context)

    assert result == {"statusCode": 200}
    assert messages.items["m-1"].sender_id == alice.user_id
    assert [f["type"] for f in notifier.frames_for("A1")] == ["ack"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"content": "   "}, "content"), ({"recipientId": ""}, "recipientId")],
)
def test_invalid_send_gets_a_validation_error_naming_the_field_and_stores_nothing(
    backend, messages, notifier, ws_event, alice, lambda_context, changes, field
):
    notifier.open("A1")
    event = ws_event("send_message", connection_id="A1", user=alice, body=_send_body(**changes))

    result = send_message.lambda_handler(event, lambda_context)

    assert result == {"statusCode": 400}
    [error] = notifier.frames_for("A1")
    assert (error["type"], error["code"], error["messageId"]) == ("error", "VALIDATION_ERROR", "m-1")
    assert error["message"].startswith(field)
    assert messages.items == {}


def test_a_frame_without_authorizer_identity_is_forbidden_and_stores_nothing(
    backend, messages, notifier, ws_event, lambda_context
):
    notifier.open("A1")

    result = send_message.lambda_handler(ws_event("send_message", connection_id="A1", user=None, body=_send_body()),
                                         lambda_context)

    assert result == {"statusCode": 403}
    assert notifier.frames_for("A1")[0]["code"] == "FORBIDDEN"
    assert messages.items == {}


class ExplodingStore(InMemoryMessageStore):
    def create(self, message, ticket=None, *, start_conversation=True):
        raise RuntimeError("table Messages_prod at /var/task/secret.py exploded")


def test_an_unexpected_failure_gives_internal_without_details_and_logs_the_trace(
    connections, directory, notifier, ws_event, alice, lambda_context, caplog
):
    notifier.open("A1")
    environ = ENVIRON
    event = ws_event("send_message", connection_id="A1", user=alice, body=_send_body())

    with override(environ=environ, connections=connections, messages=ExplodingStore(), directory=directory,
                  notifier=notifier):
        result = send_message.lambda_handler(event, lambda_context)

    assert result == {"statusCode": 500}
    assert notifier.frames_for("A1") == [INTERNAL_FRAME]
    [logged] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert logged.exc_info is not None
    assert "exploded" in str(logged.exc_info[1])


def test_when_the_caller_is_gone_too_an_internal_failure_still_returns_500(
    connections, directory, notifier, ws_event, alice, lambda_context
):
    environ = ENVIRON
    event = ws_event("send_message", connection_id="A-closed", user=alice, body=_send_body())

    with override(environ=environ, connections=connections, messages=ExplodingStore(), directory=directory,
                  notifier=notifier):
        assert send_message.lambda_handler(event, lambda_context) == {"statusCode": 500}


# ------------------------------------------------------------------ syncMessages


def test_sync_handler_answers_with_a_sync_frame(backend, notifier, ws_event, bob, lambda_context):
    notifier.open("B1")

    result = sync_messages.lambda_handler(
        ws_event("sync_messages", connection_id="B1", user=bob, body={"action": "syncMessages", "since": "@@"}),
        lambda_context,
    )

    assert result == {"statusCode": 400}
    assert notifier.frames_for("B1")[0]["code"] == "VALIDATION_ERROR"


# ------------------------------------------------------------------ $connect / $disconnect


def test_connect_stores_the_authorized_user_with_a_day_long_ttl(
    backend, connections, clock, ws_event, alice, lambda_context
):
    now = clock.now

    result = connect.lambda_handler(ws_event("connect", connection_id="A1", user=alice), lambda_context)

    assert result == {"statusCode": 200}
    row = connections.rows["A1"]
    assert (row.user_id, row.user_name) == (alice.user_id, "Alice")
    assert row.connected_at == "2026-01-01T12:00:00.123Z"
    assert row.ttl == int(now.timestamp()) + 24 * 3600


def test_connect_falls_back_to_the_principal_id(backend, connections, ws_event, lambda_context):
    event = ws_event("connect", connection_id="A1", user=None)
    event["requestContext"]["authorizer"] = {"principalId": "sub-123"}

    connect.lambda_handler(event, lambda_context)

    assert (connections.rows["A1"].user_id, connections.rows["A1"].user_name) == ("sub-123", "sub-123")


def test_connect_without_authorizer_identity_is_refused_and_stores_nothing(
    backend, connections, ws_event, lambda_context
):
    result = connect.lambda_handler(ws_event("connect", connection_id="A1", user=None), lambda_context)

    assert result == {"statusCode": 403}
    assert connections.rows == {}


def test_disconnect_forgets_the_connection(backend, connections, ws_event, alice, lambda_context):
    connect.lambda_handler(ws_event("connect", connection_id="A1", user=alice), lambda_context)
    connect.lambda_handler(ws_event("connect", connection_id="A2", user=alice), lambda_context)

    result = disconnect.lambda_handler(ws_event("disconnect", connection_id="A1", user=alice), lambda_context)

    assert result == {"statusCode": 200}
    assert set(connections.rows) == {"A2"}


# ------------------------------------------------------------------ authorizer


class FakeVerifier:
    def verify(self, token):
        if token != "good-token":
            raise InvalidToken("signature does not match")
        return Identity(user_id="sub-alice", user_name="Alice")


def _authorizer_event(token):
    event = json.loads((Path(__file__).resolve().parents[3] / "events" / "authorizer.json").read_text())
    event["queryStringParameters"] = None if token is None else {"token": token}
    event["multiValueQueryStringParameters"] = None if token is None else {"token": [token]}
    return event


def test_valid_token_is_allowed_on_the_method_arn_with_the_user_in_the_context(lambda_context):
    event = _authorizer_event("good-token")

    with override(verifier=FakeVerifier()):
        policy = authorizer.lambda_handler(event, lambda_context)

    assert policy == {
        "principalId": "sub-alice",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}],
        },
        "context": {"userId": "sub-alice", "userName": "Alice"},
    }


@pytest.mark.parametrize("token", ["bad-token", "", None])
def test_refused_or_missing_token_is_denied_and_logged_without_the_token(token, lambda_context, caplog):
    event = _authorizer_event(token)

    with override(verifier=FakeVerifier()):
        policy = authorizer.lambda_handler(event, lambda_context)

    [statement] = policy["policyDocument"]["Statement"]
    assert (statement["Effect"], statement["Resource"]) == ("Deny", event["methodArn"])
    assert "context" not in policy
    assert "Connection denied" in caplog.messages
    if token:
        assert all(token not in str(vars(record)) for record in caplog.records)


# ------------------------------------------------------------------ composition root


def test_connections_endpoint_comes_from_the_event_unless_configured():
    from_event = Container(environ={**ENVIRON, "CONNECTIONS_ENDPOINT_URL": ""})
    configured = Container(environ={**ENVIRON, "CONNECTIONS_ENDPOINT_URL": "http://127.0.0.1:4510/dev"})

    assert from_event.connections_endpoint_for("a1b2c3d4e5.execute-api.us-east-1.amazonaws.com", "dev") == (
        "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev"
    )
    assert configured.connections_endpoint_for("ignored", "dev") == "http://127.0.0.1:4510/dev"


def test_jwks_url_defaults_under_the_issuer_and_can_be_pointed_elsewhere():
    issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC"
    base = {"USER_POOL_ID": "us-east-1_AbC", "USER_POOL_CLIENT_ID": "client", "COGNITO_ISSUER": issuer}

    assert Container(environ={**base, "JWKS_URL": ""}).auth_settings.resolved_jwks_url == (
        f"{issuer}/.well-known/jwks.json"
    )
    assert Container(environ={**base, "JWKS_URL": "http://127.0.0.1:5000/p/.well-known/jwks.json"}).auth_settings \
        .resolved_jwks_url == "http://127.0.0.1:5000/p/.well-known/jwks.json"


# ------------------------------------------------------------------ frames no handler may leave unanswered


@pytest.mark.parametrize(
    ("handler", "event_name", "body", "echoed"),
    [
        (send_message, "send_message", _send_body(messageId="\ud800"), "\ufffd"),
        (default, "default", {"action": "\ud800"}, None),
    ],
    ids=["messageId", "action"],
)
def test_a_lone_surrogate_the_error_echoes_still_gets_its_validation_error(
    backend, notifier, ws_event, alice, lambda_context, handler, event_name, body, echoed
):
    # json.dumps escapes it as "\ud800": valid JSON that no UTF-8 frame can carry as is.
    notifier.open("A1")

    result = handler.lambda_handler(ws_event(event_name, connection_id="A1", user=alice, body=body), lambda_context)

    assert result == {"statusCode": 400}
    [answer] = notifier.frames_for("A1")
    assert answer["code"] == "VALIDATION_ERROR"
    assert answer.get("messageId") == echoed


@pytest.mark.parametrize("handler", [send_message, default])
def test_json_nested_deeper_than_the_parser_goes_is_a_validation_error(
    backend, notifier, ws_event, alice, lambda_context, handler
):
    notifier.open("A1")
    event = ws_event("default", connection_id="A1", user=alice, body="[" * 2000 + "]" * 2000)

    assert handler.lambda_handler(event, lambda_context) == {"statusCode": 400}
    assert [f["code"] for f in notifier.frames_for("A1")] == ["VALIDATION_ERROR"]


class FailingPushNotifier:
    """Delivers to the caller, fails (not 410) for everyone else: a fault in the pushes."""

    def __init__(self, inner, caller):
        self._inner, self._caller = inner, caller

    def post(self, connection_id, frame):
        if connection_id != self._caller:
            raise RuntimeError("@connections answered 500")
        self._inner.post(connection_id, frame)


def test_a_push_that_fails_comes_before_the_ack_so_the_client_retries_and_the_retry_finishes_it(
    connections, messages, directory, notifier, ws_event, alice, bob, lambda_context, caplog
):
    notifier.open("A1")
    notifier.open("B1")
    connections.put(Connection("B1", bob.user_id, bob.user_name, "2026-01-01T00:00:00.000Z", 0))
    event = ws_event("send_message", connection_id="A1", user=alice, body=_send_body(recipientId=bob.user_id))

    with override(environ=ENVIRON, connections=connections, messages=messages, directory=directory,
                  notifier=FailingPushNotifier(notifier, "A1")):
        result = send_message.lambda_handler(event, lambda_context)

    # No ack: the sender's outbox keeps the frame and sends it again.
    assert result == {"statusCode": 500}
    assert [f.get("code", f["type"]) for f in notifier.frames_for("A1")] == ["INTERNAL"]
    assert any(r.levelname == "ERROR" and r.exc_info for r in caplog.records)

    with override(environ=ENVIRON, connections=connections, messages=messages, directory=directory,
                  notifier=notifier):
        assert send_message.lambda_handler(event, lambda_context) == {"statusCode": 200}

    assert [f["type"] for f in notifier.frames_for("B1")] == ["message"]
    assert [f.get("code", f["type"]) for f in notifier.frames_for("A1")] == ["INTERNAL", "ack"]


# ------------------------------------------------------------------ identifiers


@pytest.mark.parametrize("recipient", ["#", "x#y", "bob ", "b\u00f6b", "a/b", "x" * 129])
def test_a_malformed_recipient_id_is_a_validation_error_and_nothing_is_stored(
    backend, messages, notifier, ws_event, alice, lambda_context, recipient
):
    notifier.open("A1")
    event = ws_event("send_message", connection_id="A1", user=alice, body=_send_body(recipientId=recipient))

    assert send_message.lambda_handler(event, lambda_context) == {"statusCode": 400}
    [answer] = notifier.frames_for("A1")
    assert (answer["code"], answer["messageId"]) == ("VALIDATION_ERROR", "m-1")
    assert answer["message"].startswith("recipientId must ")
    assert messages.items == {} and messages.conversations == {}


def test_a_recipient_who_is_no_user_of_the_pool_is_not_found_and_nothing_is_stored(
    backend, messages, notifier, ws_event, alice, lambda_context
):
    notifier.open("A1")
    stranger = "7d0c1e9a-3b5f-4c2d-9e8a-1f2b3c4d5e6f"
    event = ws_event("send_message", connection_id="A1", user=alice, body=_send_body(recipientId=stranger))

    assert send_message.lambda_handler(event, lambda_context) == {"statusCode": 404}
    [answer] = notifier.frames_for("A1")
    assert (answer["code"], answer["messageId"]) == ("NOT_FOUND", "m-1")
    assert messages.items == {} and messages.conversations == {} and messages.memberships == {}


def test_content_over_the_limit_is_payload_too_large_and_stores_nothing(
    backend, messages, notifier, ws_event, alice, lambda_context
):
    notifier.open("A1")
    event = ws_event("send_message", connection_id="A1", user=alice, body=_send_body(content="x" * 4001))

    assert send_message.lambda_handler(event, lambda_context) == {"statusCode": 413}

    [error] = notifier.frames_for("A1")
    assert (error["code"], error["messageId"]) == ("PAYLOAD_TOO_LARGE", "m-1")
    assert error["message"] == "content must be at most 4000 characters."
    assert messages.items == {}


def test_message_functions_without_a_user_pool_id_still_work(
    connections, messages, notifier, ws_event, alice, bob, lambda_context
):
    # Only sendMessage's function is given USER_POOL_ID (template.yaml); the others share
    # the messaging service and must not need it.
    without_pool = {name: value for name, value in ENVIRON.items() if name != "USER_POOL_ID"}
    notifier.open("B1")
    body = {"action": "ackMessages", "messageIds": ["m-1"]}
    event = ws_event("ack_messages", connection_id="B1", user=bob, body=body)

    with override(environ=without_pool, connections=connections, messages=messages, notifier=notifier):
        assert ack_messages.lambda_handler(event, lambda_context) == {"statusCode": 200}
    assert notifier.frames_for("B1") == []
