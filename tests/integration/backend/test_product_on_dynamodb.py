"""The new actions against the template's tables and user pool (moto): what is stored, what
clients get, and what a send costs in DynamoDB requests."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import boto3
import pytest

from chat.config import override
from chat.domain.models import FRAME_LIMIT, Identity, Message
from chat.handlers import (
    ack_messages,
    connect,
    delete_message,
    find_users,
    get_history,
    list_conversations,
    mark_read,
    ping,
    send_message,
    sync_messages,
)

from .conftest import REGION

CONVERSATION = "conv-ab"


@pytest.fixture
def online(backend, notifier, ws_event, lambda_context):
    def connect_user(user, connection_id):
        result = connect.lambda_handler(ws_event("connect", connection_id=connection_id, user=user), lambda_context)
        assert result == {"statusCode": 200}
        notifier.open(connection_id)

    return connect_user


@pytest.fixture
def frame(backend, ws_event, lambda_context):
    """Send one frame from a connection through the handler its action routes to."""
    handlers = {
        "sendMessage": (send_message, "send_message"),
        "syncMessages": (sync_messages, "sync_messages"),
        "markRead": (mark_read, "mark_read"),
        "ackMessages": (ack_messages, "ack_messages"),
        "listConversations": (list_conversations, "list_conversations"),
        "findUsers": (find_users, "find_users"),
        "deleteMessage": (delete_message, "delete_message"),
        "getHistory": (get_history, "get_history"),
        "ping": (ping, "ping"),
    }

    def send_frame(user, connection_id, action, **fields):
        handler, event_name = handlers[action]
        event = ws_event(event_name, connection_id=connection_id, user=user, body={"action": action, **fields})
        return handler.lambda_handler(event, lambda_context)

    return send_frame


@pytest.fixture
def say(frame):
    def send(sender, connection_id, recipient, message_id, conversation=CONVERSATION, **extra):
        return frame(sender, connection_id, "sendMessage", messageId=message_id, conversationId=conversation,
                     recipientId=recipient.user_id, content=f"text of {message_id}", **extra)

    return send


@pytest.fixture
def dynamodb_calls(backend):
    """Every DynamoDB API call the backend makes from now on, by operation name."""
    calls: list[str] = []
    client = backend._dynamodb.meta.client
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    return calls


@pytest.fixture
def cognito_calls(backend):
    """Every Cognito API call the backend makes from now on, by operation name."""
    calls: list[str] = []
    client = backend.directory._client
    client.meta.events.register("before-call.cognito-idp", lambda model, **_: calls.append(model.name))
    return calls


@pytest.fixture
def pool_users(aws):
    """Create real users in the template's user pool; their ids are their Cognito subs."""
    cognito = boto3.client("cognito-idp", region_name=REGION)

    def create(username: str, name: str) -> Identity:
        user = cognito.admin_create_user(
            UserPoolId=aws["UserPool"], Username=username, MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "name", "Value": name}, {"Name": "email", "Value": f"{username}@example.com"}],
        )["User"]
        sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
        return Identity(user_id=sub, user_name=name)

    return create


# ------------------------------------------------------------------ the DynamoDB budget of a send


def test_a_one_to_one_send_to_an_online_recipient_costs_two_dynamodb_requests(
    online, say, dynamodb_calls, notifier, alice, bob
):
    online(alice, "A1")
    online(alice, "A2")
    online(bob, "B1")
    online(bob, "B2")
    say(alice, "A1", bob, "m-0")
    dynamodb_calls.clear()
    notifier.posts.clear()

    assert say(alice, "A1", bob, "m-1") == {"statusCode": 200}

    # Write the message with its conversation, memberships and frame count; read both
    # users' connections. Delivery is recorded later, when a device of bob confirms it.
    assert dynamodb_calls == ["TransactWriteItems", "BatchGetItem"]
    # ... plus one post per connection: the ack, the message to B1, B2 and A2.
    assert len(notifier.posts) == 4


