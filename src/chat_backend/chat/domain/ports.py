"""What the domain needs from the outside world. Adapters implement these.

Implementations live in :mod:`chat.adapters`: DynamoDB, ``@connections`` and Cognito for
Lambda, in-memory ones for tests and tools. Both must behave alike (the contract tests
check it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from chat.domain.models import (
    Connection,
    Conversation,
    ConversationPosition,
    FrameTicket,
    HistoryPage,
    HistoryPosition,
    Identity,
    MembershipPage,
    Message,
    PendingPage,
    PendingPosition,
    UserProfile,
)

__all__ = [
    "Clock",
    "ConnectionStore",
    "ConversationStore",
    "MessageStore",
    "Notifier",
    "TokenVerifier",
    "UserDirectory",
]

#: Returns the current time, timezone-aware.
Clock = Callable[[], datetime]


class ConnectionStore(Protocol):
    """Open WebSocket connections, whose they are, and how many frames each has sent."""

    def put(self, connection: Connection) -> None:
        """Remember a connection, findable by its user from then on."""
        ...

    def delete(self, connection_id: str, user_id: str | None = None) -> None:
        """Forget a connection; forgetting an unknown one is not an error.

        Args:
            user_id: whose it is, when the caller knows; otherwise the stored row says.
        """
        ...

    def connection_ids_by_user(self, user_ids: Iterable[str]) -> dict[str, list[str]]:
        """Every connection id stored for each of ``user_ids`` (any order, possibly stale;
        an empty list for a user with none), in one round trip."""
        ...

    def count_frame(self, ticket: FrameTicket) -> bool:
        """Count one frame against its window.

        Returns:
            False when the window was already full (nothing is counted then).
        """
        ...


class MessageStore(Protocol):
    """Messages, keyed by the client's ``messageId``, and the conversations they belong to."""

    def create(self, message: Message, ticket: FrameTicket | None = None, *, start_conversation: bool = True) -> None:
        """Store a new message, all or nothing, with its conversation bookkeeping.

        In one step: the message (pending for its recipient while ``sent``, unread for
        them unless it is a note-to-self), the conversation (created with the sender and
        recipient as its participants, or checked to have exactly them), both
        participants' memberships (last message, and one more unread for the recipient),
        the reply target's existence in the same conversation, and ``ticket``'s frame.

        Args:
            start_conversation: whether the message may create its conversation; when
                False, a conversation that does not exist yet refuses the message with
                ``no_conversation`` (the caller checks the recipient, then tries again).

        Raises:
            MessageRefused: nothing was written; it says every check that failed.
        """
        ...

    def get_many(self, message_ids: Iterable[str]) -> dict[str, Message]:
        """The stored messages among ``message_ids``, by id (unknown ids are left out)."""
        ...

    def confirm_received(self, recipient_id: str, message_ids: Iterable[str]) -> list[Message]:
        """Move ``sent`` messages whose recipient is ``recipient_id`` to ``delivered`` and
        out of their pending set: the recipient's device said it holds them.

        Ids of messages sent to someone else, unknown, or past ``sent`` (delivered or read
        already) are skipped, so a confirmation repeated or crossing a markRead changes
        nothing and ``read`` never goes back to ``delivered``.

        Returns:
            The messages this call moved (as they are now), so callers announce each
            delivery once.
        """
        ...

    def pending_for(self, user_id: str, limit: int, after: PendingPosition | None = None) -> PendingPage:
        """Up to ``limit`` of ``user_id``'s messages not confirmed yet, oldest first, after ``after``."""
        ...

    def history(self, conversation_id: str, limit: int, before: HistoryPosition | None = None) -> HistoryPage:
        """Up to ``limit`` of the conversation's messages, both directions and deleted ones
        included, newest first, after ``before`` (older than it), in one read."""
        ...

    def unread_up_to(self, user_id: str, conversation_id: str, timestamp: str) -> list[Message]:
        """Messages of the conversation sent to ``user_id`` by the other participant, not
        yet read, with a timestamp at or before ``timestamp``; oldest first."""
        ...

    def mark_read(self, reader_id: str, messages: list[Message], at: str) -> list[Message]:
        """Move messages of one conversation, all received by ``reader_id``, to ``read``.

        Messages already read are skipped; the others leave the pending and unread sets,
        and the reader's unread count for the conversation drops by the number of them
        that the other participant sent, in the same step.

        Returns:
            The messages this call moved to ``read`` (as they are now).
        """
        ...

    def erase(self, message_id: str, sender_id: str, at: str) -> Message:
        """Mark a message deleted and drop its content; only its sender's may be erased.

        Returns:
            The message as it is now.

        Raises:
            KeyError: no message with this id was sent by ``sender_id``.
        """
        ...


class ConversationStore(Protocol):
    """Conversations and each participant's membership (the conversation list)."""

    def get(self, conversation_id: str) -> Conversation | None: ...

    def memberships_of(
        self, user_id: str, limit: int, after: ConversationPosition | None = None
    ) -> MembershipPage:
        """Up to ``limit`` of the user's conversations, latest activity first, after ``after``."""
        ...


class UserDirectory(Protocol):
    """The user pool: who can be talked to."""

    def search(self, query: str, limit: int) -> list[UserProfile]:
        """Users whose name, username or email starts with ``query``; at most ``limit``."""
        ...

    def names_of(self, user_ids: Iterable[str]) -> dict[str, str]:
        """Display names by user id (users that do not exist are left out)."""
        ...

    def exists(self, user_id: str) -> bool:
        """Whether ``user_id`` names an enabled user of the pool."""
        ...


class Notifier(Protocol):
    """Pushes frames to connected clients (``@connections`` POST)."""

    def post(self, connection_id: str, frame: dict[str, Any]) -> None:
        """Send one JSON frame.

        Raises:
            ConnectionGone: the connection is closed or never existed (HTTP 410).
        """
        ...


class TokenVerifier(Protocol):
    """Checks a bearer token and says whose it is."""

    def verify(self, token: str) -> Identity:
        """Raises:
        InvalidToken: with the reason, for any token we must not accept.
        """
        ...
