"""DynamoDB implementations of the connection and message stores.

Table and index names follow ``template.yaml``: Connections (key ``connectionId``, GSI
``UserIdIndex`` on ``userId``, KEYS_ONLY) and Messages (key ``messageId``, sparse GSI
``PendingIndex`` on ``pendingFor`` + ``timestamp``).
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from chat.domain.errors import MessageIdTaken
from chat.domain.models import Connection, Message, MessageStatus, PendingPage, PendingPosition

#: A boto3 ``dynamodb.Table`` resource (typed loosely: boto3 ships no annotations).
Table = Any

__all__ = ["DynamoConnectionStore", "DynamoMessageStore"]

_CONDITION_FAILED = "ConditionalCheckFailedException"


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class DynamoConnectionStore:
    """Connections table. Rows carry a ``ttl`` so a missed $disconnect cannot leave them forever."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def put(self, connection: Connection) -> None:
        self._table.put_item(
            Item={
                "connectionId": connection.connection_id,
                "userId": connection.user_id,
                "userName": connection.user_name,
                "connectedAt": connection.connected_at,
                "ttl": connection.ttl,
            }
        )

    def delete(self, connection_id: str) -> None:
        self._table.delete_item(Key={"connectionId": connection_id})

    def connection_ids_of(self, user_id: str) -> list[str]:
        ids: list[str] = []
        query: dict[str, Any] = {"IndexName": "UserIdIndex", "KeyConditionExpression": Key("userId").eq(user_id)}
        while True:
            page = self._table.query(**query)
            ids.extend(str(item["connectionId"]) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return ids
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoMessageStore:
    """Messages table. ``pendingFor`` is set only while a message is ``sent``, which keeps
    PendingIndex down to what still has to reach someone."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def create(self, message: Message) -> None:
        item: dict[str, Any] = message.to_wire()
        if message.status is MessageStatus.SENT:
            item["pendingFor"] = message.recipient_id
        try:
            self._table.put_item(
                Item=item,
                ConditionExpression="attribute_not_exists(messageId)",
                # Hands back the stored item with the refusal: no second read, no race.
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _error_code(exc) != _CONDITION_FAILED:
                raise
            raise MessageIdTaken(self._existing(exc, message.message_id)) from None

    def _existing(self, refusal: ClientError, message_id: str) -> Message:
        raw = refusal.response.get("Item")
        if raw:
            # Error responses are not unmarshalled by the resource layer.
            deserialize = TypeDeserializer().deserialize
            return Message.model_validate({name: deserialize(value) for name, value in raw.items()})
        # Some emulators omit the item; messages are never deleted, so a read finds it.
        stored = self._table.get_item(Key={"messageId": message_id}, ConsistentRead=True)["Item"]
        return Message.model_validate(stored)

    def mark_delivered(self, message_id: str) -> bool:
        try:
            self._table.update_item(
                Key={"messageId": message_id},
                UpdateExpression="SET #status = :delivered REMOVE pendingFor",
                ConditionExpression="#status = :sent",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":delivered": MessageStatus.DELIVERED.value,
                    ":sent": MessageStatus.SENT.value,
                },
            )
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                return False
            raise
        return True

    def pending_for(self, user_id: str, limit: int, after: PendingPosition | None = None) -> PendingPage:
        query: dict[str, Any] = {
            "IndexName": "PendingIndex",
            "KeyConditionExpression": Key("pendingFor").eq(user_id),
            "ScanIndexForward": True,
            # One extra item tells whether another page exists, so hasMore is never a
            # false promise followed by an empty page.
            "Limit": limit + 1,
        }
        if after is not None:
            # DynamoDB resumes by position, so this works after the item left the index.
            query["ExclusiveStartKey"] = {
                "messageId": after.message_id,
                "pendingFor": user_id,
                "timestamp": after.timestamp,
            }
        page = self._table.query(**query)
        items = page.get("Items", [])
        messages = [Message.model_validate(item) for item in items[:limit]]
        # A page may also stop early at DynamoDB's 1 MB cap, reported by LastEvaluatedKey.
        has_more = len(items) > limit or "LastEvaluatedKey" in page
        return PendingPage(messages=messages, has_more=has_more)
