"""Delivery over real sockets: offline and back, dropped sockets, several devices, retry storms,
and sends racing a sync. Nothing may be lost, nothing delivered twice.

``ChatSession`` confirms what it reads (``ackMessages``), as the app does; a message is
``delivered`` (and leaves the recipient's sync) once that confirmation was handled, which
the sender sees as its ``status`` frame."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from chatclient import ChatSession, conversation_id

from .conftest import frames_within

pytestmark = pytest.mark.e2e


def _connection_ids(stack, user_id: str) -> set[str]:
    """The user's open connections as the backend knows them (the emulator's table)."""
    item = stack.dynamodb().get_item(
        TableName=stack.table("UserConnectionsTable"), Key={"userId": {"S": user_id}}, ConsistentRead=True
    ).get("Item", {})
    return set(item.get("connectionIds", {}).get("SS", []))


def _eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll for a server-side effect no frame announces (e.g. $disconnect having run)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        time.sleep(0.05)


def _frames_until(session: ChatSession, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """Read frames until ``done(frames)``; each read is bounded by the session's timeout."""
    frames: list[dict[str, Any]] = []
    while not done(frames):
        frames.append(session.receive())
    return frames


def _of_type(frames: list[dict[str, Any]], frame_type: str) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("type") == frame_type]


def _until_pong(session: ChatSession) -> list[dict[str, Any]]:
    """Every frame that arrives before the answer to a ping sent now."""
    session.send("ping")
    return _frames_until(session, lambda seen: bool(seen) and seen[-1].get("type") == "pong")[:-1]


def _delivered(session: ChatSession, message_ids: list[str]) -> None:
    """Read the sender's frames until each of ``message_ids`` was reported delivered."""
    wanted = set(message_ids)
    _frames_until(session, lambda seen: wanted <= {
        f["messageId"] for f in _of_type(seen, "status") if f["status"] == "delivered"
    })


def _send_in_order(session: ChatSession, conversation: str, recipient: str, texts: list[str]) -> list[str]:
    """Send one at a time, each after the previous was acked: frames sent back to back are
    handled concurrently (as on AWS), so only acked order is server order."""
    sent = []
    for text in texts:
        message_id = session.send_message(conversation, recipient, text)
        assert session.receive_until("ack")["messageId"] == message_id
        sent.append(message_id)
    return sent


