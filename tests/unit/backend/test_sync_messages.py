"""syncMessages in the domain: oldest first, paged by cursor, every message until its recipient confirms it."""

from __future__ import annotations

import json

import pytest

from chat.domain.errors import ValidationFailed
from chat.domain.models import (
    MAX_CONTENT_LENGTH,
    MAX_POST_BYTES,
    AckMessagesRequest,
    MessageStatus,
    PendingPosition,
    SendMessageRequest,
    SyncMessagesRequest,
)
from chat.domain.protocol import encode_cursor, encode_frame
from chat.domain.services import MessagingService


@pytest.fixture
def send_to(messaging, connect):
    """Send ``count`` messages to a recipient who is offline, one second apart."""

    def send(sender, recipient, count, content="msg", prefix="m"):
        caller = connect(sender, f"{sender.user_name}-sending")
        for n in range(count):
            frame = {
                "messageId": f"{prefix}-{n:02d}",
                "conversationId": f"conv-{sender.user_name}-{recipient.user_name}",
                "recipientId": recipient.user_id,
                "content": f"{content} {n}" if content == "msg" else content,
            }
            messaging.send(caller, SendMessageRequest.model_validate(frame))

    return send


def _sync(messaging, caller, **frame):
    return messaging.sync(caller, SyncMessagesRequest.model_validate(frame))


def _confirm(messaging, caller, *message_ids):
    return messaging.confirm(caller, AckMessagesRequest.model_validate({"messageIds": list(message_ids)}))


def test_sync_sends_missed_messages_oldest_first_as_stored(messaging, notifier, connect, send_to, alice, bob):
    send_to(alice, bob, 3)
    reader = connect(bob, "B1")

    _sync(messaging, reader)

    [frame] = notifier.frames_for("B1", "sync")
    assert [m["messageId"] for m in frame["messages"]] == ["m-00", "m-01", "m-02"]
    assert [m["content"] for m in frame["messages"]] == ["msg 0", "msg 1", "msg 2"]
    assert {m["status"] for m in frame["messages"]} == {"sent"}
    assert frame["messages"][0]["senderId"] == alice.user_id
    assert (frame["cursor"], frame["hasMore"]) == (None, False)


def test_sync_changes_nothing_and_the_readers_confirmation_tells_the_online_sender(
    messaging, messages, notifier, connect, send_to, alice, bob
):
    send_to(alice, bob, 2)
    reader = connect(bob, "B1")

    _sync(messaging, reader)
    assert {m.status for m in messages.items.values()} == {MessageStatus.SENT}
    assert notifier.frames_for("Alice-sending", "status") == []
    _confirm(messaging, reader, "m-00", "m-01")

    assert {m.status for m in messages.items.values()} == {MessageStatus.DELIVERED}
    statuses = notifier.frames_for("Alice-sending", "status")
    assert [(s["messageId"], s["status"]) for s in statuses] == [("m-00", "delivered"), ("m-01", "delivered")]
    assert all(s["conversationId"] == "conv-Alice-Bob" for s in statuses)


def test_each_sender_hears_only_about_their_own_messages(
    messaging, notifier, connect, send_to, alice, bob, carol
):
    send_to(alice, bob, 1, prefix="from-alice")
    send_to(carol, bob, 1, prefix="from-carol")

    reader = connect(bob, "B1")
    _sync(messaging, reader)
    _confirm(messaging, reader, "from-alice-00", "from-carol-00")

    assert [s["messageId"] for s in notifier.frames_for("Alice-sending", "status")] == ["from-alice-00"]
    assert [s["messageId"] for s in notifier.frames_for("Carol-sending", "status")] == ["from-carol-00"]


