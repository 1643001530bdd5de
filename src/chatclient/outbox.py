"""Messages sent but not yet acknowledged, kept for resending with the same ``messageId``.

The ``messageId`` is the server's idempotency key: resending the same message after a lost
ack stores nothing new and gets the original ack back. So the outbox can always resend
whatever has no ack, and the sender never sees a duplicate.

Within a conversation only the oldest unacknowledged message (the *head*) is on the wire:
API Gateway runs the integration of each frame concurrently, so two messages sent back to
back can be stored, and timestamped, in either order. Waiting for the ack before sending
the next keeps the server's order the order the user typed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chatclient.frames import action_frame

__all__ = ["Outbox", "OutgoingMessage"]


@dataclass
class OutgoingMessage:
    """One ``sendMessage`` waiting for its ``ack``.

    The first five fields are what an app persists to survive a restart; the rest is
    bookkeeping for this process.
    """

    message_id: str
    conversation_id: str
    recipient_id: str
    content: str
    reply_to_message_id: str | None = None
    #: How many times the frame went out.
    attempts: int = field(default=0, compare=False)
    #: Monotonic time of the last send, None before the first.
    last_sent_at: float | None = field(default=None, compare=False)

    def frame(self) -> dict[str, Any]:
        """The ``sendMessage`` frame, the same on every attempt."""
        return action_frame(
            "sendMessage",
            messageId=self.message_id,
            conversationId=self.conversation_id,
            recipientId=self.recipient_id,
            content=self.content,
            replyToMessageId=self.reply_to_message_id,
        )

    def same_message(self, other: OutgoingMessage) -> bool:
        return self.frame() == other.frame()


class Outbox:
    """Unacknowledged messages in the order they were first sent.

    Args:
        restored: messages an app persisted before it stopped; they are resent on connect.
    """

    def __init__(self, restored: Iterable[OutgoingMessage] = ()) -> None:
        self._entries: dict[str, OutgoingMessage] = {}
        for message in restored:
            self.add(message)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._entries

    def get(self, message_id: str) -> OutgoingMessage | None:
        return self._entries.get(message_id)

    def pending(self) -> list[OutgoingMessage]:
        """Every unacknowledged message, oldest first (a snapshot)."""
        return list(self._entries.values())

    def add(self, message: OutgoingMessage) -> OutgoingMessage:
        """Queue ``message``; queuing the same message again is a no-op.

        Raises:
            ValueError: another message already waits under this ``messageId`` (the server
                would refuse the second one).
        """
        existing = self._entries.get(message.message_id)
        if existing is not None:
            if not existing.same_message(message):
                raise ValueError(f"messageId {message.message_id} already names another message")
            return existing
        self._entries[message.message_id] = message
        return message

    def mark_sent(self, message_id: str, at: float) -> None:
        """Record an attempt made at monotonic time ``at``."""
        entry = self._entries.get(message_id)
        if entry is not None:
            entry.attempts += 1
            entry.last_sent_at = at

    def heads(self) -> list[OutgoingMessage]:
        """The oldest unacknowledged message of each conversation: the ones to put on the wire."""
        heads: dict[str, OutgoingMessage] = {}
        for entry in self._entries.values():
            heads.setdefault(entry.conversation_id, entry)
        return list(heads.values())

    def is_head(self, message_id: str) -> bool:
        """True if ``message_id`` is the oldest unacknowledged message of its conversation."""
        entry = self._entries.get(message_id)
        return entry is not None and self.head(entry.conversation_id) is entry

    def head(self, conversation_id: str) -> OutgoingMessage | None:
        return next((e for e in self._entries.values() if e.conversation_id == conversation_id), None)

    def due(self, now: float, ack_timeout: float) -> list[OutgoingMessage]:
        """Heads never sent, or sent more than ``ack_timeout`` seconds ago with no ack."""
        return [
            entry for entry in self.heads()
            if entry.last_sent_at is None or now - entry.last_sent_at >= ack_timeout
        ]

    def acknowledge(self, message_id: str) -> OutgoingMessage | None:
        """Remove an acknowledged message.

        Returns:
            The message, or None when the ack is for nothing waiting (an ack repeated for a
            resend that crossed the first ack): callers ignore those.
        """
        return self._entries.pop(message_id, None)

    def discard(self, message_id: str) -> OutgoingMessage | None:
        """Remove a message the server refused for good."""
        return self._entries.pop(message_id, None)
