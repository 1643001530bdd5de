"""DynamoDB implementations of the connection, message and conversation stores.

Table and index names follow ``template.yaml``:

- Connections (key ``connectionId``): one row per open connection, and short-lived frame
  counters keyed ``frames#<connectionId>#<window>`` (the per-connection rate limit), both
  swept by the ``ttl`` attribute.
- UserConnections (key ``userId``): one item per user with the string set
  ``connectionIds``, so the connections of both participants of a message are one
  BatchGetItem away.
- Messages (key ``messageId``): GSI ``ConversationIndex`` (``conversationId`` +
  ``timestamp``) pages a conversation's history; sparse GSIs ``PendingIndex`` (``pendingFor`` +
  ``timestamp``, set until a device of the recipient confirms the message) and
  ``UnreadIndex`` (``unreadFor`` = recipient and conversation, + ``timestamp``, set while
  unread).
- Conversations (key ``conversationId`` + ``userId``): the conversation's own item (userId
  ``#``) fixes the participants; one membership item per participant carries the last
  message id, ``updatedAt`` and the unread count; GSI ``UserConversationsIndex``
  (``userId`` + ``updatedAt``) lists a user's conversations, latest first.

Nothing here scans a table.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from typing import Any

from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from chat.domain.errors import MessageRefused
from chat.domain.models import (
    Connection,
    Conversation,
    ConversationPosition,
    FrameTicket,
    HistoryPage,
    HistoryPosition,
    Membership,
    MembershipPage,
    Message,
    MessageStatus,
    PendingPage,
    PendingPosition,
    participants_of,
)

#: A boto3 ``dynamodb.Table`` resource (typed loosely: boto3 ships no annotations).
Table = Any

__all__ = ["CONVERSATION_ITEM", "DynamoConnectionStore", "DynamoConversationStore", "DynamoMessageStore"]

#: The ``userId`` of a conversation's own item. Never a Cognito sub (those are UUIDs), so
#: it cannot collide with a membership.
CONVERSATION_ITEM = "#"

_CONDITION_FAILED = "ConditionalCheckFailedException"
_CANCELLED = "TransactionCanceledException"
#: BatchGetItem takes at most 100 keys per request.
_BATCH_GET_KEYS = 100
#: TransactWriteItems takes at most 100 actions; markRead keeps one for the unread counter.
_READS_PER_TRANSACTION = 99
#: Transactions that collide with another on the same item are cancelled with
#: TransactionConflict; they are retried this many times before the error surfaces.
_TRANSACTION_ATTEMPTS = 5
#: Cancellation reasons worth another attempt (the others will not change by retrying).
_RETRYABLE = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})

_deserialize = TypeDeserializer().deserialize


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _python(item: dict[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB's typed JSON as Python values. Only error responses need this:
    the resource layer converts requests and successful responses itself."""
    return {name: _deserialize(value) for name, value in item.items()}


def _reason_codes(error: ClientError) -> list[str]:
    return [str(reason.get("Code", "None")) for reason in error.response.get("CancellationReasons", [])]


def _pause_before_retry(attempt: int) -> None:
    # Full jitter: colliding writers must not retry in lockstep.
    time.sleep(random.uniform(0, 0.02 * 2**attempt))


