"""Remove test and demo users and everything the backend stored about them.

What belongs to a user, found by key or index (never a Scan, so the cost follows the user's
own data, not the table's size):

- their Cognito user;
- every conversation they are in, whole: the conversation item, the membership items of
  both participants and every message (``UserConversationsIndex`` by user, then the
  conversation's items by key and its messages by ``ConversationIndex``);
- their Connections rows (``UserIdIndex``, plus the ids in their UserConnections set) and
  their UserConnections item.

The rule for shared conversations: a conversation goes as soon as either participant is
removed, the other participant's side included. That is right for test and demo data, where
everyone a test or the seed created is removed together, and it never leaves half a
conversation behind. It is not meant for real users who talk to people who stay.

Not removed: the per-connection rate-limit counters (``frames#<connectionId>#<window>``).
They hold no user data, only a connection id and a count, cannot be found by user without a
Scan once the connection is gone, and DynamoDB's TTL sweeps them after their window.

Removal is idempotent and ordered so an interrupted run can simply be repeated: messages
first, then the conversation items (the membership is how a conversation is found), then
connections, and the Cognito user last (it is how a sub is found from a name).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chatclient.target import Target

__all__ = ["Removed", "remove_user_data", "user_sub_of"]

#: BatchWriteItem takes at most 25 requests per call.
_BATCH_WRITE_ITEMS = 25
#: Calls per batch while DynamoDB keeps handing items back unprocessed (throttling).
_BATCH_ATTEMPTS = 8


@dataclass
class Removed:
    """What :func:`remove_user_data` deleted for one user."""

    username: str
    user_sub: str | None
    cognito_user: bool = False
    conversations: int = 0
    messages: int = 0
    connections: int = 0

    def __str__(self) -> str:
        who = f"{self.username} ({self.user_sub})" if self.user_sub else self.username
        if not self.cognito_user and not (self.conversations or self.messages or self.connections):
            return f"{who}: nothing to remove"
        return (
            f"{who}: {'user' if self.cognito_user else 'no Cognito user'}, "
            f"{self.conversations} conversation(s), {self.messages} message(s), "
            f"{self.connections} connection(s)"
        )


def user_sub_of(target: Target, username: str) -> str | None:
    """The Cognito ``sub`` of ``username``, or None if there is no such user."""
    cognito = target.cognito()
    try:
        user = cognito.admin_get_user(UserPoolId=target.user_pool_id, Username=username)
    except cognito.exceptions.UserNotFoundException:
        return None
    attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
    return attributes.get("sub")


def remove_user_data(
    target: Target,
    tables: Mapping[str, str],
    user_sub: str | None,
    username: str,
    *,
    dynamodb: Any = None,
) -> Removed:
    """Delete ``username``'s Cognito user and every item stored about them (see the module doc).

    Args:
        tables: physical table names by the template's logical ids (``ConnectionsTable``,
            ``UserConnectionsTable``, ``MessagesTable``, ``ConversationsTable``), as
            :meth:`Target.tables_from_state_file` and :meth:`Target.tables_from_cloudformation`
            return them.
        user_sub: the user's id in the tables; looked up from Cognito when None.
        dynamodb: a DynamoDB client; the target's by default.
    """
    client = dynamodb if dynamodb is not None else target.dynamodb()
    if user_sub is None:
        user_sub = user_sub_of(target, username)
    removed = Removed(username=username, user_sub=user_sub)
    if user_sub is not None:
        _remove_conversations(client, tables, user_sub, removed)
        _remove_connections(client, tables, user_sub, removed)
    removed.cognito_user = _delete_cognito_user(target, username)
    return removed


def _remove_conversations(client: Any, tables: Mapping[str, str], user_sub: str, removed: Removed) -> None:
    conversations, messages = tables["ConversationsTable"], tables["MessagesTable"]
    conversation_ids = sorted({
        item["conversationId"]["S"]
        for item in _query(
            client, TableName=conversations, IndexName="UserConversationsIndex",
            KeyConditionExpression="userId = :user", ExpressionAttributeValues={":user": {"S": user_sub}},
            ProjectionExpression="conversationId",
        )
    })
    for conversation_id in conversation_ids:
        by_conversation = {":c": {"S": conversation_id}}
        message_keys = [
            {"messageId": item["messageId"]}
            for item in _query(
                client, TableName=messages, IndexName="ConversationIndex",
                KeyConditionExpression="conversationId = :c", ExpressionAttributeValues=by_conversation,
                ProjectionExpression="messageId",
            )
        ]
        # The conversation item (userId "#") and every participant's membership share the
        # partition key, so one Query on the table itself finds them all.
        conversation_keys = [
            {"conversationId": item["conversationId"], "userId": item["userId"]}
            for item in _query(
                client, TableName=conversations,
                KeyConditionExpression="conversationId = :c", ExpressionAttributeValues=by_conversation,
                ProjectionExpression="conversationId, userId",
            )
        ]
        removed.messages += _batch_delete(client, messages, message_keys)
        _batch_delete(client, conversations, conversation_keys)
        removed.conversations += 1


def _remove_connections(client: Any, tables: Mapping[str, str], user_sub: str, removed: Removed) -> None:
    connections, user_connections = tables["ConnectionsTable"], tables["UserConnectionsTable"]
    connection_ids = {
        item["connectionId"]["S"]
        for item in _query(
            client, TableName=connections, IndexName="UserIdIndex",
            KeyConditionExpression="userId = :user", ExpressionAttributeValues={":user": {"S": user_sub}},
        )
    }
    # The set can name connections whose row is already gone (or not yet in the index).
    user_item = client.get_item(TableName=user_connections, Key={"userId": {"S": user_sub}}).get("Item", {})
    connection_ids.update(user_item.get("connectionIds", {}).get("SS", []))
    removed.connections = len(connection_ids)
    _batch_delete(client, connections, [{"connectionId": {"S": c}} for c in sorted(connection_ids)])
    if user_item:
        _batch_delete(client, user_connections, [{"userId": {"S": user_sub}}])


def _delete_cognito_user(target: Target, username: str) -> bool:
    cognito = target.cognito()
    try:
        cognito.admin_delete_user(UserPoolId=target.user_pool_id, Username=username)
    except cognito.exceptions.UserNotFoundException:
        return False
    return True


def _query(client: Any, **query: Any) -> Iterator[dict[str, Any]]:
    """Every item a Query matches, across pages."""
    while True:
        page = client.query(**query)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _batch_delete(client: Any, table: str, keys: Iterable[dict[str, Any]]) -> int:
    """Delete ``keys`` from ``table``, 25 per BatchWriteItem, retrying what DynamoDB leaves
    unprocessed a bounded number of times. Returns how many keys were asked for."""
    # BatchWriteItem refuses a request that names the same key twice.
    unique = list({json.dumps(key, sort_keys=True): key for key in keys}.values())
    for start in range(0, len(unique), _BATCH_WRITE_ITEMS):
        request = {table: [{"DeleteRequest": {"Key": key}} for key in unique[start : start + _BATCH_WRITE_ITEMS]]}
        for attempt in range(_BATCH_ATTEMPTS):
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if not request:
                break
            # Unprocessed items mean throttling: back off (full jitter) before asking again.
            time.sleep(random.uniform(0, 0.05 * 2**attempt))
        else:
            raise RuntimeError(f"BatchWriteItem kept leaving items unprocessed in {table}")
    return len(unique)