def test_the_first_message_of_a_conversation_also_checks_its_recipient_in_the_pool(
    online, say, dynamodb_calls, cognito_calls, alice, bob
):
    online(alice, "A1")
    dynamodb_calls.clear()

    assert say(alice, "A1", bob, "m-1") == {"statusCode": 200}
    assert say(alice, "A1", bob, "m-2") == {"statusCode": 200}

    # The write that may not start a conversation is refused, the recipient is looked up
    # once, and the write that may goes through; the second message costs no lookup.
    first_message = ["TransactWriteItems", "TransactWriteItems", "BatchGetItem"]
    assert dynamodb_calls == [*first_message, "TransactWriteItems", "BatchGetItem"]
    assert cognito_calls == ["ListUsers"]


@pytest.mark.parametrize("recipient", ["#", "x#y"])
def test_a_malformed_recipient_is_a_validation_error_and_nothing_is_written(
    online, frame, tables, notifier, alice, recipient
):
    online(alice, "A1")

    result = frame(alice, "A1", "sendMessage", messageId="m-1", conversationId=CONVERSATION, recipientId=recipient,
                   content="hi")

    assert result == {"statusCode": 400}
    assert [f["code"] for f in notifier.frames_for("A1")] == ["VALIDATION_ERROR"]
    assert tables.messages.scan()["Items"] == [] and tables.conversations.scan()["Items"] == []


def test_a_recipient_who_is_no_user_of_the_pool_is_not_found_and_nothing_is_written(
    online, frame, tables, notifier, alice
):
    online(alice, "A1")

    result = frame(alice, "A1", "sendMessage", messageId="m-1", conversationId=CONVERSATION,
                   recipientId="7d0c1e9a-3b5f-4c2d-9e8a-1f2b3c4d5e6f", content="hi")

    assert result == {"statusCode": 404}
    assert [f["code"] for f in notifier.frames_for("A1")] == ["NOT_FOUND"]
    assert tables.messages.scan()["Items"] == [] and tables.conversations.scan()["Items"] == []


def test_confirming_a_message_costs_one_update_per_message_and_one_connection_lookup(
    online, say, frame, dynamodb_calls, notifier, alice, bob
):
    online(alice, "A1")
    online(bob, "B1")
    say(alice, "A1", bob, "m-1")
    say(alice, "A1", bob, "m-2")
    dynamodb_calls.clear()
    notifier.posts.clear()

    frame(bob, "B1", "ackMessages", messageIds=["m-1", "m-2"])

    # The frame count, each message's conditional update, then alice's connections.
    assert dynamodb_calls == ["UpdateItem", "UpdateItem", "UpdateItem", "BatchGetItem"]
    assert [(cid, f["type"], f["messageId"]) for cid, f in notifier.posts] == [
        ("A1", "status", "m-1"), ("A1", "status", "m-2")
    ]


def test_a_send_to_an_offline_recipient_and_a_retry_cost_at_most_three_requests(
    online, say, dynamodb_calls, alice, bob
):
    online(alice, "A1")
    say(alice, "A1", bob, "m-0")
    dynamodb_calls.clear()

    say(alice, "A1", bob, "m-1")
    first = list(dynamodb_calls)
    dynamodb_calls.clear()
    say(alice, "A1", bob, "m-1")

    assert first == ["TransactWriteItems", "BatchGetItem"]
    # The refused write, the retry's frame counted on its own, and both users' connections:
    # a retry pushes again what a first attempt that died after the store never pushed.
    assert dynamodb_calls == ["TransactWriteItems", "UpdateItem", "BatchGetItem"]


