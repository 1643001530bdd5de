"""In-process stores, directory and notifier that behave like DynamoDB, Cognito and ``@connections``.

For tests. They follow the same contract as the AWS adapters (the contract
tests run one suite against both): an unknown connection id is gone (410), a new message
is refused as a whole with every reason that applies, pending and unread messages come
oldest first, conversations latest first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from chat.domain.errors import ConnectionGone, MessageRefused
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
    UserProfile,
    participants_of,
)
from chat.domain.protocol import encode_frame

__all__ = [
    "InMemoryConnectionStore",
    "InMemoryConversationStore",
    "InMemoryMessageStore",
    "InMemoryUserDirectory",
    "RecordingNotifier",
]


class InMemoryConnectionStore:
    def __init__(self) -> None:
        self.rows: dict[str, Connection] = {}
        #: Each user's connection ids, kept like the per-user item DynamoDB keeps.
        self.by_user: dict[str, dict[str, None]] = {}
        #: Frames counted per (connection id, window).
        self.frames: dict[tuple[str, int], int] = {}

    def put(self, connection: Connection) -> None:
        self.rows[connection.connection_id] = connection
        self.by_user.setdefault(connection.user_id, {})[connection.connection_id] = None

    def delete(self, connection_id: str, user_id: str | None = None) -> None:
        row = self.rows.pop(connection_id, None)
        owner = user_id or (row.user_id if row else None)
        if owner is not None:
            self.by_user.get(owner, {}).pop(connection_id, None)

    def connection_ids_by_user(self, user_ids: Iterable[str]) -> dict[str, list[str]]:
        return {user_id: list(self.by_user.get(user_id, {})) for user_id in set(user_ids)}

    def frames_in(self, ticket: FrameTicket) -> int:
        return self.frames.get((ticket.connection_id, ticket.window), 0)

    def count_frame(self, ticket: FrameTicket) -> bool:
        if self.frames_in(ticket) >= ticket.limit:
            return False
        self.frames[(ticket.connection_id, ticket.window)] = self.frames_in(ticket) + 1
        return True


class InMemoryMessageStore:
    """Messages, conversations and memberships (the DynamoDB store spans the same tables).

    Args:
        connections: where frame tickets are counted, as the DynamoDB store counts them
            in the Connections table within the same write.
    """

    def __init__(self, connections: InMemoryConnectionStore | None = None) -> None:
        self.items: dict[str, Message] = {}
        self.conversations: dict[str, Conversation] = {}
        self.memberships: dict[tuple[str, str], Membership] = {}
        self._connections = connections or InMemoryConnectionStore()

    def create(self, message: Message, ticket: FrameTicket | None = None, *, start_conversation: bool = True) -> None:
        pair = participants_of(message.sender_id, message.recipient_id)
        conversation = self.conversations.get(message.conversation_id)
        reply_to = message.reply_to_message_id
        target = self.items.get(reply_to) if reply_to else None
        reply_in_place = target is not None and target.conversation_id == message.conversation_id
        refusal = MessageRefused(
            existing=self.items.get(message.message_id),
            not_a_participant=conversation is not None and conversation.participants != pair,
            reply_not_found=reply_to is not None and not reply_in_place,
            over_limit=ticket is not None and self._connections.frames_in(ticket) >= ticket.limit,
            no_conversation=conversation is None and not start_conversation,
        )
        if (refusal.existing or refusal.not_a_participant or refusal.reply_not_found or refusal.over_limit
                or refusal.no_conversation):
            raise refusal

        self.items[message.message_id] = message
        if ticket is not None:
            self._connections.count_frame(ticket)
        self.conversations.setdefault(message.conversation_id, Conversation(message.conversation_id, pair))
        to_self = message.recipient_id == message.sender_id
        self._touch(message, message.sender_id, message.recipient_id, message.sender_name if to_self else None, 0)
        if not to_self:
            self._touch(message, message.recipient_id, message.sender_id, message.sender_name, 1)

    def _touch(self, message: Message, user_id: str, other_id: str, other_name: str | None, unread: int) -> None:
        key = (message.conversation_id, user_id)
        before = self.memberships.get(key)
        self.memberships[key] = Membership(
            conversation_id=message.conversation_id,
            user_id=user_id,
            other_user_id=other_id,
            other_user_name=other_name or (before.other_user_name if before else None),
            last_message_id=message.message_id,
            updated_at=message.timestamp,
            unread_count=(before.unread_count if before else 0) + unread,
        )

    def get_many(self, message_ids: Iterable[str]) -> dict[str, Message]:
        return {i: self.items[i] for i in message_ids if i in self.items}

    def confirm_received(self, recipient_id: str, message_ids: Iterable[str]) -> list[Message]:
        moved = []
        for message_id in dict.fromkeys(message_ids):
            message = self.items.get(message_id)
            if message is None or message.recipient_id != recipient_id or message.status is not MessageStatus.SENT:
                continue
            self.items[message_id] = message.model_copy(update={"status": MessageStatus.DELIVERED})
            moved.append(self.items[message_id])
        return moved

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

    def history(self, conversation_id: str, limit: int, before: HistoryPosition | None = None) -> HistoryPage:
        # Same order as ConversationIndex read backwards: newest timestamp first.
        stored = sorted(
            (m for m in self.items.values() if m.conversation_id == conversation_id),
            key=lambda m: (m.timestamp, m.message_id),
            reverse=True,
        )
        if before is not None:
            stored = [m for m in stored if (m.timestamp, m.message_id) < (before.timestamp, before.message_id)]
        return HistoryPage(messages=stored[:limit], has_more=len(stored) > limit)

    def unread_up_to(self, user_id: str, conversation_id: str, timestamp: str) -> list[Message]:
        return sorted(
            (
                m
                for m in self.items.values()
                if m.conversation_id == conversation_id
                and m.recipient_id == user_id
                and m.sender_id != user_id
                and m.status is not MessageStatus.READ
                and m.timestamp <= timestamp
            ),
            key=lambda m: (m.timestamp, m.message_id),
        )

    def mark_read(self, reader_id: str, messages: list[Message], at: str) -> list[Message]:
        moved = []
        for message in messages:
            current = self.items.get(message.message_id)
            if current is None or current.recipient_id != reader_id or current.status is MessageStatus.READ:
                continue
            self.items[message.message_id] = current.model_copy(update={"status": MessageStatus.READ})
            moved.append(self.items[message.message_id])
        counted = sum(1 for m in moved if m.sender_id != reader_id)
        if counted:
            key = (moved[0].conversation_id, reader_id)
            membership = self.memberships[key]
            self.memberships[key] = replace(membership, unread_count=membership.unread_count - counted)
        return moved

    def erase(self, message_id: str, sender_id: str, at: str) -> Message:
        current = self.items.get(message_id)
        if current is None or current.sender_id != sender_id:
            raise KeyError(message_id)
        self.items[message_id] = current.model_copy(update={"is_deleted": True, "content": ""})
        return self.items[message_id]


class InMemoryConversationStore:
    """Reads the conversations an :class:`InMemoryMessageStore` keeps."""

    def __init__(self, messages: InMemoryMessageStore) -> None:
        self._messages = messages

    def get(self, conversation_id: str) -> Conversation | None:
        return self._messages.conversations.get(conversation_id)

    def memberships_of(
        self, user_id: str, limit: int, after: ConversationPosition | None = None
    ) -> MembershipPage:
        # Same order as the index: updatedAt, newest first.
        mine = sorted(
            (m for m in self._messages.memberships.values() if m.user_id == user_id),
            key=lambda m: (m.updated_at, m.conversation_id),
            reverse=True,
        )
        if after is not None:
            mine = [m for m in mine if (m.updated_at, m.conversation_id) < (after.updated_at, after.conversation_id)]
        return MembershipPage(memberships=mine[:limit], has_more=len(mine) > limit)


class InMemoryUserDirectory:
    """Users as a pool holds them; prefix search on name, username and email like
    Cognito's ``^=`` filter (case-sensitive, as the local emulator matches)."""

    def __init__(self) -> None:
        self.users: list[tuple[UserProfile, str]] = []

    def add(self, profile: UserProfile, email: str) -> None:
        self.users.append((profile, email))

    def search(self, query: str, limit: int) -> list[UserProfile]:
        found: dict[str, UserProfile] = {}
        for attribute in ("name", "username", "email"):
            for profile, email in self.users:
                value = email if attribute == "email" else getattr(profile, attribute)
                if value.startswith(query):
                    found.setdefault(profile.user_id, profile)
        return list(found.values())[:limit]

    def names_of(self, user_ids: Iterable[str]) -> dict[str, str]:
        wanted = set(user_ids)
        return {profile.user_id: profile.name for profile, _ in self.users if profile.user_id in wanted}

    def exists(self, user_id: str) -> bool:
        return any(profile.user_id == user_id for profile, _ in self.users)


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
