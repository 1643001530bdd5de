"""Conversations in the domain: fixed participants, the list with names, last messages and unread counts."""

from __future__ import annotations

import pytest

from chat.domain.errors import Forbidden, ValidationFailed
from chat.domain.models import (
    MAX_CONTENT_LENGTH,
    MAX_POST_BYTES,
    DeleteMessageRequest,
    Identity,
    ListConversationsRequest,
    MarkReadRequest,
    SendMessageRequest,
    UserProfile,
)
from chat.domain.protocol import encode_frame


@pytest.fixture
def send(messaging):
    def send_frame(caller, recipient, message_id, conversation="conv-ab", content=None, **extra):
        frame = {"messageId": message_id, "conversationId": conversation, "recipientId": recipient.user_id,
                 "content": content or f"text of {message_id}", **extra}
        return messaging.send(caller, SendMessageRequest.model_validate(frame))

    return send_frame


def _listed(listing, notifier, caller, **frame):
    listing.list(caller, ListConversationsRequest.model_validate(frame))
    return notifier.frames_for(caller.connection_id, "conversations")[-1]


def test_a_third_user_cannot_write_into_a_conversation_and_nothing_is_stored(
    send, messages, notifier, connect, alice, bob, carol
):
    connect(bob, "B1")
    send(connect(alice, "A1"), bob, "m-1")
    mallory = connect(carol, "C1")

    with pytest.raises(Forbidden) as refused:
        send(mallory, bob, "m-2")

    assert refused.value.message_id == "m-2"
    assert "m-2" not in messages.items
    assert [f["message"]["messageId"] for f in notifier.frames_for("B1", "message")] == ["m-1"]


def test_a_participant_cannot_pull_a_third_user_into_the_conversation(send, messages, connect, alice, bob, carol):
    send(connect(alice, "A1"), bob, "m-1")

    with pytest.raises(Forbidden):
        send(connect(alice, "A1"), carol, "m-2")

    assert "m-2" not in messages.items


def test_both_participants_see_the_conversation_with_the_other_name_last_message_and_their_unread_count(
    send, listing, notifier, connect, alice, bob
):
    a, b = connect(alice, "A1"), connect(bob, "B1")
    send(a, bob, "m-1")
    send(a, bob, "m-2", content="see you at noon")

    [for_bob] = _listed(listing, notifier, b)["conversations"]
    [for_alice] = _listed(listing, notifier, a)["conversations"]

    assert for_bob["otherUser"] == {"userId": alice.user_id, "name": "Alice"}
    assert (for_bob["unreadCount"], for_alice["unreadCount"]) == (2, 0)
    # Alice's side learns Bob's name from the user directory until Bob writes.
    assert for_alice["otherUser"] == {"userId": bob.user_id, "name": "Bob"}
    for entry in (for_bob, for_alice):
        assert entry["conversationId"] == "conv-ab"
        assert entry["participants"] == sorted([alice.user_id, bob.user_id])
        assert entry["lastMessage"]["content"] == "see you at noon"
        assert entry["lastMessage"]["status"] == "sent"
        assert entry["updatedAt"] == entry["lastMessage"]["timestamp"]


def test_reading_brings_the_unread_count_down(send, messaging, listing, notifier, connect, alice, bob):
    a, b = connect(alice, "A1"), connect(bob, "B1")
    for n in range(3):
        send(a, bob, f"m-{n}")

    messaging.mark_read(b, MarkReadRequest.model_validate({"conversationId": "conv-ab", "upTo": "m-1"}))

    assert _listed(listing, notifier, b)["conversations"][0]["unreadCount"] == 1


def test_the_last_message_is_shown_as_it_is_now(send, messaging, listing, notifier, connect, alice, bob):
    a, b = connect(alice, "A1"), connect(bob, "B1")
    send(a, bob, "m-1")
    messaging.mark_read(b, MarkReadRequest.model_validate({"conversationId": "conv-ab", "messageIds": ["m-1"]}))
    messaging.delete(a, DeleteMessageRequest.model_validate({"messageId": "m-1"}))

    last = _listed(listing, notifier, a)["conversations"][0]["lastMessage"]

    assert (last["status"], last["isDeleted"], last["content"]) == ("read", True, "")


def test_conversations_come_latest_activity_first_and_page_with_a_cursor(
    send, listing, notifier, directory, connect, alice, bob, carol
):
    a = connect(alice, "A1")
    dave = Identity(user_id="d4e5-dave", user_name="Dave")
    directory.add(UserProfile(dave.user_id, dave.user_name, "dave"), "dave@example.com")
    send(a, bob, "m-1", conversation="conv-ab")
    send(a, carol, "m-2", conversation="conv-ac")
    send(a, dave, "m-3", conversation="conv-ad")
    directory.users = [(p, e) for p, e in directory.users if p.user_id != dave.user_id]  # his account went away
    send(connect(bob, "B1"), alice, "m-4", conversation="conv-ab")  # bob's reply moves conv-ab up

    first = _listed(listing, notifier, a, limit=2)
    second = _listed(listing, notifier, a, limit=2, cursor=first["cursor"])

    assert [c["conversationId"] for c in first["conversations"]] == ["conv-ab", "conv-ad"]
    assert first["hasMore"] is True
    assert [c["conversationId"] for c in second["conversations"]] == ["conv-ac"]
    assert (second["hasMore"], second["cursor"]) == (False, None)
    # Dave is no longer in the directory: his name stays unknown rather than made up.
    assert first["conversations"][1]["otherUser"] == {"userId": dave.user_id, "name": None}


def test_a_cursor_is_only_good_for_the_user_it_was_issued_to(send, listing, notifier, connect, alice, bob, carol):
    a = connect(alice, "A1")
    send(a, bob, "m-1", conversation="conv-ab")
    send(a, carol, "m-2", conversation="conv-ac")
    cursor = _listed(listing, notifier, a, limit=1)["cursor"]

    with pytest.raises(ValidationFailed) as refused:
        listing.list(connect(bob, "B1"), ListConversationsRequest.model_validate({"cursor": cursor}))

    assert refused.value.message.startswith("cursor is not a cursor this server issued")


def test_a_user_without_conversations_gets_an_empty_list(listing, notifier, connect, carol):
    listed = _listed(listing, notifier, connect(carol, "C1"))

    assert listed == {"type": "conversations", "conversations": [], "cursor": None, "hasMore": False}


def test_a_page_of_long_last_messages_is_cut_to_fit_one_post_and_continues(
    send, listing, notifier, directory, connect, alice
):
    a = connect(alice, "A1")
    for n in range(50):
        friend = Identity(user_id=f"friend-{n:02d}", user_name=f"Friend {n}")
        directory.add(UserProfile(friend.user_id, friend.user_name, f"friend{n}"), f"friend{n}@example.com")
        send(a, friend, f"m-{n:02d}", conversation=f"conv-{n:02d}", content="語" * MAX_CONTENT_LENGTH)

    pages = [_listed(listing, notifier, a, limit=50)]
    while pages[-1]["hasMore"] and len(pages) < 50:
        pages.append(_listed(listing, notifier, a, limit=50, cursor=pages[-1]["cursor"]))

    assert all(len(encode_frame(page)) <= MAX_POST_BYTES for page in pages)
    assert len(pages) > 1
    listed = [c["conversationId"] for page in pages for c in page["conversations"]]
    assert listed == [f"conv-{n:02d}" for n in reversed(range(50))]
