"""sendMessage in the domain: store once, ack, push, keep pending until confirmed, survive stale connections."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from chat.domain.errors import Forbidden, ValidationFailed
from chat.domain.models import AckMessagesRequest, MessageStatus, SendMessageRequest, direct_conversation_id
from chat.domain.protocol import parse_frame
from chat.domain.services import MessagingService


def _request(message_id="m-1", content="hello", recipient_id=None, **extra) -> SendMessageRequest:
    frame = {
        "action": "sendMessage",
        "messageId": message_id,
        "conversationId": "conv-ab",
        "recipientId": recipient_id or "5f1e8a3c-bob",
        "content": content,
        **extra,
    }
    return SendMessageRequest.model_validate(frame)


def test_given_recipient_online_when_sending_then_stored_acked_pushed_and_still_pending(
    messaging, messages, notifier, connect, alice, bob
):
    sender = connect(alice, "A1")
    connect(bob, "B1")
    connect(bob, "B2")

    sent = messaging.send(sender, _request())

    assert notifier.frames_for("A1", "ack") == [
        {"type": "ack", "messageId": "m-1", "status": "sent", "timestamp": sent.timestamp}
    ]
    for bob_connection in ("B1", "B2"):
        pushed = notifier.frames_for(bob_connection, "message")
        assert [frame["message"] for frame in pushed] == [
            {
                "messageId": "m-1",
                "conversationId": "conv-ab",
                "senderId": alice.user_id,
                "senderName": "Alice",
                "recipientId": bob.user_id,
                "content": "hello",
                "timestamp": sent.timestamp,
                "status": "sent",
                "isDeleted": False,
                "replyToMessageId": None,
            }
        ]
    # An accepted push proves nothing (the socket may be half-open): only the recipient
    # device's confirmation makes the message delivered.
    assert notifier.frames_for("A1", "status") == []
    assert messages.items["m-1"].status is MessageStatus.SENT
    assert [m.message_id for m in messages.pending_for(bob.user_id, 10).messages] == ["m-1"]


def test_timestamp_is_server_time_in_utc_with_milliseconds(messaging, connect, clock, alice):
    sender = connect(alice, "A1")
    clock.now = datetime(2026, 3, 4, 5, 6, 7, 89000, tzinfo=UTC)

    sent = messaging.send(sender, _request(timestamp="1999-01-01T00:00:00.000Z"))

    assert sent.timestamp == "2026-03-04T05:06:07.089Z"


def test_sender_other_devices_get_the_message_and_the_sending_one_only_the_ack(
    messaging, notifier, connect, alice, bob
):
    sender = connect(alice, "A-phone")
    connect(alice, "A-tablet")
    connect(bob, "B1")

    messaging.send(sender, _request())

    assert [f["type"] for f in notifier.frames_for("A-phone")] == ["ack"]
    assert [f["type"] for f in notifier.frames_for("A-tablet")] == ["message"]


def test_forged_sender_in_the_frame_is_ignored(messaging, messages, notifier, connect, alice, bob, carol):
    sender = connect(carol, "C1")
    connect(bob, "B1")
    body = {
        "action": "sendMessage",
        "messageId": "m-1",
        "conversationId": "conv-ab",
        "recipientId": bob.user_id,
        "content": "I am Alice",
        "senderId": alice.user_id,
        "senderName": "Alice",
    }
    frame = parse_frame(SendMessageRequest, json.dumps(body))

    messaging.send(sender, frame)

    assert messages.items["m-1"].sender_id == carol.user_id
    assert messages.items["m-1"].sender_name == "Carol"
    [pushed] = notifier.frames_for("B1", "message")
    assert (pushed["message"]["senderId"], pushed["message"]["senderName"]) == (carol.user_id, "Carol")


def test_given_recipient_offline_then_no_delivered_status_and_message_stays_pending(
    messaging, messages, notifier, connect, alice, bob
):
    sender = connect(alice, "A1")

    messaging.send(sender, _request())

    assert [f["type"] for f in notifier.frames_for("A1")] == ["ack"]
    assert messages.items["m-1"].status is MessageStatus.SENT
    assert [m.message_id for m in messages.pending_for(bob.user_id, 10).messages] == ["m-1"]


def test_retry_with_same_id_and_content_gets_the_same_ack_and_stores_once(
    messaging, messages, notifier, connect, alice, bob
):
    sender = connect(alice, "A1")
    first = messaging.send(sender, _request())

    again = messaging.send(sender, _request())

    acks = notifier.frames_for("A1", "ack")
    assert len(acks) == 2
    assert acks[0] == acks[1]
    assert again.timestamp == first.timestamp
    assert list(messages.items) == ["m-1"]


def test_retry_from_a_reconnected_device_is_acked_on_the_new_connection(messaging, notifier, connect, alice):
    first = messaging.send(connect(alice, "A-old"), _request())

    messaging.send(connect(alice, "A-new"), _request())

    assert notifier.frames_for("A-new", "ack") == [
        {"type": "ack", "messageId": "m-1", "status": "sent", "timestamp": first.timestamp}
    ]


class _DiesAfterStoring:
    """A message store whose first ``create`` stores the message and then fails, like a
    worker that died (timeout, crash) between the write and the pushes."""

    def __init__(self, store) -> None:
        self._store = store
        self.died = False

    def create(self, message, ticket=None, *, start_conversation=True):
        self._store.create(message, ticket, start_conversation=start_conversation)
        if not self.died:
            self.died = True
            raise RuntimeError("worker died after the store")

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_a_retry_after_an_attempt_died_after_the_store_pushes_what_it_did_not(
    messages, connections, directory, notifier, clock, connect, alice, bob
):
    # Given alice on two devices, bob online, and a first attempt that stored M and died
    dying = MessagingService(messages=_DiesAfterStoring(messages), connections=connections, directory=directory,
                             notifier=notifier, clock=clock)
    sender = connect(alice, "A1")
    connect(alice, "A2")
    connect(bob, "B1")
    with pytest.raises(RuntimeError):
        dying.send(sender, _request())
    assert notifier.frames_for("B1") == [] and notifier.frames_for("A1") == []

    # When alice resends the same frame
    again = dying.send(sender, _request())

    # Then she gets the ack, and bob and her other device get the message they never got
    assert notifier.frames_for("A1", "ack") == [
        {"type": "ack", "messageId": "m-1", "status": "sent", "timestamp": again.timestamp}
    ]
    assert [f["message"]["messageId"] for f in notifier.frames_for("B1", "message")] == ["m-1"]
    assert [f["message"]["messageId"] for f in notifier.frames_for("A2", "message")] == ["m-1"]
    assert notifier.frames_for("A1", "message") == []
    assert list(messages.items) == ["m-1"]


def test_a_retry_of_a_confirmed_message_is_acked_and_pushes_nothing_more(
    messaging, messages, notifier, connect, alice, bob
):
    sender = connect(alice, "A1")
    reader = connect(bob, "B1")
    connect(alice, "A2")
    messaging.send(sender, _request())
    messaging.confirm(reader, AckMessagesRequest.model_validate({"messageIds": ["m-1"]}))
    notifier.posts.clear()

    messaging.send(sender, _request())

    # bob holds it, and the confirmation already told alice's connections: no repeats.
    assert [f["type"] for f in notifier.frames_for("A1")] == ["ack"]
    assert notifier.frames_for("B1") == [] and notifier.frames_for("A2") == []


def test_same_id_with_different_content_is_refused_and_the_original_kept(
    messaging, messages, notifier, connect, alice, bob
):
    sender = connect(alice, "A1")
    connect(bob, "B1")
    messaging.send(sender, _request(content="original"))

    with pytest.raises(ValidationFailed) as refused:
        messaging.send(sender, _request(content="changed"))

    assert "messageId" in refused.value.message
    assert refused.value.message_id == "m-1"
    assert messages.items["m-1"].content == "original"
    assert [f["message"]["content"] for f in notifier.frames_for("B1", "message")] == ["original"]


def test_same_id_from_another_sender_is_refused(messaging, messages, connect, alice, bob, carol):
    messaging.send(connect(alice, "A1"), _request(recipient_id=carol.user_id))

    with pytest.raises(ValidationFailed):
        messaging.send(connect(bob, "B1"), _request(recipient_id=carol.user_id))

    assert messages.items["m-1"].sender_id == alice.user_id


def test_gone_recipient_connection_is_forgotten_and_nothing_else(
    messaging, connections, notifier, connect, alice, bob
):
    sender = connect(alice, "A1")
    connect(bob, "B-live")
    connect(bob, "B-stale")
    notifier.close("B-stale")  # the socket died without a $disconnect

    messaging.send(sender, _request())

    assert notifier.gone == ["B-stale"]
    assert set(connections.rows) == {"A1", "B-live"}
    assert len(notifier.frames_for("B-live", "message")) == 1


def test_when_every_recipient_connection_is_gone_the_message_stays_pending_and_the_sender_stays_connected(
    messaging, messages, connections, notifier, connect, alice, bob
):
    sender = connect(alice, "A1")
    connect(bob, "B-stale")
    notifier.close("B-stale")

    messaging.send(sender, _request())

    assert set(connections.rows) == {"A1"}
    assert notifier.frames_for("A1", "status") == []
    assert messages.items["m-1"].status is MessageStatus.SENT


def test_gone_device_of_the_sender_is_forgotten_without_touching_the_sending_connection(
    messaging, connections, notifier, connect, alice, bob
):
    sender = connect(alice, "A1")
    connect(alice, "A-stale")
    notifier.close("A-stale")
    connect(bob, "B1")

    messaging.send(sender, _request())

    assert set(connections.rows) == {"A1", "B1"}
    assert [f["type"] for f in notifier.frames_for("A1")] == ["ack"]
    assert len(notifier.frames_for("B1", "message")) == 1


def test_note_to_self_reaches_the_other_device_and_is_not_echoed_back(
    messaging, messages, notifier, connect, alice
):
    sender = connect(alice, "A-phone")
    connect(alice, "A-laptop")

    messaging.send(sender, _request(recipient_id=alice.user_id))

    assert notifier.frames_for("A-phone", "message") == []
    assert len(notifier.frames_for("A-laptop", "message")) == 1
    assert messages.items["m-1"].status is MessageStatus.SENT


def test_reply_to_message_id_is_kept(messaging, messages, connect, alice):
    sender = connect(alice, "A1")
    messaging.send(sender, _request(message_id="m-0"))

    messaging.send(sender, _request(replyToMessageId="m-0"))

    assert messages.items["m-1"].reply_to_message_id == "m-0"


def test_a_dm_id_naming_other_users_is_refused_and_nothing_is_stored(messaging, messages, connect, alice, bob, carol):
    sender = connect(carol, "C1")
    squatting = direct_conversation_id(alice.user_id, bob.user_id)

    with pytest.raises(Forbidden):
        messaging.send(sender, _request(conversationId=squatting, recipient_id=bob.user_id))

    assert "m-1" not in messages.items


def test_the_dm_id_of_sender_and_recipient_is_accepted(messaging, messages, connect, alice, bob):
    sender = connect(alice, "A1")
    own = direct_conversation_id(bob.user_id, alice.user_id)  # the order of the two ids does not matter

    messaging.send(sender, _request(conversationId=own, recipient_id=bob.user_id))

    assert messages.items["m-1"].conversation_id == own


class CountingDirectory:
    """The directory, counting how often a recipient is looked up."""

    def __init__(self, directory) -> None:
        self._directory = directory
        self.lookups: list[str] = []

    def exists(self, user_id):
        self.lookups.append(user_id)
        return self._directory.exists(user_id)

    def __getattr__(self, name):
        return getattr(self._directory, name)


def test_the_recipient_is_looked_up_once_per_conversation_not_per_message(
    messages, connections, directory, notifier, clock, connect, alice, bob, carol
):
    counting = CountingDirectory(directory)
    service = MessagingService(messages=messages, connections=connections, directory=counting, notifier=notifier,
                               clock=clock)
    sender = connect(alice, "A1")

    for n in range(3):
        service.send(sender, _request(message_id=f"m-{n}"))
    service.send(connect(bob, "B1"), _request(message_id="m-reply", recipient_id=alice.user_id))
    service.send(sender, _request(message_id="m-carol", recipient_id=carol.user_id, conversationId="conv-ac"))
    service.send(sender, _request(message_id="m-self", recipient_id=alice.user_id, conversationId="notes"))

    # conv-ab's first message, and conv-ac's; a note-to-self needs no lookup.
    assert counting.lookups == [bob.user_id, carol.user_id]
    assert len(messages.items) == 6
