"""The handlers against the template's tables (moto): what is stored, and what clients get."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chat.handlers import ack_messages, connect, default, disconnect, send_message, sync_messages


@pytest.fixture
def online(backend, notifier, ws_event, lambda_context):
    """Connect a user through the $connect handler and open the socket in the fake gateway."""

    def connect_user(user, connection_id):
        result = connect.lambda_handler(ws_event("connect", connection_id=connection_id, user=user), lambda_context)
        assert result == {"statusCode": 200}
        notifier.open(connection_id)

    return connect_user


@pytest.fixture
def send(backend, ws_event, lambda_context, bob):
    def send_frame(user, connection_id, message_id="m-1", content="hello", recipient=None, **extra):
        body = {
            "action": "sendMessage",
            "messageId": message_id,
            "conversationId": "conv-ab",
            "recipientId": recipient.user_id if recipient else bob.user_id,
            "content": content,
            **extra,
        }
        event = ws_event("send_message", connection_id=connection_id, user=user, body=body)
        return send_message.lambda_handler(event, lambda_context)

    return send_frame


@pytest.fixture
def sync(backend, ws_event, lambda_context):
    def sync_frame(user, connection_id, **frame):
        body = {"action": "syncMessages", **frame}
        event = ws_event("sync_messages", connection_id=connection_id, user=user, body=body)
        return sync_messages.lambda_handler(event, lambda_context)

    return sync_frame


@pytest.fixture
def confirm(backend, ws_event, lambda_context):
    def ack_frame(user, connection_id, message_ids):
        body = {"action": "ackMessages", "messageIds": message_ids}
        event = ws_event("ack_messages", connection_id=connection_id, user=user, body=body)
        return ack_messages.lambda_handler(event, lambda_context)

    return ack_frame


def _all(table) -> list[dict]:
    return table.scan(ConsistentRead=True)["Items"]


def _connection_rows(tables) -> list[dict]:
    """Rows of open connections (the table also holds rate-limit counters)."""
    return [row for row in _all(tables.connections) if "userId" in row]


def test_connect_stores_the_user_and_a_ttl_a_day_ahead(online, tables, clock, alice):
    connected_at = clock.now

    online(alice, "A1")

    [row] = _all(tables.connections)
    assert row["connectionId"] == "A1"
    assert (row["userId"], row["userName"]) == (alice.user_id, "Alice")
    assert row["connectedAt"] == "2026-01-01T12:00:00.123Z"
    # A number (DynamoDB TTL ignores strings) in epoch seconds.
    assert isinstance(row["ttl"], Decimal)
    assert row["ttl"] == int(connected_at.timestamp()) + 24 * 3600
    assert tables.user_connections.get_item(Key={"userId": alice.user_id})["Item"]["connectionIds"] == {"A1"}


def test_disconnect_deletes_the_connection(online, backend, tables, ws_event, lambda_context, alice):
    online(alice, "A1")
    online(alice, "A2")

    disconnect.lambda_handler(ws_event("disconnect", connection_id="A1", user=alice), lambda_context)

    assert [row["connectionId"] for row in _all(tables.connections)] == ["A2"]
    assert tables.user_connections.get_item(Key={"userId": alice.user_id})["Item"]["connectionIds"] == {"A2"}


def test_a_disconnect_without_identity_finds_the_user_from_the_row(
    online, backend, tables, ws_event, lambda_context, alice
):
    online(alice, "A1")
    online(alice, "A2")

    disconnect.lambda_handler(ws_event("disconnect", connection_id="A1", user=None), lambda_context)

    assert tables.user_connections.get_item(Key={"userId": alice.user_id})["Item"]["connectionIds"] == {"A2"}


def test_message_to_an_online_recipient_is_stored_pushed_and_stays_pending_until_confirmed(
    online, send, confirm, tables, notifier, alice, bob
):
    online(alice, "A1")
    online(bob, "B1")

    assert send(alice, "A1", recipient=bob) == {"statusCode": 200}

    [item] = _all(tables.messages)
    assert item == {
        "messageId": "m-1",
        "conversationId": "conv-ab",
        "senderId": alice.user_id,
        "senderName": "Alice",
        "recipientId": bob.user_id,
        "content": "hello",
        "timestamp": item["timestamp"],
        "status": "sent",
        "isDeleted": False,
        "replyToMessageId": None,
        # Pending until a device of bob confirms it (PendingIndex), unread until he
        # marks it read (UnreadIndex).
        "pendingFor": bob.user_id,
        "unreadFor": f"{bob.user_id}#conv-ab",
    }
    assert notifier.frames_for("B1", "message")[0]["message"]["messageId"] == "m-1"
    assert [f["type"] for f in notifier.frames_for("A1")] == ["ack"]

    assert confirm(bob, "B1", ["m-1"]) == {"statusCode": 200}

    [item] = _all(tables.messages)
    assert item["status"] == "delivered" and "pendingFor" not in item
    assert [(f["type"], f.get("status")) for f in notifier.frames_for("A1")] == [
        ("ack", "sent"), ("status", "delivered")
    ]


def test_message_to_an_offline_recipient_waits_in_the_pending_index(online, send, tables, alice, bob):
    online(alice, "A1")

    send(alice, "A1", recipient=bob)

    [item] = _all(tables.messages)
    assert (item["status"], item["pendingFor"]) == ("sent", bob.user_id)
    assert item["timestamp"].endswith("Z") and len(item["timestamp"]) == len("2026-01-01T12:00:00.123Z")


def test_recipient_syncs_on_reconnect_confirms_and_the_sender_hears_delivered(
    online, send, sync, confirm, tables, notifier, alice, bob
):
    online(alice, "A1")
    send(alice, "A1", message_id="m-1", content="first", recipient=bob)
    send(alice, "A1", message_id="m-2", content="second", recipient=bob)
    online(bob, "B1")

    assert sync(bob, "B1") == {"statusCode": 200}

    [page] = notifier.frames_for("B1", "sync")
    assert [(m["messageId"], m["content"], m["status"]) for m in page["messages"]] == [
        ("m-1", "first", "sent"),
        ("m-2", "second", "sent"),
    ]
    assert page["hasMore"] is False
    assert notifier.frames_for("A1", "status") == []  # the page may never arrive

    assert confirm(bob, "B1", ["m-1", "m-2"]) == {"statusCode": 200}

    assert {item["status"] for item in _all(tables.messages)} == {"delivered"}
    assert all("pendingFor" not in item for item in _all(tables.messages))
    assert [s["messageId"] for s in notifier.frames_for("A1", "status")] == ["m-1", "m-2"]


def test_sync_pages_through_dynamodb_with_the_cursor(online, send, sync, notifier, alice, bob):
    online(alice, "A1")
    for n in range(5):
        send(alice, "A1", message_id=f"m-{n}", content=f"text {n}", recipient=bob)
    online(bob, "B1")
    seen: list[str] = []
    since: dict[str, str] = {}

    for _ in range(10):  # bounded: 3 pages expected
        sync(bob, "B1", limit=2, **since)
        page = notifier.frames_for("B1", "sync")[-1]
        seen += [m["messageId"] for m in page["messages"]]
        if not page["hasMore"]:
            break
        since = {"since": page["cursor"]}

    assert seen == ["m-0", "m-1", "m-2", "m-3", "m-4"]
    assert len(notifier.frames_for("B1", "sync")) == 3


def test_an_undecodable_cursor_gets_a_validation_error(online, sync, notifier, bob):
    online(bob, "B1")

    assert sync(bob, "B1", since="eyJub3QiOiJvdXJzIn0") == {"statusCode": 400}

    assert notifier.frames_for("B1")[0]["code"] == "VALIDATION_ERROR"


def test_a_retried_send_is_acked_again_and_stored_once(online, send, tables, notifier, alice, bob):
    online(alice, "A1")

    send(alice, "A1", recipient=bob)
    send(alice, "A1", recipient=bob)

    assert len(_all(tables.messages)) == 1
    first, second = notifier.frames_for("A1", "ack")
    assert first == second


def test_a_reused_id_with_other_content_is_refused_and_the_original_kept(online, send, tables, notifier, alice, bob):
    online(alice, "A1")
    send(alice, "A1", content="original", recipient=bob)

    assert send(alice, "A1", content="changed", recipient=bob) == {"statusCode": 400}

    [item] = _all(tables.messages)
    assert item["content"] == "original"
    error = notifier.frames_for("A1", "error")[0]
    assert (error["code"], error["messageId"]) == ("VALIDATION_ERROR", "m-1")


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"content": "   "}, 400, "VALIDATION_ERROR"),
        ({"content": "x" * 4001}, 413, "PAYLOAD_TOO_LARGE"),
        ({"conversationId": ""}, 400, "VALIDATION_ERROR"),
    ],
)
def test_invalid_sends_store_nothing(online, send, tables, notifier, alice, bob, changes, status, code):
    online(alice, "A1")

    assert send(alice, "A1", recipient=bob, **changes) == {"statusCode": status}

    assert _all(tables.messages) == []
    assert notifier.frames_for("A1", "error")[0]["code"] == code


def test_a_stale_recipient_connection_is_deleted_from_the_table_and_no_other(
    online, send, tables, notifier, alice, bob
):
    online(alice, "A1")
    online(bob, "B-live")
    online(bob, "B-stale")
    notifier.close("B-stale")

    send(alice, "A1", recipient=bob)

    assert sorted(row["connectionId"] for row in _connection_rows(tables)) == ["A1", "B-live"]
    assert tables.user_connections.get_item(Key={"userId": bob.user_id})["Item"]["connectionIds"] == {"B-live"}
    assert len(notifier.frames_for("B-live", "message")) == 1


def test_unknown_action_is_answered_on_the_callers_connection(backend, notifier, ws_event, lambda_context, alice):
    notifier.open("A1")

    result = default.lambda_handler(ws_event("default", connection_id="A1", user=alice), lambda_context)

    assert result == {"statusCode": 400}
    [error] = notifier.frames_for("A1")
    assert error["message"] == (
        "Unknown action 'typing'. Known actions: sendMessage, syncMessages, markRead, ackMessages, listConversations, "
        "findUsers, deleteMessage, getHistory, ping."
    )
