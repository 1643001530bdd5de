"""Conversations over real sockets: the lists both users see, sent → delivered → read,
deleting, and what another user may not do."""

from __future__ import annotations

from typing import Any

import pytest

from chatclient import ChatSession, conversation_id

pytestmark = pytest.mark.e2e


def _conversations(session: ChatSession, **fields: Any) -> list[dict[str, Any]]:
    session.send("listConversations", **fields)
    return list(session.receive_until("conversations")["conversations"])


def _only(entries: list[dict[str, Any]], conversation: str) -> dict[str, Any]:
    [entry] = [e for e in entries if e["conversationId"] == conversation]
    return entry


def _error(session: ChatSession) -> dict[str, Any]:
    return session.receive_until("error")


def test_a_live_message_shows_in_both_conversation_lists_with_last_message_and_unread_count(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a, ChatSession(stack.target, bob.id_token) as b:
        a.send_message(conversation, bob.sub, "first")
        assert b.receive_until("message")["message"]["content"] == "first"
        message_id = a.send_message(conversation, bob.sub, "lunch at noon?")
        assert b.receive_until("message")["message"]["content"] == "lunch at noon?"

        [for_alice] = _conversations(a)
        [for_bob] = _conversations(b)

    assert for_alice["otherUser"] == {"userId": bob.sub, "name": "Bob"}
    assert for_bob["otherUser"] == {"userId": alice.sub, "name": "Alice"}
    assert (for_alice["unreadCount"], for_bob["unreadCount"]) == (0, 2)
    for entry in (for_alice, for_bob):
        assert entry["conversationId"] == conversation
        assert sorted(entry["participants"]) == sorted([alice.sub, bob.sub])
        assert (entry["lastMessage"]["messageId"], entry["lastMessage"]["content"]) == (message_id, "lunch at noon?")


def test_the_newest_conversation_comes_first_and_the_list_pages(stack, new_user):
    alice, bob, carol = new_user("alice"), new_user("bob"), new_user("carol")
    with ChatSession(stack.target, alice.id_token) as a:
        a.send_message(conversation_id(alice.sub, bob.sub), bob.sub, "to bob")
        a.receive_until("ack")
        a.send_message(conversation_id(alice.sub, carol.sub), carol.sub, "to carol")
        a.receive_until("ack")

        a.send("listConversations", limit=1)
        first = a.receive_until("conversations")
        a.send("listConversations", limit=1, cursor=first["cursor"])
        second = a.receive_until("conversations")

    assert [c["otherUser"]["name"] for c in first["conversations"]] == ["Carol"]
    assert first["hasMore"] is True
    assert [c["otherUser"]["name"] for c in second["conversations"]] == ["Bob"]
    assert second["hasMore"] is False


def test_status_moves_sent_then_delivered_then_read_on_every_device_of_the_sender(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with (
        ChatSession(stack.target, alice.id_token) as phone,
        ChatSession(stack.target, alice.id_token) as laptop,
        ChatSession(stack.target, bob.id_token) as b,
    ):
        message_id = phone.send_message(conversation, bob.sub, "did you get this?")
        assert b.receive_until("message")["message"]["messageId"] == message_id
        ack = phone.receive_until("ack")
        assert (ack["messageId"], ack["status"]) == (message_id, "sent")
        for device in (phone, laptop):
            delivered = device.receive_until("status")
            assert (delivered["messageId"], delivered["status"]) == (message_id, "delivered")

        b.send("markRead", conversationId=conversation, messageIds=[message_id])
        marked = b.receive_until("marked")
        assert marked == {"type": "marked", "conversationId": conversation, "messageIds": [message_id],
                          "status": "read"}
        for device in (phone, laptop):
            read = device.receive_until("status")
            assert (read["messageId"], read["conversationId"], read["status"]) == (message_id, conversation, "read")

        assert _only(_conversations(b), conversation)["unreadCount"] == 0
        assert _only(_conversations(phone), conversation)["lastMessage"]["status"] == "read"


def test_deleting_a_message_tells_both_users_and_the_list_shows_it_deleted(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a, ChatSession(stack.target, bob.id_token) as b:
        message_id = a.send_message(conversation, bob.sub, "oops, wrong chat")
        b.receive_until("message")

        a.send("deleteMessage", messageId=message_id)

        for session in (a, b):
            deleted = session.receive_until("messageDeleted")
            assert (deleted["messageId"], deleted["conversationId"]) == (message_id, conversation)
        last = _only(_conversations(b), conversation)["lastMessage"]
        assert (last["isDeleted"], last["content"]) == (True, "")


def test_a_reply_must_point_into_the_same_conversation(stack, new_user):
    alice, bob, carol = new_user("alice"), new_user("bob"), new_user("carol")
    with ChatSession(stack.target, alice.id_token) as a:
        elsewhere = a.send_message(conversation_id(alice.sub, carol.sub), carol.sub, "hi carol")
        a.receive_until("ack")
        first = a.send_message(conversation_id(alice.sub, bob.sub), bob.sub, "hi bob")
        a.receive_until("ack")

        a.send_message(conversation_id(alice.sub, bob.sub), bob.sub, "re: carol", replyToMessageId=elsewhere)
        error = _error(a)
        assert (error["code"], error["message"]) == (
            "VALIDATION_ERROR", "replyToMessageId must name a message of this conversation."
        )
        reply = a.send_message(conversation_id(alice.sub, bob.sub), bob.sub, "re: hi", replyToMessageId=first)
        assert a.receive_until("ack")["messageId"] == reply


def test_another_user_can_neither_write_into_read_nor_delete_in_a_conversation(stack, new_user):
    alice, bob, mallory = new_user("alice"), new_user("bob"), new_user("mallory")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a, ChatSession(stack.target, bob.id_token) as b:
        message_id = a.send_message(conversation, bob.sub, "just between us")
        b.receive_until("message")
        a.receive_until("status")

        with ChatSession(stack.target, mallory.id_token) as m:
            m.send_message(conversation, bob.sub, "let me in")
            assert _error(m)["code"] == "FORBIDDEN"
            m.send("markRead", conversationId=conversation, messageIds=[message_id])
            assert _error(m)["code"] == "FORBIDDEN"
            m.send("markRead", conversationId=conversation, upTo=message_id)
            assert _error(m)["code"] == "FORBIDDEN"
            m.send("deleteMessage", messageId=message_id)
            assert _error(m)["code"] == "FORBIDDEN"
            m.send("syncMessages")
            assert m.receive_until("sync")["messages"] == []
            assert _conversations(m) == []

        # Bob may not delete what Alice wrote, nor mark his own message read.
        b.send("deleteMessage", messageId=message_id)
        assert _error(b)["code"] == "FORBIDDEN"
        own = b.send_message(conversation, alice.sub, "and a reply")
        b.receive_until("ack")
        b.send("markRead", conversationId=conversation, messageIds=[own])
        assert _error(b)["code"] == "FORBIDDEN"

        # Nothing changed: still unread for Bob, still there, and no "read" reached Alice.
        entry = _only(_conversations(b), conversation)
        assert entry["unreadCount"] == 1
        assert entry["lastMessage"]["messageId"] == own
        a.send("ping")
        frames = _until_pong(a)
        assert [f["message"]["messageId"] for f in frames if f.get("type") == "message"] == [own]
        assert not [f for f in frames if f.get("type") == "status" and f.get("status") == "read"]
        assert not [f for f in frames if f.get("type") == "messageDeleted"]


def _until_pong(session: ChatSession) -> list[dict[str, Any]]:
    """Every frame up to the pong (bounded by the session's receive timeout)."""
    frames = []
    while True:
        frame = session.receive()
        if frame.get("type") == "pong":
            return frames
        frames.append(frame)