def test_a_second_sync_after_confirming_has_nothing_new(messaging, notifier, connect, send_to, alice, bob):
    send_to(alice, bob, 2)
    reader = connect(bob, "B1")
    _sync(messaging, reader)
    _confirm(messaging, reader, "m-00", "m-01")

    _sync(messaging, reader)

    second = notifier.frames_for("B1", "sync")[-1]
    assert second == {"type": "sync", "messages": [], "cursor": None, "hasMore": False}


def test_pages_follow_the_cursor_until_has_more_is_false(messaging, notifier, connect, send_to, alice, bob):
    send_to(alice, bob, 5)
    reader = connect(bob, "B1")
    seen: list[str] = []
    cursor = None

    for _ in range(10):  # bounded: 5 messages at 2 per page need 3 pages
        _sync(messaging, reader, limit=2, **({"since": cursor} if cursor else {}))
        page = notifier.frames_for("B1", "sync")[-1]
        seen += [m["messageId"] for m in page["messages"]]
        cursor = page["cursor"]
        if not page["hasMore"]:
            break

    assert seen == ["m-00", "m-01", "m-02", "m-03", "m-04"]
    assert [len(p["messages"]) for p in notifier.frames_for("B1", "sync")] == [2, 2, 1]
    assert cursor is None


def test_an_exactly_full_last_page_says_there_is_no_more(messaging, notifier, connect, send_to, alice, bob):
    send_to(alice, bob, 2)

    _sync(messaging, connect(bob, "B1"), limit=2)

    assert notifier.frames_for("B1", "sync")[0]["hasMore"] is False


def test_messages_stay_pending_when_the_reader_left_before_the_page_arrived(
    messaging, messages, connections, notifier, connect, send_to, alice, bob
):
    send_to(alice, bob, 2)
    reader = connect(bob, "B1")
    notifier.close("B1")

    _sync(messaging, reader)

    assert {m.status for m in messages.items.values()} == {MessageStatus.SENT}
    assert notifier.frames_for("Alice-sending", "status") == []
    assert "B1" not in connections.rows


def test_a_page_of_long_messages_is_cut_to_fit_one_post_and_the_rest_follows(
    messaging, notifier, connect, send_to, alice, bob
):
    # 3 bytes per character in UTF-8: 30 full-length messages are ~360 KB, far over one post.
    send_to(alice, bob, 30, content="語" * MAX_CONTENT_LENGTH)
    reader = connect(bob, "B1")
    received: list[str] = []
    cursor = None

    for _ in range(30):  # bounded: at least one message per page
        _sync(messaging, reader, limit=100, **({"since": cursor} if cursor else {}))
        page = notifier.frames_for("B1", "sync")[-1]
        assert len(encode_frame(page)) <= MAX_POST_BYTES
        received += [m["messageId"] for m in page["messages"]]
        cursor = page["cursor"]
        if not page["hasMore"]:
            break

    assert received == [f"m-{n:02d}" for n in range(30)]
    assert len(notifier.frames_for("B1", "sync")) > 1


def test_garbage_cursor_is_a_validation_error_and_delivers_nothing(
    messaging, messages, connect, send_to, alice, bob
):
    send_to(alice, bob, 1)

    with pytest.raises(ValidationFailed) as refused:
        _sync(messaging, connect(bob, "B1"), since="not a cursor!")

    assert "since" in refused.value.message
    assert messages.items["m-00"].status is MessageStatus.SENT


def test_a_cursor_issued_to_another_user_is_refused(messaging, connect, alice, bob):
    position = PendingPosition(message_id="m-1", timestamp="2026-01-01T00:00:00.000Z")
    alices_cursor = encode_cursor(alice.user_id, position)

    with pytest.raises(ValidationFailed):
        _sync(messaging, connect(bob, "B1"), since=alices_cursor)


def test_the_cursor_is_opaque_url_safe_text(messaging, notifier, connect, send_to, alice, bob):
    send_to(alice, bob, 3)

    _sync(messaging, connect(bob, "B1"), limit=1)

    cursor = notifier.frames_for("B1", "sync")[0]["cursor"]
    assert cursor and set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert json.dumps(cursor)  # a plain JSON string for the client to hand back


