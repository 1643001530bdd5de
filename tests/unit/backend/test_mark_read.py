"""markRead in the domain: only the recipient marks; read is final; senders hear it on every device."""

from __future__ import annotations

import json

import pytest

from chat.domain.errors import Forbidden, NotFound, ValidationFailed
from chat.domain.models import (
    AckMessagesRequest,
    MarkReadRequest,
    MessageStatus,
    SendMessageRequest,
    SyncMessagesRequest,
)
from chat.domain.protocol import parse_frame

CONVERSATION = "conv-ab"


def _mark(messaging, caller, **frame):
    return messaging.mark_read(caller, MarkReadRequest.model_validate({"conversationId": CONVERSATION, **frame}))


def test_marking_named_messages_answers_marked_and_tells_every_device_of_the_sender(
    messaging, messages, notifier, chat
):
    _, reader, say = chat
    first, second = say(1), say(2)

    _mark(messaging, reader, messageIds=[first, second])

    assert notifier.frames_for("B1", "marked") == [
        {"type": "marked", "conversationId": CONVERSATION, "messageIds": [first, second], "status": "read"}
    ]
    for device in ("A-phone", "A-laptop"):
        reads = [f for f in notifier.frames_for(device, "status") if f["status"] == "read"]
        assert [(f["messageId"], f["conversationId"]) for f in reads] == [(first, CONVERSATION), (second, CONVERSATION)]
    assert {messages.items[i].status for i in (first, second)} == {MessageStatus.READ}


def test_up_to_marks_everything_received_until_that_message_and_nothing_after(
    messaging, messages, notifier, chat, alice
):
    _, reader, say = chat
    say(1), say(2), say(3)
    say(4, sender=reader, recipient=alice)  # Bob's own message: not his to mark
    say(5)

    _mark(messaging, reader, upTo="m-3")

    [marked] = notifier.frames_for("B1", "marked")
    assert marked["messageIds"] == ["m-1", "m-2", "m-3"]
    assert messages.items["m-5"].status is MessageStatus.SENT
    assert messages.items["m-4"].status is MessageStatus.SENT


def test_up_to_may_name_the_readers_own_message(messaging, notifier, chat, alice):
    _, reader, say = chat
    say(1)
    say(2, sender=reader, recipient=alice)

    _mark(messaging, reader, upTo="m-2")

    assert notifier.frames_for("B1", "marked")[0]["messageIds"] == ["m-1"]


def test_the_sender_cannot_mark_their_own_message_and_nothing_changes(messaging, messages, notifier, chat):
    phone, _, say = chat
    message_id = say(1)

    with pytest.raises(Forbidden) as refused:
        _mark(messaging, phone, messageIds=[message_id])

    assert refused.value.message_id == message_id
    assert messages.items[message_id].status is MessageStatus.SENT
    assert notifier.frames_for("A-phone", "marked") == []


def test_one_foreign_message_in_the_list_refuses_the_whole_list(
    messaging, messages, notifier, chat, connect, carol, alice
):
    _, reader, say = chat
    mine = say(1)
    carols = connect(carol, "C1")
    theirs = say(2, sender=carols, recipient=alice, conversation="conv-ac")

    with pytest.raises(Forbidden):
        _mark(messaging, reader, messageIds=[mine, theirs])

    assert messages.items[mine].status is MessageStatus.SENT
    assert not [f for f in notifier.frames_for("A-phone", "status") if f["status"] == "read"]


def test_a_third_user_cannot_mark_up_to_in_someone_elses_conversation(messaging, messages, chat, connect, carol):
    _, _, say = chat
    say(1)

    with pytest.raises(Forbidden):
        _mark(messaging, connect(carol, "C1"), upTo="m-1")

    assert messages.items["m-1"].status is MessageStatus.SENT


@pytest.mark.parametrize("frame", [{"messageIds": ["m-404"]}, {"upTo": "m-404"}])
def test_unknown_messages_are_not_found(messaging, chat, frame):
    _, reader, _ = chat

    with pytest.raises(NotFound) as refused:
        _mark(messaging, reader, **frame)

    assert refused.value.message_id == "m-404"


def test_a_message_of_another_conversation_is_not_found_in_this_one(messaging, chat):
    _, reader, say = chat
    say(1, conversation="conv-elsewhere")

    with pytest.raises(NotFound):
        _mark(messaging, reader, messageIds=["m-1"])


def test_a_pending_message_becomes_read_and_is_not_synced_again(
    messaging, messages, notifier, connect, alice, bob
):
    sender = connect(alice, "A1")
    frame = {"messageId": "m-1", "conversationId": CONVERSATION, "recipientId": bob.user_id, "content": "hi"}
    messaging.send(sender, SendMessageRequest.model_validate(frame))  # bob is offline: pending
    reader = connect(bob, "B1")

    _mark(messaging, reader, messageIds=["m-1"])
    messaging.sync(reader, SyncMessagesRequest())

    assert messages.items["m-1"].status is MessageStatus.READ
    assert notifier.frames_for("B1", "sync")[0]["messages"] == []
    assert [f["status"] for f in notifier.frames_for("A1", "status")] == ["read"]


def test_read_never_goes_back_and_marking_again_moves_nothing(messaging, messages, notifier, chat):
    _, reader, say = chat
    message_id = say(1)
    _mark(messaging, reader, messageIds=[message_id])

    # A confirmation that crossed the markRead changes nothing and tells no one.
    assert messaging.confirm(reader, AckMessagesRequest.model_validate({"messageIds": [message_id]})) == []
    _mark(messaging, reader, messageIds=[message_id])

    assert messages.items[message_id].status is MessageStatus.READ
    assert [f["messageIds"] for f in notifier.frames_for("B1", "marked")] == [[message_id], []]
    assert [f["status"] for f in notifier.frames_for("A-phone", "status")] == ["read"]


def test_marking_lowers_the_readers_unread_count_for_the_conversation(messaging, messages, chat, bob):
    _, reader, say = chat
    say(1), say(2), say(3)
    assert messages.memberships[(CONVERSATION, bob.user_id)].unread_count == 3

    _mark(messaging, reader, upTo="m-2")

    assert messages.memberships[(CONVERSATION, bob.user_id)].unread_count == 1


@pytest.mark.parametrize(
    ("frame", "sentence"),
    [
        ({}, "Give exactly one of messageIds and upTo."),
        ({"messageIds": ["m-1"], "upTo": "m-1"}, "Give exactly one of messageIds and upTo."),
        ({"messageIds": []}, "messageIds must not be empty."),
        ({"messageIds": [f"m-{n}" for n in range(101)]}, "messageIds must have at most 100 items."),
        ({"messageIds": "m-1"}, "messageIds must be a list."),
    ],
)
def test_a_mark_read_frame_must_name_its_messages_one_way(frame, sentence):
    body = {"action": "markRead", "conversationId": CONVERSATION, **frame}

    with pytest.raises(ValidationFailed) as refused:
        parse_frame(MarkReadRequest, json.dumps(body))

    assert refused.value.message == sentence