def test_a_retry_after_an_attempt_that_died_after_the_store_reaches_the_online_recipient(
    online, say, backend, notifier, alice, bob
):
    online(alice, "A1")
    online(alice, "A2")
    online(bob, "B1")
    # The first attempt stored m-1 (message, conversation, memberships) and its worker died
    # before any push: nobody got a frame.
    backend.messages.create(Message(
        message_id="m-1", conversation_id=CONVERSATION, sender_id=alice.user_id, sender_name=alice.user_name,
        recipient_id=bob.user_id, content="text of m-1", timestamp="2026-01-01T12:00:00.000Z",
    ))

    assert say(alice, "A1", bob, "m-1") == {"statusCode": 200}

    assert [f["timestamp"] for f in notifier.frames_for("A1", "ack")] == ["2026-01-01T12:00:00.000Z"]
    assert [f["message"]["messageId"] for f in notifier.frames_for("B1", "message")] == ["m-1"]
    assert [f["message"]["messageId"] for f in notifier.frames_for("A2", "message")] == ["m-1"]


def test_nothing_the_backend_does_scans_a_table(online, say, frame, dynamodb_calls, alice, bob):
    online(alice, "A1")
    online(bob, "B1")
    say(alice, "A1", bob, "m-1")
    frame(bob, "B1", "syncMessages")
    frame(bob, "B1", "ackMessages", messageIds=["m-1"])
    frame(bob, "B1", "markRead", conversationId=CONVERSATION, upTo="m-1")
    frame(bob, "B1", "listConversations")
    frame(alice, "A1", "deleteMessage", messageId="m-1")
    frame(alice, "A1", "getHistory", conversationId=CONVERSATION)

    assert "Scan" not in dynamodb_calls
    assert set(dynamodb_calls) <= {"TransactWriteItems", "BatchGetItem", "UpdateItem", "Query", "GetItem",
                                   "DeleteItem"}


# ------------------------------------------------------------------ conversations


def test_the_first_message_creates_the_conversation_and_memberships(online, say, tables, alice, bob):
    online(alice, "A1")

    say(alice, "A1", bob, "m-1")

    items = {item["userId"]: item for item in tables.conversations.query(
        KeyConditionExpression="conversationId = :c", ExpressionAttributeValues={":c": CONVERSATION})["Items"]}
    assert items["#"]["participants"] == sorted([alice.user_id, bob.user_id])
    assert (items[bob.user_id]["unreadCount"], items[bob.user_id]["otherUserName"]) == (1, "Alice")
    assert (items[alice.user_id]["unreadCount"], items[alice.user_id]["lastMessageId"]) == (0, "m-1")


def test_a_stranger_writing_into_a_conversation_is_forbidden_and_nothing_is_written(
    online, say, tables, notifier, alice, bob
):
    carol = Identity(user_id="9a7d4b2f-0000-4000-8000-00000000ca01", user_name="Carol")
    online(alice, "A1")
    online(carol, "C1")
    say(alice, "A1", bob, "m-1")

    assert say(carol, "C1", bob, "m-2") == {"statusCode": 403}

    assert "Item" not in tables.messages.get_item(Key={"messageId": "m-2"})
    assert "Item" not in tables.conversations.get_item(Key={"conversationId": CONVERSATION, "userId": carol.user_id})
    bob_member = tables.conversations.get_item(Key={"conversationId": CONVERSATION, "userId": bob.user_id})["Item"]
    assert (bob_member["unreadCount"], bob_member["lastMessageId"]) == (1, "m-1")
    assert notifier.frames_for("C1", "error")[0]["code"] == "FORBIDDEN"


def test_the_list_names_the_other_user_from_the_pool_and_counts_unread(
    online, say, frame, notifier, pool_users
):
    alice, bob = pool_users("alice", "Alice Liddell"), pool_users("bob", "Bob Builder")
    online(alice, "A1")
    online(bob, "B1")
    say(alice, "A1", bob, "m-1")
    say(alice, "A1", bob, "m-2")

    frame(alice, "A1", "listConversations")
    frame(bob, "B1", "listConversations")

    [for_alice] = notifier.frames_for("A1", "conversations")[0]["conversations"]
    [for_bob] = notifier.frames_for("B1", "conversations")[0]["conversations"]
    assert (for_alice["otherUser"]["name"], for_alice["unreadCount"]) == ("Bob Builder", 0)
    assert (for_bob["otherUser"]["name"], for_bob["unreadCount"]) == ("Alice Liddell", 2)
    assert for_alice["lastMessage"]["messageId"] == for_bob["lastMessage"]["messageId"] == "m-2"


