"""The new routes' handlers over in-memory fakes, and the per-connection rate limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from chat.config import override
from chat.domain.models import FRAME_LIMIT, FRAME_WINDOW_SECONDS
from chat.handlers import (
    connect,
    default,
    delete_message,
    find_users,
    list_conversations,
    mark_read,
    ping,
    send_message,
    sync_messages,
)

from .conftest import ENVIRON


class FrozenClock:
    """Time stands still until a test moves it: every frame falls in the same window."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def frozen(messages, connections, conversations, directory, notifier):
    clock = FrozenClock()
    with override(
        environ=ENVIRON, connections=connections, messages=messages, conversations=conversations,
        directory=directory, notifier=notifier, clock=clock,
    ):
        yield clock


@pytest.fixture
def invoke(ws_event, lambda_context):
    def call(handler, event_name, connection_id, user, body):
        return handler.lambda_handler(ws_event(event_name, connection_id=connection_id, user=user, body=body),
                                      lambda_context)

    return call


@pytest.fixture
def online(frozen, ws_event, lambda_context, notifier):
    """Connect through the $connect handler and open the socket in the fake gateway."""

    def connect_user(user, connection_id):
        assert connect.lambda_handler(ws_event("connect", connection_id=connection_id, user=user),
                                      lambda_context) == {"statusCode": 200}
        notifier.open(connection_id)

    return connect_user


def _send_body(message_id, recipient, **extra):
    return {"action": "sendMessage", "messageId": message_id, "conversationId": "conv-ab",
            "recipientId": recipient.user_id, "content": "hi", **extra}


# ------------------------------------------------------------------ ping


def test_ping_is_answered_with_pong_in_the_response_body_without_a_post(frozen, invoke, notifier, alice):
    notifier.open("A1")

    result = invoke(ping, "ping", "A1", alice, {"action": "ping"})

    assert result == {"statusCode": 200, "body": json.dumps({"type": "pong", "at": "2026-01-01T12:00:00.123Z"},
                                                            separators=(",", ":"))}
    assert notifier.posts == []


# ------------------------------------------------------------------ rate limit


def test_the_frame_after_the_limit_is_rate_limited_and_the_next_window_is_open_again(
    frozen, invoke, notifier, alice
):
    notifier.open("A1")
    answers = [invoke(ping, "ping", "A1", alice, {"action": "ping"}) for _ in range(FRAME_LIMIT + 1)]

    assert {a["statusCode"] for a in answers[:FRAME_LIMIT]} == {200}
    assert answers[-1]["statusCode"] == 429
    assert json.loads(answers[-1]["body"]) == {
        "type": "error", "code": "RATE_LIMITED",
        "message": "Too many frames on this connection; wait a few seconds and retry.",
    }

    frozen.now += timedelta(seconds=FRAME_WINDOW_SECONDS)
    assert invoke(ping, "ping", "A1", alice, {"action": "ping"})["statusCode"] == 200


def test_a_rate_limited_send_stores_nothing_and_names_the_message(
    frozen, invoke, messages, notifier, alice, bob
):
    notifier.open("A1")
    for n in range(FRAME_LIMIT):
        assert invoke(send_message, "send_message", "A1", alice, _send_body(f"m-{n}", bob))["statusCode"] == 200

    result = invoke(send_message, "send_message", "A1", alice, _send_body("m-over", bob))

    assert result == {"statusCode": 429}
    error = notifier.frames_for("A1", "error")[-1]
    assert (error["code"], error["messageId"]) == ("RATE_LIMITED", "m-over")
    assert "m-over" not in messages.items


def test_refused_frames_count_too(frozen, invoke, messages, notifier, alice, bob):
    notifier.open("A1")
    for _ in range(FRAME_LIMIT):
        invoke(send_message, "send_message", "A1", alice, _send_body("m-1", bob, content="   "))

    invoke(send_message, "send_message", "A1", alice, _send_body("m-1", bob))

    assert notifier.frames_for("A1", "error")[-1]["code"] == "RATE_LIMITED"
    assert messages.items == {}


def test_each_frame_counts_once_whatever_its_route(frozen, invoke, connections, notifier, alice, bob):
    notifier.open("A1")
    invoke(send_message, "send_message", "A1", alice, _send_body("m-1", bob))
    invoke(send_message, "send_message", "A1", alice, _send_body("m-1", bob))  # a retry
    invoke(sync_messages, "sync_messages", "A1", alice, {"action": "syncMessages"})
    invoke(default, "default", "A1", alice, {"action": "dance"})
    invoke(ping, "ping", "A1", alice, {"action": "ping"})

    assert sum(count for (cid, _), count in connections.frames.items() if cid == "A1") == 5


def test_the_limit_is_per_connection(frozen, invoke, notifier, alice):
    notifier.open("A1")
    for _ in range(FRAME_LIMIT + 1):
        invoke(ping, "ping", "A1", alice, {"action": "ping"})

    assert invoke(ping, "ping", "A2", alice, {"action": "ping"})["statusCode"] == 200


# ------------------------------------------------------------------ the other new routes


def test_mark_read_list_find_and_delete_answer_on_the_callers_connection(
    online, invoke, notifier, alice, bob
):
    online(alice, "A1")
    online(bob, "B1")
    invoke(send_message, "send_message", "A1", alice, _send_body("m-1", bob))

    assert invoke(mark_read, "mark_read", "B1", bob,
                  {"action": "markRead", "conversationId": "conv-ab", "messageIds": ["m-1"]}) == {"statusCode": 200}
    assert invoke(list_conversations, "list_conversations", "B1", bob,
                  {"action": "listConversations"}) == {"statusCode": 200}
    assert invoke(find_users, "find_users", "B1", bob, {"action": "findUsers", "query": "Ali"}) == {"statusCode": 200}
    assert invoke(delete_message, "delete_message", "A1", alice,
                  {"action": "deleteMessage", "messageId": "m-1"}) == {"statusCode": 200}

    assert [f["type"] for f in notifier.frames_for("B1")] == [
        "message", "marked", "conversations", "users", "messageDeleted"
    ]
    assert notifier.frames_for("B1", "users")[0]["users"][0]["name"] == "Alice"


@pytest.mark.parametrize(
    ("handler", "event_name", "body", "code", "status"),
    [
        (mark_read, "mark_read", {"action": "markRead", "conversationId": "conv-ab", "messageIds": ["m-1"]},
         "FORBIDDEN", 403),
        (delete_message, "delete_message", {"action": "deleteMessage", "messageId": "m-1"}, "FORBIDDEN", 403),
        (delete_message, "delete_message", {"action": "deleteMessage", "messageId": "m-404"}, "NOT_FOUND", 404),
        (list_conversations, "list_conversations", {"action": "listConversations", "limit": 51},
         "VALIDATION_ERROR", 400),
        (find_users, "find_users", {"action": "findUsers"}, "VALIDATION_ERROR", 400),
    ],
)
def test_refusals_on_the_new_routes_are_error_frames(
    frozen, invoke, notifier, alice, bob, carol, handler, event_name, body, code, status
):
    notifier.open("A1")
    notifier.open("C1")
    invoke(send_message, "send_message", "A1", alice, _send_body("m-1", bob))

    result = invoke(handler, event_name, "C1", carol, body)

    assert result == {"statusCode": status}
    [error] = notifier.frames_for("C1", "error")
    assert error["code"] == code
