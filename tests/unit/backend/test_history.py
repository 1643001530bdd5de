"""getHistory in the domain: a participant's newest-first pages of one conversation."""

from __future__ import annotations

import base64
import json

import pytest

from chat.domain.errors import Forbidden, NotFound, ValidationFailed
from chat.domain.models import (
    MAX_CONTENT_LENGTH,
    MAX_POST_BYTES,
    Caller,
    DeleteMessageRequest,
    GetHistoryRequest,
    HistoryPosition,
    MessageStatus,
    PendingPosition,
    SendMessageRequest,
    direct_conversation_id,
)
from chat.domain.protocol import encode_cursor, encode_frame, encode_history_cursor


@pytest.fixture
def talk(messaging, connect, alice, bob):
    """Alice and Bob take turns in their dm: ``talk(n)`` sends n messages, alternating
    senders (Alice first), ids ``h-00``, ``h-01``, ..."""
    devices = {alice.user_id: connect(alice, "A1"), bob.user_id: connect(bob, "B1")}
    conversation = direct_conversation_id(alice.user_id, bob.user_id)

    def send(count, content="line"):
        for n in range(count):
            sender, recipient = (alice, bob) if n % 2 == 0 else (bob, alice)
            frame = {"messageId": f"h-{n:02d}", "conversationId": conversation, "recipientId": recipient.user_id,
                     "content": content if content != "line" else f"line {n}"}
            messaging.send(devices[sender.user_id], SendMessageRequest.model_validate(frame))
        return conversation

    return send


def _history(listing, caller, **frame):
    return listing.history(caller, GetHistoryRequest.model_validate(frame))


def test_history_pages_both_directions_newest_first_and_the_cursor_continues_older(
    listing, notifier, connect, talk, alice
):
    conversation = talk(5)
    phone = connect(alice, "A-new-phone")

    _history(listing, phone, conversationId=conversation, limit=2)
    first = notifier.frames_for("A-new-phone", "history")[-1]
    _history(listing, phone, conversationId=conversation, limit=2, cursor=first["cursor"])
    second = notifier.frames_for("A-new-phone", "history")[-1]
    _history(listing, phone, conversationId=conversation, limit=2, cursor=second["cursor"])
    last = notifier.frames_for("A-new-phone", "history")[-1]

    pages = [[m["messageId"] for m in page["messages"]] for page in (first, second, last)]
    assert pages == [["h-04", "h-03"], ["h-02", "h-01"], ["h-00"]]
    assert [(p["hasMore"], p["cursor"] is None) for p in (first, second, last)] == [
        (True, False), (True, False), (False, True)
    ]
    assert {m["senderId"] for m in first["messages"] + second["messages"]} == {alice.user_id, "5f1e8a3c-bob"}
    assert first["conversationId"] == conversation


def test_history_reads_messages_as_stored_and_changes_nothing(listing, messages, notifier, talk, bob):
    conversation = talk(2)
    before = dict(messages.items)
    memberships = dict(messages.memberships)

    page = _history(listing, _caller(bob, "B1"), conversationId=conversation)

    assert messages.items == before and messages.memberships == memberships
    assert {m.status for m in page.messages} == {MessageStatus.SENT}
    [frame] = notifier.frames_for("B1", "history")
    assert frame["messages"][1] == messages.items["h-00"].to_wire()
    assert notifier.frames_for("A1", "status") == []


def test_a_deleted_message_comes_back_as_its_tombstone(listing, messaging, notifier, talk, alice):
    conversation = talk(2)
    messaging.delete(_caller(alice, "A1"), DeleteMessageRequest.model_validate({"messageId": "h-00"}))

    _history(listing, _caller(alice, "A1"), conversationId=conversation)

    [frame] = notifier.frames_for("A1", "history")
    tombstone = frame["messages"][-1]
    assert (tombstone["messageId"], tombstone["isDeleted"], tombstone["content"]) == ("h-00", True, "")


def test_a_third_user_is_forbidden_and_hears_nothing_of_the_messages(listing, notifier, connect, talk, carol):
    conversation = talk(2)
    intruder = connect(carol, "C1")

    with pytest.raises(Forbidden):
        _history(listing, intruder, conversationId=conversation)
    assert notifier.frames_for("C1") == []


def test_a_dm_of_the_caller_not_started_yet_is_an_empty_page(listing, notifier, connect, alice, carol):
    caller = connect(carol, "C1")

    _history(listing, caller, conversationId=direct_conversation_id(alice.user_id, carol.user_id))

    [frame] = notifier.frames_for("C1", "history")
    assert (frame["messages"], frame["cursor"], frame["hasMore"]) == ([], None, False)


@pytest.mark.parametrize("conversation", ["conv-nobody", "dm_someone_else", "dm_0b6c2d0e-alice_5f1e8a3c-bob"])
def test_an_unknown_conversation_that_is_no_dm_of_the_caller_is_not_found(listing, connect, carol, conversation):
    with pytest.raises(NotFound):
        _history(listing, connect(carol, "C1"), conversationId=conversation)


def test_a_cursor_of_another_user_or_conversation_or_kind_is_refused(listing, notifier, talk, alice, bob, carol):
    conversation = talk(3)
    position = HistoryPosition(message_id="h-02", timestamp="2026-01-01T12:00:02.123Z")
    forged = [
        encode_history_cursor(bob.user_id, conversation, position),  # Bob's cursor, sent by Alice
        encode_history_cursor(alice.user_id, "conv-other", position),  # another conversation's
        encode_cursor(alice.user_id, PendingPosition("h-02", "2026-01-01T12:00:02.123Z")),  # a sync cursor
        "not a cursor",
        base64.urlsafe_b64encode(json.dumps(["h-02"]).encode()).decode(),
    ]

    for cursor in forged:
        with pytest.raises(ValidationFailed, match="cursor"):
            _history(listing, _caller(alice, "A1"), conversationId=conversation, cursor=cursor)
    assert notifier.frames_for("A1", "history") == []


def test_a_page_is_cut_to_fit_one_frame_and_the_rest_follows(listing, notifier, talk, alice):
    conversation = talk(60, content="\U0001f600" * MAX_CONTENT_LENGTH)  # 16 KB a message as UTF-8

    _history(listing, _caller(alice, "A1"), conversationId=conversation, limit=100)
    first = notifier.frames_for("A1", "history")[-1]
    _history(listing, _caller(alice, "A1"), conversationId=conversation, limit=100, cursor=first["cursor"])

    assert len(encode_frame(first)) <= MAX_POST_BYTES
    assert first["hasMore"] is True and 0 < len(first["messages"]) < 60
    # The second page goes on where the cut one stopped: newest first, none skipped or repeated.
    ids = [m["messageId"] for page in notifier.frames_for("A1", "history") for m in page["messages"]]
    assert ids == [f"h-{n:02d}" for n in range(59, -1, -1)][: len(ids)]


def _caller(user, connection_id):
    return Caller(connection_id=connection_id, user=user)
