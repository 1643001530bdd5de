"""deleteMessage, replies, and findUsers in the domain."""

from __future__ import annotations

import json

import pytest

from chat.domain.errors import Forbidden, NotFound, ValidationFailed
from chat.domain.models import (
    DeleteMessageRequest,
    FindUsersRequest,
    SendMessageRequest,
    SyncMessagesRequest,
    UserProfile,
)
from chat.domain.protocol import parse_frame


@pytest.fixture
def send(messaging):
    def send_frame(caller, recipient, message_id, conversation="conv-ab", **extra):
        frame = {"messageId": message_id, "conversationId": conversation, "recipientId": recipient.user_id,
                 "content": f"text of {message_id}", **extra}
        return messaging.send(caller, SendMessageRequest.model_validate(frame))

    return send_frame


def _delete(messaging, caller, message_id):
    return messaging.delete(caller, DeleteMessageRequest.model_validate({"messageId": message_id}))


# ------------------------------------------------------------------ deleteMessage


def test_the_sender_deletes_and_every_connection_of_both_participants_is_told(
    send, messaging, messages, notifier, connect, alice, bob
):
    phone = connect(alice, "A-phone")
    connect(alice, "A-laptop")
    connect(bob, "B1")
    connect(bob, "B2")
    send(phone, bob, "m-1")

    _delete(messaging, phone, "m-1")

    for connection_id in ("A-phone", "A-laptop", "B1", "B2"):
        [deleted] = notifier.frames_for(connection_id, "messageDeleted")
        assert (deleted["messageId"], deleted["conversationId"]) == ("m-1", "conv-ab")
        assert deleted["at"] > messages.items["m-1"].timestamp
    assert (messages.items["m-1"].is_deleted, messages.items["m-1"].content) == (True, "")


def test_a_deleted_message_synced_later_arrives_deleted_and_empty(send, messaging, notifier, connect, alice, bob):
    sender = connect(alice, "A1")
    send(sender, bob, "m-1")  # bob is offline
    _delete(messaging, sender, "m-1")

    reader = connect(bob, "B1")
    messaging.sync(reader, SyncMessagesRequest())

    [synced] = notifier.frames_for("B1", "sync")[0]["messages"]
    assert (synced["messageId"], synced["isDeleted"], synced["content"]) == ("m-1", True, "")


def test_only_the_sender_may_delete_and_the_message_stays(send, messaging, messages, notifier, connect, alice, bob):
    send(connect(alice, "A1"), bob, "m-1")
    reader = connect(bob, "B1")

    with pytest.raises(Forbidden) as refused:
        _delete(messaging, reader, "m-1")

    assert refused.value.message_id == "m-1"
    assert (messages.items["m-1"].is_deleted, messages.items["m-1"].content) == (False, "text of m-1")
    assert notifier.frames_for("A1", "messageDeleted") == []


def test_deleting_an_unknown_message_is_not_found(messaging, connect, alice):
    with pytest.raises(NotFound):
        _delete(messaging, connect(alice, "A1"), "m-404")


# ------------------------------------------------------------------ replies


def test_a_reply_to_a_message_of_another_conversation_is_refused_and_not_stored(
    send, messages, connect, alice, bob, carol
):
    sender = connect(alice, "A1")
    send(sender, carol, "m-1", conversation="conv-ac")

    with pytest.raises(ValidationFailed) as refused:
        send(sender, bob, "m-2", replyToMessageId="m-1")

    assert refused.value.message == "replyToMessageId must name a message of this conversation."
    assert refused.value.message_id == "m-2"
    assert "m-2" not in messages.items
    assert "conv-ab" not in messages.conversations


def test_a_reply_to_itself_is_refused_when_read():
    body = {"action": "sendMessage", "messageId": "m-1", "conversationId": "c", "recipientId": "r",
            "content": "x", "replyToMessageId": "m-1"}

    with pytest.raises(ValidationFailed) as refused:
        parse_frame(SendMessageRequest, json.dumps(body))

    assert refused.value.message == "replyToMessageId must name another message."


# ------------------------------------------------------------------ findUsers


def _find(finder, caller, query, limit=None):
    frame = {"query": query} if limit is None else {"query": query, "limit": limit}
    return finder.find(caller, FindUsersRequest.model_validate(frame))


@pytest.mark.parametrize("query", ["Bo", "bo", "bob@ex"])
def test_users_are_found_by_name_username_or_email_prefix(finder, notifier, connect, alice, bob, query):
    _find(finder, connect(alice, "A1"), query)

    assert notifier.frames_for("A1", "users") == [
        {"type": "users", "users": [{"userId": bob.user_id, "name": "Bob", "username": "bob"}]}
    ]


def test_the_caller_is_never_among_the_users_found(finder, connect, alice, directory):
    directory.add(UserProfile("al-2", "Alan", "alan"), "alan@example.com")

    found = _find(finder, connect(alice, "A1"), "Al", limit=1)

    assert [u.user_id for u in found] == ["al-2"]


def test_nobody_matching_is_an_empty_list(finder, notifier, connect, alice):
    _find(finder, connect(alice, "A1"), "Zed")

    assert notifier.frames_for("A1", "users") == [{"type": "users", "users": []}]


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        ("", "query must not be empty."),
        ("   ", "query must not be blank."),
        ('Bo" or name ^= "', 'query must not contain " or \\.'),
        ("x" * 65, "query must be at most 64 characters."),
    ],
)
def test_a_query_that_cannot_be_searched_is_refused(query, sentence):
    with pytest.raises(ValidationFailed) as refused:
        parse_frame(FindUsersRequest, json.dumps({"action": "findUsers", "query": query}))

    assert refused.value.message == sentence