def _batch_get(table: Table, keys: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every item among ``keys`` (one request per 100 keys, plus retries of what DynamoDB
    left unprocessed under throttling)."""
    # The table's own client: it takes and returns Python values, like the resource does.
    client = table.meta.client
    for start in range(0, len(keys), _BATCH_GET_KEYS):
        request = {table.name: {"Keys": keys[start : start + _BATCH_GET_KEYS]}}
        for attempt in range(_TRANSACTION_ATTEMPTS + 1):
            page = client.batch_get_item(RequestItems=request)
            yield from page.get("Responses", {}).get(table.name, [])
            request = page.get("UnprocessedKeys") or {}
            if not request:
                break
            _pause_before_retry(attempt)
        else:
            raise RuntimeError(f"BatchGetItem left keys unprocessed in {table.name}")


class DynamoConnectionStore:
    """Connections and UserConnections tables.

    Rows carry a ``ttl`` so a missed $disconnect cannot leave them forever; a stale id in
    a user's set is dropped the first time a post to it answers 410.
    """

    def __init__(self, connections: Table, user_connections: Table) -> None:
        self._connections = connections
        self._users = user_connections

    def put(self, connection: Connection) -> None:
        row = {
            "connectionId": connection.connection_id,
            "userId": connection.user_id,
            "userName": connection.user_name,
            "connectedAt": connection.connected_at,
            "ttl": connection.ttl,
        }
        # Both or neither: a row whose id is missing from its user's set would never be
        # pushed to, and an id without a row could not be cleaned up by its $disconnect.
        self._connections.meta.client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self._connections.name, "Item": row}},
                {
                    "Update": {
                        "TableName": self._users.name,
                        "Key": {"userId": connection.user_id},
                        "UpdateExpression": "ADD connectionIds :id",
                        "ExpressionAttributeValues": {":id": {connection.connection_id}},
                    }
                },
            ]
        )

    def delete(self, connection_id: str, user_id: str | None = None) -> None:
        old = self._connections.delete_item(Key={"connectionId": connection_id}, ReturnValues="ALL_OLD")
        owner = user_id or old.get("Attributes", {}).get("userId")
        if not owner:
            return
        try:
            self._users.update_item(
                Key={"userId": owner},
                UpdateExpression="DELETE connectionIds :id",
                # Never create an item for a user we have no record of.
                ConditionExpression="attribute_exists(userId)",
                ExpressionAttributeValues={":id": {connection_id}},
            )
        except ClientError as exc:
            if _error_code(exc) != _CONDITION_FAILED:
                raise

    def connection_ids_by_user(self, user_ids: Iterable[str]) -> dict[str, list[str]]:
        wanted = sorted(set(user_ids))
        found = {
            str(item["userId"]): sorted(item.get("connectionIds", ()))
            for item in _batch_get(self._users, [{"userId": user_id} for user_id in wanted])
        }
        return {user_id: found.get(user_id, []) for user_id in wanted}

    def count_frame(self, ticket: FrameTicket) -> bool:
        try:
            self._connections.update_item(**_frame_counter_update(ticket))
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                return False
            raise
        return True


def _update(
    table_name: str,
    key: dict[str, Any],
    expression: str,
    values: dict[str, Any],
    *,
    condition: str | None = None,
    names: dict[str, str] | None = None,
    return_old_on_failure: bool = False,
) -> dict[str, Any]:
    """One ``Update`` action of a TransactWriteItems."""
    action: dict[str, Any] = {
        "TableName": table_name,
        "Key": key,
        "UpdateExpression": expression,
        "ExpressionAttributeValues": values,
    }
    if condition is not None:
        action["ConditionExpression"] = condition
    if names is not None:
        action["ExpressionAttributeNames"] = names
    if return_old_on_failure:
        action["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {"Update": action}


def _frame_counter_key(ticket: FrameTicket) -> str:
    return f"frames#{ticket.connection_id}#{ticket.window}"


def _frame_counter_update(ticket: FrameTicket) -> dict[str, Any]:
    """The conditional increment of a window's frame counter (UpdateItem arguments).

    One counter item per (connection, window) rather than a counter on the connection
    row: a new window then needs no reset, so counting is a single conditional write that
    is correct under concurrent frames, and needs no read first.
    """
    return {
        "Key": {"connectionId": _frame_counter_key(ticket)},
        "UpdateExpression": "ADD frames :one SET #ttl = :ttl",
        "ConditionExpression": "attribute_not_exists(frames) OR frames < :limit",
        "ExpressionAttributeNames": {"#ttl": "ttl"},
        "ExpressionAttributeValues": {":one": 1, ":ttl": ticket.expires_at, ":limit": ticket.limit},
    }


class DynamoMessageStore:
    """Messages table, and the conversation bookkeeping written with each message.

    ``pendingFor`` is set only while a message is ``sent`` (not confirmed by a device of its
    recipient) and ``unreadFor`` only while it
    is unread, which keeps both GSIs down to what still has to reach or be read by someone.
    """

    def __init__(self, messages: Table, conversations: Table, connections: Table) -> None:
        self._table = messages
        self._conversations = conversations
        self._connections = connections
        self._client = messages.meta.client

    # ------------------------------------------------------------------ create

    def create(self, message: Message, ticket: FrameTicket | None = None, *, start_conversation: bool = True) -> None:
        actions, roles = self._creation(message, ticket, start_conversation)
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=actions)
                return
            except ClientError as exc:
                if _error_code(exc) != _CANCELLED:
                    raise
                codes = _reason_codes(exc)
                if "ConditionalCheckFailed" in codes:
                    raise self._refusal(exc, codes, roles, message, start_conversation) from None
                if not _RETRYABLE.intersection(codes) or attempt == _TRANSACTION_ATTEMPTS - 1:
                    raise
                _pause_before_retry(attempt)

    def _creation(
        self, message: Message, ticket: FrameTicket | None, start_conversation: bool
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The transaction storing ``message``, and what each of its actions checks."""
        item: dict[str, Any] = message.to_wire()
        if message.status is MessageStatus.SENT:
            item["pendingFor"] = message.recipient_id
        to_self = message.sender_id == message.recipient_id
        if not to_self:
            item["unreadFor"] = _unread_key(message.recipient_id, message.conversation_id)
        conversation = message.conversation_id
        last = {":id": message.message_id, ":ts": message.timestamp}
        touch = "SET otherUserId = :other, lastMessageId = :id, updatedAt = :ts"

        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table.name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(messageId)",
                    # Hands back the stored item with the refusal: no second read, no race.
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            _update(
                self._conversations.name,
                {"conversationId": conversation, "userId": CONVERSATION_ITEM},
                "SET participants = :p, createdAt = if_not_exists(createdAt, :ts)",
                {":p": list(participants_of(message.sender_id, message.recipient_id)), ":ts": message.timestamp},
                # The first message fixes the participants; later ones must match them.
                condition=(
                    "attribute_not_exists(participants) OR participants = :p" if start_conversation
                    else "participants = :p"
                ),
                # Tells a conversation that is not there from one of other participants.
                return_old_on_failure=True,
            ),
        ]
        roles = ["message", "conversation"]
        if to_self:
            actions.append(
                _update(
                    self._conversations.name,
                    {"conversationId": conversation, "userId": message.sender_id},
                    touch + ", otherUserName = :name ADD unreadCount :zero",
                    {**last, ":other": message.sender_id, ":name": message.sender_name, ":zero": 0},
                )
            )
            roles.append("member")
        else:
            actions += [
                # The sender's side: the recipient's name is not known here (their token is
                # not at hand); it is filled in once they write back.
                _update(
                    self._conversations.name,
                    {"conversationId": conversation, "userId": message.sender_id},
                    touch + " ADD unreadCount :zero",
                    {**last, ":other": message.recipient_id, ":zero": 0},
                ),
                _update(
                    self._conversations.name,
                    {"conversationId": conversation, "userId": message.recipient_id},
                    touch + ", otherUserName = :name ADD unreadCount :one",
                    {**last, ":other": message.sender_id, ":name": message.sender_name, ":one": 1},
                ),
            ]
            roles += ["member", "member"]
        if message.reply_to_message_id is not None:
            actions.append(
                {
                    "ConditionCheck": {
                        "TableName": self._table.name,
                        "Key": {"messageId": message.reply_to_message_id},
                        "ConditionExpression": "attribute_exists(messageId) AND conversationId = :conversation",
                        "ExpressionAttributeValues": {":conversation": conversation},
                    }
                }
            )
            roles.append("reply")
        if ticket is not None:
            actions.append({"Update": {"TableName": self._connections.name, **_frame_counter_update(ticket)}})
            roles.append("frames")
        return actions, roles

    def _refusal(
        self, error: ClientError, codes: list[str], roles: list[str], message: Message, start_conversation: bool
    ) -> MessageRefused:
        failed = {role for role, code in zip(roles, codes, strict=False) if code == "ConditionalCheckFailed"}
        reasons = error.response.get("CancellationReasons", [{}, {}])
        existing = None
        if "message" in failed:
            existing = self._existing(reasons[0], message.message_id)
        # With start_conversation, the conversation's condition fails only for other
        # participants. Without it, DynamoDB hands back the item when there is one; an
        # emulator that omits it makes the caller look the recipient up and try again with
        # start_conversation, which then tells the two cases apart: no extra read here.
        no_conversation = "conversation" in failed and not start_conversation and not reasons[1].get("Item")
        return MessageRefused(
            existing=existing,
            not_a_participant="conversation" in failed and not no_conversation,
            reply_not_found="reply" in failed,
            over_limit="frames" in failed,
            no_conversation=no_conversation,
        )


    def _existing(self, reason: dict[str, Any], message_id: str) -> Message:
        raw = reason.get("Item")
        if raw:
            return Message.model_validate(_python(raw))
        # Some emulators omit the item; messages are never removed, so a read finds it.
        stored = self._table.get_item(Key={"messageId": message_id}, ConsistentRead=True)["Item"]
        return Message.model_validate(stored)

    # ------------------------------------------------------------------ reads

    def get_many(self, message_ids: Iterable[str]) -> dict[str, Message]:
        keys = [{"messageId": message_id} for message_id in dict.fromkeys(message_ids)]
        messages = (Message.model_validate(item) for item in _batch_get(self._table, keys))
        return {message.message_id: message for message in messages}

    def pending_for(self, user_id: str, limit: int, after: PendingPosition | None = None) -> PendingPage:
        # DynamoDB resumes by position, so the start key works after the item left the index.
        start = None if after is None else {
            "messageId": after.message_id,
            "pendingFor": user_id,
            "timestamp": after.timestamp,
        }
        items, has_more = _query_page(
            self._table, limit, start,
            IndexName="PendingIndex", KeyConditionExpression=Key("pendingFor").eq(user_id), ScanIndexForward=True,
        )
        return PendingPage(messages=[Message.model_validate(item) for item in items], has_more=has_more)

    def history(self, conversation_id: str, limit: int, before: HistoryPosition | None = None) -> HistoryPage:
        start = None if before is None else {
            "messageId": before.message_id,
            "conversationId": conversation_id,
            "timestamp": before.timestamp,
        }
        items, has_more = _query_page(
            self._table, limit, start,
            IndexName="ConversationIndex", KeyConditionExpression=Key("conversationId").eq(conversation_id),
            ScanIndexForward=False,
        )
        return HistoryPage(messages=[Message.model_validate(item) for item in items], has_more=has_more)

    def unread_up_to(self, user_id: str, conversation_id: str, timestamp: str) -> list[Message]:
        query: dict[str, Any] = {
            "IndexName": "UnreadIndex",
            "KeyConditionExpression": Key("unreadFor").eq(_unread_key(user_id, conversation_id))
            & Key("timestamp").lte(timestamp),
            "ScanIndexForward": True,
        }
        messages: list[Message] = []
        while True:
            page = self._table.query(**query)
            messages.extend(Message.model_validate(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return messages
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ------------------------------------------------------------------ updates

    def confirm_received(self, recipient_id: str, message_ids: Iterable[str]) -> list[Message]:
        moved: list[Message] = []
        # One conditional update per message rather than a transaction: each confirmation
        # stands on its own, and one that lost a race (read meanwhile, confirmed by another
        # device) must not hold the others back.
        for message_id in dict.fromkeys(message_ids):
            try:
                result = self._table.update_item(
                    Key={"messageId": message_id},
                    # claimedUntil: sync reservations written by earlier versions go too.
                    UpdateExpression="SET #status = :delivered REMOVE pendingFor, claimedUntil",
                    # The recipient check also keeps an unknown id from creating an item.
                    ConditionExpression="recipientId = :recipient AND #status = :sent",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":delivered": MessageStatus.DELIVERED.value,
                        ":sent": MessageStatus.SENT.value,
                        ":recipient": recipient_id,
                    },
                    ReturnValues="ALL_NEW",
                )
            except ClientError as exc:
                if _error_code(exc) == _CONDITION_FAILED:
                    continue
                raise
            moved.append(Message.model_validate(result["Attributes"]))
        return moved

    def mark_read(self, reader_id: str, messages: list[Message], at: str) -> list[Message]:
        moved: list[Message] = []
        for start in range(0, len(messages), _READS_PER_TRANSACTION):
            moved += self._read_batch(reader_id, messages[start : start + _READS_PER_TRANSACTION], at)
        return [m.model_copy(update={"status": MessageStatus.READ}) for m in moved]

    def _read_batch(self, reader_id: str, batch: list[Message], at: str) -> list[Message]:
        """Move one transaction's worth of messages to ``read`` together with the unread
        counter, so the counter never drifts from the messages."""
        todo = list(batch)
        for attempt in range(_TRANSACTION_ATTEMPTS):
            if not todo:
                return []
            try:
                self._client.transact_write_items(TransactItems=self._reading(reader_id, todo, at))
                return todo
            except ClientError as exc:
                if _error_code(exc) != _CANCELLED:
                    raise
                codes = _reason_codes(exc)
                if "ConditionalCheckFailed" not in codes and not _RETRYABLE.intersection(codes):
                    raise
                # Someone else read these meanwhile: leave them out and try the rest again.
                todo = [m for m, code in zip(todo, codes, strict=False) if code != "ConditionalCheckFailed"]
                if _RETRYABLE.intersection(codes):
                    _pause_before_retry(attempt)
        raise RuntimeError("markRead kept colliding with other writes")

    def _reading(self, reader_id: str, messages: list[Message], at: str) -> list[dict[str, Any]]:
        actions = [
            _update(
                self._table.name,
                {"messageId": m.message_id},
                "SET #status = :read, readAt = :at REMOVE pendingFor, unreadFor, claimedUntil",
                {":read": MessageStatus.READ.value, ":at": at, ":reader": reader_id},
                condition="recipientId = :reader AND #status <> :read",
                names={"#status": "status"},
            )
            for m in messages
        ]
        counted = sum(1 for m in messages if m.sender_id != reader_id)
        if counted:
            actions.append(
                _update(
                    self._conversations.name,
                    {"conversationId": messages[0].conversation_id, "userId": reader_id},
                    "ADD unreadCount :minus",
                    {":minus": -counted},
                )
            )
        return actions

    def erase(self, message_id: str, sender_id: str, at: str) -> Message:
        try:
            result = self._table.update_item(
                Key={"messageId": message_id},
                UpdateExpression="SET isDeleted = :deleted, content = :empty, deletedAt = :at",
                ConditionExpression="attribute_exists(messageId) AND senderId = :sender",
                ExpressionAttributeValues={":deleted": True, ":empty": "", ":at": at, ":sender": sender_id},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                raise KeyError(message_id) from None
            raise
        return Message.model_validate(result["Attributes"])


def _unread_key(user_id: str, conversation_id: str) -> str:
    """``unreadFor`` of a message: its recipient and conversation. Cognito subs never
    contain ``#``, so the recipient part is unambiguous whatever the conversation id."""
    return f"{user_id}#{conversation_id}"


class DynamoConversationStore:
    """Conversations table: conversation items and per-user memberships."""

    def __init__(self, conversations: Table) -> None:
        self._table = conversations

    def get(self, conversation_id: str) -> Conversation | None:
        item = self._table.get_item(Key={"conversationId": conversation_id, "userId": CONVERSATION_ITEM}).get("Item")
        if not item:
            return None
        low, high = (str(p) for p in item["participants"])
        return Conversation(conversation_id=conversation_id, participants=(low, high))

    def memberships_of(
        self, user_id: str, limit: int, after: ConversationPosition | None = None
    ) -> MembershipPage:
        start = None if after is None else {
            "conversationId": after.conversation_id,
            "userId": user_id,
            "updatedAt": after.updated_at,
        }
        items, has_more = _query_page(
            self._table, limit, start,
            IndexName="UserConversationsIndex", KeyConditionExpression=Key("userId").eq(user_id),
            ScanIndexForward=False,
        )
        memberships = [
            Membership(
                conversation_id=str(item["conversationId"]),
                user_id=str(item["userId"]),
                other_user_id=str(item["otherUserId"]),
                other_user_name=str(item["otherUserName"]) if item.get("otherUserName") else None,
                last_message_id=str(item["lastMessageId"]),
                updated_at=str(item["updatedAt"]),
                unread_count=int(item.get("unreadCount", 0)),
            )
            for item in items
        ]
        return MembershipPage(memberships=memberships, has_more=has_more)


def _query_page(
    table: Any, limit: int, start_key: dict[str, Any] | None, **query: Any
) -> tuple[list[dict[str, Any]], bool]:
    """One page of at most ``limit`` items, and whether another page exists.

    One extra item is asked for, so ``has_more`` is never a false promise followed by an
    empty page; a page may also stop early at DynamoDB's 1 MB cap (``LastEvaluatedKey``).
    """
    if start_key is not None:
        query["ExclusiveStartKey"] = start_key
    page = table.query(Limit=limit + 1, **query)
    items = page.get("Items", [])
    return items[:limit], len(items) > limit or "LastEvaluatedKey" in page