def _drop_from_the_gateway(stack, connection_id: str) -> None:
    request = urllib.request.Request(f"{stack.state['connections_url']}/{connection_id}", method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def _kill_client_socket(session: ChatSession) -> None:
    """The phone loses its network: the TCP connection ends without a WebSocket close."""
    session.ws.socket.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        session.close()


def test_messages_sent_while_offline_arrive_on_sync_oldest_first_and_are_then_read(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a:
        sent = _send_in_order(a, conversation, bob.sub, [f"message {n}" for n in range(3)])

        with ChatSession(stack.target, bob.id_token) as b:
            b.send("syncMessages")
            page = b.receive_until("sync")
            assert [m["messageId"] for m in page["messages"]] == sent
            assert [m["content"] for m in page["messages"]] == ["message 0", "message 1", "message 2"]
            delivered = _frames_until(a, lambda seen: len(_of_type(seen, "status")) == 3)
            assert [(s["messageId"], s["status"]) for s in _of_type(delivered, "status")] == [
                (m, "delivered") for m in sent
            ]

            b.send("listConversations")
            assert b.receive_until("conversations")["conversations"][0]["unreadCount"] == 3
            b.send("markRead", conversationId=conversation, upTo=sent[-1])
            assert b.receive_until("marked")["messageIds"] == sent
            read = _frames_until(a, lambda seen: len(_of_type(seen, "status")) == 3)
            assert [(s["messageId"], s["status"]) for s in _of_type(read, "status")] == [(m, "read") for m in sent]
            b.send("listConversations")
            assert b.receive_until("conversations")["conversations"][0]["unreadCount"] == 0


@pytest.mark.parametrize("drop", ["gateway closes it", "client network dies"])
def test_a_dropped_socket_then_a_reconnect_loses_nothing_and_repeats_nothing(stack, new_user, drop):
    if not stack.local:
        pytest.skip("needs the emulator's tables and @connections endpoint")
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a:
        b = ChatSession(stack.target, bob.id_token)
        before = a.send_message(conversation, bob.sub, "before the drop")
        assert b.receive_until("message")["message"]["messageId"] == before
        a.receive_until("status")
        [bobs_connection] = _connection_ids(stack, bob.sub)

        if drop == "gateway closes it":
            _drop_from_the_gateway(stack, bobs_connection)
            with pytest.raises(ConnectionClosed):
                b.receive(timeout=10)
            b.close()
        else:
            _kill_client_socket(b)
        _eventually(lambda: bobs_connection not in _connection_ids(stack, bob.sub))

        away = _send_in_order(a, conversation, bob.sub, [f"while away {n}" for n in range(3)])
        assert _of_type(_until_pong(a), "status") == []  # nobody could have received them

        with ChatSession(stack.target, bob.id_token) as b2:
            b2.send("syncMessages")
            page = b2.receive_until("sync")
            assert [m["messageId"] for m in page["messages"]] == away
            assert page["hasMore"] is False
            _delivered(a, away)  # b2 confirmed the page
            b2.send("syncMessages")
            assert b2.receive_until("sync")["messages"] == []

            after = a.send_message(conversation, bob.sub, "welcome back")
            assert b2.receive_until("message")["message"]["messageId"] == after
            assert _of_type(_until_pong(b2), "message") == []


def test_every_device_of_both_users_gets_what_it_should(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with (
        ChatSession(stack.target, alice.id_token) as phone,
        ChatSession(stack.target, alice.id_token) as laptop,
        ChatSession(stack.target, bob.id_token) as b1,
        ChatSession(stack.target, bob.id_token) as b2,
    ):
        message_id = phone.send_message(conversation, bob.sub, "to all your devices")

        for device in (b1, b2, laptop):
            pushed = device.receive_until("message")["message"]
            assert (pushed["messageId"], pushed["content"]) == (message_id, "to all your devices")
        phone_frames = _frames_until(phone, lambda seen: bool(_of_type(seen, "status")))
        assert [f["type"] for f in phone_frames] == ["ack", "status"]
        assert laptop.receive_until("status")["messageId"] == message_id
        # The sending device never gets its own message back.
        assert _of_type(_until_pong(phone), "message") == []


def test_a_retry_storm_of_one_message_stores_and_delivers_it_once(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    message_id = str(uuid.uuid4())
    frame = json.dumps({"action": "sendMessage", "messageId": message_id, "conversationId": conversation,
                        "recipientId": bob.sub, "content": "did this go through?"})
    with ChatSession(stack.target, alice.id_token) as a, ChatSession(stack.target, bob.id_token) as b:
        for _ in range(20):
            a.ws.send(frame)

        assert b.receive_until("message")["message"]["messageId"] == message_id
        frames = _frames_until(a, lambda seen: len(_of_type(seen, "ack")) == 20 and bool(_of_type(seen, "status")))
        # Every retry is answered and the delivery told; what still comes must not repeat it.
        frames += frames_within(a)
        acks = _of_type(frames, "ack")
        assert len(acks) == 20
        assert {(f["messageId"], f["status"], f["timestamp"]) for f in acks} == {
            (message_id, "sent", acks[0]["timestamp"])
        }
        assert _of_type(frames, "error") == []
        assert [(f["messageId"], f["status"]) for f in _of_type(frames, "status")] == [(message_id, "delivered")]
        # A retry while the message is pending may push it again; it is the same message.
        later = _until_pong(b) + frames_within(b)
        assert {f["message"]["messageId"] for f in _of_type(later, "message")} <= {message_id}
        b.send("listConversations")
        assert b.receive_until("conversations")["conversations"][0]["unreadCount"] == 1
    if stack.local:
        stored = stack.dynamodb().query(
            TableName=stack.table("MessagesTable"), IndexName="ConversationIndex",
            KeyConditionExpression="conversationId = :c", ExpressionAttributeValues={":c": {"S": conversation}},
        )
        assert stored["Count"] == 1


def test_messages_sent_while_the_recipient_syncs_are_not_missed(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a:
        early = _send_in_order(a, conversation, bob.sub, [f"early {n}" for n in range(3)])

        with ChatSession(stack.target, bob.id_token) as b:
            # Syncs and sends interleave: whatever a sync page misses must come live.
            b.send("syncMessages", limit=1)
            racing = [a.send_message(conversation, bob.sub, f"racing {n}") for n in range(5)]
            b.send("syncMessages", limit=1)
            b.send("syncMessages")

            wanted = set(early + racing)
            seen: set[str] = set()

            def got_everything(frames: list[dict[str, Any]]) -> bool:
                if frames:
                    frame = frames[-1]
                    if frame.get("type") == "message":
                        seen.add(frame["message"]["messageId"])
                    elif frame.get("type") == "sync":
                        seen.update(m["messageId"] for m in frame["messages"])
                        if frame["hasMore"]:
                            b.send("syncMessages")
                return wanted <= seen

            _frames_until(b, got_everything)
            # And after the race nothing is left pending once bob's confirmations were
            # handled. Answers to syncs sent above may still be in flight, so sync again
            # (a bounded number of times) until a page comes back empty; whatever those
            # pages carry must be known messages.
            _delivered(a, sorted(wanted))
            for _ in range(5):
                b.send("syncMessages")
                page = b.receive_until("sync")["messages"]
                assert {m["messageId"] for m in page} <= wanted
                if not page:
                    break
            else:
                raise AssertionError("messages stayed pending after they were all seen")
