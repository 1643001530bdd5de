"""requestId through the handlers: echoed on every frame that answers a request, never on pushes."""

from __future__ import annotations

import json

import pytest

from chat.config import override
from chat.domain.models import FRAME_LIMIT, direct_conversation_id
from chat.handlers import (
    ack_messages,
    default,
    delete_message,
    find_users,
    get_history,
    list_conversations,
    mark_read,
    ping,
    send_message,
    sync_messages,
)

from .conftest import ENVIRON, TickingClock

RID = "3f2b8c1d-6e4a-4f0b-9d7c-1a2b3c4d5e6f"


@pytest.fixture
def invoke(backend, ws_event, lambda_context, notifier):
    def call(handler, event_name, connection_id, user, body):
        notifier.open(connection_id)
        return handler.lambda_handler(ws_event(event_name, connection_id=connection_id, user=user, body=body),
                                      lambda_context)

    return call


def _send(recipient, message_id="m-1", conversation="conv-ab", **extra):
    return {"action": "sendMessage", "messageId": message_id, "conversationId": conversation,
            "recipientId": recipient.user_id, "content": "hi", **extra}


def test_every_answering_frame_echoes_the_request_id(invoke, connect, notifier, alice, bob):
    connect(bob, "B1")
    invoke(send_message, "send_message", "A1", alice, _send(bob, requestId="r-send"))
    invoke(sync_messages, "sync_messages", "B1", bob, {"action": "syncMessages", "requestId": "r-sync"})
    invoke(mark_read, "mark_read", "B1", bob,
           {"action": "markRead", "conversationId": "conv-ab", "upTo": "m-1", "requestId": "r-mark"})
    invoke(list_conversations, "list_conversations", "B1", bob, {"action": "listConversations", "requestId": "r-list"})
    invoke(find_users, "find_users", "B1", bob, {"action": "findUsers", "query": "Ali", "requestId": "r-find"})
    invoke(get_history, "get_history", "B1", bob,
           {"action": "getHistory", "conversationId": "conv-ab", "requestId": "r-history"})
    invoke(default, "default", "B1", bob, {"action": "dance", "requestId": "r-dance"})
    invoke(delete_message, "delete_message", "B1", bob,
           {"action": "deleteMessage", "messageId": "m-1", "requestId": "r-delete"})
    pong = invoke(ping, "ping", "B1", bob, {"action": "ping", "requestId": RID})

    assert [(f["type"], f.get("requestId")) for f in notifier.frames_for("A1")] == [("ack", "r-send")]
    assert [(f["type"], f.get("requestId")) for f in notifier.frames_for("B1")] == [
        ("message", None),  # a push, while Bob is online
        ("sync", "r-sync"),
        ("marked", "r-mark"),
        ("conversations", "r-list"),
        ("users", "r-find"),
        ("history", "r-history"),
        ("error", "r-dance"),
        ("error", "r-delete"),  # Bob did not send m-1
    ]
    assert json.loads(pong["body"])["requestId"] == RID


def test_pushes_to_the_requesting_connection_carry_no_request_id(invoke, connect, notifier, alice):
    connect(alice, "A1")
    to_self = direct_conversation_id(alice.user_id, alice.user_id)
    invoke(send_message, "send_message", "A1", alice, _send(alice, conversation=to_self, requestId="r-1"))
    invoke(ack_messages, "ack_messages", "A1", alice, {"action": "ackMessages", "messageIds": ["m-1"],
                                                        "requestId": "r-2"})
    invoke(delete_message, "delete_message", "A1", alice, {"action": "deleteMessage", "messageId": "m-1",
                                                           "requestId": "r-3"})

    frames = notifier.frames_for("A1")
    assert [f["type"] for f in frames] == ["ack", "status", "messageDeleted"]
    assert [f.get("requestId") for f in frames] == ["r-1", None, None]


def test_frames_without_a_request_id_get_answers_without_one(invoke, notifier, alice, bob):
    invoke(send_message, "send_message", "A1", alice, _send(bob))
    invoke(sync_messages, "sync_messages", "A1", alice, {"action": "syncMessages"})
    invoke(default, "default", "A1", alice, {"action": "dance"})
    pong = invoke(ping, "ping", "A1", alice, {"action": "ping"})

    assert all("requestId" not in f for f in notifier.frames_for("A1"))
    assert "requestId" not in json.loads(pong["body"])


@pytest.mark.parametrize("bad", [42, "", "has space", "x" * 129, ["r-1"], {"id": "r-1"}, "semi;colon", True])
def test_an_invalid_request_id_is_refused_and_nothing_is_done(invoke, notifier, messages, alice, bob, bad):
    result = invoke(send_message, "send_message", "A1", alice, _send(bob, requestId=bad))

    assert result == {"statusCode": 400}
    [error] = notifier.frames_for("A1")
    assert (error["type"], error["code"], error["messageId"]) == ("error", "VALIDATION_ERROR", "m-1")
    assert "requestId" in error["message"] and "requestId" not in error
    assert messages.items == {}
    assert notifier.frames_for("B1") == []


def test_an_invalid_request_id_on_ping_is_answered_in_the_route_response(invoke, alice):
    result = invoke(ping, "ping", "A1", alice, {"action": "ping", "requestId": "no spaces"})

    assert result["statusCode"] == 400
    assert json.loads(result["body"])["code"] == "VALIDATION_ERROR"


def test_a_rate_limited_frame_echoes_its_request_id(
    ws_event, lambda_context, messages, connections, conversations, directory, notifier, alice
):
    frozen = TickingClock()
    frozen_now = frozen()  # every frame in one window
    notifier.open("A1")
    with override(environ=ENVIRON, connections=connections, messages=messages, conversations=conversations,
                  directory=directory, notifier=notifier, clock=lambda: frozen_now):
        answers = [
            ping.lambda_handler(ws_event("ping", connection_id="A1", user=alice,
                                         body={"action": "ping", "requestId": f"p-{n}"}), lambda_context)
            for n in range(FRAME_LIMIT + 1)
        ]
        sync_messages.lambda_handler(ws_event("sync_messages", connection_id="A1", user=alice,
                                              body={"action": "syncMessages", "requestId": "r-late"}),
                                     lambda_context)

    over = json.loads(answers[-1]["body"])
    assert (over["code"], over["requestId"]) == ("RATE_LIMITED", f"p-{FRAME_LIMIT}")
    [error] = notifier.frames_for("A1", "error")
    assert (error["code"], error["requestId"]) == ("RATE_LIMITED", "r-late")
