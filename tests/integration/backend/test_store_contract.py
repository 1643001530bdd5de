"""One contract, two implementations: the in-memory stores behave like the DynamoDB ones.

The unit tests trust the in-memory stores; this suite is what makes that trust earned.
"""

from __future__ import annotations

import pytest

from chat.adapters.dynamodb import DynamoConnectionStore, DynamoMessageStore
from chat.adapters.memory import InMemoryConnectionStore, InMemoryMessageStore
from chat.domain.errors import MessageIdTaken
from chat.domain.models import Connection, Message, MessageStatus, PendingPosition


@pytest.fixture(params=["memory", "dynamodb"])
def stores(request):
    if request.param == "memory":
        return InMemoryConnectionStore(), InMemoryMessageStore()
    tables = request.getfixturevalue("tables")
    return DynamoConnectionStore(tables.connections), DynamoMessageStore(tables.messages)


@pytest.fixture
def connection_store(stores):
    return stores[0]


@pytest.fixture
def message_store(stores):
    return stores[1]


def _connection(connection_id: str, user_id: str) -> Connection:
    return Connection(connection_id, user_id, user_id.title(), "2026-01-01T12:00:00.000Z", 1767355200)


def _message(n: int, recipient: str = "bob", sender: str = "alice", second: int | None = None) -> Message:
    return Message(
        message_id=f"m-{n:02d}",
        conversation_id="conv",
        sender_id=sender,
        sender_name=sender.title(),
        recipient_id=recipient,
        content=f"message {n}",
        timestamp=f"2026-01-01T12:00:{n if second is None else second:02d}.000Z",
    )


def test_connections_are_found_by_user(connection_store):
    connection_store.put(_connection("A1", "alice"))
    connection_store.put(_connection("A2", "alice"))
    connection_store.put(_connection("B1", "bob"))

    assert sorted(connection_store.connection_ids_of("alice")) == ["A1", "A2"]
    assert connection_store.connection_ids_of("nobody") == []


def test_deleting_a_connection_forgets_only_it_and_unknown_ids_are_fine(connection_store):
    connection_store.put(_connection("A1", "alice"))
    connection_store.put(_connection("A2", "alice"))

    connection_store.delete("A1")
    connection_store.delete("never-existed")

    assert connection_store.connection_ids_of("alice") == ["A2"]


def test_a_taken_message_id_is_refused_with_the_stored_message(message_store):
    original = _message(1)
    message_store.create(original)

    with pytest.raises(MessageIdTaken) as taken:
        message_store.create(original.model_copy(update={"content": "other", "sender_id": "mallory"}))

    assert taken.value.existing == original


def test_mark_delivered_succeeds_once(message_store):
    message_store.create(_message(1))

    assert message_store.mark_delivered("m-01") is True
    assert message_store.mark_delivered("m-01") is False


def test_pending_messages_come_oldest_first_and_only_for_their_recipient(message_store):
    for n, second in [(1, 30), (2, 10), (3, 20)]:
        message_store.create(_message(n, second=second))
    message_store.create(_message(4, recipient="carol"))

    page = message_store.pending_for("bob", 10)

    assert [m.message_id for m in page.messages] == ["m-02", "m-03", "m-01"]
    assert page.has_more is False
    assert page.messages[0] == _message(2, second=10)


def test_delivered_messages_are_no_longer_pending(message_store):
    message_store.create(_message(1))
    message_store.create(_message(2))

    message_store.mark_delivered("m-01")

    assert [m.message_id for m in message_store.pending_for("bob", 10).messages] == ["m-02"]


@pytest.mark.parametrize(("count", "has_more"), [(2, False), (3, True)])
def test_has_more_is_true_only_when_another_message_is_waiting(message_store, count, has_more):
    for n in range(count):
        message_store.create(_message(n))

    page = message_store.pending_for("bob", 2)

    assert (len(page.messages), page.has_more) == (2, has_more)


def test_paging_resumes_after_a_position_even_once_that_message_was_delivered(message_store):
    for n in range(5):
        message_store.create(_message(n))
    first = message_store.pending_for("bob", 2)
    for message in first.messages:
        message_store.mark_delivered(message.message_id)
    last = first.messages[-1]

    second = message_store.pending_for("bob", 2, PendingPosition(last.message_id, last.timestamp))

    assert [m.message_id for m in second.messages] == ["m-02", "m-03"]
    assert second.has_more is True


def test_a_stored_message_reads_back_unchanged_with_its_optional_fields(message_store):
    reply = _message(1).model_copy(update={"reply_to_message_id": "m-00", "content": "naïve café ✓ 語"})
    message_store.create(reply)

    assert message_store.pending_for("bob", 1).messages == [reply]
    assert message_store.pending_for("bob", 1).messages[0].status is MessageStatus.SENT
