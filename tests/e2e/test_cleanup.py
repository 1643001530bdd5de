"""Removing test users leaves nothing of them: not in Cognito, not in any table."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from chatclient import ChatSession, conversation_id, ensure_user, remove_user_data, sign_in

from .conftest import PASSWORD

pytestmark = pytest.mark.e2e


def _items_mentioning(dynamodb: Any, table: str, needles: list[str]) -> list[dict[str, Any]]:
    """Every item of ``table`` with any of ``needles`` in it. A Scan is fine here: it proves
    absence in a small emulator table; the cleanup itself never scans."""
    found, query = [], {"TableName": table}
    while True:
        page = dynamodb.scan(**query)
        found += [item for item in page.get("Items", []) if any(n in json.dumps(item) for n in needles)]
        if "LastEvaluatedKey" not in page:
            return found
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_removing_two_users_who_chatted_leaves_no_item_and_no_cognito_user(stack):
    if not stack.local:
        pytest.skip("scans the emulator's tables: local stack only")
    dynamodb, cognito = stack.dynamodb(), stack.target.cognito()
    usernames = [f"{label}-{uuid.uuid4().hex[:8]}" for label in ("alice", "bob")]
    for username in usernames:
        ensure_user(stack.target, username, PASSWORD, name=username, email=f"{username}@example.com")
    alice, bob = (sign_in(stack.target, username, PASSWORD) for username in usernames)
    needles = [alice.sub, bob.sub, *usernames]
    conversation = conversation_id(alice.sub, bob.sub)

    try:
        with ChatSession(stack.target, alice.id_token) as a, ChatSession(stack.target, bob.id_token) as b:
            a.send_message(conversation, bob.sub, "hello bob")
            b.receive_until("message")
            a.receive_until("status")
            # bob's reply goes unconfirmed, so it also sits in the pending and unread indexes.
            b.send_message(conversation, alice.sub, "hi alice")
            b.receive_until("ack")

            # What a chat leaves: both connections, the messages, the conversation items.
            for logical_id in stack.tables:
                assert _items_mentioning(dynamodb, stack.table(logical_id), needles), logical_id

            # Removed while the sockets are still open, so the connection rows are there to go.
            removed = [
                remove_user_data(stack.target, stack.tables, tokens.sub, username)
                for tokens, username in zip((alice, bob), usernames, strict=True)
            ]

            for logical_id in stack.tables:
                assert _items_mentioning(dynamodb, stack.table(logical_id), needles) == [], logical_id
    finally:
        # Whatever happened above, the users do not outlive the test.
        for tokens, username in zip((alice, bob), usernames, strict=True):
            remove_user_data(stack.target, stack.tables, tokens.sub, username)

    # The shared conversation goes with the first of its participants removed.
    assert [(r.cognito_user, r.conversations, r.messages, r.connections) for r in removed] == [
        (True, 1, 2, 1),
        (True, 0, 0, 1),
    ]
    for username in usernames:
        with pytest.raises(cognito.exceptions.UserNotFoundException):
            cognito.admin_get_user(UserPoolId=stack.target.user_pool_id, Username=username)
