"""Two users chat through the local stack over real sockets with real Cognito tokens."""

from __future__ import annotations

import pytest

from chatclient import ChatSession, conversation_id

pytestmark = pytest.mark.e2e


def test_live_message_reaches_recipient_and_sender_sees_sent_then_delivered(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a, ChatSession(stack.target, bob.id_token) as b:
        message_id = a.send_message(conversation, bob.sub, "hello bob")

        pushed = b.receive()
        assert pushed["type"] == "message"
        message = pushed["message"]
        assert message["messageId"] == message_id
        assert message["content"] == "hello bob"
        assert message["senderId"] == alice.sub
        assert message["senderName"] == "Alice"
        assert message["recipientId"] == bob.sub
        assert message["conversationId"] == conversation

        ack = a.receive()
        assert ack["type"] == "ack"
        assert (ack["messageId"], ack["status"]) == (message_id, "sent")
        status = a.receive()
        assert status["type"] == "status"
        assert (status["messageId"], status["status"]) == (message_id, "delivered")


def test_offline_recipient_gets_message_on_sync_and_sender_is_told_delivered(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a:
        message_id = a.send_message(conversation, bob.sub, "are you there?")
        ack = a.receive()
        assert ack["type"] == "ack"

        with ChatSession(stack.target, bob.id_token) as b:
            b.send("syncMessages")
            sync = b.receive_until("sync")
            assert [m["messageId"] for m in sync["messages"]] == [message_id]
            assert sync["messages"][0]["content"] == "are you there?"
            assert sync["hasMore"] is False

            status = a.receive()
            assert status["type"] == "status"
            assert (status["messageId"], status["status"]) == (message_id, "delivered")

            # Once delivered, a second sync has nothing new.
            b.send("syncMessages")
            assert b.receive_until("sync")["messages"] == []


def test_sender_id_in_the_frame_is_ignored(stack, new_user):
    alice, bob, mallory = new_user("alice"), new_user("bob"), new_user("mallory")
    with ChatSession(stack.target, mallory.id_token) as m, ChatSession(stack.target, bob.id_token) as b:
        m.send_message(conversation_id(mallory.sub, bob.sub), bob.sub, "I am alice", senderId=alice.sub,
                       senderName="Alice")
        pushed = b.receive_until("message")
        assert pushed["message"]["senderId"] == mallory.sub
        assert pushed["message"]["senderName"] == "Mallory"


def test_unknown_action_gets_an_error_frame_and_the_socket_stays_open(stack, new_user):
    alice = new_user("alice")
    with ChatSession(stack.target, alice.id_token) as a:
        a.send("dance")
        error = a.receive()
        assert error["type"] == "error"
        assert error["code"] == "VALIDATION_ERROR"
        assert "sendMessage" in error["message"]

        a.send("syncMessages")
        assert a.receive_until("sync")["messages"] == []


def test_a_third_user_cannot_take_two_others_direct_conversation_id(stack, new_user):
    alice, bob, mallory = new_user("alice"), new_user("bob"), new_user("mallory")
    with ChatSession(stack.target, mallory.id_token) as m:
        message_id = m.send_message(conversation_id(alice.sub, bob.sub), bob.sub, "first!")
        error = m.receive_until("error")
    assert (error["code"], error["messageId"]) == ("FORBIDDEN", message_id)
    # alice and bob can still start their conversation under its id.
    with ChatSession(stack.target, alice.id_token) as a:
        a.send_message(conversation_id(alice.sub, bob.sub), bob.sub, "hi bob")
        assert a.receive_until("ack")["status"] == "sent"
