"""ackMessages: a message is delivered when the recipient's device says it holds it, not
when API Gateway accepted the push (a half-open socket accepts pushes it never delivers)."""

from __future__ import annotations

import pytest

from chat.domain.models import (
    MAX_ACK_IDS,
    AckMessagesRequest,
    MarkReadRequest,
    MessageStatus,
    SyncMessagesRequest,
)
from chat.handlers import ack_messages

CONVERSATION = "conv-ab"


def _confirm(messaging, caller, *message_ids):
    return messaging.confirm(caller, AckMessagesRequest.model_validate({"messageIds": list(message_ids)}))


def _statuses(notifier, connection_id):
    return [(f["messageId"], f["status"]) for f in notifier.frames_for(connection_id, "status")]


def test_a_pushed_message_stays_pending_until_the_recipient_confirms_it(messaging, messages, notifier, chat, bob):
    _, reader, say = chat
    message_id = say(1)
    assert [m.message_id for m in messages.pending_for(bob.user_id, 10).messages] == [message_id]

    moved = _confirm(messaging, reader, message_id)

    assert [m.message_id for m in moved] == [message_id]
    assert messages.items[message_id].status is MessageStatus.DELIVERED
    assert messages.pending_for(bob.user_id, 10).messages == []
    for device in ("A-phone", "A-laptop"):
        assert _statuses(notifier, device) == [(message_id, "delivered")]
    # The confirming connection gets no answer: a lost confirmation is simply sent again.
    assert [f["type"] for f in notifier.frames_for("B1")] == ["message"]


def test_confirming_again_or_from_another_device_tells_the_sender_once(
    messaging, notifier, connect, chat, bob
):
    _, reader, say = chat
    message_id = say(1)
    tablet = connect(bob, "B-tablet")

    _confirm(messaging, reader, message_id)
    _confirm(messaging, tablet, message_id)
    _confirm(messaging, reader, message_id)

    assert _statuses(notifier, "A-phone") == [(message_id, "delivered")]


def test_ids_not_sent_to_the_caller_or_unknown_are_ignored_and_the_rest_confirmed(
    messaging, messages, notifier, chat, carol
):
    phone, reader, say = chat
    to_bob = say(1)
    to_carol = say(2, recipient=carol, conversation="conv-ac")

    # Alice confirming her own message, Bob confirming Carol's: neither counts.
    _confirm(messaging, phone, to_bob)
    _confirm(messaging, reader, to_carol, "no-such-message", to_bob)

    assert messages.items[to_carol].status is MessageStatus.SENT
    assert messages.items[to_bob].status is MessageStatus.DELIVERED
    assert "no-such-message" not in messages.items
    assert _statuses(notifier, "A-phone") == [(to_bob, "delivered")]


def test_a_read_message_never_goes_back_to_delivered(messaging, messages, notifier, chat):
    _, reader, say = chat
    message_id = say(1)
    messaging.mark_read(reader, MarkReadRequest.model_validate({"conversationId": CONVERSATION,
                                                                 "messageIds": [message_id]}))

    assert _confirm(messaging, reader, message_id) == []

    assert messages.items[message_id].status is MessageStatus.READ
    assert _statuses(notifier, "A-phone") == [(message_id, "read")]


def test_marking_read_takes_the_message_out_of_the_next_sync(messaging, notifier, chat):
    _, reader, say = chat
    first, second = say(1), say(2)
    messaging.mark_read(reader, MarkReadRequest.model_validate({"conversationId": CONVERSATION,
                                                                 "messageIds": [first]}))

    messaging.sync(reader, SyncMessagesRequest())

    assert [m["messageId"] for m in notifier.frames_for("B1", "sync")[0]["messages"]] == [second]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"action": "ackMessages"}, "messageIds is required"),
        ({"action": "ackMessages", "messageIds": []}, "messageIds must not be empty"),
        ({"action": "ackMessages", "messageIds": [f"m-{n}" for n in range(MAX_ACK_IDS + 1)]},
         f"messageIds must have at most {MAX_ACK_IDS} items"),
        ({"action": "ackMessages", "messageIds": [""]}, "messageIds must hold ids"),
        ({"action": "ackMessages", "messageIds": "m-1"}, "messageIds must be a list"),
    ],
)
def test_the_handler_refuses_a_bad_frame_with_a_validation_error(
    backend, ws_event, lambda_context, notifier, connect, bob, body, fragment
):
    connect(bob, "B1")

    result = ack_messages.lambda_handler(ws_event("ack_messages", connection_id="B1", user=bob, body=body),
                                         lambda_context)

    assert result == {"statusCode": 400}
    [error] = notifier.frames_for("B1", "error")
    assert error["code"] == "VALIDATION_ERROR"
    assert fragment in error["message"]


def test_the_handler_confirms_and_the_sender_hears_delivered(
    backend, ws_event, lambda_context, messaging, messages, notifier, chat, bob
):
    _, _, say = chat
    message_id = say(1)

    result = ack_messages.lambda_handler(
        ws_event("ack_messages", connection_id="B1", user=bob, body={"action": "ackMessages",
                                                                      "messageIds": [message_id]}),
        lambda_context,
    )

    assert result == {"statusCode": 200}
    assert messages.items[message_id].status is MessageStatus.DELIVERED
    assert _statuses(notifier, "A-phone") == [(message_id, "delivered")]
