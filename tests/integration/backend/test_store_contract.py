"""One contract, two implementations: the in-memory stores behave like the DynamoDB ones.

The unit tests trust the in-memory stores; this suite is what makes that trust earned.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from chat_fakes import InMemoryConnectionStore, InMemoryConversationStore, InMemoryMessageStore

from chat.adapters.dynamodb import DynamoConnectionStore, DynamoConversationStore, DynamoMessageStore
from chat.domain.errors import MessageRefused
from chat.domain.models import (
    Connection,
    Conversation,
    ConversationPosition,
    FrameTicket,
    HistoryPosition,
    Message,
    MessageStatus,
    PendingPosition,
)


@dataclass
class Stores:
    connections: InMemoryConnectionStore | DynamoConnectionStore
    messages: InMemoryMessageStore | DynamoMessageStore
    conversations: InMemoryConversationStore | DynamoConversationStore


@pytest.fixture(params=["memory", "dynamodb"])
def stores(request) -> Stores:
    if request.param == "memory":
        connections = InMemoryConnectionStore()
        messages = InMemoryMessageStore(connections)
        return Stores(connections, messages, InMemoryConversationStore(messages))
    tables = request.getfixturevalue("tables")
    return Stores(
        DynamoConnectionStore(tables.connections, tables.user_connections),
        DynamoMessageStore(tables.messages, tables.conversations, tables.connections),
        DynamoConversationStore(tables.conversations),
    )


@pytest.fixture
def connection_store(stores):
    return stores.connections


@pytest.fixture
def message_store(stores):
    return stores.messages


@pytest.fixture
def conversation_store(stores):
    return stores.conversations


def _connection(connection_id: str, user_id: str) -> Connection:
    return Connection(connection_id, user_id, user_id.title(), "2026-01-01T12:00:00.000Z", 1767355200)


def _message(
    n: int, recipient: str = "bob", sender: str = "alice", second: int | None = None, conversation: str = "conv"
) -> Message:
    return Message(
        message_id=f"m-{n:02d}",
        conversation_id=conversation,
        sender_id=sender,
        sender_name=sender.title(),
        recipient_id=recipient,
        content=f"message {n}",
        timestamp=f"2026-01-01T12:00:{n if second is None else second:02d}.000Z",
    )


def _ids_of(connection_store, user_id: str) -> list[str]:
    return sorted(connection_store.connection_ids_by_user([user_id])[user_id])


def _ticket(connection_id: str = "A1", window: int = 7, limit: int = 3) -> FrameTicket:
    return FrameTicket(connection_id=connection_id, window=window, limit=limit, expires_at=1767355200)


def _refusal(message_store, message, ticket=None) -> MessageRefused:
    with pytest.raises(MessageRefused) as refused:
        message_store.create(message, ticket)
    return refused.value


# ------------------------------------------------------------------ connections


def test_connections_are_found_by_user(connection_store):
    connection_store.put(_connection("A1", "alice"))
    connection_store.put(_connection("A2", "alice"))
    connection_store.put(_connection("B1", "bob"))

    assert _ids_of(connection_store, "alice") == ["A1", "A2"]
    assert _ids_of(connection_store, "nobody") == []


def test_connections_of_several_users_come_together_and_unknown_users_have_none(connection_store):
    connection_store.put(_connection("A1", "alice"))
    connection_store.put(_connection("B1", "bob"))
    connection_store.put(_connection("B2", "bob"))

    found = connection_store.connection_ids_by_user(["alice", "bob", "nobody", "bob"])

    assert {user: sorted(ids) for user, ids in found.items()} == {"alice": ["A1"], "bob": ["B1", "B2"], "nobody": []}


def test_deleting_a_connection_forgets_only_it_and_unknown_ids_are_fine(connection_store):
    connection_store.put(_connection("A1", "alice"))
    connection_store.put(_connection("A2", "alice"))

    connection_store.delete("A1")
    connection_store.delete("never-existed")
    connection_store.delete("never-existed-either", "carol")

    assert _ids_of(connection_store, "alice") == ["A2"]
    assert _ids_of(connection_store, "carol") == []


def test_a_stale_id_whose_row_is_gone_is_forgotten_when_the_user_is_named(connection_store):
    connection_store.put(_connection("A1", "alice"))
    connection_store.put(_connection("A2", "alice"))
    connection_store.delete("A1")  # the row and the id
    connection_store.put(_connection("A3", "alice"))

    connection_store.delete("A2", "alice")

    assert _ids_of(connection_store, "alice") == ["A3"]


def test_frames_are_counted_per_connection_and_window_up_to_the_limit(connection_store):
    assert [connection_store.count_frame(_ticket()) for _ in range(4)] == [True, True, True, False]

    assert connection_store.count_frame(_ticket(window=8)) is True
    assert connection_store.count_frame(_ticket(connection_id="A2")) is True


# ------------------------------------------------------------------ creating messages


def test_a_taken_message_id_is_refused_with_the_stored_message(message_store):
    original = _message(1)
    message_store.create(original)

    refused = _refusal(message_store, original.model_copy(update={"content": "other", "sender_id": "mallory"}))

    assert refused.existing == original


def test_a_first_message_creates_the_conversation_with_its_two_participants(message_store, conversation_store):
    message_store.create(_message(1, sender="bob", recipient="alice"))

    assert conversation_store.get("conv") == Conversation("conv", ("alice", "bob"))
    assert conversation_store.get("other") is None


def test_only_the_two_participants_may_write_in_a_conversation(message_store):
    message_store.create(_message(1))
    message_store.create(_message(2, sender="bob", recipient="alice"))

    refused = _refusal(message_store, _message(3, sender="mallory", recipient="bob"))

    assert (refused.not_a_participant, refused.existing) == (True, None)
    assert _refusal(message_store, _message(4, sender="alice", recipient="carol")).not_a_participant
    assert set(message_store.get_many(["m-01", "m-02", "m-03", "m-04"])) == {"m-01", "m-02"}


def test_a_reply_must_point_at_a_message_of_the_same_conversation(message_store):
    message_store.create(_message(1))
    message_store.create(_message(2, conversation="elsewhere"))

    missing = _message(3).model_copy(update={"reply_to_message_id": "m-99"})
    elsewhere = _message(4).model_copy(update={"reply_to_message_id": "m-02"})
    assert _refusal(message_store, missing).reply_not_found
    assert _refusal(message_store, elsewhere).reply_not_found

    message_store.create(_message(5).model_copy(update={"reply_to_message_id": "m-01"}))
    assert message_store.get_many(["m-05"])["m-05"].reply_to_message_id == "m-01"


def test_a_message_counts_its_frame_and_a_full_window_refuses_it_without_storing(message_store, connection_store):
    ticket = _ticket(limit=2)
    message_store.create(_message(1), ticket)
    message_store.create(_message(2), _ticket(limit=2))

    refused = _refusal(message_store, _message(3), _ticket(limit=2))

    assert refused.over_limit is True
    assert message_store.get_many(["m-03"]) == {}
    assert connection_store.count_frame(_ticket(limit=2)) is False


def test_a_refused_message_counts_no_frame(message_store, connection_store):
    message_store.create(_message(1))

    _refusal(message_store, _message(1), _ticket(limit=1))

    assert connection_store.count_frame(_ticket(limit=1)) is True


def test_memberships_carry_the_last_message_and_the_recipients_unread_count(message_store, conversation_store):
    message_store.create(_message(1))
    message_store.create(_message(2))
    message_store.create(_message(3, sender="bob", recipient="alice"))

    [bobs] = conversation_store.memberships_of("bob", 10).memberships
    [alices] = conversation_store.memberships_of("alice", 10).memberships

    assert (bobs.other_user_id, bobs.other_user_name, bobs.unread_count) == ("alice", "Alice", 2)
    assert (alices.other_user_id, alices.other_user_name, alices.unread_count) == ("bob", "Bob", 1)
    assert bobs.last_message_id == alices.last_message_id == "m-03"
    assert bobs.updated_at == "2026-01-01T12:00:03.000Z"


def test_the_recipients_name_is_unknown_to_the_sender_until_they_write(message_store, conversation_store):
    message_store.create(_message(1))

    [alices] = conversation_store.memberships_of("alice", 10).memberships

    assert (alices.other_user_id, alices.other_user_name, alices.unread_count) == ("bob", None, 0)


def test_a_note_to_self_is_one_membership_with_nothing_unread(message_store, conversation_store):
    message_store.create(_message(1, sender="alice", recipient="alice", conversation="notes"))

    [notes] = conversation_store.memberships_of("alice", 10).memberships

    assert (notes.other_user_id, notes.other_user_name, notes.unread_count) == ("alice", "Alice", 0)
    assert message_store.unread_up_to("alice", "notes", "9999") == []


# ------------------------------------------------------------------ reading messages


def test_get_many_returns_the_known_ones(message_store):
    message_store.create(_message(1))

    assert message_store.get_many(["m-01", "nope", "m-01"]) == {"m-01": _message(1)}


def test_confirming_receipt_moves_a_message_once_and_only_for_its_recipient(message_store):
    message_store.create(_message(1))

    assert message_store.confirm_received("alice", ["m-01"]) == []  # the sender's confirmation does not count
    [moved] = message_store.confirm_received("bob", ["m-01", "nope", "m-01"])
    assert (moved.message_id, moved.status) == ("m-01", MessageStatus.DELIVERED)
    assert message_store.confirm_received("bob", ["m-01"]) == []
    assert message_store.get_many(["m-01"])["m-01"].status is MessageStatus.DELIVERED
    assert message_store.get_many(["nope"]) == {}  # an unknown id creates nothing


def test_pending_messages_come_oldest_first_and_only_for_their_recipient(message_store):
    for n, second in [(1, 30), (2, 10), (3, 20)]:
        message_store.create(_message(n, second=second))
    message_store.create(_message(4, recipient="carol", conversation="conv-ac"))

    page = message_store.pending_for("bob", 10)

    assert [m.message_id for m in page.messages] == ["m-02", "m-03", "m-01"]
    assert page.has_more is False
    assert page.messages[0] == _message(2, second=10)


def test_confirmed_messages_are_no_longer_pending(message_store):
    message_store.create(_message(1))
    message_store.create(_message(2))

    message_store.confirm_received("bob", ["m-01"])

    assert [m.message_id for m in message_store.pending_for("bob", 10).messages] == ["m-02"]


@pytest.mark.parametrize(("count", "has_more"), [(2, False), (3, True)])
def test_has_more_is_true_only_when_another_message_is_waiting(message_store, count, has_more):
    for n in range(count):
        message_store.create(_message(n))

    page = message_store.pending_for("bob", 2)

    assert (len(page.messages), page.has_more) == (2, has_more)


def test_paging_resumes_after_a_position_even_once_that_message_was_confirmed(message_store):
    for n in range(5):
        message_store.create(_message(n))
    first = message_store.pending_for("bob", 2)
    message_store.confirm_received("bob", [m.message_id for m in first.messages])
    last = first.messages[-1]

    second = message_store.pending_for("bob", 2, PendingPosition(last.message_id, last.timestamp))

    assert [m.message_id for m in second.messages] == ["m-02", "m-03"]
    assert second.has_more is True


def test_history_is_one_conversation_both_ways_newest_first_paged_by_position(message_store):
    for n, second in [(1, 30), (2, 10), (3, 20)]:
        message_store.create(_message(n, second=second))
    message_store.create(_message(4, sender="bob", recipient="alice", second=40))
    message_store.create(_message(5, recipient="carol", conversation="conv-ac"))
    message_store.erase("m-02", "alice", "2026-01-01T12:01:00.000Z")

    first = message_store.history("conv", 2)
    last = first.messages[-1]
    second = message_store.history("conv", 2, HistoryPosition(last.message_id, last.timestamp))

    assert ([m.message_id for m in first.messages], first.has_more) == (["m-04", "m-01"], True)
    assert ([m.message_id for m in second.messages], second.has_more) == (["m-03", "m-02"], False)
    assert (second.messages[-1].is_deleted, second.messages[-1].content) == (True, "")
    assert first.messages[0] == _message(4, sender="bob", recipient="alice", second=40)
    assert message_store.history("conv-none", 2).messages == []


def test_a_stored_message_reads_back_unchanged_with_its_optional_fields(message_store):
    message_store.create(_message(0))
    reply = _message(1).model_copy(update={"reply_to_message_id": "m-00", "content": "naïve café ✓ 語"})
    message_store.create(reply)

    assert message_store.pending_for("bob", 2).messages[1] == reply
    assert message_store.pending_for("bob", 2).messages[1].status is MessageStatus.SENT


# ------------------------------------------------------------------ read and unread


def test_unread_up_to_a_time_is_what_the_other_participant_sent_not_yet_read(message_store):
    for n in range(1, 5):
        message_store.create(_message(n))
    message_store.create(_message(5, sender="bob", recipient="alice"))
    message_store.create(_message(6, conversation="conv-other"))

    unread = message_store.unread_up_to("bob", "conv", "2026-01-01T12:00:03.000Z")

    assert [m.message_id for m in unread] == ["m-01", "m-02", "m-03"]


def test_marking_read_moves_messages_out_of_pending_and_unread_and_lowers_the_count(
    message_store, conversation_store
):
    for n in range(1, 4):
        message_store.create(_message(n))
    message_store.confirm_received("bob", ["m-01"])
    batch = list(message_store.get_many(["m-01", "m-02"]).values())

    moved = message_store.mark_read("bob", batch, "2026-01-01T12:01:00.000Z")

    assert sorted((m.message_id, m.status) for m in moved) == [
        ("m-01", MessageStatus.READ), ("m-02", MessageStatus.READ)
    ]
    assert [m.message_id for m in message_store.pending_for("bob", 10).messages] == ["m-03"]
    assert [m.message_id for m in message_store.unread_up_to("bob", "conv", "9999")] == ["m-03"]
    assert conversation_store.memberships_of("bob", 10).memberships[0].unread_count == 1
    assert message_store.confirm_received("bob", ["m-02"]) == []  # read never goes back to delivered
    assert message_store.get_many(["m-02"])["m-02"].status is MessageStatus.READ


def test_marking_read_twice_moves_and_counts_each_message_once(message_store, conversation_store):
    message_store.create(_message(1))
    message_store.create(_message(2))
    first = list(message_store.get_many(["m-01"]).values())
    message_store.mark_read("bob", first, "2026-01-01T12:01:00.000Z")

    both = list(message_store.get_many(["m-01", "m-02"]).values())
    again = message_store.mark_read("bob", both, "2026-01-01T12:02:00.000Z")

    assert [m.message_id for m in again] == ["m-02"]
    assert conversation_store.memberships_of("bob", 10).memberships[0].unread_count == 0


def test_only_the_recipient_can_move_a_message_to_read(message_store):
    message_store.create(_message(1))

    moved = message_store.mark_read("alice", list(message_store.get_many(["m-01"]).values()), "2026")

    assert moved == []
    assert message_store.get_many(["m-01"])["m-01"].status is MessageStatus.SENT


def test_erasing_keeps_the_message_but_drops_its_content(message_store):
    message_store.create(_message(1))

    erased = message_store.erase("m-01", "alice", "2026-01-01T12:01:00.000Z")

    assert (erased.is_deleted, erased.content, erased.status) == (True, "", MessageStatus.SENT)
    assert message_store.get_many(["m-01"])["m-01"] == erased
    with pytest.raises(KeyError):
        message_store.erase("m-01", "bob", "2026")
    with pytest.raises(KeyError):
        message_store.erase("m-99", "alice", "2026")


# ------------------------------------------------------------------ conversation lists


def test_conversations_come_latest_first_and_page_by_position(message_store, conversation_store):
    for n, partner in enumerate(["bob", "carol", "dave", "erin"], start=1):
        message_store.create(_message(n, recipient=partner, conversation=f"conv-{partner}"))
    message_store.create(_message(5, recipient="bob", conversation="conv-bob"))

    first = conversation_store.memberships_of("alice", 2)
    last = first.memberships[-1]
    second = conversation_store.memberships_of("alice", 2, ConversationPosition(last.conversation_id, last.updated_at))

    assert [m.conversation_id for m in first.memberships] == ["conv-bob", "conv-erin"]
    assert first.has_more is True
    assert [m.conversation_id for m in second.memberships] == ["conv-dave", "conv-carol"]
    assert second.has_more is False
    assert conversation_store.memberships_of("nobody", 2).memberships == []
