"""In-process stores and notifier that behave like DynamoDB and ``@connections``.

For tests and local tools. They follow the same contract as the AWS adapters (the contract
tests run one suite against both): an unknown connection id is gone (410), a taken
message id is refused with the stored message, pending messages come oldest first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from chat.domain.errors import ConnectionGone, MessageIdTaken
from chat.domain.models import Connection, Message, MessageStatus, PendingPage, PendingPosition
from chat.domain.protocol import encode_frame

__all__ = ["InMemoryConnectionStore", "InMemoryMessageStore", "RecordingNotifier"]


class InMemoryConnectionStore:
    def __init__(self) -> None:
        self.rows: dict[str, Connection] = {}

    def put(self, connection: Connection) -> None:
        self.rows[connection.connection_id] = connection

    def delete(self, connection_id: str) -> None:
        self.rows.pop(connection_id, None)

    def connection_ids_of(self, user_id: str) -> list[str]:
        return [row.connection_id for row in self.rows.values() if row.user_id == user_id]


class InMemoryMessageStore:
    def __init__(self) -> None:
        self.items: dict[str, Message] = {}

    def create(self, message: Message) -> None:
        if message.message_id in self.items:
            raise MessageIdTaken(self.items[message.message_id])
        self.items[message.message_id] = message

    def mark_delivered(self, message_id: str) -> bool:
        message = self.items.get(message_id)
        if message is None or message.status is not MessageStatus.SENT:
            return False
        self.items[message_id] = message.model_copy(update={"status": MessageStatus.DELIVERED})
        return True

    def pending_for(self, user_id: str, limit: int, after: PendingPosition | None = None) -> PendingPage:
        # Same order as PendingIndex: timestamp, then (for equal timestamps) messageId.
        pending = sorted(
            (m for m in self.items.values() if m.recipient_id == user_id and m.status is MessageStatus.SENT),
            key=lambda m: (m.timestamp, m.message_id),
        )
        if after is not None:
            # Resume by position, as DynamoDB does: the start item need not still be pending.
            pending = [m for m in pending if (m.timestamp, m.message_id) > (after.timestamp, after.message_id)]
        return PendingPage(messages=pending[:limit], has_more=len(pending) > limit)


class RecordingNotifier:
    """Records every frame posted, by connection id.

    Like ``@connections``, it accepts posts only to connections it has been told are open
    and answers 410 (:class:`ConnectionGone`) for any other id.
    """

    def __init__(self, open_connections: Iterable[str] = ()) -> None:
        self.open_ids: set[str] = set(open_connections)
        #: Every accepted post, in order: (connection id, frame as the client decodes it).
        self.posts: list[tuple[str, dict[str, Any]]] = []
        #: Every post refused as gone, in order.
        self.gone: list[str] = []

    def open(self, connection_id: str) -> None:
        self.open_ids.add(connection_id)

    def close(self, connection_id: str) -> None:
        self.open_ids.discard(connection_id)

    def post(self, connection_id: str, frame: dict[str, Any]) -> None:
        if connection_id not in self.open_ids:
            self.gone.append(connection_id)
            raise ConnectionGone(connection_id)
        # Round-trip through the wire encoding so tests see exactly what a client would.
        self.posts.append((connection_id, json.loads(encode_frame(frame))))

    def frames_for(self, connection_id: str, frame_type: str | None = None) -> list[dict[str, Any]]:
        return [
            frame
            for cid, frame in self.posts
            if cid == connection_id and (frame_type is None or frame.get("type") == frame_type)
        ]