class SendsDuringTheQuery:
    """A message store through which a send lands right after the pending query ran and
    before the page is posted: the worst moment for a message to arrive."""

    def __init__(self, inner, concurrent_send):
        self._inner = inner
        self._concurrent_send = concurrent_send

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def pending_for(self, user_id, limit, after=None):
        page = self._inner.pending_for(user_id, limit, after)
        if self._concurrent_send is not None:
            send, self._concurrent_send = self._concurrent_send, None
            send()
        return page


@pytest.mark.parametrize("reader_online", [True, False])
def test_a_message_sent_while_a_sync_runs_is_not_missed(
    messaging, messages, connections, directory, notifier, clock, connect, send_to, alice, bob, reader_online
):
    send_to(alice, bob, 2, prefix="before")
    reader = connect(bob, "B1")
    if not reader_online:
        notifier.close("B1")  # the socket is going away while it syncs
    racing = SendsDuringTheQuery(messages, lambda: send_to(alice, bob, 1, prefix="during"))
    syncing = MessagingService(messages=racing, connections=connections, directory=directory, notifier=notifier,
                               clock=clock)

    syncing.sync(reader, SyncMessagesRequest())

    seen = [m["messageId"] for page in notifier.frames_for("B1", "sync") for m in page["messages"]]
    seen += [f["message"]["messageId"] for f in notifier.frames_for("B1", "message")]
    still_pending = [m.message_id for m in messages.pending_for(bob.user_id, 10).messages]
    # Nothing leaves the pending set without a confirmation, whatever reached the reader.
    assert still_pending == ["before-00", "before-01", "during-00"]
    if reader_online:
        assert sorted(seen) == ["before-00", "before-01", "during-00"]  # the racing one went out live
    else:
        assert seen == []


def test_unconfirmed_messages_come_again_with_every_sync_until_confirmed(
    messaging, notifier, connect, send_to, alice, bob
):
    # The first page went into a socket whose network had died: accepted, never read.
    send_to(alice, bob, 3)
    reader = connect(bob, "B1")

    for _ in range(2):
        _sync(messaging, reader)
    _confirm(messaging, reader, "m-00", "m-01", "m-02")
    _sync(messaging, reader)

    pages = [[m["messageId"] for m in page["messages"]] for page in notifier.frames_for("B1", "sync")]
    assert pages == [["m-00", "m-01", "m-02"], ["m-00", "m-01", "m-02"], []]
    assert len(notifier.frames_for("Alice-sending", "status")) == 3


def test_two_devices_syncing_at_once_both_get_every_unconfirmed_message(
    messaging, notifier, connect, send_to, alice, bob
):
    send_to(alice, bob, 2)
    phone, tablet = connect(bob, "B-phone"), connect(bob, "B-tablet")

    _sync(messaging, phone)
    _sync(messaging, tablet)
    _confirm(messaging, phone, "m-00", "m-01")
    _confirm(messaging, tablet, "m-00", "m-01")

    for device in ("B-phone", "B-tablet"):
        assert [m["messageId"] for m in notifier.frames_for(device, "sync")[0]["messages"]] == ["m-00", "m-01"]
    # Two confirmations of the same messages: the sender hears delivered once each.
    assert [s["messageId"] for s in notifier.frames_for("Alice-sending", "status")] == ["m-00", "m-01"]


def test_a_page_that_could_not_reach_the_reader_comes_again_on_the_next_connection(
    messaging, messages, notifier, connect, send_to, alice, bob
):
    send_to(alice, bob, 2)
    leaving = connect(bob, "B-old")
    notifier.close("B-old")
    _sync(messaging, leaving)

    _sync(messaging, connect(bob, "B-new"))

    assert [m["messageId"] for m in notifier.frames_for("B-new", "sync")[0]["messages"]] == ["m-00", "m-01"]