# ------------------------------------------------------------------ markRead


def test_mark_read_up_to_moves_messages_to_read_lowers_unread_and_tells_the_sender(
    online, say, frame, tables, notifier, alice, bob
):
    online(alice, "A1")
    for n in range(1, 4):
        say(alice, "A1", bob, f"m-{n}")  # bob is offline: all pending
    online(bob, "B1")

    assert frame(bob, "B1", "markRead", conversationId=CONVERSATION, upTo="m-2") == {"statusCode": 200}

    assert notifier.frames_for("B1", "marked")[0]["messageIds"] == ["m-1", "m-2"]
    statuses = {n: tables.messages.get_item(Key={"messageId": f"m-{n}"})["Item"] for n in (1, 2, 3)}
    assert [statuses[n]["status"] for n in (1, 2, 3)] == ["read", "read", "sent"]
    assert "pendingFor" not in statuses[1] and "unreadFor" not in statuses[1]
    assert statuses[3]["pendingFor"] == bob.user_id
    member = tables.conversations.get_item(Key={"conversationId": CONVERSATION, "userId": bob.user_id})["Item"]
    assert member["unreadCount"] == 1
    assert [(s["messageId"], s["status"]) for s in notifier.frames_for("A1", "status")] == [
        ("m-1", "read"), ("m-2", "read")
    ]


def test_mark_read_by_a_non_recipient_is_forbidden_and_changes_nothing(online, say, frame, tables, alice, bob):
    online(alice, "A1")
    say(alice, "A1", bob, "m-1")

    assert frame(alice, "A1", "markRead", conversationId=CONVERSATION, messageIds=["m-1"]) == {"statusCode": 403}

    assert tables.messages.get_item(Key={"messageId": "m-1"})["Item"]["status"] == "sent"


# ------------------------------------------------------------------ deleteMessage


def test_delete_erases_the_content_and_tells_both_participants(online, say, frame, tables, notifier, alice, bob):
    online(alice, "A1")
    online(bob, "B1")
    say(alice, "A1", bob, "m-1")

    assert frame(alice, "A1", "deleteMessage", messageId="m-1") == {"statusCode": 200}

    item = tables.messages.get_item(Key={"messageId": "m-1"})["Item"]
    assert (item["isDeleted"], item["content"]) == (True, "")
    assert [f["messageId"] for f in notifier.frames_for("B1", "messageDeleted")] == ["m-1"]
    assert [f["messageId"] for f in notifier.frames_for("A1", "messageDeleted")] == ["m-1"]


def test_deleting_a_message_again_is_harmless_and_tells_both_participants_again(
    online, say, frame, tables, notifier, alice, bob
):
    online(alice, "A1")
    online(bob, "B1")
    say(alice, "A1", bob, "m-1")
    assert frame(alice, "A1", "deleteMessage", messageId="m-1") == {"statusCode": 200}
    first = tables.messages.get_item(Key={"messageId": "m-1"})["Item"]

    assert frame(alice, "A1", "deleteMessage", messageId="m-1") == {"statusCode": 200}

    again = tables.messages.get_item(Key={"messageId": "m-1"})["Item"]
    assert (again["isDeleted"], again["content"], again["status"]) == (True, "", first["status"])
    assert notifier.frames_for("A1", "error") == []
    for connection_id in ("A1", "B1"):
        assert [f["messageId"] for f in notifier.frames_for(connection_id, "messageDeleted")] == ["m-1", "m-1"]


def test_a_message_to_oneself_is_confirmed_like_any_other(online, frame, tables, notifier, alice):
    online(alice, "A-phone")
    online(alice, "A-laptop")
    notes = "notes-alice"
    assert frame(alice, "A-phone", "sendMessage", messageId="m-1", conversationId=notes, recipientId=alice.user_id,
                 content="buy milk") == {"statusCode": 200}
    assert [f["message"]["messageId"] for f in notifier.frames_for("A-laptop", "message")] == ["m-1"]

    assert frame(alice, "A-laptop", "ackMessages", messageIds=["m-1"]) == {"statusCode": 200}

    item = tables.messages.get_item(Key={"messageId": "m-1"})["Item"]
    assert item["status"] == "delivered" and "pendingFor" not in item
    for connection_id in ("A-phone", "A-laptop"):
        assert [(f["messageId"], f["status"]) for f in notifier.frames_for(connection_id, "status")] == [
            ("m-1", "delivered")
        ]
    frame(alice, "A-laptop", "syncMessages")
    assert notifier.frames_for("A-laptop", "sync")[-1]["messages"] == []


def test_delete_by_the_recipient_is_forbidden(online, say, frame, tables, alice, bob):
    online(alice, "A1")
    online(bob, "B1")
    say(alice, "A1", bob, "m-1")

    assert frame(bob, "B1", "deleteMessage", messageId="m-1") == {"statusCode": 403}

    assert tables.messages.get_item(Key={"messageId": "m-1"})["Item"]["content"] == "text of m-1"


def test_a_reply_must_be_to_a_message_of_the_same_conversation(online, say, tables, notifier, alice, bob):
    online(alice, "A1")
    say(alice, "A1", bob, "m-1", conversation="conv-other")

    assert say(alice, "A1", bob, "m-2", replyToMessageId="m-1") == {"statusCode": 400}
    assert say(alice, "A1", bob, "m-3", conversation="conv-other", replyToMessageId="m-1") == {"statusCode": 200}

    assert "Item" not in tables.messages.get_item(Key={"messageId": "m-2"})
    error = notifier.frames_for("A1", "error")[0]
    assert error["message"] == "replyToMessageId must name a message of this conversation."


# ------------------------------------------------------------------ getHistory


def test_a_history_page_costs_three_dynamodb_requests_and_pages_newest_first(
    online, say, frame, dynamodb_calls, notifier, alice, bob
):
    online(alice, "A1")
    online(bob, "B1")
    for n in range(5):
        sender, recipient, connection = (alice, bob, "A1") if n % 2 == 0 else (bob, alice, "B1")
        say(sender, connection, recipient, f"m-{n}")
    dynamodb_calls.clear()
    notifier.posts.clear()

    assert frame(alice, "A1", "getHistory", conversationId=CONVERSATION, limit=3, requestId="h-1") == {
        "statusCode": 200
    }
    # The frame's count, the conversation's participants, one Query of ConversationIndex.
    assert dynamodb_calls == ["UpdateItem", "GetItem", "Query"]
    [first] = notifier.frames_for("A1", "history")
    frame(alice, "A1", "getHistory", conversationId=CONVERSATION, limit=3, cursor=first["cursor"], requestId="h-2")
    [_, second] = notifier.frames_for("A1", "history")

    assert [m["messageId"] for m in first["messages"]] == ["m-4", "m-3", "m-2"]
    assert [m["messageId"] for m in second["messages"]] == ["m-1", "m-0"]
    assert (first["hasMore"], second["hasMore"], second["cursor"]) == (True, False, None)
    assert (first["requestId"], second["requestId"]) == ("h-1", "h-2")
    assert {m["senderId"] for m in first["messages"]} == {alice.user_id, bob.user_id}
    assert len(notifier.posts) == 2  # the two pages, to the caller only


def test_history_shows_tombstones_and_refuses_strangers_and_other_cursors(
    online, say, frame, notifier, pool_users, alice, bob
):
    carol = pool_users("carol", "Carol")
    online(alice, "A1")
    online(carol, "C1")
    say(alice, "A1", bob, "m-1")
    say(alice, "A1", bob, "m-2")
    frame(alice, "A1", "deleteMessage", messageId="m-1")
    frame(alice, "A1", "getHistory", conversationId=CONVERSATION, limit=1)
    [page] = notifier.frames_for("A1", "history")

    assert frame(carol, "C1", "getHistory", conversationId=CONVERSATION) == {"statusCode": 403}
    assert frame(carol, "C1", "getHistory", conversationId=CONVERSATION, cursor=page["cursor"]) == {"statusCode": 400}
    assert frame(alice, "A1", "getHistory", conversationId="conv-other", cursor=page["cursor"]) == {"statusCode": 400}
    assert [e["code"] for e in notifier.frames_for("C1", "error")] == ["FORBIDDEN", "VALIDATION_ERROR"]
    frame(alice, "A1", "getHistory", conversationId=CONVERSATION, cursor=page["cursor"])
    tombstone = notifier.frames_for("A1", "history")[-1]["messages"][0]
    assert (tombstone["messageId"], tombstone["isDeleted"], tombstone["content"]) == ("m-1", True, "")


def test_history_of_a_dm_not_started_is_empty_and_works_without_the_pool_setting(
    environ, notifier, ws_event, lambda_context, alice, bob
):
    # The template gives getHistory's function no USER_POOL_ID: it must never need one.
    without_pool = {k: v for k, v in environ.items() if k != "USER_POOL_ID"}
    conversation = "dm_" + "_".join(sorted((alice.user_id, bob.user_id)))
    notifier.open("A1")
    with override(environ=without_pool, notifier=notifier):
        event = ws_event("get_history", connection_id="A1", user=alice,
                         body={"action": "getHistory", "conversationId": conversation})
        assert get_history.lambda_handler(event, lambda_context) == {"statusCode": 200}

    [page] = notifier.frames_for("A1", "history")
    assert page == {"type": "history", "conversationId": conversation, "messages": [], "cursor": None,
                    "hasMore": False}


# ------------------------------------------------------------------ findUsers (Cognito ListUsers on moto)


@pytest.mark.parametrize("query", ["Bob", "bob", "bob@example"])
def test_find_users_searches_the_pool_by_name_username_or_email(online, frame, notifier, pool_users, query):
    alice = pool_users("alice", "Alice Liddell")
    bob = pool_users("bob", "Bob Builder")
    pool_users("bobby", "Robert Tables")
    online(alice, "A1")

    assert frame(alice, "A1", "findUsers", query=query) == {"statusCode": 200}

    users = notifier.frames_for("A1", "users")[0]["users"]
    assert {"userId": bob.user_id, "name": "Bob Builder", "username": "bob"} in users
    assert all(u["userId"] != alice.user_id for u in users)


def test_find_users_never_returns_the_caller(online, frame, notifier, pool_users):
    alice = pool_users("alice", "Alice Liddell")
    online(alice, "A1")

    frame(alice, "A1", "findUsers", query="Alice")

    assert notifier.frames_for("A1", "users")[0]["users"] == []


# ------------------------------------------------------------------ ping and the rate limit


class FrozenClock:
    def __call__(self) -> datetime:
        return datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)


def test_the_rate_limit_holds_on_dynamodb_and_counters_expire(environ, notifier, ws_event, lambda_context, tables):
    with override(environ=environ, notifier=notifier, clock=FrozenClock()):
        answers = [
            ping.lambda_handler(ws_event("ping", connection_id="A1", user=None, body={"action": "ping"}),
                                lambda_context)
            for _ in range(FRAME_LIMIT + 1)
        ]

    assert Counter(a["statusCode"] for a in answers) == {200: FRAME_LIMIT, 429: 1}
    assert json.loads(answers[0]["body"]) == {"type": "pong", "at": "2026-01-01T12:00:05.000Z"}
    assert json.loads(answers[-1]["body"])["code"] == "RATE_LIMITED"
    window = int(datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC).timestamp()) // 10
    counter = tables.connections.get_item(Key={"connectionId": f"frames#A1#{window}"})["Item"]
    assert counter["frames"] == FRAME_LIMIT
    assert counter["ttl"] == (window + 1) * 10 + 60
